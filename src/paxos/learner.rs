//! The learner: which slots are chosen, in-order delivery, and catch-up.
//!
//! A slot becomes known chosen (1) at the leader, from a quorum of `Accepted`; (2) at a
//! follower, from a leader's commit index in ballot `b` covering a slot this node's acceptor
//! accepted in exactly `b` (one value per ballot per slot, and the leader announces only
//! slots its own ballot chose, so that accepted value is the chosen one); (3) from a peer's
//! `CatchUpReply`. Anything known chosen but not fetchable (a heartbeat's commit index above
//! what we have) is asked for with `CatchUp`, at most `catchup_slots_max` slots at a time;
//! a reply carries at most `catchup_bytes_max` bytes of values (but always one slot).
//! A request unanswered for `CATCHUP_RETRY_HEARTBEATS` heartbeats is sent again to the
//! next peer (by id, round robin) that reported having the slots, so a source that died or
//! went silent does not stall catch-up.
//!
//! The learner applies every delivered `Reconfigure` to the membership history, in slot
//! order as it delivers, so the memberships always match the delivered prefix.

use std::collections::BTreeMap;

use super::membership::Memberships;
use super::message::Message;
use super::types::{Ballot, ChangeDelivered, NodeId, Ready, Slot, Value};

/// Retry an unanswered catch-up request after this many heartbeat periods.
const CATCHUP_RETRY_HEARTBEATS: u64 = 2;

/// Chosen values and delivery progress.
pub struct Learner {
    /// This node (never asked for catch-up).
    id: NodeId,
    /// Known chosen values above `compacted_through` (delivered ones are kept to serve
    /// catch-up until compaction). Invariant: every key > compacted_through.
    chosen: BTreeMap<Slot, Value>,
    /// Every slot <= delivered was handed to the driver. Invariant: >= compacted_through,
    /// and every slot in (compacted_through, delivered] is in `chosen`.
    delivered: Slot,
    /// The state machine holds every slot <= this.
    compacted_through: Slot,
    /// The highest commit index any peer reported. Invariant: slots <= it are chosen.
    known_commit: Slot,
    /// The peer that reported `known_commit` (it can serve those slots).
    commit_source: Option<NodeId>,
    /// The commit index each peer last reported.
    reported: BTreeMap<NodeId, Slot>,
    /// The peer asked by the outstanding catch-up request, if it has not answered.
    asked: Option<NodeId>,
    /// No catch-up request before this tick (one outstanding at a time).
    catchup_not_before: u64,
    /// Accepted entries examined against a leader's commit, in all: the work
    /// `learn_from_leader` did (tests hold it linear in the slots).
    leader_scan_steps: u64,
    /// The memberships governing the slots after `delivered`.
    /// Invariant: every `Reconfigure` delivered so far is applied.
    memberships: Memberships,
}

impl Learner {
    /// A learner that knows everything <= `compacted_through` is applied, with the
    /// memberships as of that slot.
    pub fn new(id: NodeId, compacted_through: Slot, memberships: Memberships) -> Learner {
        Learner {
            id,
            chosen: BTreeMap::new(),
            delivered: compacted_through,
            compacted_through,
            known_commit: compacted_through,
            commit_source: None,
            reported: BTreeMap::new(),
            asked: None,
            catchup_not_before: 0,
            leader_scan_steps: 0,
            memberships,
        }
    }

    /// The memberships governing the slots after the delivered one.
    pub fn memberships(&self) -> &Memberships {
        &self.memberships
    }

    /// Hands out `value` at the next slot, applying it if it changes the members.
    fn deliver_next(&mut self, value: Value, out: &mut Ready) {
        self.delivered += 1;
        if let Value::Reconfigure(change) = &value {
            // A void change (another came first) changes nothing, on every replica alike.
            let applied = self.memberships.apply(self.delivered, change).is_ok();
            out.changes.push(ChangeDelivered {
                slot: self.delivered,
                governs_from: applied
                    .then(|| self.delivered.saturating_add(self.memberships.delay())),
            });
        }
        self.memberships.retire(self.delivered);
        out.deliver.push((self.delivered, value));
    }

    /// Every slot <= this was delivered (it is the node's contiguous commit index).
    pub fn delivered(&self) -> Slot {
        self.delivered
    }

    /// The highest slot known chosen with all below it.
    pub fn known_commit(&self) -> Slot {
        self.known_commit.max(self.delivered)
    }

    /// True if `slot` is known chosen (delivered or buffered).
    pub fn is_chosen(&self, slot: Slot) -> bool {
        slot <= self.delivered || self.chosen.contains_key(&slot)
    }

    /// Records that `value` is chosen at `slot`, and delivers whatever became contiguous.
    pub fn learn(&mut self, slot: Slot, value: Value, out: &mut Ready) {
        if slot <= self.delivered || slot == 0 {
            return;
        }
        self.chosen.entry(slot).or_insert(value);
        while let Some(v) = self.chosen.get(&(self.delivered + 1)) {
            let v = v.clone();
            self.deliver_next(v, out);
        }
    }

