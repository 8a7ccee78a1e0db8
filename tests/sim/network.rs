//! The simulated network: per-message random delay (so reordering), drops, duplicates,
//! and partitions; self-addressed messages are never lost.

use std::collections::BTreeMap;

use concierge::paxos::{Message, NodeId};

use super::rng::Rng;

/// Fault rates of one run.
#[derive(Clone, Debug)]
pub struct NetFaults {
    pub drop_per_mille: u64,
    pub dup_per_mille: u64,
    pub delay_max: u64,
}

pub struct Envelope {
    pub from: NodeId,
    pub to: NodeId,
    pub msg: Message,
}

pub struct Network {
    /// Messages by delivery tick.
    queue: BTreeMap<u64, Vec<Envelope>>,
    /// side[i] is the partition side of node i+1; messages between sides are dropped.
    side: Vec<u8>,
    pub faults: NetFaults,
}

/// What happened to a message handed to the network.
pub enum Fate {
    Sent,
    /// Sent twice.
    Duplicated,
    Dropped,
    Cut,
}

impl Network {
    pub fn new(nodes: usize, faults: NetFaults) -> Network {
        Network {
            queue: BTreeMap::new(),
            side: vec![0; nodes],
            faults,
        }
    }

    pub fn connected(&self, a: NodeId, b: NodeId) -> bool {
        self.side[a as usize - 1] == self.side[b as usize - 1]
    }

    pub fn partition(&mut self, side: Vec<u8>) {
        self.side = side;
    }

    pub fn heal(&mut self) {
        self.side.iter_mut().for_each(|s| *s = 0);
    }

    pub fn is_partitioned(&self) -> bool {
        self.side.iter().any(|&s| s != 0)
    }

    pub fn send(
        &mut self,
        rng: &mut Rng,
        now: u64,
        from: NodeId,
        to: NodeId,
        msg: Message,
    ) -> Fate {
        if from == to {
            self.queue
                .entry(now + 1)
                .or_default()
                .push(Envelope { from, to, msg });
            return Fate::Sent;
        }
        if !self.connected(from, to) {
            return Fate::Cut;
        }
        if rng.chance(self.faults.drop_per_mille) {
            return Fate::Dropped;
        }
        if rng.chance(self.faults.dup_per_mille) {
            let at = now + rng.range(1, self.faults.delay_max);
            let copy = Envelope {
                from,
                to,
                msg: msg.clone(),
            };
            self.queue.entry(at).or_default().push(copy);
            let at = now + rng.range(1, self.faults.delay_max);
            self.queue
                .entry(at)
                .or_default()
                .push(Envelope { from, to, msg });
            return Fate::Duplicated;
        }
        let at = now + rng.range(1, self.faults.delay_max);
        self.queue
            .entry(at)
            .or_default()
            .push(Envelope { from, to, msg });
        Fate::Sent
    }

    /// Every message due at or before `now`, shuffled (reordering within a tick).
    pub fn due(&mut self, rng: &mut Rng, now: u64) -> Vec<Envelope> {
        let mut out = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if *entry.key() > now {
                break;
            }
            out.extend(entry.remove());
        }
        for i in (1..out.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            out.swap(i, j);
        }
        // A partition that started after sending still cuts the message.
        out.retain(|e| e.from == e.to || self.connected(e.from, e.to));
        out
    }
}
