//! The checker's own account of who votes for each slot, replayed from the global chosen
//! sequence, written apart from the core's `membership.rs` so a bug there shows up here:
//! the cluster starts with voters 1..=n; a `Reconfigure` chosen at slot j whose `base`
//! is the id of the newest membership (and which names 1 or more distinct nonzero voters,
//! none also a learner, at most one voter different) makes a membership with id j that
//! governs every slot >= j + delay.
//!
//! Invariant: slots are fed in order (first deliveries happen in slot order: a node
//! delivers slot s only after s - 1), so the voters of slot s, fixed by the slots <=
//! s - delay, are known when s is first delivered.

use std::collections::BTreeSet;

use concierge::paxos::{Change, NodeId, Slot, Value};

/// One membership as the checker sees it: (id, first slot governed, voters, learners).
type Entry = (Slot, Slot, Vec<NodeId>, Vec<NodeId>);

pub struct Voters {
    delay: u64,
    /// Every membership made so far, oldest first.
    history: Vec<Entry>,
    /// The last slot fed.
    fed: Slot,
}

impl Voters {
    pub fn new(first: Vec<NodeId>, delay: u64) -> Voters {
        Voters {
            delay,
            history: vec![(0, 1, first, Vec::new())],
            fed: 0,
        }
    }

    /// The voters of `slot` (fed through at least slot - delay).
    pub fn of(&self, slot: Slot) -> &[NodeId] {
        let governing = self.history.iter().rev().find(|e| e.1 <= slot);
        governing.map_or(&[][..], |e| &e.2[..])
    }

    /// Membership changes chosen so far (void ones not counted).
    pub fn changes(&self) -> usize {
        self.history.len() - 1
    }

    /// Every node of the newest membership (voters and learners).
    pub fn latest_nodes(&self) -> Vec<NodeId> {
        let e = &self.history[self.history.len() - 1];
        e.2.iter().chain(&e.3).copied().collect()
    }

    /// The chosen value of the next slot.
    pub fn feed(&mut self, slot: Slot, value: &Value) -> Result<(), String> {
        if slot != self.fed + 1 {
            return Err(format!(
                "sim: voters fed slot {slot} after {} (first deliveries out of order)",
                self.fed
            ));
        }
        self.fed = slot;
        if let Value::Reconfigure(change) = value {
            if self.applies(change) {
                let (v, l) = (change.voters.clone(), change.learners.clone());
                self.history.push((slot, slot + self.delay, v, l));
            }
        }
        Ok(())
    }

    fn applies(&self, c: &Change) -> bool {
        let latest = &self.history[self.history.len() - 1];
        let all: BTreeSet<NodeId> = c.voters.iter().chain(&c.learners).copied().collect();
        let sane = !c.voters.is_empty()
            && all.len() == c.voters.len() + c.learners.len()
            && !all.contains(&0);
        let old: BTreeSet<NodeId> = latest.2.iter().copied().collect();
        let new: BTreeSet<NodeId> = c.voters.iter().copied().collect();
        c.base == latest.0 && sane && old.symmetric_difference(&new).count() <= 1
    }
}
