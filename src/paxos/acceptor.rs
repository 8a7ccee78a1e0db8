//! The acceptor ("Paxos Made Simple", 2.2 and 2.4), for every slot at once.
//!
//! Phase 1b: promise a prepare whose ballot is strictly above the promise (an equal ballot
//! is the same proposer asking again, answered again without a new record). Phase 2b:
//! accept a ballot >= the promise. Every state change is pushed to `Ready.persist` and the
//! reply to `Ready.send` of the same Ready, so the driver makes it durable before replying.
//! A promise reports, per slot, the ballot the acceptor ACCEPTED in (never its promise).

use super::message::Message;
use super::types::{Ballot, DurableState, Persist, Ready, Slot, Value};

/// The acceptor's state: exactly what the driver persists.
pub struct Acceptor {
    /// Invariant: equals what the driver holds after persisting every Ready taken so far
    /// plus the Ready being built.
    state: DurableState,
}

impl Acceptor {
    /// An acceptor rebuilt from its durable state.
    pub fn new(state: DurableState) -> Acceptor {
        Acceptor { state }
    }

    /// The highest ballot promised or accepted.
    pub fn promised(&self) -> Ballot {
        self.state.promised
    }

    /// Accepted entries in `from..=to`, for learning from a leader's commit index.
    pub fn accepted_range(
        &self,
        from: Slot,
        to: Slot,
    ) -> impl Iterator<Item = (&Slot, &(Ballot, Value))> {
        let to = to.max(from);
        self.state.accepted.range(from..=to)
    }

    /// A candidate of this node promises its own new `ballot` before any Prepare of it
    /// leaves (the record is in the same Ready as the Prepares), so a restart can never
    /// campaign with the same ballot again: every reply carrying that ballot answers this
    /// campaign. `ballot` must be above the current promise (the proposer picks it so).
    pub fn promise_own(&mut self, ballot: Ballot, out: &mut Ready) {
        assert!(
            ballot > self.state.promised,
            "own ballot {ballot} not above promise {}",
            self.state.promised
        );
        self.state.promised = ballot;
        out.persist.push(Persist::Promise(ballot));
    }

    /// Phase 1b: the reply to `Prepare { ballot, from }`, reporting at most
    /// `limits = (slots, bytes)` of accepted values (always at least one slot).
    pub fn on_prepare(
        &mut self,
        ballot: Ballot,
        from: Slot,
        limits: (u64, usize),
        out: &mut Ready,
    ) -> Message {
        if ballot < self.state.promised {
            return Message::Nack {
                ballot,
                promised: self.state.promised,
            };
        }
        if ballot > self.state.promised {
            self.state.promised = ballot;
            out.persist.push(Persist::Promise(ballot));
        }
        let (slots_max, bytes_max) = limits;
        let mut accepted = Vec::new();
        let mut bytes = 0usize;
        let mut through = None;
        for (&slot, (b, v)) in self.state.accepted.range(from.max(1)..) {
            let size = v.size_bytes();
            let full = accepted.len() as u64 >= slots_max || bytes + size > bytes_max;
            if !accepted.is_empty() && full {
                through = accepted.last().map(|(s, _, _)| *s);
                break;
            }
            bytes += size;
            accepted.push((slot, *b, v.clone()));
        }
        Message::Promise {
            ballot,
            from,
            through,
            accepted,
            compacted_through: self.state.compacted_through,
        }
    }

    /// Phase 2b: the reply to `Accept { ballot, slot, value }`.
    pub fn on_accept(
        &mut self,
        ballot: Ballot,
        slot: Slot,
        value: Value,
        out: &mut Ready,
    ) -> Message {
        if ballot < self.state.promised {
            return Message::Nack {
                ballot,
                promised: self.state.promised,
            };
        }
        if slot <= self.state.compacted_through {
            return Message::AcceptCompacted {
                ballot,
                compacted_through: self.state.compacted_through,
            };
        }
        self.state.promised = ballot;
        let already = matches!(self.state.accepted.get(&slot), Some((b, _)) if *b == ballot);
        if !already {
            out.persist.push(Persist::Accept {
                slot,
                ballot,
                value: value.clone(),
            });
            self.state.accepted.insert(slot, (ballot, value));
        }
        Message::Accepted { ballot, slot }
    }

