//! Who the members are, as this node knows them: the consensus core's memberships rebuilt
//! from the changes the state machine holds, and the address book that tells the
//! transport where each member listens.
//!
//! Memberships must be rebuilt **exactly** as of the slot the core starts from (the acceptor
//! log's compaction point at start-up, the snapshot's slot after an install): the core
//! re-delivers every later slot and applies the changes among them itself. Memberships as
//! of a later slot would give a restarted leader the wrong voters for slots it
//! re-proposes, which can choose two values for one slot.
//!
//! Addresses travel in each change's `context` ([`encode_context`]): every member of the
//! new membership with its peer and client address, so every replica learns where a new
//! member listens at the slot that adds it. The first members' addresses are the
//! configuration's (`CONCIERGES`, remembered in the data directory).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::paxos::{Change, Memberships, NodeId, Slot};

/// Largest `context` accepted when decoding (a few addresses per member).
const CONTEXT_BYTES_MAX: usize = 64 * 1024;

/// Where one member listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddr {
    pub id: NodeId,
    /// `host:port` of its peer listener.
    pub peer_addr: String,
    /// Its client (HTTP) address; empty when not known.
    pub client_addr: String,
}

/// The `context` of a change: the addresses of its members.
pub fn encode_context(members: &[MemberAddr]) -> Bytes {
    // A Vec of plain structs always encodes; an empty context is decoded as no addresses.
    Bytes::from(rmp_serde::to_vec(members).unwrap_or_default())
}

/// The addresses a change's `context` carries (none, with a warning, if it does not decode).
pub fn decode_context(slot: Slot, context: &[u8]) -> Vec<MemberAddr> {
    if context.is_empty() {
        return Vec::new();
    }
    if context.len() > CONTEXT_BYTES_MAX {
        warn!(
            slot,
            bytes = context.len(),
            "membership change context too large; ignored"
        );
        return Vec::new();
    }
    match rmp_serde::from_slice::<Vec<MemberAddr>>(context) {
        Ok(members) => members,
        Err(e) => {
            warn!(slot, error = %e, "membership change context does not decode; ignored");
            Vec::new()
        }
    }
}

/// The memberships as of `through`: `genesis` with every change chosen at a slot <=
/// `through` applied in slot order (void ones change nothing), older ones retired.
pub fn memberships_as_of(
    genesis: Memberships,
    changes: &[(Slot, Change)],
    through: Slot,
) -> Memberships {
    let mut m = genesis;
    for (slot, change) in changes.iter().filter(|(s, _)| *s <= through) {
        let _ = m.apply(*slot, change); // a void change is void on every replica
    }
    m.retire(through);
    m
}

/// Where every member this node has heard of listens. Entries are never removed (ids
/// are never reused); which ones the transport dials is the memberships' business.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressBook {
    entries: BTreeMap<NodeId, MemberAddr>,
}

impl AddressBook {
    /// A book of the first members (`CONCIERGES`), plus any learnt when joining.
    pub fn new(first: &[(NodeId, String)], known: &[MemberAddr]) -> AddressBook {
        let mut book = AddressBook::default();
        for (id, addr) in first {
            book.learn(MemberAddr {
                id: *id,
                peer_addr: addr.clone(),
                client_addr: String::new(),
            });
        }
        for m in known {
            book.learn(m.clone());
        }
        book
    }

    /// Adds or updates one entry (a known client address is kept over an empty one).
    pub fn learn(&mut self, m: MemberAddr) {
        if m.id == 0 || m.peer_addr.is_empty() {
            return;
        }
        let client = match self.entries.get(&m.id) {
            Some(old) if m.client_addr.is_empty() => old.client_addr.clone(),
            _ => m.client_addr.clone(),
        };
        self.entries.insert(
            m.id,
            MemberAddr {
                client_addr: client,
                ..m
            },
        );
    }

