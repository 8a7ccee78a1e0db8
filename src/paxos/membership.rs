//! Which nodes vote for which slot: the membership history, derived from the chosen log.
//!
//! The rule ("Paxos Made Simple", end of section 3; Lamport, Malkhi and Zhou,
//! "Reconfiguring a State Machine", 2010, the alpha method): a `Value::Reconfigure`
//! chosen at slot j that still applies (its `base` is the latest membership's `id`)
//! makes a membership that governs every slot >= j + `delay`. So the acceptors of slot s
//! are fixed by the chosen slots <= s - delay, and every node that knows the log through
//! s - delay agrees on them. A leader proposes slot s only when it knows every slot <=
//! s - window as chosen, and `window_slots_max <= delay`, so it always knows the
//! acceptors of the slots it proposes in; each slot is then an ordinary Paxos instance
//! with its own acceptor set, and every ballot uses that same set for it.
//!
//! Invariant: `list` is non-empty, its `active_from` strictly increase, and the first
//! entry governs the first slot not yet delivered (older entries are retired).
//! Invariant: every change applied here was applied at the same slot on every replica
//! (applied in delivery order, from chosen values only), so all replicas hold the same
//! history for the slots they have not delivered.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::config::MEMBERS_MAX;
use super::types::{Change, NodeId, Slot};

/// The delay of a cluster created by this version (`Config::genesis`): a change chosen
/// at slot j governs the slots from j + this on. Kept with the memberships, so a cluster
/// keeps the delay it was created with.
pub const RECONFIG_DELAY_SLOTS: u64 = 64;

/// One membership: who votes (and who learns) for the slots it governs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The slot whose `Reconfigure` made it (0: the first membership of the cluster).
    pub id: Slot,
    /// It governs every slot >= this, until a later membership takes over.
    pub active_from: Slot,
    /// The acceptors; a quorum is a majority of them.
    pub voters: Vec<NodeId>,
    /// Nodes that follow the log without voting.
    pub learners: Vec<NodeId>,
}

impl Membership {
    /// Acceptors needed for a quorum (a strict majority of the voters).
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// True if `node` votes in this membership.
    pub fn is_voter(&self, node: NodeId) -> bool {
        self.voters.contains(&node)
    }

    /// How many of `nodes` are voters here.
    pub fn votes<'a>(&self, nodes: impl IntoIterator<Item = &'a NodeId>) -> usize {
        nodes.into_iter().filter(|n| self.is_voter(**n)).count()
    }
}

/// Why a change cannot apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeError {
    /// `base` is not the latest membership: another change came first.
    Stale { base: Slot, latest: Slot },
    /// No voters, too many, an id 0 or listed twice, or a voter also a learner.
    BadMembers,
    /// More than one voter differs from the latest membership's.
    TooManyVoterChanges,
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeError::Stale { base, latest } => write!(
                f,
                "the change replaces membership {base}, but the latest is {latest}"
            ),
            ChangeError::BadMembers => write!(
                f,
                "voters must be 1..={MEMBERS_MAX} distinct nonzero ids, none also a learner"
            ),
            ChangeError::TooManyVoterChanges => {
                write!(f, "a change may add or remove at most one voter")
            }
        }
    }
}

impl std::error::Error for ChangeError {}

/// The memberships that govern the slots not yet delivered, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memberships {
    /// Slots between a change's slot and the first slot it governs. The same on every
    /// replica (it is part of the protocol); at least every node's `window_slots_max`.
    delay: u64,
    list: Vec<Membership>,
}

impl Memberships {
    /// A cluster's first membership: `voters` govern every slot from 1.
    pub fn genesis(voters: Vec<NodeId>, delay: u64) -> Memberships {
        let first = Membership {
            id: 0,
            active_from: 1,
            voters,
            learners: Vec::new(),
        };
        Memberships {
            delay,
            list: vec![first],
        }
    }

    /// Slots between a change and the first slot it governs.
    pub fn delay(&self) -> u64 {
        self.delay
    }

    /// The newest membership (possibly not governing any slot yet).
    pub fn latest(&self) -> &Membership {
        // The list is never empty (see the invariant).
        &self.list[self.list.len() - 1]
    }

    /// Every membership held, oldest first.
    pub fn all(&self) -> &[Membership] {
        &self.list
    }

    /// The membership governing `slot`. Right only while every slot <= slot - delay has
    /// been applied here (callers ask for slots at most `delay` past the delivered one);
    /// for a slot below the first held, the first held.
    pub fn for_slot(&self, slot: Slot) -> &Membership {
        self.list
            .iter()
            .rev()
            .find(|m| m.active_from <= slot)
            .unwrap_or(&self.list[0])
    }

