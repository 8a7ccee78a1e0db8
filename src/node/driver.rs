//! The driver: one tokio task that owns the Paxos `Core` and carries out its `Ready`s.
//!
//! Inputs: a tick every `tick_ms`, messages from peers, proposals and read-index requests
//! from handles, events from the apply thread, and finished persist jobs. After feeding a
//! burst of inputs it takes `ready()` and:
//! 1. hands `deliver` to the apply thread at once (chosen values are facts), in order;
//! 2. answers `reads`; starts snapshot transfers for `snapshot_needed`;
//! 3. sends at once the messages that vouch for no state (`Message::waits_for_persist` is
//!    false: heartbeats, commit notices, read-index and catch-up traffic), so they never
//!    queue behind an fsync and a busy disk does not get a healthy
//!    leader suspected; fails `dropped` proposals at once (not applied);
//! 4. queues `persist` + the other messages as ONE job for the persistence thread and keeps
//!    going; when the job comes back durable, its messages are sent (those to ourselves go
//!    back into `step`). Jobs complete in order, so these messages leave in `Ready` order
//!    and never before the state they vouch for is durable. A `Ready` with nothing to
//!    persist still waits its turn behind earlier jobs (it may repeat a promise still
//!    being fsynced), but takes no job: its messages are held in the driver and leave
//!    when the last job queued before them completes.
//!
//! Back-pressure, all bounded: at most `persist_batches_inflight_max` jobs in flight and at
//! most `apply_lag_slots_max` deliveries waiting for the apply channel; beyond either the
//! driver stops taking `ready()` until they drain (the core buffers meanwhile). Only
//! Readys with records take a job, so a stalled fsync fills the job limit with new
//! records, not with retransmits, and heartbeats keep leaving. Held messages are capped
//! at `HELD_MESSAGES_MAX`, oldest dropped beyond it (Paxos tolerates loss).
//!
//! Snapshot transfers (both directions) live in `driver/transfers.rs`.
//!
//! Log truncation: every `compact_every_slots` applied slots the driver asks the apply
//! thread to `sync`; once it reports slot A durable, the core and the acceptor log are
//! compacted through `A - log_tail_slots`.

use super::metrics::{NodeMetrics, ProposalTimes};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::apply::{ApplyEvent, ApplyOp, Chunk};
use super::config::NodeConfig;
use super::dir_ids::DirIds;
use super::error::NodeError;
use super::members::{memberships_as_of, plan, AddressBook, MemberError, MemberOp, PlanInput};
use super::pending::Pending;
use super::persist::{PersistDone, PersistJob};
use super::snapshot::Incoming;
use super::transport::wire::{SnapshotMsg, Wire};
use super::transport::{Inbound, Transport};
use crate::paxos::{
    Change, Core, Message, NodeId, ProposeError, Ready, ReconfigureError, Slot, Status, Value,
};

mod transfers;

/// Inputs gathered per loop turn before `ready()` is taken (bounds latency of a turn).
const BURST_INPUTS_MAX: usize = 512;
/// Read-index retries inside `NodeHandle::read_index` are the handle's business; here a
/// request is dropped if unanswered for this long.
const READ_WAIT_MAX: Duration = Duration::from_secs(30);

/// A request from a `NodeHandle`.
#[derive(Debug)]
pub enum Request {
    /// `envelope` wraps a command registered in `Pending` under `seq`.
    Propose { seq: u64, envelope: Bytes },
    /// A linearizable read point.
    ReadIndex {
        reply: oneshot::Sender<Result<Slot, NodeError>>,
    },
    /// A change of the members (leader only); answered once its slot is delivered.
    ChangeMembers {
        op: MemberOp,
        reply: oneshot::Sender<Result<MemberChanged, MemberError>>,
    },
}

/// A change of the members that took effect in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberChanged {
    /// The slot that chose it (the membership's id); it governs from `slot + delay`.
    pub slot: Slot,
    /// The node added, promoted or removed.
    pub node: NodeId,
}

