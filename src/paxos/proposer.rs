//! The proposer: phase 1 once for all open slots, then phase 2 per slot with batching and
//! a window of slots in flight ("Paxos Made Simple", 3: the leader runs phase 1 for
//! infinitely many instances at once).
//!
//! A candidate picks a ballot `(round, id)` above every ballot it has seen, so no two
//! proposers ever share one, and the core makes it durable (as its own acceptor's promise)
//! before any Prepare leaves, so no later incarnation reuses it: a reply carrying the
//! ballot answers this campaign and no other. It learns from a quorum of promises for its
//! (ballot, from) (its own included) every accepted value above its commit point,
//! re-proposes the highest-ballot value per slot (P2c) and fills gaps with `Noop`.
//!
//! Recovery in chunks: an acceptor's promise reports at most `promise_slots_max` slots /
//! `promise_bytes_max` bytes; the candidate asks that acceptor for the next chunk with a
//! Prepare of the same ballot from the slot after the last one reported (answered without
//! a new promise record). An acceptor that promised the ballot can accept nothing but
//! this ballot's values afterwards, and this candidate proposes none before it leads, so
//! reports taken at different times agree. Phase 1 ends when a quorum (this node included)
//! has reported every slot from `from` on. The takeover re-proposes the recovered slots
//! through the ordinary window, so it too is bounded in slots in flight.

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

/// How far one acceptor's report for this campaign has come.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// No promise yet.
    None,
    /// Promised; reported every slot in `from..=t`; the next chunk starts at t + 1.
    Partial(Slot),
    /// Promised and reported every slot >= from.
    Complete,
}

/// Phase 1 in progress.
struct Candidate {
    ballot: Ballot,
    /// Prepare covers every slot >= from.
    from: Slot,
    /// Per member (index in `Config::members`), how far its report has come.
    progress: Vec<Progress>,
    /// Per slot, the highest-ballot accepted value reported so far.
    recovered: BTreeMap<Slot, (Ballot, Value)>,
    sent_at: u64,
}

impl Candidate {
    /// The Prepare that asks member `i` for what is missing of its report, if anything.
    fn prepare_for(&self, i: usize) -> Option<Message> {
        let from = match self.progress.get(i)? {
            Progress::None => self.from,
            Progress::Partial(t) => t + 1,
            Progress::Complete => return None,
        };
        Some(Message::Prepare {
            ballot: self.ballot,
            from,
        })
    }
}

/// One Promise, as the proposer takes it.
pub struct Report {
    pub ballot: Ballot,
    /// The `from` of the Prepare it answers.
    pub from: Slot,
    /// `Some(t)`: covers `from..=t` only; `None`: every slot >= from.
    pub through: Option<Slot>,
    pub accepted: Vec<(Slot, Ballot, Value)>,
    pub compacted_through: Slot,
}

/// Phase 2: this node leads in `ballot`.
struct Leader {
    ballot: Ballot,
    /// The next slot to propose into. Invariant: every in-flight slot < next_slot.
    next_slot: Slot,
    /// Slots up to here were open when phase 1 ended (a read index never goes below it);
    /// they are re-proposed (recovered value or Noop) before any new command.
    recovered_through: Slot,
    /// Recovered values of slots >= next_slot still to re-propose.
    recovered: BTreeMap<Slot, Value>,
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
    /// Commands waiting for a slot, with the node that proposed each.
    /// Invariant: len <= proposals_queued_max.
    queue: VecDeque<(NodeId, Bytes)>,
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

    /// Queues a command proposed at `origin`; false if the queue is full.
    pub fn enqueue(&mut self, origin: NodeId, command: Bytes, queued_max: usize) -> bool {
        if self.queue.len() >= queued_max {
            return false;
        }
        self.queue.push_back((origin, command));
        true
    }

    /// True if a recovered slot or a command waits and the window has room.
    pub fn can_fill(&self, config: &Config, commit: Slot) -> bool {
        match &self.role {
            Role::Leader(l) => {
                let waiting = l.next_slot <= l.recovered_through || !self.queue.is_empty();
                waiting && window_room(config, l, commit)
            }
            _ => false,
        }
    }

    /// Becomes a follower; returns the queued commands (with their origins), which were
    /// never put in a slot and never will be.
    pub fn step_down(&mut self) -> Vec<(NodeId, Bytes)> {
        self.role = Role::Follower;
        self.queue.drain(..).collect()
    }

    /// The ballot the next `start_phase1` would use (for a pre-vote).
    pub fn next_ballot(&self) -> Ballot {
        Ballot {
            round: self.max_seen.round + 1,
            node: self.id,
        }
    }