    /// Checks that `change` would apply as the next change.
    pub fn check(&self, change: &Change) -> Result<(), ChangeError> {
        let latest = self.latest();
        if change.base != latest.id {
            return Err(ChangeError::Stale {
                base: change.base,
                latest: latest.id,
            });
        }
        let ids = || change.voters.iter().chain(&change.learners);
        let distinct: BTreeSet<NodeId> = ids().copied().collect();
        let count = change.voters.len() + change.learners.len();
        if change.voters.is_empty()
            || change.voters.len() > MEMBERS_MAX
            || distinct.len() != count
            || distinct.contains(&0)
        {
            return Err(ChangeError::BadMembers);
        }
        let added = change.voters.iter().filter(|v| !latest.is_voter(**v));
        let removed = latest.voters.iter().filter(|v| !change.voters.contains(v));
        if added.count() + removed.count() > 1 {
            return Err(ChangeError::TooManyVoterChanges);
        }
        Ok(())
    }

    /// The chosen value at `slot` is `change`: if it applies, it governs from slot +
    /// delay on. Called in slot order for every delivered `Reconfigure` (a void one
    /// changes nothing, on every replica alike).
    pub fn apply(&mut self, slot: Slot, change: &Change) -> Result<(), ChangeError> {
        self.check(change)?;
        self.list.push(Membership {
            id: slot,
            active_from: slot.saturating_add(self.delay),
            voters: change.voters.clone(),
            learners: change.learners.clone(),
        });
        Ok(())
    }

    /// Every slot <= `delivered` is applied: forgets memberships that govern none above.
    pub fn retire(&mut self, delivered: Slot) {
        let next = delivered.saturating_add(1);
        while self.list.len() > 1 && self.list[1].active_from <= next {
            self.list.remove(0);
        }
    }

    /// Every node of every membership held (voters and learners).
    pub fn nodes(&self) -> BTreeSet<NodeId> {
        self.list
            .iter()
            .flat_map(|m| m.voters.iter().chain(&m.learners))
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(base: Slot, voters: &[NodeId], learners: &[NodeId]) -> Change {
        Change {
            base,
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            context: bytes::Bytes::new(),
        }
    }

    #[test]
    fn a_change_governs_from_its_slot_plus_the_delay() {
        let mut m = Memberships::genesis(vec![1, 2, 3], 4);
        m.apply(10, &change(0, &[1, 2, 3, 4], &[])).unwrap();
        assert_eq!(m.for_slot(13).voters, vec![1, 2, 3]);
        assert_eq!(m.for_slot(14).voters, vec![1, 2, 3, 4]);
        assert_eq!(m.latest().id, 10);
        m.retire(12);
        assert_eq!(m.all().len(), 2, "slot 13 is still governed by the first");
        m.retire(13);
        assert_eq!(m.all().len(), 1);
        assert_eq!(m.for_slot(1).voters, vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_change_naming_an_older_membership_is_void() {
        let mut m = Memberships::genesis(vec![1, 2, 3], 4);
        m.apply(5, &change(0, &[1, 2], &[3])).unwrap();
        let second = m.apply(6, &change(0, &[1, 2, 3, 4], &[]));
        assert_eq!(second, Err(ChangeError::Stale { base: 0, latest: 5 }));
        assert_eq!(m.all().len(), 2);
        m.apply(7, &change(5, &[1, 2], &[])).unwrap();
        assert_eq!(m.latest().learners, Vec::<NodeId>::new());
    }

    #[test]
    fn a_change_adds_or_removes_one_voter_with_sane_ids() {
        let m = Memberships::genesis(vec![1, 2, 3], 4);
        let bad = [
            change(0, &[], &[1]),
            change(0, &[1, 2, 2], &[]),
            change(0, &[1, 2, 3], &[3]),
            change(0, &[0, 1, 2, 3], &[]),
        ];
        for c in bad {
            assert_eq!(m.check(&c), Err(ChangeError::BadMembers), "{c:?}");
        }
        let two = change(0, &[1, 2, 4, 5, 3], &[]);
        assert_eq!(m.check(&two), Err(ChangeError::TooManyVoterChanges));
        let swap = change(0, &[1, 2, 4], &[]);
        assert_eq!(m.check(&swap), Err(ChangeError::TooManyVoterChanges));
        assert_eq!(m.check(&change(0, &[1, 2, 3, 4], &[5])), Ok(()));
        assert_eq!(m.check(&change(0, &[1, 3], &[2])), Ok(()));
    }
}
