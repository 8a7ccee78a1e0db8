//! The proposer: phase 1 once for all open slots, then phase 2 per slot with batching and
//! a window of slots in flight ("Paxos Made Simple", 3: the leader runs phase 1 for
//! infinitely many instances at once).
//!
//! A candidate picks a ballot `(round, id)` above every ballot it has seen, so no two
//! proposers ever share one. It learns from a quorum of promises (its own included, so its
//! own promise is durable before any accept in its ballot goes out and a restart can never
//! reuse the ballot) every accepted value above its commit point, re-proposes the
//! highest-ballot value per slot (P2c) and fills gaps with `Noop`.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::config::Config;
use super::message::Message;
use super::types::{Ballot, NodeId, Ready, Slot, Value};

/// A slot proposed in phase 2 and not yet chosen.
struct InFlight {
    value: Value,
    /// Members that accepted it (bit set over `Config::members`).
    acks: u64,
    /// Tick the accepts were last sent.
    sent_at: u64,
}

/// Phase 1 in progress.
struct Candidate {
    ballot: Ballot,
    /// Prepare covers every slot >= from.
    from: Slot,
    /// Members whose promise counted (bit set).
    promised_by: u64,
    /// Per slot, the highest-ballot accepted value reported so far.
    recovered: BTreeMap<Slot, (Ballot, Value)>,
    sent_at: u64,
}

/// Phase 2: this node leads in `ballot`.
struct Leader {
    ballot: Ballot,
    /// The next slot to propose into. Invariant: every in-flight slot < next_slot.
    next_slot: Slot,
    /// Slots up to here were open when phase 1 ended (a read index never goes below it).
    recovered_through: Slot,
    in_flight: BTreeMap<Slot, InFlight>,
}

enum Role {
    Follower,
    Candidate(Candidate),
    Leader(Leader),
}

/// What a promise led to.
pub enum PromiseOutcome {
    /// Nothing more to do yet.
    Waiting,
    /// The promiser compacted slots this candidate needs: catch up from it.
    Behind,
    /// Phase 1 is done: this node now leads.
    Elected,
}

/// The proposer and its command queue.
pub struct Proposer {
    id: NodeId,
    role: Role,
    /// The highest ballot seen anywhere. Invariant: >= every ballot this node used.
    max_seen: Ballot,
    /// Commands waiting for a slot. Invariant: len <= proposals_queued_max.
    queue: VecDeque<Bytes>,
}

impl Proposer {
    /// A follower that has seen `promised`.
    pub fn new(id: NodeId, promised: Ballot) -> Proposer {
        Proposer {
            id,
            role: Role::Follower,
            max_seen: promised,
            queue: VecDeque::new(),
        }
    }

    /// The ballot this node leads in, if phase 1 is done.
    pub fn leading(&self) -> Option<Ballot> {
        match &self.role {
            Role::Leader(l) => Some(l.ballot),
            _ => None,
        }
    }

    /// True while following.
    pub fn is_follower(&self) -> bool {
        matches!(self.role, Role::Follower)
    }

    /// The ballot of phase 1 or 2 in progress.
    pub fn ballot(&self) -> Option<Ballot> {
        match &self.role {
            Role::Follower => None,
            Role::Candidate(c) => Some(c.ballot),
            Role::Leader(l) => Some(l.ballot),
        }
    }

    /// The slots open when this leader took over (0 if not leading).
    pub fn recovered_through(&self) -> Slot {
        match &self.role {
            Role::Leader(l) => l.recovered_through,
            _ => 0,
        }
    }

    /// Records a ballot seen in any message; true if it preempts our own.
    pub fn observe(&mut self, ballot: Ballot) -> bool {
        self.max_seen = self.max_seen.max(ballot);
        matches!(self.ballot(), Some(mine) if ballot > mine)
    }

    /// Queues a command; false if the queue is full.
    pub fn enqueue(&mut self, command: Bytes, queued_max: usize) -> bool {
        if self.queue.len() >= queued_max {
            return false;
        }
        self.queue.push_back(command);
        true
    }

    /// True if a command waits and the window has room.
    pub fn can_fill(&self, config: &Config, commit: Slot) -> bool {
        match &self.role {
            Role::Leader(l) => !self.queue.is_empty() && window_room(config, l, commit),
            _ => false,
        }
    }

    /// Becomes a follower; queued commands are dropped (their clients retry).
    pub fn step_down(&mut self) {
        self.role = Role::Follower;
        self.queue.clear();
    }

    /// Starts phase 1 for every slot >= from.
    pub fn start_phase1(&mut self, config: &Config, now: u64, from: Slot, out: &mut Ready) {
        let ballot = Ballot {
            round: self.max_seen.round + 1,
            node: self.id,
        };
        self.max_seen = ballot;
        for &m in &config.members {
            out.send.push((m, Message::Prepare { ballot, from }));
        }
        self.role = Role::Candidate(Candidate {
            ballot,
            from,
            promised_by: 0,
            recovered: BTreeMap::new(),
            sent_at: now,
        });
    }

