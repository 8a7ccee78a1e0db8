//! Read index: linearizable reads without a log write (the Raft thesis, 6.4, in Paxos terms).
//!
//! The leader notes an index at least its commit index and every slot open when it took
//! over (any write completed before the read is at or below it), then confirms that no
//! higher ballot took over: a quorum (itself included) acknowledges a heartbeat round sent
//! after the read arrived, each acceptor only while it has promised nothing above the
//! leader's ballot. Reads arriving while a round is out wait for the next round (batching).
//! Losing leadership answers every waiting read `None`.

use std::collections::VecDeque;

use super::config::Config;
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
    /// Per member (bit index), the highest round it acknowledged in the current ballot.
    acked: Vec<u64>,
}

impl ReadIndex {
    /// No reads waiting.
    pub fn new(members: usize) -> ReadIndex {
        ReadIndex {
            pending: Vec::new(),
            rounds: VecDeque::new(),
            last_round: 0,
            acked: vec![0; members],
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

    /// Moves the waiting reads into a new round; returns its number (0 if none waited).
    pub fn start_round(&mut self, index: Slot) -> u64 {
        if self.pending.is_empty() {
            return self.rounds.back().map_or(0, |r| r.round);
        }
        self.last_round += 1;
        self.rounds.push_back(Round {
            round: self.last_round,
            index,
            askers: std::mem::take(&mut self.pending),
        });
        self.last_round
    }

    /// A member acknowledged `round` in the current ballot; answers every confirmed round.
    pub fn on_ack(&mut self, config: &Config, member: usize, round: u64, out: &mut Ready) {
        if let Some(a) = self.acked.get_mut(member) {
            *a = (*a).max(round);
        }
        self.answer_confirmed(config, out);
    }

    /// Answers rounds a quorum confirmed (this node counts as one; a single-node cluster
    /// confirms at once).
    pub fn answer_confirmed(&mut self, config: &Config, out: &mut Ready) {
        let own = config.members.iter().position(|&m| m == config.id);
        while let Some(front) = self.rounds.front() {
            let votes = self
                .acked
                .iter()
                .enumerate()
                .filter(|(i, &a)| Some(*i) == own || a >= front.round)
                .count();
            if votes < config.quorum() {
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
        self.acked.iter_mut().for_each(|a| *a = 0);
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

    #[test]
    fn round_needs_a_quorum_of_acks_after_the_read() {
        let config = Config::new(1, vec![1, 2, 3, 4, 5]);
        let mut r = ReadIndex::new(5);
        let mut out = Ready::default();
        r.register(&config, (None, 7), &mut out);
        let round = r.start_round(10);
        r.on_ack(&config, 1, round, &mut out);
        assert!(out.reads.is_empty(), "two of five is no quorum");
        r.on_ack(&config, 2, round - 1, &mut out);
        assert!(
            out.reads.is_empty(),
            "an ack of an older round does not count"
        );
        r.on_ack(&config, 3, round, &mut out);
        assert_eq!(out.reads, vec![(7, Some(10))]);
    }

    #[test]
    fn losing_leadership_answers_none() {
        let config = Config::new(1, vec![1, 2, 3]);
        let mut r = ReadIndex::new(3);
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