    /// Learns the addresses every change carries, in slot order.
    pub fn learn_changes(&mut self, changes: &[(Slot, Change)]) {
        for (slot, change) in changes {
            for m in decode_context(*slot, &change.context) {
                self.learn(m);
            }
        }
    }

    /// The entry of `id`.
    pub fn get(&self, id: NodeId) -> Option<&MemberAddr> {
        self.entries.get(&id)
    }

    /// The largest id ever known (a new member gets the next one).
    pub fn max_id(&self) -> NodeId {
        self.entries.keys().next_back().copied().unwrap_or(0)
    }

    /// `(id, peer address)` of each of `ids` the book knows, for the transport.
    pub fn peers(&self, ids: &BTreeSet<NodeId>) -> Vec<(NodeId, String)> {
        ids.iter()
            .filter_map(|id| self.entries.get(id).map(|m| (*id, m.peer_addr.clone())))
            .collect()
    }

    /// The entries of `ids`, in id order (unknown ids get an empty address).
    pub fn members(&self, ids: &[NodeId]) -> Vec<MemberAddr> {
        ids.iter()
            .map(|id| {
                self.entries.get(id).cloned().unwrap_or(MemberAddr {
                    id: *id,
                    peer_addr: String::new(),
                    client_addr: String::new(),
                })
            })
            .collect()
    }
}

/// A change of the members an operator asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberOp {
    /// Add a node as a learner (it gets the next id).
    Add {
        peer_addr: String,
        client_addr: String,
    },
    /// Make a learner a voter.
    Promote(NodeId),
    /// Remove a voter or a learner.
    Remove(NodeId),
}

/// Why a change of the members was not made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberError {
    /// This node does not lead; the leader it knows, if any.
    NotLeader(Option<NodeId>),
    /// Another change is waiting to take effect, or was chosen first; retry later.
    Conflict(String),
    /// The request cannot be made (unknown member, not a learner, the last voter...).
    Invalid(String),
    /// No such member.
    NotFound(NodeId),
    /// The node could not see the change through (no quorum, timeout, shutdown).
    Node(super::error::NodeError),
}

impl std::fmt::Display for MemberError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberError::NotLeader(Some(l)) => write!(f, "this node does not lead; node {l} does"),
            MemberError::NotLeader(None) => {
                write!(f, "this node does not lead and knows no leader")
            }
            MemberError::Conflict(why) | MemberError::Invalid(why) => f.write_str(why),
            MemberError::NotFound(id) => write!(f, "node {id} is not a member"),
            MemberError::Node(e) => write!(f, "{e}"),
        }
    }
}

/// What the leader knows when it plans a change.
pub struct PlanInput<'a> {
    pub memberships: &'a Memberships,
    pub book: &'a AddressBook,
    /// The commit index each peer last reported.
    pub reported: &'a [(NodeId, Slot)],
    /// The leader's own commit index.
    pub commit: Slot,
    /// A learner is promoted only once its reported commit index is within this of the
    /// leader's (it then votes without stalling the quorum while it catches up).
    pub promote_lag_slots_max: Slot,
}