/// A handle's answer to its change of the members.
type MemberAnswer = (
    oneshot::Sender<Result<MemberChanged, MemberError>>,
    Result<MemberChanged, MemberError>,
);

/// The change this leader proposed and waits to see delivered.
struct MemberWait {
    change: Change,
    node: NodeId,
    since: Instant,
    reply: oneshot::Sender<Result<MemberChanged, MemberError>>,
}

/// What handles can see of the driver.
#[derive(Debug)]
pub struct View {
    pub core: Status,
    /// Why this node stopped serving, if it did.
    pub failed: Option<String>,
    /// Where the members listen.
    pub book: Arc<AddressBook>,
}

/// The channels and shared state the driver is built from.
pub struct DriverParts {
    pub cfg: Arc<NodeConfig>,
    pub core: Core,
    pub compacted_through: Slot,
    pub transport: Arc<Transport>,
    pub inbound: mpsc::Receiver<Inbound>,
    pub requests: mpsc::Receiver<Request>,
    pub events: mpsc::Receiver<ApplyEvent>,
    pub apply: mpsc::Sender<ApplyOp>,
    pub applied: watch::Receiver<Slot>,
    pub persist: mpsc::Sender<PersistJob>,
    pub persisted: mpsc::Receiver<PersistDone>,
    pub pending: Arc<Pending>,
    pub view: Arc<Mutex<View>>,
    pub leader: watch::Sender<Option<NodeId>>,
    pub shutdown: watch::Receiver<bool>,
    pub incarnation: u64,
    /// Until `dir_ids.confirmed()`, the core neither ticks nor hears peers: a new data
    /// directory takes no part in consensus before every peer vouches for it.
    pub dir_ids: Arc<DirIds>,
    /// Consensus measurements for `/metrics`.
    pub metrics: Arc<NodeMetrics>,
    /// Where the members listen; grows as changes are delivered or installed.
    pub book: AddressBook,
    /// Nodes dialed beside the core's memberships until they name this node: the
    /// members the join told of (`JOIN`), who may be long gone from the first members.
    pub join_peers: BTreeSet<NodeId>,
}

struct Outgoing {
    transfer: u64,
    acks: mpsc::Sender<SnapshotMsg>,
    task: JoinHandle<()>,
}

/// The driver task's state.
pub struct Driver {
    p: DriverParts,
    id: NodeId,
    apply_backlog: VecDeque<ApplyOp>,
    persist_inflight: usize,
    delivered: Slot,
    compacted: Slot,
    sync_in_flight: bool,
    failed: Option<String>,
    /// Set when the acceptor log or the state machine failed: the node must stop at
    /// once (it can no longer keep its promises or its applied state durable, so it
    /// must not send or answer anything more).
    halted: bool,
    reads: HashMap<u64, (Instant, oneshot::Sender<Result<Slot, NodeError>>)>,
    next_read_id: u64,
    incoming: Option<Incoming>,
    outgoing: HashMap<NodeId, Outgoing>,
    last_transfer_end: HashMap<NodeId, Instant>,
    next_transfer: u64,
    /// Ticks left before the next "waiting for peers to confirm" log line.
    confirm_log_in: u64,
    /// Persist jobs queued and completed since start (jobs complete in order).
    jobs_queued: u64,
    jobs_done: u64,
    /// Messages of Readys that had nothing to persist, each tagged with the last job
    /// queued before it: they leave once that job is done. Invariant: tags ascend.
    held: VecDeque<(u64, Vec<(NodeId, Message)>)>,
    held_messages: usize,
    /// Start times of this node's proposals in the core.
    proposal_times: ProposalTimes,
    member_wait: Option<MemberWait>,
}

/// Messages held behind in-flight persist jobs at most (the oldest are dropped beyond).
const HELD_MESSAGES_MAX: usize = 8192;

