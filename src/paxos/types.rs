//! The vocabulary shared by the core and its driver: ids, slots, ballots, values, the
//! durable acceptor state, and the `Ready` batch of actions the driver must carry out.
//!
//! Invariant: everything here is plain data; no I/O, no clock.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::message::Message;

/// A member's id: its position in CONCIERGES, counting from 1.
pub type NodeId = u32;

/// A log position. The first slot is 1; 0 means "none".
pub type Slot = u64;

/// A Paxos ballot (proposal number), unique per proposer because it carries the node id
/// ("Paxos Made Simple", 2.5: "different proposers choose their numbers from disjoint sets").
/// Ordered by `(round, node)`; the zero ballot is below every ballot a proposer uses.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    /// Raised above every round a proposer has seen when it starts phase 1.
    pub round: u64,
    /// The proposer; makes ballots of different proposers distinct.
    pub node: NodeId,
}

impl Ballot {
    /// The ballot below every real one (round 0 is never used by a proposer).
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };
}

impl std::fmt::Display for Ballot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

/// Framing allowance per command and per value in [`Value::size_bytes`] (msgpack needs
/// at most 5 bytes of length prefix per byte string; the slot number and tags fit too).
pub const VALUE_OVERHEAD_BYTES: usize = 16;

/// What a slot holds. Commands are opaque bytes; `Noop` fills a gap a new leader found.
/// New variants go at the end: the acceptor log stores values by variant index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// Fills a slot no earlier ballot is known to have used.
    Noop,
    /// One or more client commands, applied in order.
    Batch(Vec<Bytes>),
    /// A change of the members (see `membership.rs`): chosen at slot j, it governs the
    /// slots from j + the delay on, if it still applies to the membership it names.
    Reconfigure(Change),
}

/// A new set of members, as a leader proposes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The `id` of the membership this one replaces: the change is void if another
    /// change was chosen first (compare-and-set, so changes never interleave).
    pub base: Slot,
    /// The members whose acceptors form the quorums (at most one differs from `base`'s).
    pub voters: Vec<NodeId>,
    /// Members that follow the log without voting (catching up before a promotion).
    pub learners: Vec<NodeId>,
    /// Opaque to the core, carried with the change (the node puts the members' addresses
    /// here, as etcd's `ConfChange.Context`). Last, so older encodings fail to decode
    /// rather than misread.
    pub context: Bytes,
}

impl Value {
    /// Roughly the encoded size: command bytes plus `VALUE_OVERHEAD_BYTES` per command
    /// (and per value), for limits that must stay below a transport frame.
    pub fn size_bytes(&self) -> usize {
        match self {
            Value::Noop => VALUE_OVERHEAD_BYTES,
            Value::Batch(commands) => commands.iter().fold(VALUE_OVERHEAD_BYTES, |n, c| {
                n + c.len() + VALUE_OVERHEAD_BYTES
            }),
            Value::Reconfigure(c) => {
                VALUE_OVERHEAD_BYTES + 5 * (c.voters.len() + c.learners.len()) + 9 + c.context.len()
            }
        }
    }

    /// Number of commands in the value.
    pub fn commands(&self) -> usize {
        match self {
            Value::Noop | Value::Reconfigure(_) => 0,
            Value::Batch(commands) => commands.len(),
        }
    }
}

/// The acceptor state that must survive a crash. The driver rebuilds it at start-up from
/// what it persisted (applying every `Persist` in order, see [`DurableState::apply`]).
///
/// Invariant: every accepted ballot is <= `promised`.
/// Invariant: every key of `accepted` is > `compacted_through`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableState {
    /// The highest ballot this acceptor promised (phase 1b) or accepted in.
    pub promised: Ballot,
    /// Per slot, the highest ballot this acceptor accepted in and the value of that ballot.
    pub accepted: BTreeMap<Slot, (Ballot, Value)>,
    /// The state machine durably holds every slot <= this.
    pub compacted_through: Slot,
}

impl DurableState {
    /// Applies one persisted record, as the driver does when replaying its log.
    pub fn apply(&mut self, record: &Persist) {
        match record {
            Persist::Promise(ballot) => self.promised = self.promised.max(*ballot),
            Persist::Accept {
                slot,
                ballot,
                value,
            } => {
                self.promised = self.promised.max(*ballot);
                if *slot > self.compacted_through {
                    self.accepted.insert(*slot, (*ballot, value.clone()));
                }
            }
        }
    }

    /// Forgets accepted values at or below `through` (the state machine holds them).
    pub fn compact(&mut self, through: Slot) {
        if through > self.compacted_through {
            self.compacted_through = through;
            self.accepted = self.accepted.split_off(&(through + 1));
        }
    }
}