/// The change that carries out `op` on the newest membership, with every member's
/// address in its context. The id of an added node is one above every id known.
pub fn plan(op: &MemberOp, input: &PlanInput<'_>) -> Result<(Change, NodeId), MemberError> {
    let latest = input.memberships.latest();
    let mut voters = latest.voters.clone();
    let mut learners = latest.learners.clone();
    let mut book = input.book.clone();
    let is_member = |id: NodeId| voters.contains(&id) || learners.contains(&id);
    let target = match op {
        MemberOp::Add {
            peer_addr,
            client_addr,
        } => {
            let taken = voters
                .iter()
                .chain(&learners)
                .filter_map(|id| book.get(*id))
                .any(|m| m.peer_addr == *peer_addr);
            if taken {
                return Err(MemberError::Invalid(format!(
                    "a member already listens on {peer_addr}"
                )));
            }
            let known_max = input.memberships.nodes().into_iter().max().unwrap_or(0);
            let id = book.max_id().max(known_max) + 1;
            book.learn(MemberAddr {
                id,
                peer_addr: peer_addr.clone(),
                client_addr: client_addr.clone(),
            });
            learners.push(id);
            id
        }
        MemberOp::Promote(id) => {
            if voters.contains(id) {
                return Err(MemberError::Invalid(format!("node {id} already votes")));
            }
            if !learners.contains(id) {
                return Err(MemberError::NotFound(*id));
            }
            let reported = input
                .reported
                .iter()
                .find(|(p, _)| p == id)
                .map_or(0, |(_, c)| *c);
            let behind = input.commit.saturating_sub(reported);
            if behind > input.promote_lag_slots_max {
                return Err(MemberError::Conflict(format!(
                    "node {id} is {behind} slots behind the leader (at most {} to be \
                     promoted); retry once it has caught up",
                    input.promote_lag_slots_max
                )));
            }
            learners.retain(|l| l != id);
            voters.push(*id);
            *id
        }
        MemberOp::Remove(id) => {
            if !is_member(*id) {
                return Err(MemberError::NotFound(*id));
            }
            if voters == [*id] {
                return Err(MemberError::Invalid(format!(
                    "node {id} is the last voter; add and promote another first"
                )));
            }
            voters.retain(|v| v != id);
            learners.retain(|l| l != id);
            *id
        }
    };
    let members: Vec<NodeId> = voters.iter().chain(&learners).copied().collect();
    let change = Change {
        base: latest.id,
        voters,
        learners,
        context: encode_context(&book.members(&members)),
    };
    input
        .memberships
        .check(&change)
        .map_err(|e| MemberError::Invalid(e.to_string()))?;
    Ok((change, target))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn change(base: Slot, voters: &[NodeId], learners: &[NodeId]) -> Change {
        Change {
            base,
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            context: Bytes::new(),
        }
    }

    #[test]
    fn memberships_are_rebuilt_as_of_the_slot_asked_and_no_later() {
        let genesis = Memberships::genesis(vec![1, 2, 3], 4);
        let changes = vec![
            (2, change(0, &[1, 2, 3], &[4])),
            (3, change(0, &[1, 2, 3, 4], &[])), // void: base 0 is stale after slot 2
            (5, change(2, &[1, 2, 3, 4], &[])),
            (9, change(5, &[2, 3, 4], &[])),
        ];
        // As of slot 4: the learner change only (it governs from 6).
        let m = memberships_as_of(genesis.clone(), &changes, 4);
        assert_eq!(m.latest().id, 2);
        assert_eq!(m.for_slot(5).voters, vec![1, 2, 3]);
        assert_eq!(m.for_slot(6).learners, vec![4]);
        // As of slot 8: 4 votes from 9; the change at 9 is not known yet.
        let m = memberships_as_of(genesis.clone(), &changes, 8);
        assert_eq!(m.latest().id, 5);
        assert_eq!(m.for_slot(9).voters, vec![1, 2, 3, 4]);
        // Retired: the first two govern nothing past 8 (slot 9 is the third's).
        assert_eq!(m.all().len(), 1);
        assert_eq!(m.all()[0].id, 5);
        // As of 20: everything, only the last one left.
        let m = memberships_as_of(genesis, &changes, 20);
        assert_eq!(m.all().len(), 1);
        assert_eq!(m.latest().voters, vec![2, 3, 4]);
    }

    #[test]
    fn the_address_book_learns_from_contexts_and_ignores_garbage() {
        let mut book = AddressBook::new(&[(1, "h1:1".into()), (2, "h2:1".into())], &[]);
        let added = MemberAddr {
            id: 3,
            peer_addr: "h3:1".into(),
            client_addr: "h3:2".into(),
        };
        let mut with_addr = change(0, &[1, 2], &[3]);
        with_addr.context = encode_context(std::slice::from_ref(&added));
        let mut garbage = change(5, &[1, 2, 3], &[]);
        garbage.context = Bytes::from_static(b"\xc1\xc1 not msgpack");
        book.learn_changes(&[(4, with_addr), (5, garbage)]);
        assert_eq!(book.get(3), Some(&added));
        assert_eq!(book.max_id(), 3);
        assert_eq!(
            book.peers(&[1, 3, 9].into_iter().collect()),
            vec![(1, "h1:1".to_string()), (3, "h3:1".to_string())]
        );
        // A later entry without a client address keeps the known one.
        book.learn(MemberAddr {
            client_addr: String::new(),
            ..added.clone()
        });
        assert_eq!(book.get(3).unwrap().client_addr, "h3:2");
    }

    fn input<'a>(
        ms: &'a Memberships,
        book: &'a AddressBook,
        reported: &'a [(NodeId, Slot)],
    ) -> PlanInput<'a> {
        PlanInput {
            memberships: ms,
            book,
            reported,
            commit: 500,
            promote_lag_slots_max: 100,
        }
    }

    #[test]
    fn plans_add_a_learner_with_a_fresh_id_then_promote_it_once_caught_up_then_remove() {
        let mut ms = Memberships::genesis(vec![1, 2, 3], 4);
        let mut book = AddressBook::new(
            &[(1, "h1:1".into()), (2, "h2:1".into()), (3, "h3:1".into())],
            &[],
        );
        let add = MemberOp::Add {
            peer_addr: "h4:1".into(),
            client_addr: "h4:2".into(),
        };
        // The address of a member is refused.
        let taken = MemberOp::Add {
            peer_addr: "h2:1".into(),
            client_addr: String::new(),
        };
        assert!(matches!(
            plan(&taken, &input(&ms, &book, &[])),
            Err(MemberError::Invalid(_))
        ));
        let (change, id) = plan(&add, &input(&ms, &book, &[])).unwrap();
        assert_eq!(id, 4);
        assert_eq!(
            (change.base, change.voters.clone(), change.learners.clone()),
            (0, vec![1, 2, 3], vec![4])
        );
        let addrs = decode_context(7, &change.context);
        assert_eq!(addrs.len(), 4);
        assert_eq!(addrs[3].peer_addr, "h4:1");
        ms.apply(7, &change).unwrap();
        book.learn_changes(&[(7, change)]);
        // Promotion waits until the learner reports a commit index close enough.
        let behind = [(4, 350)];
        assert!(matches!(
            plan(&MemberOp::Promote(4), &input(&ms, &book, &behind)),
            Err(MemberError::Conflict(_))
        ));
        assert!(matches!(
            plan(&MemberOp::Promote(3), &input(&ms, &book, &behind)),
            Err(MemberError::Invalid(_))
        ));
        assert_eq!(
            plan(&MemberOp::Promote(9), &input(&ms, &book, &behind)),
            Err(MemberError::NotFound(9))
        );
        let close = [(4, 450)];
        let (change, _) = plan(&MemberOp::Promote(4), &input(&ms, &book, &close)).unwrap();
        assert_eq!(
            (change.base, change.voters.clone(), change.learners.clone()),
            (7, vec![1, 2, 3, 4], vec![])
        );
        ms.apply(9, &change).unwrap();
        // Removing node 1; a removed id is never given again.
        let (change, _) = plan(&MemberOp::Remove(1), &input(&ms, &book, &[])).unwrap();
        assert_eq!(change.voters, vec![2, 3, 4]);
        ms.apply(12, &change).unwrap();
        let add5 = MemberOp::Add {
            peer_addr: "h5:1".into(),
            client_addr: String::new(),
        };
        let (_, next) = plan(&add5, &input(&ms, &book, &[])).unwrap();
        assert_eq!(next, 5);
        // The last voter cannot be removed.
        let one = Memberships::genesis(vec![1], 4);
        assert!(matches!(
            plan(&MemberOp::Remove(1), &input(&one, &book, &[])),
            Err(MemberError::Invalid(_))
        ));
    }
}