impl Driver {
    pub fn new(p: DriverParts) -> Driver {
        let id = p.cfg.core.id;
        let compacted = p.compacted_through;
        let delivered = *p.applied.borrow();
        Driver {
            p,
            id,
            apply_backlog: VecDeque::new(),
            persist_inflight: 0,
            delivered,
            compacted,
            sync_in_flight: false,
            failed: None,
            halted: false,
            reads: HashMap::new(),
            next_read_id: 1,
            incoming: None,
            outgoing: HashMap::new(),
            last_transfer_end: HashMap::new(),
            next_transfer: 0,
            confirm_log_in: 0,
            jobs_queued: 0,
            jobs_done: 0,
            held: VecDeque::new(),
            held_messages: 0,
            proposal_times: ProposalTimes::default(),
            member_wait: None,
        }
    }

    /// Runs until shutdown (or until every handle is gone); returns the parts to stop.
    pub async fn run(mut self) -> Driver {
        let mut ticker = tokio::time::interval(Duration::from_millis(self.p.cfg.tick_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let apply_tx = self.p.apply.clone();
        loop {
            let backlog = !self.apply_backlog.is_empty();
            tokio::select! {
                _ = self.p.shutdown.changed() => break,
                Some(done) = self.p.persisted.recv() => self.on_persisted(done),
                _ = ticker.tick() => self.on_tick(),
                item = self.p.inbound.recv() => match item {
                    Some(item) => self.on_inbound(item),
                    None => break,
                },
                req = self.p.requests.recv() => match req {
                    Some(req) => self.on_request(req),
                    None => break, // every handle is gone
                },
                Some(ev) = self.p.events.recv() => self.on_apply_event(ev),
                permit = apply_tx.clone().reserve_owned(), if backlog => {
                    if let (Ok(permit), Some(op)) = (permit, self.apply_backlog.pop_front()) {
                        permit.send(op);
                    }
                }
            }
            // Take what else is already waiting, so one Ready (one fsync) covers a burst.
            for _ in 0..BURST_INPUTS_MAX {
                if let Ok(item) = self.p.inbound.try_recv() {
                    self.on_inbound(item);
                } else if let Ok(req) = self.p.requests.try_recv() {
                    self.on_request(req);
                } else {
                    break;
                }
            }
            if self.halted {
                break;
            }
            self.drive_ready();
        }
        self.publish_view();
        self
    }

    fn drive_ready(&mut self) {
        while self.p.core.has_ready()
            && self.persist_inflight < self.p.cfg.persist_batches_inflight_max
            && (self.apply_backlog.len() as u64) < self.p.cfg.apply_lag_slots_max
        {
            let rd = self.p.core.ready();
            self.carry_out(rd);
        }
        self.flush_apply();
    }

    fn carry_out(&mut self, rd: Ready) {
        if self.halted {
            return;
        }
        let Ready {
            persist,
            send,
            deliver,
            changes,
            reads,
            snapshot_needed,
            dropped,
        } = rd;
        for envelope in dropped {
            if let (Some(origin), _) = super::envelope::unwrap(&envelope) {
                if origin.node == self.id && origin.incarnation == self.p.incarnation {
                    self.proposal_times.dropped(origin.sequence);
                    self.p
                        .pending
                        .complete(origin.sequence, Err(NodeError::NoQuorum));
                }
            }
        }
        let (send, early): (Vec<_>, Vec<_>) =
            send.into_iter().partition(|(_, m)| m.waits_for_persist());
        self.send_all(early);
        let chosen_at = Instant::now();
        let mut members_changed = false;
        let mut answers = Vec::new();
        // What each delivered change did, by its slot (a snapshot installed in the same
        // Ready may have dropped some deliveries: the slot, not the order, pairs them).
        let outcomes: HashMap<Slot, Option<Slot>> = changes
            .into_iter()
            .map(|c| (c.slot, c.governs_from))
            .collect();
        for (slot, value) in deliver {
            debug_assert!(slot > self.delivered || slot <= *self.p.applied.borrow());
            self.delivered = self.delivered.max(slot);
            self.time_chosen(&value);
            if let Value::Reconfigure(change) = &value {
                debug_assert!(outcomes.contains_key(&slot), "change at {slot} unreported");
                let governs_from = outcomes.get(&slot).copied().flatten();
                answers.extend(self.on_change_delivered(slot, change, governs_from));
                members_changed = true;
            }
            self.apply_backlog
                .push_back(ApplyOp::Deliver(slot, value, chosen_at));
        }
        if members_changed {
            // Handles see the new membership before their change is answered.
            self.refresh_peers();
            self.publish_view();
        }
        for (reply, answer) in answers {
            let _ = reply.send(answer);
        }
        for (id, index) in reads {
            if let Some((_, reply)) = self.reads.remove(&id) {
                let _ = reply.send(index.ok_or(NodeError::NoQuorum));
            }
        }
        for peer in snapshot_needed {
            self.start_transfer(peer);
        }
        if persist.is_empty() && send.is_empty() {
            return;
        }
        if persist.is_empty() {
            if self.persist_inflight == 0 {
                self.send_all(send); // nothing earlier is in flight: order is kept
            } else {
                self.hold(send);
            }
            return;
        }
        let job = PersistJob::Records {
            records: persist,
            send,
        };
        self.queue_persist(job);
    }

    /// A change was chosen at `slot`, and the core applied it (it governs from
    /// `governs_from`) or found it void: learn its addresses, and give the answer for
    /// the handle that asked for it (here).
    fn on_change_delivered(
        &mut self,
        slot: Slot,
        change: &Change,
        governs_from: Option<Slot>,
    ) -> Option<MemberAnswer> {
        let applied = governs_from.is_some();
        self.p.book.learn_changes(&[(slot, change.clone())]);
        info!(
            slot,
            applied,
            voters = ?change.voters,
            learners = ?change.learners,
            governs_from,
            "membership change delivered"
        );
        if !self
            .member_wait
            .as_ref()
            .is_some_and(|w| w.change == *change)
        {
            return None;
        }
        let w = self.member_wait.take()?;
        let answer = if applied {
            Ok(MemberChanged { slot, node: w.node })
        } else {
            Err(MemberError::Conflict(
                "another change of the members was chosen first; retry".into(),
            ))
        };
        Some((w.reply, answer))
    }

    /// Dials every node of the memberships held (and the join's peers), drops the rest.
    fn refresh_peers(&mut self) {
        let mut ids = self.p.core.memberships().nodes();
        ids.extend(self.p.join_peers.iter().copied());
        self.p.transport.set_peers(&self.p.book.peers(&ids));
        let mut view = self.p.view.lock().unwrap_or_else(|p| p.into_inner());
        view.book = Arc::new(self.p.book.clone());
    }

    fn on_change_members(
        &mut self,
        op: MemberOp,
        reply: oneshot::Sender<Result<MemberChanged, MemberError>>,
    ) {
        let status = self.p.core.status();
        if !status.is_leader {
            let _ = reply.send(Err(MemberError::NotLeader(status.leader)));
            return;
        }
        if self.member_wait.is_some() {
            let _ = reply.send(Err(MemberError::Conflict(
                "another change of the members is in progress; retry".into(),
            )));
            return;
        }
        let input = PlanInput {
            memberships: self.p.core.memberships(),
            book: &self.p.book,
            reported: &status.peers_commit,
            commit: status.commit_index,
            promote_lag_slots_max: self.p.cfg.core.leader_lag_slots_max,
        };
        let (change, node) = match plan(&op, &input) {
            Ok(planned) => planned,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        match self.p.core.reconfigure(change.clone()) {
            Ok(()) => {
                info!(?op, node, "membership change proposed");
                self.member_wait = Some(MemberWait {
                    change,
                    node,
                    since: Instant::now(),
                    reply,
                });
            }
            Err(ReconfigureError::NotLeader) => {
                let _ = reply.send(Err(MemberError::NotLeader(status.leader)));
            }
            Err(ReconfigureError::Busy) => {
                let _ = reply.send(Err(MemberError::Conflict(
                    "the last change of the members has not taken effect yet; retry".into(),
                )));
            }
            Err(ReconfigureError::Invalid(e)) => {
                let _ = reply.send(Err(MemberError::Invalid(e.to_string())));
            }
        }
    }

    /// Records the batch size of a chosen slot, and the wait of each of this node's
    /// proposals in it.
    fn time_chosen(&mut self, value: &crate::paxos::Value) {
        let metrics = &self.p.metrics;
        metrics.batch_commands.observe(value.commands() as u64);
        if let crate::paxos::Value::Batch(commands) = value {
            for envelope in commands {
                if let (Some(origin), _) = super::envelope::unwrap(envelope) {
                    if origin.node == self.id && origin.incarnation == self.p.incarnation {
                        self.proposal_times.chosen(origin.sequence, metrics);
                    }
                }
            }
        }
    }

    fn queue_persist(&mut self, job: PersistJob) {
        // Capacity is persist_batches_inflight_max (+ checkpoint slack), so this fits.
        match self.p.persist.try_send(job) {
            Ok(()) => {
                self.persist_inflight += 1;
                self.jobs_queued += 1;
            }
            Err(e) => self.halt(format!("persistence thread unavailable: {e}")),
        }
    }

    /// Holds `send` until the last job queued so far is durable.
    fn hold(&mut self, send: Vec<(NodeId, Message)>) {
        let tag = self.jobs_queued;
        self.held_messages += send.len();
        match self.held.back_mut() {
            Some((t, msgs)) if *t == tag => msgs.extend(send),
            _ => self.held.push_back((tag, send)),
        }
        while self.held_messages > HELD_MESSAGES_MAX {
            let excess = self.held_messages - HELD_MESSAGES_MAX;
            let Some((_, msgs)) = self.held.front_mut() else {
                break;
            };
            if msgs.len() <= excess {
                self.held_messages -= msgs.len();
                self.held.pop_front();
            } else {
                msgs.drain(..excess);
                self.held_messages -= excess;
            }
        }
    }

    /// Sends the held messages whose job is done.
    fn release_held(&mut self) {
        while self.held.front().is_some_and(|(t, _)| *t <= self.jobs_done) {
            if let Some((_, msgs)) = self.held.pop_front() {
                self.held_messages -= msgs.len();
                self.send_all(msgs);
            }
        }
    }

    fn send_all(&mut self, send: Vec<(NodeId, Message)>) {
        if self.halted {
            return;
        }
        for (to, msg) in send {
            if to == self.id {
                self.p.core.step(self.id, msg);
            } else {
                self.p.transport.send(to, &Wire::Paxos(msg));
            }
        }
    }

    fn flush_apply(&mut self) {
        while let Some(op) = self.apply_backlog.pop_front() {
            match self.p.apply.try_send(op) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(op)) => {
                    self.apply_backlog.push_front(op);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.apply_backlog.clear();
                    return;
                }
            }
        }
    }

    fn on_persisted(&mut self, done: PersistDone) {
        self.persist_inflight = self.persist_inflight.saturating_sub(1);
        self.jobs_done += 1;
        match done {
            PersistDone::Released(send) => {
                self.send_all(send);
                self.release_held();
            }
            PersistDone::Failed(reason) => self.halt(reason),
        }
    }

    /// Stops the node for good: nothing more is persisted, sent or applied, waiting
    /// requests fail, and `NodeHandle::stopped()` resolves with `reason`.
    fn halt(&mut self, reason: String) {
        if !self.halted {
            error!(%reason, "node halting: it can no longer keep its state durable");
        }
        self.fail(reason);
        self.halted = true;
    }

    fn fail(&mut self, reason: String) {
        if self.failed.is_none() {
            warn!(%reason, "node failed");
            self.p.pending.fail_all(&NodeError::Apply {
                reason: reason.clone(),
            });
            self.failed = Some(reason);
        }
    }

    fn on_inbound(&mut self, item: Inbound) {
        if !self.p.dir_ids.confirmed() {
            return; // a new directory hears nothing before it may vote (see `on_tick`)
        }
        match item {
            Inbound::Paxos(from, msg) => self.p.core.step(from, msg),
            Inbound::Snapshot(
                from,
                SnapshotMsg::Chunk {
                    transfer,
                    slot,
                    seq,
                    data,
                    last,
                    digest,
                },
            ) => self.on_chunk(
                from,
                transfer,
                slot,
                Chunk {
                    seq,
                    data,
                    last,
                    digest,
                },
            ),
            Inbound::Snapshot(from, msg) => {
                let transfer = match &msg {
                    SnapshotMsg::Ack { transfer, .. } | SnapshotMsg::Done { transfer, .. } => {
                        *transfer
                    }
                    SnapshotMsg::Chunk { transfer, .. } => *transfer,
                };
                if let Some(out) = self.outgoing.get(&from) {
                    if out.transfer == transfer {
                        let _ = out.acks.try_send(msg);
                    }
                }
            }
        }
    }

    fn on_request(&mut self, req: Request) {
        match req {
            Request::Propose { seq, envelope } => {
                if let Some(reason) = &self.failed {
                    let reason = reason.clone();
                    self.p
                        .pending
                        .complete(seq, Err(NodeError::Apply { reason }));
                    return;
                }
                let applied = *self.p.applied.borrow();
                if self.delivered.saturating_sub(applied) > self.p.cfg.apply_lag_slots_max {
                    let err = NodeError::NotReady {
                        reason: "applying lags behind",
                    };
                    self.p.pending.complete(seq, Err(err));
                    return;
                }
                match self.p.core.propose(envelope) {
                    Ok(()) => self.proposal_times.started(seq),
                    Err(ProposeError::NoLeader) => {
                        self.p.pending.complete(seq, Err(NodeError::NoQuorum))
                    }
                    Err(ProposeError::Busy) => {
                        let err = NodeError::NotReady {
                            reason: "too many proposals queued",
                        };
                        self.p.pending.complete(seq, Err(err));
                    }
                }
            }
            Request::ReadIndex { reply } => {
                if self.reads.len() >= self.p.cfg.core.reads_pending_max {
                    let _ = reply.send(Err(NodeError::NotReady {
                        reason: "too many reads waiting",
                    }));
                    return;
                }
                let id = self.next_read_id;
                self.next_read_id += 1;
                self.reads.insert(id, (Instant::now(), reply));
                self.p.core.read_index(id);
            }
            Request::ChangeMembers { op, reply } => self.on_change_members(op, reply),
        }
    }

    fn on_apply_event(&mut self, ev: ApplyEvent) {
        match ev {
            ApplyEvent::Synced(durable) => {
                self.sync_in_flight = false;
                let through = durable.saturating_sub(self.p.cfg.log_tail_slots);
                if through > self.compacted {
                    self.p.core.compact(through);
                    self.compacted = through;
                    self.queue_persist(PersistJob::Checkpoint(through));
                }
            }
            ApplyEvent::Installed { slot, changes } => {
                if slot > self.p.core.status().delivered_index {
                    // Exactly as of the snapshot's slot: the core delivers the later
                    // slots, and applies their changes, itself.
                    let memberships = memberships_as_of(self.p.cfg.core.genesis(), &changes, slot);
                    self.p.core.install_snapshot(slot, memberships);
                }
                self.p.book.learn_changes(&changes);
                self.delivered = self.delivered.max(slot);
                self.refresh_peers();
            }
            // The state machine cannot go on (its storage failed, or a slot would not
            // apply): fail-stop, like a failed acceptor log, rather than linger
            // answering errors. The process exits and says why (`main.rs`).
            ApplyEvent::Failed(reason) => self.halt(reason),
        }
    }

    /// False while this node's data directory is new and not yet vouched for by every
    /// peer (`dir_ids.rs`); halts the node if a peer remembers another directory of it.
    fn may_take_part(&mut self) -> bool {
        if self.p.dir_ids.confirmed() {
            return true;
        }
        if let Some(reason) = self.p.dir_ids.refused() {
            error!(%reason, "this node must not vote: stopping");
            self.halt(reason);
            return false;
        }
        if self.confirm_log_in == 0 {
            self.confirm_log_in = 5000 / self.p.cfg.tick_ms.max(1);
            info!(
                waiting_on = ?self.p.dir_ids.waiting_on(),
                "new data directory: taking part once every peer confirms it remembers no \
                 earlier directory of this node"
            );
        }
        self.confirm_log_in -= 1;
        false
    }

    fn on_tick(&mut self) {
        if !self.may_take_part() {
            return;
        }
        self.p.core.tick();
        let applied = *self.p.applied.borrow();
        let trigger = self
            .compacted
            .saturating_add(self.p.cfg.log_tail_slots)
            .saturating_add(self.p.cfg.compact_every_slots);
        if !self.sync_in_flight && self.failed.is_none() && applied >= trigger {
            self.sync_in_flight = true;
            self.apply_backlog.push_back(ApplyOp::Sync);
        }
        let stalled = Duration::from_millis(self.p.cfg.snapshot_ack_timeout_ms);
        if self
            .incoming
            .as_ref()
            .is_some_and(|i| i.last_activity.elapsed() > stalled)
        {
            warn!("incoming snapshot stalled; aborting it");
            self.incoming = None;
        }
        let finished: Vec<NodeId> = self
            .outgoing
            .iter()
            .filter(|(_, o)| o.task.is_finished())
            .map(|(p, _)| *p)
            .collect();
        for peer in finished {
            self.outgoing.remove(&peer);
            self.last_transfer_end.insert(peer, Instant::now());
        }
        self.reads
            .retain(|_, (t, reply)| t.elapsed() < READ_WAIT_MAX && !reply.is_closed());
        // The handle gave up (its request timeout): the change may still be chosen.
        if self
            .member_wait
            .as_ref()
            .is_some_and(|w| w.reply.is_closed() || w.since.elapsed() > READ_WAIT_MAX)
        {
            self.member_wait = None;
        }
        // A joining node keeps dialing the members it was told of until its own log (or a
        // snapshot) has made it a member: the first members may be long gone.
        if !self.p.join_peers.is_empty() && self.p.core.memberships().nodes().contains(&self.id) {
            self.p.join_peers.clear();
            self.refresh_peers();
        }
        self.publish_view();
    }

    /// Publishes the core's status to handles and the leader watch.
    fn publish_view(&mut self) {
        let status = self.p.core.status();
        let changed = self.p.leader.send_if_modified(|l| {
            let changed = *l != status.leader;
            *l = status.leader;
            changed
        });
        if changed && status.leader.is_some() {
            self.p.metrics.leader_changed();
        }
        let mut view = self.p.view.lock().unwrap_or_else(|p| p.into_inner());
        view.core = status;
        view.failed.clone_from(&self.failed);
    }

    /// Stops what the driver started; the caller joins the threads.
    pub fn stop(&mut self, stop_flag: &AtomicBool) {
        stop_flag.store(true, Ordering::Release);
        self.incoming = None;
        for (_, out) in self.outgoing.drain() {
            out.task.abort();
        }
        for (_, (_, reply)) in self.reads.drain() {
            let _ = reply.send(Err(NodeError::Shutdown));
        }
        self.p.pending.fail_all(&NodeError::Shutdown);
        if let Some(w) = self.member_wait.take() {
            let _ = w.reply.send(Err(MemberError::Node(NodeError::Shutdown)));
        }
        self.proposal_times.clear();
        self.apply_backlog.clear();
    }
}
