//! The replicated state machine: keys with versions and revisions, sessions and their
//! ephemeral keys, and a bounded history of changes for watches.
//!
//! Commands ([`Command`]) arrive in log order through [`KvStateMachine::apply_slot`]
//! (the node's `StateMachine::apply`); each slot's changes reach storage with the new
//! applied index in one atomic batch, or in several for a large slot, each saying how
//! far the slot got, so a restart resumes exactly where the stored state stopped. Nothing here reads a wall clock or a random source: every replica that
//! applies the same slots holds the same bytes. Reads go through [`KvReader`], a
//! cheap clone reading the storage snapshot the machine pins after each slot.
//!
//! Reading order: `command` (what is replicated), `outcome` (what the proposer gets
//! back), `keyspace` (the storage layout), `options` (the limits), `machine` (the
//! state, and the node's `StateMachine` trait), `overlay` (one slot's writes over the
//! Db), `ctx` (one slot's context), `apply` (a slot, command by command), `chunked`
//! (prefix deletes, session closes and expiries of any size, in bounded chunks), `keys`,
//! `sessions`, `txn`, `idempotency` (with `fingerprint`, what a request is), `history`,
//! `read`, `snapshot` (and `restore`, a new cluster's state from snapshot chunks), `auth`
//! (access control: roles, users, token hashes, one record applied by `auth::apply`
//! from `apply`, and the `AuthTable` requests are checked against), `lease` (the leader's session deadlines, not replicated;
//! `crate::server::expiry` acts on them), `hub` (the live watchers, fed each written
//! slot's events) and `watch` (one watch's stream: history, then live events from the
//! hub).
//! Imports point one way: the appliers (`keys`, `sessions`, `txn`, `idempotency`,
//! `history`) use `ctx`, and only `apply` and `chunked` use them (`apply` uses
//! `chunked`, which uses `sessions` and `idempotency`); `apply` and `snapshot` use
//! `machine`, which uses neither. `machine` and `read` use `hub`; `watch` uses `read`
//! and `hub`, and nothing in `kv` uses `watch`. From `node`, `kv` uses only the
//! `StateMachine` trait and its `SnapshotSource`.

pub mod apply;
pub mod auth;
mod chunked;
pub mod command;
mod ctx;
pub mod error;
pub mod fingerprint;
pub mod history;
pub mod hub;
pub mod idempotency;
pub mod keys;
pub mod keyspace;
pub mod lease;
pub mod machine;
pub mod membership;
pub mod options;
pub mod outcome;
pub mod overlay;
pub mod read;
pub mod restore;
pub mod sessions;
pub mod snapshot;
pub mod txn;
pub mod watch;

pub use auth::AuthTable;
pub use command::{Command, Compare, CompareTarget, LeaderBallot, SessionId, TxnOp};
pub use error::KvError;
pub use keyspace::{Event, EventKind, KeyRecord, Meta, SessionRecord};
pub use lease::LeaseTable;
pub use machine::KvStateMachine;
pub use options::KvOptions;
pub use outcome::{Outcome, Reply, TxnResult};
pub use read::KvReader;

#[cfg(test)]
mod bounded_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod live_bytes_tests;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