    /// Phase 1b arrived from `from`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_promise(
        &mut self,
        config: &Config,
        from: NodeId,
        ballot: Ballot,
        accepted: Vec<(Slot, Ballot, Value)>,
        compacted_through: Slot,
    ) -> PromiseOutcome {
        let Role::Candidate(c) = &mut self.role else {
            return PromiseOutcome::Waiting;
        };
        let Some(bit) = config.member_bit(from) else {
            return PromiseOutcome::Waiting;
        };
        if ballot != c.ballot || c.promised_by & bit != 0 {
            return PromiseOutcome::Waiting;
        }
        if compacted_through >= c.from {
            return PromiseOutcome::Behind;
        }
        c.promised_by |= bit;
        for (slot, b, v) in accepted {
            if slot < c.from || b > c.ballot {
                continue;
            }
            match c.recovered.get(&slot) {
                Some((have, _)) if *have >= b => {}
                _ => {
                    c.recovered.insert(slot, (b, v));
                }
            }
        }
        let own = config.member_bit(self.id).unwrap_or(0);
        let quorum = c.promised_by.count_ones() as usize >= config.quorum();
        if quorum && c.promised_by & own != 0 {
            PromiseOutcome::Elected
        } else {
            PromiseOutcome::Waiting
        }
    }

    /// Phase 1 done: re-propose recovered values, fill gaps with Noop, start phase 2.
    /// `is_chosen` tells slots already known chosen (not proposed again).
    pub fn become_leader(
        &mut self,
        config: &Config,
        now: u64,
        commit: Slot,
        is_chosen: impl Fn(Slot) -> bool,
        out: &mut Ready,
    ) {
        let Role::Candidate(c) = std::mem::replace(&mut self.role, Role::Follower) else {
            return;
        };
        let first = c.from.max(commit + 1);
        let last = c
            .recovered
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(commit);
        let mut leader = Leader {
            ballot: c.ballot,
            next_slot: last + 1,
            recovered_through: last,
            in_flight: BTreeMap::new(),
        };
        let mut recovered = c.recovered;
        for slot in first..=last {
            if is_chosen(slot) {
                continue;
            }
            let value = recovered.remove(&slot).map_or(Value::Noop, |(_, v)| v);
            send_accepts(config, leader.ballot, slot, &value, commit, 0, out);
            leader.in_flight.insert(
                slot,
                InFlight {
                    value,
                    acks: 0,
                    sent_at: now,
                },
            );
        }
        self.role = Role::Leader(leader);
    }

    /// Packs queued commands into new slots while the window has room.
    pub fn fill_window(&mut self, config: &Config, now: u64, commit: Slot, out: &mut Ready) {
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        while !self.queue.is_empty() && window_room(config, l, commit) {
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            while let Some(next) = self.queue.front() {
                let fits = bytes + next.len() <= config.batch_bytes_max;
                if batch.len() >= config.batch_commands_max || (!batch.is_empty() && !fits) {
                    break;
                }
                bytes += next.len();
                if let Some(c) = self.queue.pop_front() {
                    batch.push(c);
                }
            }
            let slot = l.next_slot;
            l.next_slot += 1;
            let value = Value::Batch(batch);
            send_accepts(config, l.ballot, slot, &value, commit, 0, out);
            l.in_flight.insert(
                slot,
                InFlight {
                    value,
                    acks: 0,
                    sent_at: now,
                },
            );
        }
    }

    /// Phase 2b arrived; returns the slot and value if it is now chosen.
    pub fn on_accepted(
        &mut self,
        config: &Config,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
    ) -> Option<(Slot, Value)> {
        let Role::Leader(l) = &mut self.role else {
            return None;
        };
        let bit = config.member_bit(from)?;
        if ballot != l.ballot {
            return None;
        }
        let f = l.in_flight.get_mut(&slot)?;
        f.acks |= bit;
        if f.acks.count_ones() as usize >= config.quorum() {
            return l.in_flight.remove(&slot).map(|f| (slot, f.value));
        }
        None
    }

    /// Resends unanswered prepares and accepts sent at least `after_ticks` ago; drops
    /// in-flight slots already known chosen (at or below `commit`).
    pub fn retransmit(
        &mut self,
        config: &Config,
        now: u64,
        after_ticks: u64,
        commit: Slot,
        out: &mut Ready,
    ) {
        match &mut self.role {
            Role::Follower => {}
            Role::Candidate(c) => {
                if now >= c.sent_at + after_ticks {
                    c.sent_at = now;
                    for (i, &m) in config.members.iter().enumerate() {
                        if c.promised_by & (1 << i) == 0 {
                            let msg = Message::Prepare {
                                ballot: c.ballot,
                                from: c.from,
                            };
                            out.send.push((m, msg));
                        }
                    }
                }
            }
            Role::Leader(l) => {
                l.in_flight.retain(|&s, _| s > commit);
                for (&slot, f) in &mut l.in_flight {
                    if now >= f.sent_at + after_ticks {
                        f.sent_at = now;
                        send_accepts(config, l.ballot, slot, &f.value, commit, f.acks, out);
                    }
                }
            }
        }
    }
}

/// True if the leader may open another slot: at most window_slots_max past the commit.
fn window_room(config: &Config, l: &Leader, commit: Slot) -> bool {
    (l.next_slot - 1).saturating_sub(commit) < config.window_slots_max
}

/// Sends `Accept` for one slot to every member not in `skip` (a bit set).
fn send_accepts(
    config: &Config,
    ballot: Ballot,
    slot: Slot,
    value: &Value,
    commit: Slot,
    skip: u64,
    out: &mut Ready,
) {
    for (i, &m) in config.members.iter().enumerate() {
        if skip & (1 << i) == 0 {
            let msg = Message::Accept {
                ballot,
                slot,
                value: value.clone(),
                commit,
            };
            out.send.push((m, msg));
        }
    }
}
