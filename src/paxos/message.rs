//! The messages cores exchange. The driver serializes them (serde) and validates nothing
//! beyond decoding: the core ignores messages that make no sense (slot 0, a ballot not of
//! its sender); it counts votes only from each slot's voters (`membership.rs`).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::types::{Ballot, Slot, Value};

/// One message between cores (including a core's messages to itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Sent by every node every `heartbeat_ticks`: liveness for the failure detector,
    /// the sender's commit index, and (from a leader) its ballot and read-index round.
    Heartbeat {
        /// `Some(ballot)` if the sender leads in that ballot.
        leading: Option<Ballot>,
        /// Every slot <= commit is chosen, as far as the sender knows.
        commit: Slot,
        /// Nonzero: the leader asks for a `HeartbeatAck` confirming leadership for reads.
        read_round: u64,
    },
    /// An acceptor has promised nothing above `ballot`, as of receiving `read_round`.
    HeartbeatAck { ballot: Ballot, read_round: u64 },
    /// Before campaigning (which makes a new ballot durable and preempts the leader), a
    /// node asks whether a quorum would follow it: a peer grants unless it hears a live
    /// leader or is ahead of `commit` by more than `leader_lag_slots_max` (etcd raft's
    /// PreVote). Changes no state anywhere.
    PreVote { ballot: Ballot, commit: Slot },
    /// The answer to `PreVote` (echoing its ballot).
    PreVoteReply { ballot: Ballot, granted: bool },
    /// Phase 1a for every slot >= `from` (the candidate knows all below are chosen).
    /// The candidate made `ballot` durable before sending this, so no later incarnation
    /// of it ever uses `ballot` again.
    Prepare { ballot: Ballot, from: Slot },
    /// Phase 1b: the acceptor promised `ballot`; for each slot >= `from` (up to
    /// `through`) it reports the ballot it ACCEPTED in and that ballot's value. `ballot`
    /// and `from` echo the Prepare answered: a candidate counts only a promise for its
    /// own (ballot, from), and asks for the next chunk with a Prepare from `through + 1`.
    Promise {
        ballot: Ballot,
        from: Slot,
        /// `Some(t)`: the report stopped after slot `t` at a size limit (more follow on
        /// request); `None`: it covers every slot >= `from`.
        through: Option<Slot>,
        accepted: Vec<(Slot, Ballot, Value)>,
        /// Slots <= this were compacted here: a candidate with `from` <= this must catch up.
        compacted_through: Slot,
    },
    /// Phase 2a for one slot, with the leader's commit index piggybacked.
    Accept {
        ballot: Ballot,
        slot: Slot,
        value: Value,
        commit: Slot,
    },
    /// Phase 2b: the acceptor accepted `ballot` at `slot` (durably).
    Accepted { ballot: Ballot, slot: Slot },
    /// The acceptor refused `ballot` because it promised the higher `promised`.
    Nack { ballot: Ballot, promised: Ballot },
    /// The acceptor already compacted `slot` (it is chosen); the leader must catch up.
    AcceptCompacted {
        ballot: Ballot,
        compacted_through: Slot,
    },
    /// A follower forwards client commands to the leader.
    Forward { commands: Vec<Bytes> },
    /// A leader that stepped down returns forwarded commands it never put in a slot, so
    /// their node fails them at once as not applied (a Forward is delivered at most once).
    Refused { commands: Vec<Bytes> },
    /// A follower forwards a read-index request to the leader. `incarnation` is the
    /// asking core's (see `Core::new`): read ids restart with every incarnation.
    ReadIndex { incarnation: u64, id: u64 },
    /// The leader's answer to a forwarded read-index request, echoing the request's
    /// incarnation and id; the asker drops an answer meant for another incarnation.
    ReadIndexReply {
        incarnation: u64,
        id: u64,
        index: Option<Slot>,
    },
    /// Asks for the chosen values of slots `from..=to`.
    CatchUp { from: Slot, to: Slot },
    /// Chosen values, consecutive from the request's `from`, and the sender's commit index.
    CatchUpReply {
        entries: Vec<(Slot, Value)>,
        commit: Slot,
    },
    /// The leader of `ballot` says every slot <= `commit` is chosen. Sent to every peer in
    /// the `Ready` in which the leader's commit index advanced (once per `Ready`, not per
    /// slot), so followers deliver without waiting for the next heartbeat or accept.
    Commit { ballot: Ballot, commit: Slot },
}

impl Message {
    /// True for the messages that vouch for this node's acceptor state or ballot
    /// (prepares, promises, accepts, accepted): they must not leave before the Readys
    /// taken before them are durable. Every other message states facts (chosen values,
    /// commit indexes) or asks for something, and may leave at once.
    pub fn waits_for_persist(&self) -> bool {
        matches!(
            self,
            Message::Prepare { .. }
                | Message::Promise { .. }
                | Message::Accept { .. }
                | Message::Accepted { .. }
        )
    }

    /// A short name for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Heartbeat { .. } => "heartbeat",
            Message::HeartbeatAck { .. } => "heartbeat-ack",
            Message::PreVote { .. } => "pre-vote",
            Message::PreVoteReply { .. } => "pre-vote-reply",
            Message::Prepare { .. } => "prepare",
            Message::Promise { .. } => "promise",
            Message::Accept { .. } => "accept",
            Message::Accepted { .. } => "accepted",
            Message::Nack { .. } => "nack",
            Message::AcceptCompacted { .. } => "accept-compacted",
            Message::Forward { .. } => "forward",
            Message::Refused { .. } => "refused",
            Message::ReadIndex { .. } => "read-index",
            Message::ReadIndexReply { .. } => "read-index-reply",
            Message::CatchUp { .. } => "catch-up",
            Message::CatchUpReply { .. } => "catch-up-reply",
            Message::Commit { .. } => "commit",
        }
    }
}
