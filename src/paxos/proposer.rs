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
//!
//! Memberships (see `membership.rs`): slot s is decided by the voters of the membership
//! governing it. Phase 1 asks the voters of the membership of `from`; once leading, the
//! leader keeps its phase 1 and, before it proposes the first slot of a membership whose
//! voters have not all promised, asks them (same ballot, from that slot) and proposes
//! nothing more until a quorum of them reported every slot from there on. Their reports
//! are merged like the candidate's: highest ballot per slot, for slots not yet proposed.
//! Accepts for a slot go to its voters only, so only they ever accept a value at it, and
//! a slot is chosen by a quorum of its own voters. A chosen change that waits to take
//! effect is driven there with `Noop`s when no command waits.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::config::Config;
use super::membership::{Membership, Memberships};
use super::message::Message;
use super::types::{Ballot, Change, NodeId, Ready, Slot, Value};

/// A slot proposed in phase 2 and not yet chosen.
struct InFlight {
    value: Value,
    /// The voters of the membership governing the slot.
    voters: Vec<NodeId>,
    /// Voters that accepted it.
    acks: Vec<NodeId>,
    /// Tick the accepts were last sent.
    sent_at: u64,
}

impl InFlight {
    fn chosen(&self) -> bool {
        self.acks.len() > self.voters.len() / 2
    }
}

/// How far one acceptor's report for this ballot has come.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// No promise yet.
    None,
    /// Promised; reported every slot in `from..=t`; the next chunk starts at t + 1.
    Partial(Slot),
    /// Promised and reported every slot >= from.
    Complete,
}

/// Phase 1 of one ballot: the promises asked for and what they reported. A candidate
/// runs it; a leader keeps it, to ask the voters of each later membership.
struct Phase1 {
    ballot: Ballot,
    /// Per node asked: the slot its report starts at, and how far the report has come.
    reports: BTreeMap<NodeId, (Slot, Progress)>,
    /// Per slot, the highest-ballot accepted value reported so far.
    recovered: BTreeMap<Slot, (Ballot, Value)>,
    sent_at: u64,
}

/// A promiser compacted slots this ballot needs: catch up from it first.
pub struct Behind;

impl Phase1 {
    /// The Prepare that asks `node` for what is missing of its report, if anything.
    fn prepare_for(&self, node: NodeId) -> Option<Message> {
        let from = match self.reports.get(&node)? {
            (from, Progress::None) => *from,
            (_, Progress::Partial(t)) => t + 1,
            (_, Progress::Complete) => return None,
        };
        Some(Message::Prepare {
            ballot: self.ballot,
            from,
        })
    }

    /// Asks `node` for its report of every slot >= `from`, unless it was asked already.
    fn ask(&mut self, node: NodeId, from: Slot, out: &mut Ready) {
        if self.reports.contains_key(&node) {
            return;
        }
        self.reports.insert(node, (from, Progress::None));
        let ballot = self.ballot;
        out.send.push((node, Message::Prepare { ballot, from }));
    }

    /// True if `node`'s report covers every slot >= `slot`.
    fn complete_from(&self, node: NodeId, slot: Slot) -> bool {
        matches!(self.reports.get(&node), Some((f, Progress::Complete)) if *f <= slot)
    }

    /// True if a quorum of `m`'s voters reported every slot >= `slot`.
    fn covers(&self, m: &Membership, slot: Slot) -> bool {
        let complete = m.voters.iter().filter(|&&v| self.complete_from(v, slot));
        complete.count() >= m.quorum()
    }

    /// True if every voter of `m` was asked (nothing to send until they answer).
    fn asked_all(&self, m: &Membership) -> bool {
        m.voters.iter().all(|v| self.reports.contains_key(v))
    }