    /// A peer says every slot <= `commit` is chosen.
    pub fn heard_commit(&mut self, from: NodeId, commit: Slot) {
        if from != self.id {
            self.reported.insert(from, commit);
        }
        if commit > self.known_commit && from != self.id {
            self.known_commit = commit;
            self.commit_source = Some(from);
        }
    }

    /// The leader of `ballot` says every slot <= `commit` is chosen: each slot this node
    /// accepted in exactly `ballot` holds the chosen value.
    pub fn learn_from_leader<'a>(
        &mut self,
        ballot: Ballot,
        commit: Slot,
        accepted: impl Iterator<Item = (&'a Slot, &'a (Ballot, Value))>,
        out: &mut Ready,
    ) {
        let steps = &mut self.leader_scan_steps;
        let found: Vec<(Slot, Value)> = accepted
            .inspect(|_| *steps += 1)
            .filter(|(s, (b, _))| **s <= commit && *b == ballot && !self.chosen.contains_key(s))
            .map(|(s, (_, v))| (*s, v.clone()))
            .collect();
        for (slot, value) in found {
            self.learn(slot, value, out);
        }
    }

    /// Accepted entries examined against a leader's commit so far.
    #[cfg(test)]
    pub fn leader_scan_steps(&self) -> u64 {
        self.leader_scan_steps
    }

    /// A catch-up request, if this node knows of chosen slots it cannot deliver.
    pub fn catchup_request(
        &mut self,
        now: u64,
        heartbeat_ticks: u64,
        catchup_slots_max: u64,
        fallback: Option<NodeId>,
    ) -> Option<(NodeId, Message)> {
        if self.known_commit <= self.delivered || now < self.catchup_not_before {
            return None;
        }
        let first = self.commit_source.or(fallback).filter(|&n| n != self.id);
        let to_node = match self.asked {
            // The last request went unanswered: move on to the next peer that has them.
            Some(silent) => self.next_source(silent).or(first)?,
            None => first?,
        };
        self.asked = Some(to_node);
        self.catchup_not_before = now + CATCHUP_RETRY_HEARTBEATS * heartbeat_ticks;
        let from = self.delivered + 1;
        let to = self.known_commit.min(self.delivered + catchup_slots_max);
        Some((to_node, Message::CatchUp { from, to }))
    }

    /// The peer after `silent` (by id, wrapping) that reported the next slot we need.
    fn next_source(&self, silent: NodeId) -> Option<NodeId> {
        let need = self.delivered + 1;
        let has = |(&n, &c): (&NodeId, &Slot)| (c >= need && n != self.id).then_some(n);
        let after = self.reported.range(silent + 1..).find_map(has);
        after.or_else(|| self.reported.range(..=silent).find_map(has))
    }

    /// Forgets that a catch-up request is outstanding (an answer came): ask again at once.
    pub fn catchup_answered(&mut self) {
        self.catchup_not_before = 0;
        self.asked = None;
    }

    /// Answers a peer's `CatchUp`: the chosen values we have (consecutive from `from`, at
    /// most `slots_max` of them and, past the first, at most `bytes_max` by
    /// [`Value::size_bytes`]), or a snapshot if compacted.
    pub fn on_catchup(
        &self,
        asker: NodeId,
        (from, to): (Slot, Slot),
        (slots_max, bytes_max): (u64, usize),
        out: &mut Ready,
    ) {
        if from == 0 || to < from {
            return;
        }
        if from <= self.compacted_through {
            if !out.snapshot_needed.contains(&asker) {
                out.snapshot_needed.push(asker);
            }
            return;
        }
        let to = to.min(from.saturating_add(slots_max - 1));
        let mut bytes = 0usize;
        let entries: Vec<(Slot, Value)> = (from..)
            .zip(self.chosen.range(from..=to))
            .take_while(|(want, (&slot, value))| {
                bytes = bytes.saturating_add(value.size_bytes());
                *want == slot && (slot == from || bytes <= bytes_max)
            })
            .map(|(_, (&slot, value))| (slot, value.clone()))
            .collect();
        let commit = self.delivered;
        out.send
            .push((asker, Message::CatchUpReply { entries, commit }));
    }

    /// The state machine durably holds every slot <= `through` (clamped to `delivered`).
    pub fn compact(&mut self, through: Slot) -> Slot {
        let through = through.min(self.delivered);
        if through > self.compacted_through {
            self.compacted_through = through;
            self.chosen = self.chosen.split_off(&(through + 1));
        }
        self.compacted_through
    }

    /// The driver installed a snapshot covering every slot <= `through`, with the
    /// memberships as of that slot. Returns false if the snapshot is not ahead of what
    /// was delivered.
    pub fn install_snapshot(
        &mut self,
        through: Slot,
        memberships: Memberships,
        out: &mut Ready,
    ) -> bool {
        if through <= self.delivered {
            return false;
        }
        self.memberships = memberships;
        self.memberships.retire(through);
        out.deliver.retain(|(s, _)| *s > through);
        self.delivered = through;
        self.compacted_through = through;
        self.known_commit = self.known_commit.max(through);
        self.chosen = self.chosen.split_off(&(through + 1));
        self.catchup_not_before = 0;
        // Buffered slots right above the snapshot may now be deliverable.
        while let Some(v) = self.chosen.get(&(self.delivered + 1)) {
            let v = v.clone();
            self.deliver_next(v, out);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn genesis() -> Memberships {
        Memberships::genesis(vec![1, 2, 3], 8)
    }

    fn cmd(s: &'static str) -> Value {
        Value::Batch(vec![Bytes::from_static(s.as_bytes())])
    }

    #[test]
    fn delivers_in_order_once() {
        let mut l = Learner::new(1, 0, genesis());
        let mut out = Ready::default();
        l.learn(2, cmd("b"), &mut out);
        assert!(out.deliver.is_empty());
        l.learn(1, cmd("a"), &mut out);
        l.learn(1, cmd("a"), &mut out);
        assert_eq!(out.deliver, vec![(1, cmd("a")), (2, cmd("b"))]);
        assert_eq!(l.delivered(), 2);
    }

    #[test]
    fn learns_only_values_accepted_in_the_leaders_ballot() {
        let mut l = Learner::new(1, 0, genesis());
        let mut out = Ready::default();
        let b1 = Ballot { round: 1, node: 1 };
        let b2 = Ballot { round: 2, node: 2 };
        let accepted: BTreeMap<Slot, (Ballot, Value)> =
            [(1, (b2, cmd("new"))), (2, (b1, cmd("old")))]
                .into_iter()
                .collect();
        l.heard_commit(2, 2);
        l.learn_from_leader(b2, 2, accepted.iter(), &mut out);
        assert_eq!(out.deliver, vec![(1, cmd("new"))]);
        // Slot 2 holds a value of another ballot: it must be fetched.
        let req = l.catchup_request(10, 5, 100, None);
        assert_eq!(req, Some((2, Message::CatchUp { from: 2, to: 2 })));
    }

    #[test]
    fn an_unanswered_catch_up_moves_to_another_source() {
        let mut l = Learner::new(1, 0, genesis());
        l.heard_commit(2, 10);
        l.heard_commit(3, 8);
        let first = l.catchup_request(0, 5, 100, None);
        assert_eq!(first, Some((2, Message::CatchUp { from: 1, to: 10 })));
        assert_eq!(
            l.catchup_request(5, 5, 100, None),
            None,
            "too early to retry"
        );
        let retry = l.catchup_request(10, 5, 100, None);
        assert_eq!(retry, Some((3, Message::CatchUp { from: 1, to: 10 })));
        let again = l.catchup_request(20, 5, 100, None);
        assert_eq!(again.map(|r| r.0), Some(2), "round robin wraps");
        l.catchup_answered();
        let next = l.catchup_request(21, 5, 100, None);
        assert_eq!(
            next.map(|r| r.0),
            Some(2),
            "after an answer, the best source again"
        );
    }

    #[test]
    fn compacted_request_needs_a_snapshot() {
        let mut l = Learner::new(1, 0, genesis());
        let mut out = Ready::default();
        l.learn(1, cmd("a"), &mut out);
        l.learn(2, cmd("b"), &mut out);
        l.compact(1);
        l.on_catchup(3, (1, 2), (10, 1 << 20), &mut out);
        assert_eq!(out.snapshot_needed, vec![3]);
        l.on_catchup(3, (2, 9), (10, 1 << 20), &mut out);
        assert_eq!(
            out.send,
            vec![(
                3,
                Message::CatchUpReply {
                    entries: vec![(2, cmd("b"))],
                    commit: 2
                }
            )]
        );
    }

    #[test]
    fn catchup_reply_is_bounded_by_bytes_but_carries_at_least_one_slot() {
        let mut l = Learner::new(1, 0, genesis());
        let mut out = Ready::default();
        let big = || Value::Batch(vec![Bytes::from(vec![7u8; 600])]);
        for slot in 1..=3 {
            l.learn(slot, big(), &mut out);
        }
        let one = big().size_bytes();
        let reply_slots = |bytes_max: usize| {
            let mut out = Ready::default();
            l.on_catchup(2, (1, 3), (100, bytes_max), &mut out);
            match out.send.as_slice() {
                [(2, Message::CatchUpReply { entries, commit: 3 })] => {
                    entries.iter().map(|(s, _)| *s).collect::<Vec<_>>()
                }
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(
            reply_slots(10),
            vec![1],
            "one slot even if it alone is too big"
        );
        assert_eq!(reply_slots(2 * one), vec![1, 2]);
        assert_eq!(reply_slots(3 * one - 1), vec![1, 2]);
        assert_eq!(reply_slots(3 * one), vec![1, 2, 3]);
    }

    #[test]
    fn snapshot_skips_delivery_below_it() {
        let mut l = Learner::new(1, 0, genesis());
        let mut out = Ready::default();
        l.learn(5, cmd("e"), &mut out);
        assert!(l.install_snapshot(4, genesis(), &mut out));
        assert_eq!(out.deliver, vec![(5, cmd("e"))]);
        assert!(!l.install_snapshot(3, genesis(), &mut out));
    }
}
