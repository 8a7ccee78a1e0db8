//! Read index: linearizable reads without a log write (the Raft thesis, 6.4, in Paxos terms).
//!
//! The leader notes an index at least its commit index and every slot reported open to
//! it (any write completed before the read is at or below it), then confirms that no
//! higher ballot took over: a quorum (itself included) acknowledges a heartbeat round sent
//! after the read arrived, each acceptor only while it has promised nothing above the
//! leader's ballot. Reads arriving while a round is out wait for the next round (batching).
//! Losing leadership answers every waiting read `None`.
//!
//! With memberships (the core checks this before it starts a round): the quorum is one
//! of the voters of the slot after the index, t = index + 1, and the leader holds a
//! quorum of their reports of every slot >= t. A write completed before the read sits in
//! a slot chosen before it; if some slot >= t were, take t itself: chosen in a higher
//! ballot, its leader had promises of a quorum of t's voters before the read, and no
//! quorum of them can then acknowledge this round; in a lower ballot, a quorum of t's
//! voters accepted it, one reported it, and t <= index; in this ballot, no node learns it
//! before this leader delivers it, and then t <= index too.

use std::collections::VecDeque;

use std::collections::BTreeMap;

use super::config::Config;
use super::membership::Membership;
use super::message::Message;
use super::types::{NodeId, Ready, Slot};

/// Who asked: this node's driver (`None`) or a follower (and the incarnation of it that
/// asked) that forwarded the read; then the read's id.
type Asker = (Option<(NodeId, u64)>, u64);

/// One heartbeat round confirming leadership for a batch of reads.
struct Round {
    round: u64,
    /// The state machine must have applied this before the reads are served.
    index: Slot,
    /// The voters of slot index + 1: a quorum of them must acknowledge.
    voters: Vec<NodeId>,
    askers: Vec<Asker>,
}

/// Reads waiting for a round, and rounds waiting for a quorum.
pub struct ReadIndex {
    /// Reads not yet in a round. Invariant: pending.len() + askers in rounds <= reads_pending_max.
    pending: Vec<Asker>,
    /// Rounds sent, oldest first, by increasing round number.
    rounds: VecDeque<Round>,
    /// The last round number used. Invariant: only grows (across leaderships too).
    last_round: u64,
    /// Per node, the highest round it acknowledged in the current ballot.
    acked: BTreeMap<NodeId, u64>,
}

impl ReadIndex {
    /// No reads waiting.
    pub fn new() -> ReadIndex {
        ReadIndex {
            pending: Vec::new(),
            rounds: VecDeque::new(),
            last_round: 0,
            acked: BTreeMap::new(),
        }
    }

    fn waiting(&self) -> usize {
        self.pending.len() + self.rounds.iter().map(|r| r.askers.len()).sum::<usize>()
    }

    /// Registers a read; answers `None` at once if too many wait.
    pub fn register(&mut self, config: &Config, asker: Asker, out: &mut Ready) {
        if self.waiting() >= config.reads_pending_max {
            answer(asker, None, out);
            return;
        }
        self.pending.push(asker);
    }

    /// True if reads wait for a round and none is out (start one without waiting for a tick).
    pub fn wants_round(&self) -> bool {
        !self.pending.is_empty() && self.rounds.is_empty()
    }

    /// Moves the waiting reads into a new round at `index`, to be confirmed by a quorum
    /// of `voters` (those of slot index + 1), if given; returns the number of the newest
    /// round out (0 if none).
    pub fn start_round(&mut self, at: Option<(Slot, &Membership)>) -> u64 {
        let Some((index, m)) = at.filter(|_| !self.pending.is_empty()) else {
            return self.rounds.back().map_or(0, |r| r.round);
        };
        self.last_round += 1;
        self.rounds.push_back(Round {
            round: self.last_round,
            index,
            voters: m.voters.clone(),
            askers: std::mem::take(&mut self.pending),
        });
        self.last_round
    }