    /// Forgets accepted values at or below `through`.
    pub fn compact(&mut self, through: Slot) {
        self.state.compact(through);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn b(round: u64, node: u32) -> Ballot {
        Ballot { round, node }
    }

    fn cmd(s: &'static str) -> Value {
        Value::Batch(vec![Bytes::from_static(s.as_bytes())])
    }

    const ALL: (u64, usize) = (u64::MAX, usize::MAX);

    #[test]
    fn a_promise_reports_in_chunks_bounded_by_slots_and_bytes() {
        let mut a = Acceptor::new(DurableState::default());
        let mut out = Ready::default();
        for slot in 1..=10 {
            a.on_accept(b(1, 1), slot, cmd("0123456789"), &mut out);
        }
        let size = cmd("0123456789").size_bytes();
        let chunk = |m: Message| match m {
            Message::Promise {
                through, accepted, ..
            } => (through, accepted.iter().map(|e| e.0).collect::<Vec<_>>()),
            other => panic!("expected a promise, got {other:?}"),
        };
        let by_slots = a.on_prepare(b(2, 2), 3, (4, usize::MAX), &mut out);
        assert_eq!(chunk(by_slots), (Some(6), vec![3, 4, 5, 6]));
        let by_bytes = a.on_prepare(b(2, 2), 7, (100, 2 * size), &mut out);
        assert_eq!(chunk(by_bytes), (Some(8), vec![7, 8]));
        let last = a.on_prepare(b(2, 2), 9, (100, 2 * size), &mut out);
        assert_eq!(chunk(last), (None, vec![9, 10]));
        // One slot always goes, however small the budget.
        let one = a.on_prepare(b(2, 2), 1, (100, 1), &mut out);
        assert_eq!(chunk(one), (Some(1), vec![1]));
    }

    #[test]
    fn promise_reports_accepted_ballot_not_promise() {
        // Paxos Made Simple, 2.2 (P2c): the proposer needs the ballot each value was accepted in.
        let mut a = Acceptor::new(DurableState::default());
        let mut out = Ready::default();
        a.on_accept(b(1, 1), 5, cmd("x"), &mut out);
        let reply = a.on_prepare(b(2, 2), 1, ALL, &mut out);
        assert_eq!(
            reply,
            Message::Promise {
                ballot: b(2, 2),
                from: 1,
                through: None,
                accepted: vec![(5, b(1, 1), cmd("x"))],
                compacted_through: 0
            }
        );
        let reply = a.on_prepare(b(3, 3), 1, ALL, &mut out);
        match reply {
            Message::Promise { accepted, .. } => assert_eq!(accepted[0].1, b(1, 1)),
            other => panic!("expected a promise, got {other:?}"),
        }
    }

    #[test]
    fn accepts_equal_ballot_refuses_lower() {
        let mut a = Acceptor::new(DurableState::default());
        let mut out = Ready::default();
        a.on_prepare(b(2, 1), 1, ALL, &mut out);
        assert_eq!(out.persist, vec![Persist::Promise(b(2, 1))]);
        assert_eq!(
            a.on_accept(b(2, 1), 1, cmd("a"), &mut out),
            Message::Accepted {
                ballot: b(2, 1),
                slot: 1
            }
        );
        assert_eq!(
            a.on_accept(b(1, 3), 2, cmd("b"), &mut out),
            Message::Nack {
                ballot: b(1, 3),
                promised: b(2, 1)
            }
        );
        assert_eq!(
            a.on_prepare(b(1, 9), 1, ALL, &mut out),
            Message::Nack {
                ballot: b(1, 9),
                promised: b(2, 1)
            }
        );
    }

    #[test]
    fn every_reply_comes_with_its_persist_record() {
        let mut a = Acceptor::new(DurableState::default());
        let mut out = Ready::default();
        a.on_accept(b(1, 1), 3, cmd("a"), &mut out);
        assert_eq!(
            out.persist,
            vec![Persist::Accept {
                slot: 3,
                ballot: b(1, 1),
                value: cmd("a")
            }]
        );
        // A duplicate accept re-answers without a second record.
        a.on_accept(b(1, 1), 3, cmd("a"), &mut out);
        assert_eq!(out.persist.len(), 1);
        // Replaying the records rebuilds the same state.
        let mut replay = DurableState::default();
        for p in &out.persist {
            replay.apply(p);
        }
        assert_eq!(replay, a.state);
    }

    #[test]
    fn compacted_slots_are_not_accepted() {
        let mut a = Acceptor::new(DurableState::default());
        let mut out = Ready::default();
        a.on_accept(b(1, 1), 1, cmd("a"), &mut out);
        a.compact(1);
        assert_eq!(
            a.on_accept(b(1, 1), 1, cmd("a"), &mut out),
            Message::AcceptCompacted {
                ballot: b(1, 1),
                compacted_through: 1
            }
        );
    }
}