    /// One chunk of `from`'s report. A chunk that is not the next one expected from that
    /// node (another campaign's, a duplicate, a stale one) is ignored; a partial one is
    /// followed up with a Prepare for the next chunk. Values of slots below `floor` (below
    /// the campaign's `from`, or already proposed by this leader) are not kept.
    fn on_report(
        &mut self,
        from: NodeId,
        report: Report,
        floor: Slot,
        out: &mut Ready,
    ) -> Result<(), Behind> {
        let Some(&(asked_from, progress)) = self.reports.get(&from) else {
            return Ok(());
        };
        let expected = match progress {
            Progress::None => asked_from,
            Progress::Partial(t) => t + 1,
            Progress::Complete => return Ok(()),
        };
        // A promise for another campaign (another ballot, or this ballot's Prepare with
        // another `from`) does not vouch for the slots this one needs.
        if report.ballot != self.ballot || report.from != expected {
            return Ok(());
        }
        if report.compacted_through >= asked_from {
            return Err(Behind);
        }
        let mut last = None;
        for (slot, b, v) in report.accepted {
            last = Some(slot);
            if slot < floor || slot < asked_from || b > self.ballot {
                continue;
            }
            match self.recovered.get(&slot) {
                Some((have, _)) if *have >= b => {}
                _ => {
                    self.recovered.insert(slot, (b, v));
                }
            }
        }
        let next = match report.through {
            // A partial chunk must end at its last slot, after `expected`: else it is
            // malformed and the node is asked again from the same point.
            Some(t) if t >= expected && last == Some(t) => Progress::Partial(t),
            Some(_) => progress,
            None => Progress::Complete,
        };
        self.reports.insert(from, (asked_from, next));
        if let Some(msg) = self.prepare_for(from) {
            out.send.push((from, msg));
        }
        Ok(())
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

/// Phase 1 in progress.
struct Candidate {
    phase1: Phase1,
    /// Prepare covers every slot >= from.
    from: Slot,
}

/// Phase 2: this node leads in `phase1.ballot`.
struct Leader {
    /// Kept: the voters of later memberships are asked through it.
    phase1: Phase1,
    /// The next slot to propose into. Invariant: every in-flight slot < next_slot.
    next_slot: Slot,
    /// Slots up to here were reported open (at the takeover, or by a later membership's
    /// voters): a read index never goes below it; they are re-proposed (recovered value
    /// or Noop) before any new command.
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
    /// The promiser compacted slots this ballot needs: catch up from it.
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
    /// A membership change waiting for a slot (proposed before any queued command).
    change: Option<Change>,
}

impl Proposer {
    /// A follower that has seen `promised`.
    pub fn new(id: NodeId, promised: Ballot) -> Proposer {
        Proposer {
            id,
            role: Role::Follower,
            max_seen: promised,
            queue: VecDeque::new(),
            change: None,
        }
    }

    /// The ballot this node leads in, if phase 1 is done.
    pub fn leading(&self) -> Option<Ballot> {
        match &self.role {
            Role::Leader(l) => Some(l.phase1.ballot),
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
            Role::Candidate(c) => Some(c.phase1.ballot),
            Role::Leader(l) => Some(l.phase1.ballot),
        }
    }

    /// The slots reported open to this leader (0 if not leading).
    pub fn recovered_through(&self) -> Slot {
        match &self.role {
            Role::Leader(l) => l.recovered_through,
            _ => 0,
        }
    }

    /// True if this leader holds reports of every slot >= `slot` from a quorum of `m`'s
    /// voters (false if not leading).
    pub fn covers(&self, m: &Membership, slot: Slot) -> bool {
        match &self.role {
            Role::Leader(l) => l.phase1.covers(m, slot),
            _ => false,
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

    /// Queues a membership change; false if one already waits.
    pub fn enqueue_change(&mut self, change: Change) -> bool {
        if self.change.is_some() {
            return false;
        }
        self.change = Some(change);
        true
    }

    /// True if `fill_window` has something to do: a slot to fill and room in the window,
    /// or voters of the next slot's membership still to ask.
    pub fn can_fill(&self, config: &Config, memberships: &Memberships, commit: Slot) -> bool {
        let Role::Leader(l) = &self.role else {
            return false;
        };
        if !window_room(config, l, commit) {
            return false;
        }
        let m = memberships.for_slot(l.next_slot);
        if !l.phase1.covers(m, l.next_slot) {
            return !l.phase1.asked_all(m);
        }
        l.next_slot <= l.recovered_through
            || self.change.is_some()
            || !self.queue.is_empty()
            || memberships.latest().active_from > l.next_slot
    }

    /// Becomes a follower; returns the queued commands (with their origins), which were
    /// never put in a slot and never will be. A queued membership change is dropped too.
    pub fn step_down(&mut self) -> Vec<(NodeId, Bytes)> {
        self.role = Role::Follower;
        self.change = None;
        self.queue.drain(..).collect()
    }

    /// The ballot the next `start_phase1` would use (for a pre-vote).
    pub fn next_ballot(&self) -> Ballot {
        Ballot {
            round: self.max_seen.round + 1,
            node: self.id,
        }
    }

    /// Starts phase 1 for every slot >= from, asking the voters of `m` (the membership
    /// of `from`); returns the new ballot, which the caller must make durable in the same
    /// Ready (before the Prepares leave).
    pub fn start_phase1(
        &mut self,
        m: &Membership,
        now: u64,
        from: Slot,
        out: &mut Ready,
    ) -> Ballot {
        let ballot = Ballot {
            round: self.max_seen.round + 1,
            node: self.id,
        };
        self.max_seen = ballot;
        let mut phase1 = Phase1 {
            ballot,
            reports: BTreeMap::new(),
            recovered: BTreeMap::new(),
            sent_at: now,
        };
        for &v in &m.voters {
            phase1.ask(v, from, out);
        }
        self.role = Role::Candidate(Candidate { phase1, from });
        ballot
    }

    /// Phase 1b arrived from `from`: one chunk of its report, for a candidate (see
    /// `try_elect`) or for a leader asking a later membership's voters.
    pub fn on_promise(
        &mut self,
        memberships: &Memberships,
        commit: Slot,
        from: NodeId,
        report: Report,
        out: &mut Ready,
    ) -> PromiseOutcome {
        match &mut self.role {
            Role::Follower => PromiseOutcome::Waiting,
            Role::Candidate(c) => {
                if c.phase1.on_report(from, report, c.from, out).is_err() {
                    return PromiseOutcome::Behind;
                }
                if self.try_elect(memberships, commit, out) {
                    PromiseOutcome::Elected
                } else {
                    PromiseOutcome::Waiting
                }
            }
            Role::Leader(l) => {
                if l.phase1.on_report(from, report, l.next_slot, out).is_err() {
                    return PromiseOutcome::Behind;
                }
                let last = l.phase1.recovered.keys().next_back().copied();
                l.recovered_through = l.recovered_through.max(last.unwrap_or(0));
                PromiseOutcome::Waiting
            }
        }
    }

    /// True if this candidate may lead: a quorum of the voters of its first slot, and
    /// itself, reported every slot from there on. The first slot is the one after both
    /// its `from` and the commit index: a candidate that learns chosen slots while it
    /// campaigns may reach a later membership, whose voters it asks now (from that slot:
    /// the slots below are chosen and known).
    pub fn try_elect(&mut self, memberships: &Memberships, commit: Slot, out: &mut Ready) -> bool {
        let Role::Candidate(c) = &mut self.role else {
            return false;
        };
        let first = c.from.max(commit + 1);
        let m = memberships.for_slot(first);
        for &v in &m.voters {
            c.phase1.ask(v, first, out);
        }
        c.phase1.complete_from(self.id, first) && c.phase1.covers(m, first)
    }

    /// True while phase 1 of a campaign runs.
    pub fn is_candidate(&self) -> bool {
        matches!(self.role, Role::Candidate(_))
    }

    /// Phase 1 done: phase 2 starts. The recovered slots (highest-ballot value, or Noop
    /// for a gap) are re-proposed through the window by `fill_window`, before any command.
    pub fn become_leader(&mut self, commit: Slot) {
        let Role::Candidate(mut c) = std::mem::replace(&mut self.role, Role::Follower) else {
            return;
        };
        let first = c.from.max(commit + 1);
        c.phase1.recovered.retain(|s, _| *s >= first);
        let last = c.phase1.recovered.keys().next_back().copied();
        self.role = Role::Leader(Leader {
            phase1: c.phase1,
            next_slot: first,
            recovered_through: last.unwrap_or(0).max(commit),
            in_flight: BTreeMap::new(),
        });
    }

    /// While the window has room: asks the voters of the next slot's membership if a
    /// quorum of them has not reported (and proposes nothing until one has), re-proposes
    /// the next recovered slot (skipping slots `is_chosen` already knows), then a queued
    /// membership change, then packs queued commands into new slots, then `Noop`s while
    /// a chosen change waits to take effect.
    pub fn fill_window(
        &mut self,
        config: &Config,
        memberships: &Memberships,
        now: u64,
        commit: Slot,
        is_chosen: impl Fn(Slot) -> bool,
        out: &mut Ready,
    ) {
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        while window_room(config, l, commit) {
            let slot = l.next_slot;
            let m = memberships.for_slot(slot);
            if !l.phase1.covers(m, slot) {
                for &v in &m.voters {
                    l.phase1.ask(v, slot, out);
                }
                return;
            }
            let value = if slot <= l.recovered_through {
                let recovered = l.phase1.recovered.remove(&slot);
                if is_chosen(slot) {
                    l.next_slot += 1;
                    continue;
                }
                recovered.map_or(Value::Noop, |(_, v)| v)
            } else if let Some(change) = self.change.take() {
                Value::Reconfigure(change)
            } else if !self.queue.is_empty() {
                Value::Batch(take_batch(config, &mut self.queue))
            } else if memberships.latest().active_from > slot {
                Value::Noop
            } else {
                return;
            };
            l.next_slot += 1;
            let f = InFlight {
                value,
                voters: m.voters.clone(),
                acks: Vec::new(),
                sent_at: now,
            };
            send_accepts(l.phase1.ballot, slot, &f, commit, out);
            l.in_flight.insert(slot, f);
        }
    }

    /// Phase 2b arrived; returns the slot and value if it is now chosen (by a quorum of
    /// the slot's own voters).
    pub fn on_accepted(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
    ) -> Option<(Slot, Value)> {
        let Role::Leader(l) = &mut self.role else {
            return None;
        };
        if ballot != l.phase1.ballot {
            return None;
        }
        let f = l.in_flight.get_mut(&slot)?;
        if f.voters.contains(&from) && !f.acks.contains(&from) {
            f.acks.push(from);
        }
        if f.chosen() {
            return l.in_flight.remove(&slot).map(|f| (slot, f.value));
        }
        None
    }

    /// Resends unanswered prepares and accepts sent at least `after_ticks` ago; drops
    /// in-flight slots already known chosen (at or below `commit`).
    pub fn retransmit(&mut self, now: u64, after_ticks: u64, commit: Slot, out: &mut Ready) {
        let resend_prepares = |p: &mut Phase1, out: &mut Ready| {
            if now >= p.sent_at + after_ticks {
                p.sent_at = now;
                for &node in p.reports.keys() {
                    if let Some(msg) = p.prepare_for(node) {
                        out.send.push((node, msg));
                    }
                }
            }
        };
        match &mut self.role {
            Role::Follower => {}
            Role::Candidate(c) => resend_prepares(&mut c.phase1, out),
            Role::Leader(l) => {
                resend_prepares(&mut l.phase1, out);
                l.in_flight.retain(|&s, _| s > commit);
                for (&slot, f) in &mut l.in_flight {
                    if now >= f.sent_at + after_ticks {
                        f.sent_at = now;
                        send_accepts(l.phase1.ballot, slot, f, commit, out);
                    }
                }
            }
        }
    }
}

/// Takes the next batch of queued commands (at least one).
fn take_batch(config: &Config, queue: &mut VecDeque<(NodeId, Bytes)>) -> Vec<Bytes> {
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    while let Some((_, next)) = queue.front() {
        let fits = bytes + next.len() <= config.batch_bytes_max;
        if batch.len() >= config.batch_commands_max || (!batch.is_empty() && !fits) {
            break;
        }
        bytes += next.len();
        if let Some((_, c)) = queue.pop_front() {
            batch.push(c);
        }
    }
    batch
}

/// True if the leader may open another slot: at most window_slots_max past the commit.
fn window_room(config: &Config, l: &Leader, commit: Slot) -> bool {
    (l.next_slot - 1).saturating_sub(commit) < config.window_slots_max
}

/// Sends `Accept` for one slot to each of its voters that has not accepted it yet.
fn send_accepts(ballot: Ballot, slot: Slot, f: &InFlight, commit: Slot, out: &mut Ready) {
    for &v in &f.voters {
        if !f.acks.contains(&v) {
            let msg = Message::Accept {
                ballot,
                slot,
                value: f.value.clone(),
                commit,
            };
            out.send.push((v, msg));
        }
    }
}
