//! The properties every run is checked against, after every delivery:
//! - agreement: no two deliveries (any nodes, any incarnations) differ at one slot;
//! - order: each node applies slot `applied + 1` next, so its log is a prefix of the
//!   one global sequence (with agreement), including after restarts and snapshots
//!   (durability: a restarted node redelivers from its compacted point and must match);
//! - integrity: every delivered command was proposed, and a command appears in the global
//!   sequence at most as many times as `propose()` accepted it less the times a core
//!   reported it dropped (never to be chosen: its caller is told "not applied"); clients
//!   re-propose commands that seem lost; the node layer dedupes by envelope, the checker
//!   by id;
//! - read index: an answer is >= every slot delivered anywhere before the read was asked;
//! - quorum: when a slot is first delivered anywhere, a majority of that slot's voters
//!   (as `voters.rs` replays the memberships from the chosen sequence) durably hold the
//!   delivered value as accepted: nobody can know a slot chosen before its own voters
//!   chose it.

use std::collections::HashMap;

use bytes::Bytes;
use concierge::paxos::{NodeId, Slot, Value};

use super::voters::Voters;

pub type Check = Result<(), String>;

pub struct Checker {
    /// Who votes for which slot, from the chosen sequence.
    pub voters: Voters,
    /// The global chosen sequence: chosen[s - 1] is slot s, once anyone delivered it.
    chosen: Vec<Option<Value>>,
    /// Highest slot any node delivered.
    pub max_delivered: Slot,
    /// Command id -> times propose() returned Ok for it.
    proposed_ok: HashMap<u64, u32>,
    /// Command id -> times it appears in the global sequence.
    occurrences: HashMap<u64, u32>,
    /// Command id -> times a core reported a proposal of it dropped (never chosen).
    dropped: HashMap<u64, u32>,
    /// Commands created by clients (ids 0..created).
    pub created: u64,
}

/// Command `id`: its 8-byte id, then `pad` bytes (values of varied sizes, as in production).
pub fn command(id: u64, pad: usize) -> Bytes {
    let mut c = id.to_le_bytes().to_vec();
    c.resize(8 + pad, 0xA5);
    Bytes::from(c)
}

fn command_id(c: &Bytes) -> Result<u64, String> {
    let raw: [u8; 8] = c
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| format!("integrity: command of {} bytes was never proposed", c.len()))?;
    Ok(u64::from_le_bytes(raw))
}

impl Checker {
    /// A checker for a cluster whose first voters are `first`, with membership `delay`.
    pub fn new(first: Vec<NodeId>, delay: u64) -> Checker {
        Checker {
            voters: Voters::new(first, delay),
            chosen: Vec::new(),
            max_delivered: 0,
            proposed_ok: HashMap::new(),
            occurrences: HashMap::new(),
            dropped: HashMap::new(),
            created: 0,
        }
    }

    pub fn proposed(&mut self, id: u64) {
        *self.proposed_ok.entry(id).or_default() += 1;
    }

    /// A core reported a proposal of `id` dropped: it must never be chosen.
    pub fn dropped(&mut self, id: u64) -> Check {
        *self.dropped.entry(id).or_default() += 1;
        self.within_proposals(id)
    }

    /// The command's occurrences fit the proposals that may still be chosen.
    fn within_proposals(&self, id: u64) -> Check {
        let ok = self.proposed_ok.get(&id).copied().unwrap_or(0);
        let dropped = self.dropped.get(&id).copied().unwrap_or(0);
        let seen = self.occurrences.get(&id).copied().unwrap_or(0);
        if seen + dropped > ok {
            return Err(format!(
                "integrity: c{id} appears {seen} times and was dropped {dropped} times but \
                 was proposed {ok} times"
            ));
        }
        Ok(())
    }

    pub fn chosen_prefix(&self, len: usize) -> Vec<Value> {
        self.chosen[..len]
            .iter()
            .map(|v| v.clone().unwrap_or(Value::Noop))
            .collect()
    }

    /// Node `node`, whose log holds `applied` slots, delivers `value` at `slot`;
    /// `holds(n)` tells whether node n's durable acceptor state holds `value` at `slot`.
    pub fn deliver(
        &mut self,
        node: NodeId,
        applied: Slot,
        slot: Slot,
        value: &Value,
        holds: impl Fn(NodeId) -> bool,
    ) -> Check {
        if slot != applied + 1 {
            return Err(format!(
                "order: n{node} delivered slot {slot} after applying {applied}"
            ));
        }
        let i = (slot - 1) as usize;
        if self.chosen.len() <= i {
            self.chosen.resize(i + 1, None);
        }
        match &self.chosen[i] {
            Some(v) if v != value => {
                return Err(format!(
                    "agreement: n{node} delivered {} at slot {slot}, others delivered {}",
                    show(value),
                    show(v)
                ))
            }
            Some(_) => {}
            None => {
                let voters = self.voters.of(slot);
                let holding: Vec<NodeId> = voters.iter().copied().filter(|&v| holds(v)).collect();
                if holding.len() <= voters.len() / 2 {
                    return Err(format!(
                        "quorum: n{node} delivered {} at slot {slot} first, but only \
                         {holding:?} of its voters {voters:?} hold it",
                        show(value)
                    ));
                }
                self.voters.feed(slot, value)?;
                if let Value::Batch(cs) = value {
                    for c in cs {
                        let id = command_id(c)?;
                        let ok = self.proposed_ok.get(&id).copied().unwrap_or(0);
                        *self.occurrences.entry(id).or_default() += 1;
                        if ok == 0 || id >= self.created {
                            return Err(format!("integrity: c{id} delivered but never proposed"));
                        }
                        self.within_proposals(id)?;
                    }
                }
                self.chosen[i] = Some(value.clone());
            }
        }
        self.max_delivered = self.max_delivered.max(slot);
        Ok(())
    }

    /// A read asked when `max_at_ask` slots were delivered somewhere was answered `index`.
    pub fn read(&self, node: NodeId, id: u64, max_at_ask: Slot, index: Slot) -> Check {
        if index < max_at_ask {
            return Err(format!(
                "read index: n{node} read {id} got index {index} but slot {max_at_ask} was \
                 delivered before it was asked"
            ));
        }
        Ok(())
    }
}

/// A short rendering of a value for traces.
pub fn show(v: &Value) -> String {
    match v {
        Value::Noop => "noop".into(),
        Value::Reconfigure(c) => format!(
            "reconfigure(base {}, voters {:?}, learners {:?})",
            c.base, c.voters, c.learners
        ),
        Value::Batch(cs) => {
            let ids: Vec<String> = cs
                .iter()
                .map(|c| command_id(c).map_or("?".into(), |id| format!("c{id}")))
                .collect();
            format!("[{}]", ids.join(" "))
        }
    }
}