    /// `node` acknowledged `round` in the current ballot; answers every confirmed round.
    pub fn on_ack(&mut self, own: NodeId, node: NodeId, round: u64, out: &mut Ready) {
        let a = self.acked.entry(node).or_insert(0);
        *a = (*a).max(round);
        self.answer_confirmed(own, out);
    }

    /// Answers rounds a quorum of their voters confirmed (this node, `own`, counts as one
    /// if it votes; a single-node cluster confirms at once).
    pub fn answer_confirmed(&mut self, own: NodeId, out: &mut Ready) {
        while let Some(front) = self.rounds.front() {
            let acked =
                |v: &&NodeId| **v == own || self.acked.get(v).is_some_and(|&a| a >= front.round);
            let votes = front.voters.iter().filter(acked).count();
            if votes <= front.voters.len() / 2 {
                break;
            }
            if let Some(r) = self.rounds.pop_front() {
                for asker in r.askers {
                    answer(asker, Some(r.index), out);
                }
            }
        }
    }

    /// Leadership ended (or never came): every waiting read is answered `None`.
    pub fn fail_all(&mut self, out: &mut Ready) {
        for asker in std::mem::take(&mut self.pending) {
            answer(asker, None, out);
        }
        for r in std::mem::take(&mut self.rounds) {
            for asker in r.askers {
                answer(asker, None, out);
            }
        }
        self.acked.clear();
    }
}

/// Answers one read, locally or to the follower that forwarded it.
pub fn answer(asker: Asker, index: Option<Slot>, out: &mut Ready) {
    match asker {
        (None, id) => out.reads.push((id, index)),
        (Some((node, incarnation)), id) => {
            let reply = Message::ReadIndexReply {
                incarnation,
                id,
                index,
            };
            out.send.push((node, reply));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voters(v: &[NodeId]) -> Membership {
        Membership {
            id: 0,
            active_from: 1,
            voters: v.to_vec(),
            learners: Vec::new(),
        }
    }

    #[test]
    fn round_needs_a_quorum_of_acks_after_the_read() {
        let config = Config::new(1, vec![1, 2, 3, 4, 5]);
        let mut r = ReadIndex::new();
        let mut out = Ready::default();
        r.register(&config, (None, 7), &mut out);
        let round = r.start_round(Some((10, &voters(&[1, 2, 3, 4, 5]))));
        r.on_ack(1, 2, round, &mut out);
        assert!(out.reads.is_empty(), "two of five is no quorum");
        r.on_ack(1, 3, round - 1, &mut out);
        assert!(
            out.reads.is_empty(),
            "an ack of an older round does not count"
        );
        r.on_ack(1, 4, round, &mut out);
        assert_eq!(out.reads, vec![(7, Some(10))]);
    }

    #[test]
    fn only_the_voters_of_the_slot_after_the_index_confirm() {
        let config = Config::new(1, vec![1, 2, 3]);
        let mut r = ReadIndex::new();
        let mut out = Ready::default();
        r.register(&config, (None, 7), &mut out);
        // Node 1 leads but no longer votes for slot 11: two of 2, 3, 4 must confirm.
        let round = r.start_round(Some((10, &voters(&[2, 3, 4]))));
        r.on_ack(1, 5, round, &mut out);
        r.on_ack(1, 2, round, &mut out);
        assert!(out.reads.is_empty(), "a learner's ack and one voter's");
        r.on_ack(1, 4, round, &mut out);
        assert_eq!(out.reads, vec![(7, Some(10))]);
    }

    #[test]
    fn losing_leadership_answers_none() {
        let config = Config::new(1, vec![1, 2, 3]);
        let mut r = ReadIndex::new();
        let mut out = Ready::default();
        r.register(&config, (None, 1), &mut out);
        r.register(&config, (Some((2, 5)), 9), &mut out);
        r.fail_all(&mut out);
        assert_eq!(out.reads, vec![(1, None)]);
        assert_eq!(
            out.send,
            vec![(
                2,
                Message::ReadIndexReply {
                    incarnation: 5,
                    id: 9,
                    index: None
                }
            )]
        );
    }
}
