//! The replicated state machine as the node sees it (implemented by `kv`).
//!
//! Contract:
//! - `apply` is called for slot `applied_index() + 1` and only that; it applies the
//!   commands deterministically and records the new applied index atomically with them.
//!   A Noop slot is applied with an empty command list (the applied index still moves);
//!   a membership change through `apply_membership_change`, which keeps it.
//! - `sync` makes everything applied so far durable; the node calls it before it drops
//!   log entries the state machine is now the only holder of.
//! - Snapshots are staged: `begin_install(slot)` starts receiving, `install_chunk` takes the
//!   bytes in order, and `finish_install` atomically replaces the state (afterwards
//!   `applied_index() == slot`, durably). An install that never finishes (the sender died)
//!   must leave the current state untouched; the next `begin_install` discards the stage.
//!   The node never calls `apply` between `begin_install` and the end of that install.
//! - `snapshot` returns a consistent point-in-time view that can be streamed while the
//!   state machine keeps applying (it is read on another thread, hence `Send`). Its chunks
//!   travel whole: the receiver's `install_chunk` is called once per non-empty chunk, in
//!   order, with exactly the bytes `next_chunk` returned. A chunk must not exceed the
//!   node's `snapshot_chunk_bytes_max` (default 16 MiB; about 1 MiB is a good size).

use std::io;

use bytes::Bytes;

use crate::paxos::{Change, Slot};

/// A snapshot being read out, chunk by chunk.
pub trait SnapshotSource: Send {
    /// The state covers every slot <= this.
    fn slot(&self) -> Slot;
    /// The next chunk of the snapshot, `None` after the last one.
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>>;
}

/// The deterministic state machine the node replicates.
pub trait StateMachine: Send + 'static {
    /// The last applied slot, read at start-up; 0 = nothing applied.
    fn applied_index(&self) -> Slot;
    /// Applies one chosen slot (== `applied_index() + 1`); one result per command.
    fn apply(&mut self, slot: Slot, commands: &[Bytes]) -> io::Result<Vec<Bytes>>;
    /// Applies a slot (== `applied_index() + 1`) that chose a membership change: keeps
    /// it, with the applied index, atomically (the core applies the change itself).
    fn apply_membership_change(&mut self, slot: Slot, change: &Change) -> io::Result<()>;
    /// Every membership change applied so far, in slot order (carried by snapshots): the
    /// node rebuilds the core's memberships from them (`node::members`).
    fn membership_changes(&self) -> io::Result<Vec<(Slot, Change)>>;
    /// Makes the applied state durable.
    fn sync(&mut self) -> io::Result<()>;
    /// A point-in-time snapshot of the applied state.
    fn snapshot(&self) -> io::Result<Box<dyn SnapshotSource>>;
    /// Starts staging a snapshot covering every slot <= `slot`.
    fn begin_install(&mut self, slot: Slot) -> io::Result<()>;
    /// Adds the next chunk to the staged snapshot.
    fn install_chunk(&mut self, chunk: &[u8]) -> io::Result<()>;
    /// Replaces the state with the staged snapshot; afterwards `applied_index() == slot`.
    fn finish_install(&mut self) -> io::Result<()>;
}