    /// Starts phase 1 for every slot >= from; returns the new ballot, which the caller
    /// must make durable in the same Ready (before the Prepares leave).
    pub fn start_phase1(
        &mut self,
        config: &Config,
        now: u64,
        from: Slot,
        out: &mut Ready,
    ) -> Ballot {
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
            progress: vec![Progress::None; config.members.len()],
            recovered: BTreeMap::new(),
            sent_at: now,
        });
        ballot
    }

    /// Phase 1b arrived from `from`: one chunk of its report. A chunk that is not the
    /// next one expected from that member (another campaign's, a duplicate, a stale one)
    /// is ignored; a partial one is followed up with a Prepare for the next chunk.
    pub fn on_promise(
        &mut self,
        config: &Config,
        from: NodeId,
        report: Report,
        out: &mut Ready,
    ) -> PromiseOutcome {
        let Role::Candidate(c) = &mut self.role else {
            return PromiseOutcome::Waiting;
        };
        let Some(i) = config.members.iter().position(|&m| m == from) else {
            return PromiseOutcome::Waiting;
        };
        let expected = match c.progress[i] {
            Progress::None => c.from,
            Progress::Partial(t) => t + 1,
            Progress::Complete => return PromiseOutcome::Waiting,
        };
        // A promise for another campaign (another ballot, or this ballot's Prepare with
        // another `from`) does not vouch for the slots this one needs.
        if report.ballot != c.ballot || report.from != expected {
            return PromiseOutcome::Waiting;
        }
        if report.compacted_through >= c.from {
            return PromiseOutcome::Behind;
        }
        let mut last = None;
        for (slot, b, v) in report.accepted {
            last = Some(slot);
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
        c.progress[i] = match report.through {
            // A partial chunk must end at its last slot, after `expected`: else it is
            // malformed and the member is asked again from the same point.
            Some(t) if t >= expected && last == Some(t) => Progress::Partial(t),
            Some(_) => c.progress[i],
            None => Progress::Complete,
        };
        if let Some(next) = c.prepare_for(i) {
            out.send.push((from, next));
        }
        let complete = |i: usize| c.progress.get(i) == Some(&Progress::Complete);
        let own = config.members.iter().position(|&m| m == self.id);
        let quorum = (0..c.progress.len()).filter(|&i| complete(i)).count() >= config.quorum();
        if quorum && own.is_some_and(complete) {
            PromiseOutcome::Elected
        } else {
            PromiseOutcome::Waiting
        }
    }

    /// Phase 1 done: phase 2 starts. The recovered slots (highest-ballot value, or Noop
    /// for a gap) are re-proposed through the window by `fill_window`, before any command.
    pub fn become_leader(&mut self, commit: Slot) {
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
        let recovered = c
            .recovered
            .into_iter()
            .filter(|(s, _)| *s >= first)
            .map(|(s, (_, v))| (s, v))
            .collect();
        self.role = Role::Leader(Leader {
            ballot: c.ballot,
            next_slot: first,
            recovered_through: last,
            recovered,
            in_flight: BTreeMap::new(),
        });
    }

    /// While the window has room: re-proposes the next recovered slot (skipping slots
    /// `is_chosen` already knows), then packs queued commands into new slots.
    pub fn fill_window(
        &mut self,
        config: &Config,
        now: u64,
        commit: Slot,
        is_chosen: impl Fn(Slot) -> bool,
        out: &mut Ready,
    ) {
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        while l.next_slot <= l.recovered_through && window_room(config, l, commit) {
            let slot = l.next_slot;
            l.next_slot += 1;
            let value = l.recovered.remove(&slot).unwrap_or(Value::Noop);
            if is_chosen(slot) {
                continue;
            }
            send_accepts(config, l.ballot, slot, &value, commit, 0, out);
            let f = InFlight {
                value,
                acks: 0,
                sent_at: now,
            };
            l.in_flight.insert(slot, f);
        }
        if l.next_slot <= l.recovered_through {
            return;
        }
        while !self.queue.is_empty() && window_room(config, l, commit) {
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            while let Some((_, next)) = self.queue.front() {
                let fits = bytes + next.len() <= config.batch_bytes_max;
                if batch.len() >= config.batch_commands_max || (!batch.is_empty() && !fits) {
                    break;
                }
                bytes += next.len();
                if let Some((_, c)) = self.queue.pop_front() {
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
                        if let Some(msg) = c.prepare_for(i) {
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