/// One record the driver must make durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Persist {
    /// The acceptor promised this ballot (it never answers a lower one again).
    Promise(Ballot),
    /// The acceptor accepted `value` in `ballot` at `slot` (this also promises `ballot`).
    Accept {
        /// The slot.
        slot: Slot,
        /// The ballot the value was accepted in.
        ballot: Ballot,
        /// The value.
        value: Value,
    },
}

/// The actions the core asks of its driver, taken with [`super::Core::ready`].
///
/// The driver MUST carry them out in this order (like etcd raft's `Ready`):
/// 1. `persist`: make every record durable (one group commit) BEFORE any of `send` leaves
///    this node. Acceptor replies (promises, accepts) sit in `send` of the same `Ready` whose
///    `persist` holds the state they vouch for; sending them earlier breaks Paxos safety.
///    Readys must be persisted in the order they were taken.
/// 2. `send`: deliver each message to its addressee. Messages addressed to this node are
///    included: feed them back with `step(self_id, msg)` (so a leader's own vote counts
///    only after its own persist).
/// 3. `deliver`: chosen slots in slot order, each exactly once per incarnation of the core,
///    starting after `compacted_through` (or after the last `install_snapshot`); apply in order.
///    They may be applied before `persist` completes (chosen values are facts).
/// 4. `reads`: read-index answers `(id, Some(index))`: a linearizable read may be served
///    once the state machine has applied `index`; `None`: not leader / leadership lost, retry.
/// 5. `snapshot_needed`: peers that asked for slots this node has compacted away: stream
///    them a snapshot; the receiver's driver then calls `install_snapshot(through)`.
/// 6. `dropped`: commands proposed at this node that were never put in a slot and never
///    will be (the leader stepped down with them queued, or no leader took them): fail
///    their callers at once as not applied.
///
/// Messages in `send` for which [`Message::waits_for_persist`] is false vouch for no
/// state of this node (heartbeats, commit notices, read-index traffic, catch-up): they
/// may leave at once, ahead of earlier Readys still persisting.
#[derive(Debug, Default)]
pub struct Ready {
    /// Records to make durable before anything in `send` is sent.
    pub persist: Vec<Persist>,
    /// Messages to send after `persist` is durable; self-addressed ones go back to `step`.
    pub send: Vec<(NodeId, Message)>,
    /// Chosen slots, in slot order, each once: apply in order.
    pub deliver: Vec<(Slot, Value)>,
    /// For each `Reconfigure` in `deliver`, in the same order: what it did to the
    /// memberships (the core applies it as it delivers).
    pub changes: Vec<ChangeDelivered>,
    /// Read-index answers: (id, commit index to wait for | None = retry / not leader).
    pub reads: Vec<(u64, Option<Slot>)>,
    /// Peers behind our compaction point: stream them a snapshot.
    pub snapshot_needed: Vec<NodeId>,
    /// Commands proposed here that will never be chosen: fail them (not applied).
    pub dropped: Vec<Bytes>,
}

impl Ready {
    /// True if the driver has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.send.is_empty()
            && self.deliver.is_empty()
            && self.changes.is_empty()
            && self.reads.is_empty()
            && self.snapshot_needed.is_empty()
            && self.dropped.is_empty()
    }
}

/// A delivered `Reconfigure` and its outcome, decided by the core's memberships.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeDelivered {
    /// The slot that chose the change.
    pub slot: Slot,
    /// The first slot the new membership governs (`slot` + the window); `None` when the
    /// change was void: another change chosen earlier made it stale, and every replica
    /// finds it void alike, so nothing changes.
    pub governs_from: Option<Slot>,
}

/// A view of the core for the driver's status page and leader routing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// The leader this node would forward proposals to, if any.
    pub leader: Option<NodeId>,
    /// This node's ballot if it leads, else the highest ballot it promised.
    pub ballot: Ballot,
    /// True while this node leads (phase 1 done, ballot not preempted).
    pub is_leader: bool,
    /// The highest slot this node knows to be chosen together with all below it
    /// (possibly learned from a peer and not yet fetched).
    pub commit_index: Slot,
    /// Every slot <= this has been handed out in `Ready.deliver` (or came in a snapshot).
    pub delivered_index: Slot,
    /// Peers and whether the failure detector trusts them (this node excluded).
    pub peers_healthy: Vec<(NodeId, bool)>,
    /// Peers and the commit index each last reported in a heartbeat (its progress).
    pub peers_commit: Vec<(NodeId, Slot)>,
    /// The newest membership this node knows (it may not govern any slot yet).
    pub membership: super::membership::Membership,
}

/// Why `propose` refused a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// No leader is known: retry later.
    NoLeader,
    /// More than `proposals_queued_max` commands wait: back off.
    Busy,
}

impl std::fmt::Display for ProposeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProposeError::NoLeader => write!(f, "no leader known"),
            ProposeError::Busy => write!(f, "too many proposals queued"),
        }
    }
}

impl std::error::Error for ProposeError {}
