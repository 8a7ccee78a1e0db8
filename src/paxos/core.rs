//! `Core`: one replica's consensus state machine, gluing the failure detector and Omega
//! (`detector`), the acceptor, the proposer (phase 1/2, window, batching), the learner
//! (delivery, catch-up) and read index. The driver calls `tick`, `step`, `propose`,
//! `read_index`, then takes `ready()` and carries it out in the order `Ready` documents.
//!
//! Pure: no I/O, no clock (time is `tick`), randomness only from the incarnation given to `new`.
//!
//! Who votes comes from the learner's memberships (`membership.rs`): only a voter of the
//! membership governing the next slot campaigns, counts toward CheckQuorum and PreVote,
//! and may stay leader; the detector watches every node of every membership held.

use bytes::Bytes;

use super::acceptor::Acceptor;
use super::config::Config;
use super::detector::Detector;
use super::learner::Learner;
use super::membership::{ChangeError, Membership, Memberships};
use super::message::Message;
use super::proposer::{PromiseOutcome, Proposer, Report};
use super::read_index::{self, ReadIndex};
use super::types::{
    Ballot, Change, DurableState, NodeId, ProposeError, Ready, Slot, Status, Value,
};

/// Why `reconfigure` refused a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReconfigureError {
    /// Only the leader proposes changes: ask it.
    NotLeader,
    /// A change already waits for a slot here.
    Busy,
    /// The change would not apply to the latest membership.
    Invalid(ChangeError),
}

impl std::fmt::Display for ReconfigureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReconfigureError::NotLeader => write!(f, "not the leader"),
            ReconfigureError::Busy => write!(f, "a membership change is already waiting"),
            ReconfigureError::Invalid(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReconfigureError {}

/// One replica's consensus state machine.
pub struct Core {
    config: Config,
    detector: Detector,
    acceptor: Acceptor,
    proposer: Proposer,
    learner: Learner,
    reads: ReadIndex,
    /// The highest ballot a leader announced to us (heartbeat or accept) and that is not
    /// known to have ended; its node is where proposals are forwarded.
    leader_hint: Option<Ballot>,
    /// `(ballot, through)`: every slot <= `through` this acceptor had accepted when the
    /// leader of `ballot` announced a commit >= `through` was checked against it. Later
    /// announcements scan only above `through` (an Accept for a slot already committed
    /// is learnt on arrival), so a follower far behind does linear, not quadratic, work.
    leader_scan: Option<(Ballot, Slot)>,
    /// Commands a follower will forward on the next `ready()`.
    /// Invariant: len <= proposals_queued_max.
    forward: Vec<Bytes>,
    /// The commit index this node last announced to every peer while leading (in a
    /// periodic heartbeat, or per peer in an accept or `Commit`); `ready()` announces a
    /// higher one at once.
    commit_announced: Slot,
    /// No new phase 1 before this tick (jitter after a preemption; one suspicion timeout
    /// after start-up, to hear a leader that is already there).
    campaign_not_before: u64,
    /// A pre-vote in progress: the ballot asked for, who granted it, when sent.
    pre_vote: Option<(Ballot, Vec<NodeId>, u64)>,
    /// The ids of the memberships the detector's peers were taken from.
    peers_from: Vec<Slot>,
    /// Distinct for every start of this node: tags this core's read-index requests so an
    /// answer meant for an earlier incarnation (whose read ids were the same) is dropped.
    incarnation: u64,
    /// SplitMix64 state, from the incarnation.
    rng: u64,
    /// The Ready being built.
    out: Ready,
}

impl Core {
    /// Builds a core from the acceptor state it persisted (rebuilt with
    /// [`DurableState::apply`]) and the memberships as of its compaction point (the
    /// state machine keeps them; `Config::genesis` for a new cluster or a node that joins
    /// one and learns the log from its start); delivery starts after
    /// `durable.compacted_through`. [`Core::start_at`] with that point.
    pub fn new(
        config: Config,
        durable: DurableState,
        memberships: Memberships,
        incarnation: u64,
    ) -> Core {
        let start = durable.compacted_through;
        Core::start_at(config, durable, start, memberships, incarnation)
    }

    /// Builds a core that starts at slot `start`: every slot up to it is chosen and held
    /// elsewhere (the node's state machine applied them), `memberships` are as of it,
    /// and delivery, catch-up and a leader's phase 1 begin at `start + 1`, as after
    /// installing a snapshot through `start`. A `start` below the acceptor state's
    /// compaction point counts as that point.
    /// `incarnation` must differ for every start of this node (a random u64, as the node
    /// draws, or a durable counter): replies to this core's requests echo it, and a reply
    /// for another incarnation is dropped. It also seeds the election jitter. Panics if
    /// `config.validate()` fails or the window exceeds the memberships' delay: check the
    /// configuration at start-up first.
    pub fn start_at(
        config: Config,
        durable: DurableState,
        start: Slot,
        mut memberships: Memberships,
        incarnation: u64,
    ) -> Core {
        assert!(
            config.validate().is_ok(),
            "invalid config: {:?}",
            config.validate()
        );
        assert!(
            config.window_slots_max <= memberships.delay(),
            "window_slots_max {} exceeds the membership delay {}",
            config.window_slots_max,
            memberships.delay()
        );
        let start = start.max(durable.compacted_through);
        memberships.retire(start);
        let peers_from = memberships.all().iter().map(|m| m.id).collect();
        let mut acceptor = Acceptor::new(durable);
        acceptor.compact(start);
        Core {
            detector: Detector::new(&config, memberships.nodes()),
            proposer: Proposer::new(config.id, acceptor.promised()),
            acceptor,
            learner: Learner::new(config.id, start, memberships),
            reads: ReadIndex::new(),
            leader_hint: None,
            leader_scan: None,
            forward: Vec::new(),
            commit_announced: 0,
            campaign_not_before: u64::from(config.suspect_ticks),
            pre_vote: None,
            peers_from,
            incarnation,
            rng: incarnation ^ u64::from(config.id).rotate_left(32),
            out: Ready::default(),
            config,
        }
    }

    /// One unit of time passed: heartbeats, suspicions, elections, retransmissions, catch-up.
    pub fn tick(&mut self) {
        let heartbeat = self.detector.tick();
        let now = self.detector.now();
        let me = self.config.id;
        let hb = u64::from(self.config.heartbeat_ticks);
        // Lead only while Omega picks us, we vote for the next slot, and a quorum of its
        // voters seems alive (a leader cut off in a minority steps down, so its
        // followers and clients stop waiting on it; a leader removed hands over).
        let active = self.active();
        let votes = active.is_voter(me);
        let trusted = active.voters.iter().filter(|&&v| self.detector.trusts(v));
        let quorum_alive = trusted.count() >= active.quorum();
        let omega = self.detector.omega(
            self.leader(),
            self.learner.delivered(),
            self.config.leader_lag_slots_max,
            |n| active.is_voter(n),
        );
        if omega == me && votes && quorum_alive {
            if self.proposer.is_follower() && now >= self.campaign_not_before {
                self.pre_vote(now);
            }
        } else {
            self.pre_vote = None;
            if !self.proposer.is_follower() {
                self.step_down();
            }
        }
        if heartbeat {
            let commit = self.learner.delivered();
            self.proposer.retransmit(now, hb, commit, &mut self.out);
            let leading = self.proposer.leading();
            let read_round = match leading {
                Some(_) => {
                    self.commit_announced = commit;
                    self.start_read_round()
                }
                None => 0,
            };
            for peer in self.detector.peer_ids() {
                let msg = Message::Heartbeat {
                    leading,
                    commit,
                    read_round,
                };
                self.out.send.push((peer, msg));
            }
        }
        if self.proposer.leading().is_none() {
            let fallback = self.leader();
            let req =
                self.learner
                    .catchup_request(now, hb, self.config.catchup_slots_max, fallback);
            if let Some((to, msg)) = req {
                self.out.send.push((to, msg));
            }
        }
        self.sync_peers();
    }

    /// A message arrived from `from` (possibly this node itself). Messages from nodes
    /// outside the memberships are taken too (a node that joined hears the cluster before
    /// it learns the membership that added it): safety rests on counting only the votes
    /// of each slot's own voters, not on who may speak; the transport admits only members.
    pub fn step(&mut self, from: NodeId, msg: Message) {
        if from != 0 {
            let commit = self.learner.delivered();
            self.step_message(from, msg);
            if self.learner.delivered() != commit {
                self.recheck_candidacy();
            }
            self.sync_peers();
        }
    }

    fn step_message(&mut self, from: NodeId, msg: Message) {
        if from != self.config.id {
            self.detector.heard(from);
        }
        match msg {
            Message::Heartbeat {
                leading,
                commit,
                read_round,
            } => self.on_heartbeat(from, leading, commit, read_round),
            Message::HeartbeatAck { ballot, read_round } => {
                if self.proposer.leading() == Some(ballot) {
                    self.reads
                        .on_ack(self.config.id, from, read_round, &mut self.out);
                }
            }
            Message::PreVote { ballot, commit } => {
                self.detector.heard_commit(from, commit);
                let granted = self.grants_pre_vote(from, commit);
                let reply = Message::PreVoteReply { ballot, granted };
                self.out.send.push((from, reply));
                // A node removed from the voters that has not learnt it yet (it is no
                // longer our peer, so it hears no heartbeat from us): tell it our commit
                // index, so it catches up, learns it was removed and stops asking.
                let delivered = self.learner.delivered();
                if !self.active().is_voter(from) && commit < delivered {
                    let hb = Message::Heartbeat {
                        leading: None,
                        commit: delivered,
                        read_round: 0,
                    };
                    self.out.send.push((from, hb));
                }
            }
            Message::PreVoteReply { ballot, granted } => {
                self.on_pre_vote_reply(from, ballot, granted);
            }
            Message::Prepare { ballot, from: slot } => {
                if ballot.node != from {
                    return;
                }
                // Leader stickiness: while this node hears a live leader, another node's
                // campaign is ignored (not promised, not even observed), so a node coming
                // back cannot depose a healthy leader. Ignoring a Prepare is always safe.
                if from != self.config.id && self.leader().is_some_and(|l| l != from) {
                    return;
                }
                self.observe(ballot);
                let limits = (self.config.promise_slots_max, self.config.promise_bytes_max);
                let reply = self
                    .acceptor
                    .on_prepare(ballot, slot, limits, &mut self.out);
                self.out.send.push((from, reply));
            }
            Message::Promise {
                ballot,
                from: prepared_from,
                through,
                accepted,
                compacted_through,
            } => {
                let report = Report {
                    ballot,
                    from: prepared_from,
                    through,
                    accepted,
                    compacted_through,
                };
                self.on_promise(from, report);
            }
            Message::Accept {
                ballot,
                slot,
                value,
                commit,
            } => self.on_accept(from, ballot, slot, value, commit),
            Message::Accepted { ballot, slot } => {
                let chosen = self.proposer.on_accepted(from, ballot, slot);
                if let Some((slot, value)) = chosen {
                    self.learner.learn(slot, value, &mut self.out);
                }
            }
            Message::Nack { ballot, promised } => {
                self.observe(promised);
                if self.proposer.ballot() == Some(ballot) && promised > ballot {
                    self.step_down();
                }
            }
            Message::AcceptCompacted { ballot, .. } => {
                // A peer already applied a slot we still propose: we are behind. Give up
                // this ballot; the next phase 1 fetches what we miss from that peer.
                if self.proposer.leading() == Some(ballot) {
                    self.step_down();
                }
            }
            Message::Forward { commands } => {
                if !self.proposer.is_follower() {
                    let max = self.config.proposals_queued_max;
                    let mut refused = Vec::new();
                    for c in commands {
                        if !refused.is_empty() || !self.proposer.enqueue(from, c.clone(), max) {
                            refused.push(c);
                        }
                    }
                    if !refused.is_empty() {
                        let msg = Message::Refused { commands: refused };
                        self.out.send.push((from, msg));
                    }
                } else {
                    self.out.send.push((from, Message::Refused { commands }));
                }
            }
            Message::Refused { commands } => self.out.dropped.extend(commands),
            Message::ReadIndex { incarnation, id } => {
                let asker = (Some((from, incarnation)), id);
                if self.proposer.is_follower() {
                    read_index::answer(asker, None, &mut self.out);
                } else {
                    self.reads.register(&self.config, asker, &mut self.out);
                }
            }
            Message::ReadIndexReply {
                incarnation,
                id,
                index,
            } => {
                // Read ids restart with each incarnation: an answer to an earlier one's
                // read #id must not answer this one's.
                if incarnation == self.incarnation {
                    self.out.reads.push((id, index));
                }
            }
            Message::CatchUp { from: lo, to } => {
                let max = (self.config.catchup_slots_max, self.config.catchup_bytes_max);
                self.learner.on_catchup(from, (lo, to), max, &mut self.out);
            }
            // Handled like a leader's heartbeat: a follower learns only the slots it accepted
            // in exactly `ballot` and catches up on the rest.
            Message::Commit { ballot, commit } => {
                self.on_heartbeat(from, Some(ballot), commit, 0);
            }
            Message::CatchUpReply { entries, commit } => {
                // A leader learns chosen values only through its own ballot (see learner.rs).
                if self.proposer.leading().is_none() {
                    self.learner.heard_commit(from, commit);
                    for (slot, value) in entries {
                        self.learner.learn(slot, value, &mut self.out);
                    }
                    self.learner.catchup_answered();
                }
            }
        }
    }

    /// Proposes a command: queued at the leader (or a candidate), forwarded by a follower.
    pub fn propose(&mut self, command: Bytes) -> Result<(), ProposeError> {
        if !self.proposer.is_follower() {
            let (me, max) = (self.config.id, self.config.proposals_queued_max);
            if self.proposer.enqueue(me, command, max) {
                return Ok(());
            }
            return Err(ProposeError::Busy);
        }
        if self.leader().is_none() {
            return Err(ProposeError::NoLeader);
        }
        if self.forward.len() >= self.config.proposals_queued_max {
            return Err(ProposeError::Busy);
        }
        self.forward.push(command);
        Ok(())
    }

    /// Proposes a membership change (leader only): it takes effect `delay` slots after
    /// the slot it is chosen in, if no other change was chosen first. The driver sees the
    /// outcome in `memberships()` once the slot is delivered.
    pub fn reconfigure(&mut self, change: Change) -> Result<(), ReconfigureError> {
        if self.proposer.leading().is_none() {
            return Err(ReconfigureError::NotLeader);
        }
        self.learner
            .memberships()
            .check(&change)
            .map_err(ReconfigureError::Invalid)?;
        if !self.proposer.enqueue_change(change) {
            return Err(ReconfigureError::Busy);
        }
        Ok(())
    }

    /// The memberships governing the slots after the delivered one (for the driver to
    /// keep with its state machine, and for status pages).
    pub fn memberships(&self) -> &Memberships {
        self.learner.memberships()
    }

    /// Asks for a read index, answered in `Ready.reads` under `id`.
    pub fn read_index(&mut self, id: u64) {
        if !self.proposer.is_follower() {
            self.reads.register(&self.config, (None, id), &mut self.out);
        } else if let Some(leader) = self.leader() {
            let incarnation = self.incarnation;
            self.out
                .send
                .push((leader, Message::ReadIndex { incarnation, id }));
        } else {
            self.out.reads.push((id, None));
        }
    }

    /// True if `ready()` would return something to do.
    pub fn has_ready(&self) -> bool {
        !self.out.is_empty()
            || !self.forward.is_empty()
            || self.proposer.can_fill(
                &self.config,
                self.learner.memberships(),
                self.learner.delivered(),
            )
            || (self.reads.wants_round() && self.read_at().is_some())
    }

    /// Takes the actions to carry out, in the order documented on [`Ready`].
    pub fn ready(&mut self) -> Ready {
        self.sync_peers();
        let commit = self.learner.delivered();
        self.fill_window();
        if !self.forward.is_empty() {
            let commands = std::mem::take(&mut self.forward);
            // Without a leader the commands are dropped: their callers fail at once.
            if let Some(leader) = self.leader() {
                self.out.send.push((leader, Message::Forward { commands }));
            } else {
                self.out.dropped.extend(commands);
            }
        }
        if let Some(ballot) = self.proposer.leading() {
            if self.reads.wants_round() && self.read_at().is_some() {
                let round = self.start_read_round();
                for peer in self.detector.peer_ids() {
                    let msg = Message::Heartbeat {
                        leading: Some(ballot),
                        commit,
                        read_round: round,
                    };
                    self.out.send.push((peer, msg));
                }
            }
            self.announce_commit(ballot, commit);
        }
        std::mem::take(&mut self.out)
    }

    /// Proposes what waits (recovered slots, then commands) while the window has room.
    fn fill_window(&mut self) {
        let now = self.detector.now();
        let commit = self.learner.delivered();
        let learner = &self.learner;
        self.proposer.fill_window(
            &self.config,
            learner.memberships(),
            now,
            commit,
            |s| learner.is_chosen(s),
            &mut self.out,
        );
    }

    /// Tells every peer the leader's commit index advanced (one `Commit` per `Ready`, not
    /// per slot), so a command proposed through a follower is delivered there without
    /// waiting for the next heartbeat. A peer that already gets an accept or heartbeat of
    /// this ballot carrying `commit` in this `Ready` is skipped.
    fn announce_commit(&mut self, ballot: Ballot, commit: Slot) {
        if commit <= self.commit_announced {
            return;
        }
        self.commit_announced = commit;
        let told = |peer: NodeId, out: &Ready| {
            out.send.iter().any(|(to, m)| {
                *to == peer
                    && match m {
                        Message::Accept {
                            ballot: b,
                            commit: c,
                            ..
                        } => *b == ballot && *c >= commit,
                        Message::Heartbeat {
                            leading: Some(b),
                            commit: c,
                            ..
                        } => *b == ballot && *c >= commit,
                        _ => false,
                    }
            })
        };
        for peer in self.detector.peer_ids() {
            if !told(peer, &self.out) {
                self.out
                    .send
                    .push((peer, Message::Commit { ballot, commit }));
            }
        }
    }

    /// The state machine durably holds every slot <= `through` (clamped to the delivered
    /// index): forget accepted values and chosen buffers at or below it.
    pub fn compact(&mut self, through: Slot) {
        let through = self.learner.compact(through);
        self.acceptor.compact(through);
    }

    /// This node loaded a snapshot covering every slot <= `through`, whose state holds
    /// `memberships` (as of that slot); delivery continues after it. Ignored if not ahead
    /// of what was delivered.
    pub fn install_snapshot(&mut self, through: Slot, memberships: Memberships) {
        if self
            .learner
            .install_snapshot(through, memberships, &mut self.out)
        {
            self.sync_peers();
            self.acceptor.compact(through);
            if self.proposer.leading().is_some() {
                // Learned chosen values outside our ballot: start over with a fresh one.
                self.step_down();
            }
        }
    }

    /// Accepted entries examined against leaders' commits so far (work, for tests).
    #[cfg(test)]
    pub fn leader_scan_steps(&self) -> u64 {
        self.learner.leader_scan_steps()
    }

    /// A view for status pages and routing.
    pub fn status(&self) -> Status {
        let leading = self.proposer.leading();
        Status {
            id: self.config.id,
            leader: self.leader(),
            ballot: leading.unwrap_or(self.acceptor.promised()),
            is_leader: leading.is_some(),
            commit_index: self.learner.known_commit(),
            delivered_index: self.learner.delivered(),
            peers_healthy: self.detector.healthy(),
            peers_commit: self.detector.reported_commits(),
            membership: self.learner.memberships().latest().clone(),
        }
    }

    /// The membership governing the next slot to deliver.
    fn active(&self) -> &Membership {
        let next = self.learner.delivered() + 1;
        self.learner.memberships().for_slot(next)
    }

    /// Watches every node of the memberships held, once they change.
    fn sync_peers(&mut self) {
        let ms = self.learner.memberships();
        let same = ms
            .all()
            .iter()
            .map(|m| m.id)
            .eq(self.peers_from.iter().copied());
        if !same {
            self.peers_from = ms.all().iter().map(|m| m.id).collect();
            self.detector.set_peers(ms.nodes());
        }
    }

    /// Where a read round may start, if this node leads: the index (its commit index or
    /// every slot reported open to it, whichever is higher) and the membership of the slot
    /// after it, provided that membership is known (within the delay of the commit index)
    /// and a quorum of its voters reported to this leader every slot from there on (see
    /// `read_index.rs` for why that makes the index safe).
    fn read_at(&self) -> Option<(Slot, &Membership)> {
        self.proposer.leading()?;
        let delivered = self.learner.delivered();
        let index = delivered.max(self.proposer.recovered_through());
        let ms = self.learner.memberships();
        if index >= delivered.saturating_add(ms.delay()) {
            return None;
        }
        let m = ms.for_slot(index + 1);
        self.proposer.covers(m, index + 1).then_some((index, m))
    }

    /// The node proposals go to, and the leader this node hears (for Omega, PreVote and
    /// ignoring other campaigns): this node if it leads, else the last announced leader
    /// while this node trusts it as a peer.
    pub fn leader(&self) -> Option<NodeId> {
        if self.proposer.leading().is_some() {
            return Some(self.config.id);
        }
        let hint = self.leader_hint?;
        // A node outside the memberships is no peer and never suspected: not alive either
        // (a leader removed from the members, gone before it said it stepped down).
        let alive = hint.node != self.config.id && self.detector.trusts(hint.node);
        alive.then_some(hint.node)
    }

    fn on_heartbeat(
        &mut self,
        from: NodeId,
        leading: Option<Ballot>,
        commit: Slot,
        read_round: u64,
    ) {
        self.learner.heard_commit(from, commit);
        self.detector.heard_commit(from, commit);
        let Some(ballot) = leading else {
            if self.leader_hint.is_some_and(|h| h.node == from) {
                self.leader_hint = None;
            }
            return;
        };
        if ballot.node != from {
            return;
        }
        self.observe(ballot);
        if ballot < self.acceptor.promised() {
            let promised = self.acceptor.promised();
            self.out
                .send
                .push((from, Message::Nack { ballot, promised }));
            return;
        }
        self.heard_leader(ballot, commit);
        if read_round > 0 {
            self.out
                .send
                .push((from, Message::HeartbeatAck { ballot, read_round }));
        }
    }

    fn on_promise(&mut self, from: NodeId, report: Report) {
        let compacted = report.compacted_through;
        let commit = self.learner.delivered();
        match self.proposer.on_promise(
            self.learner.memberships(),
            commit,
            from,
            report,
            &mut self.out,
        ) {
            PromiseOutcome::Waiting => {}
            PromiseOutcome::Behind => {
                // The promiser applied slots we still need: fetch them (a snapshot), then
                // campaign again with a higher `from`.
                self.step_down();
                self.learner.heard_commit(from, compacted);
                let now = self.detector.now();
                let hb = u64::from(self.config.heartbeat_ticks);
                let req = self.learner.catchup_request(
                    now,
                    hb,
                    self.config.catchup_slots_max,
                    Some(from),
                );
                if let Some((to, msg)) = req {
                    self.out.send.push((to, msg));
                }
            }
            PromiseOutcome::Elected => self.lead(),
        }
    }

    /// Phase 1 is done: lead, and propose what waits.
    fn lead(&mut self) {
        self.proposer.become_leader(self.learner.delivered());
        self.leader_hint = self.proposer.leading();
        self.fill_window();
    }

    /// A candidate whose commit index moved (it learned chosen slots while campaigning)
    /// may now need other voters, or already have enough: see `Proposer::try_elect`.
    fn recheck_candidacy(&mut self) {
        if !self.proposer.is_candidate() {
            return;
        }
        let commit = self.learner.delivered();
        let ms = self.learner.memberships();
        if self.proposer.try_elect(ms, commit, &mut self.out) {
            self.lead();
        }
    }

    fn on_accept(&mut self, from: NodeId, ballot: Ballot, slot: Slot, value: Value, commit: Slot) {
        if ballot.node != from || slot == 0 {
            return;
        }
        self.observe(ballot);
        let committed = (slot <= commit).then(|| value.clone());
        let reply = self.acceptor.on_accept(ballot, slot, value, &mut self.out);
        if matches!(reply, Message::Accepted { .. }) {
            self.learner.heard_commit(from, commit);
            if let Some(value) = committed {
                // Accepted in `ballot`, whose leader says it is chosen (see heard_leader).
                let entry = (slot, (ballot, value));
                let one = std::iter::once((&entry.0, &entry.1));
                self.learner
                    .learn_from_leader(ballot, commit, one, &mut self.out);
            }
            self.heard_leader(ballot, commit);
        }
        self.out.send.push((from, reply));
    }

    /// A leader in `ballot` (not below our promise) announced `commit`.
    fn heard_leader(&mut self, ballot: Ballot, commit: Slot) {
        if self.leader_hint.is_none_or(|h| ballot >= h) {
            self.leader_hint = Some(ballot);
        }
        let mut from = self.learner.delivered() + 1;
        if let Some((scanned, through)) = self.leader_scan {
            if scanned == ballot {
                from = from.max(through.saturating_add(1));
            }
        }
        if commit >= from {
            let accepted = self.acceptor.accepted_range(from, commit);
            self.learner
                .learn_from_leader(ballot, commit, accepted, &mut self.out);
            self.leader_scan = Some((ballot, commit));
        }
    }

    /// Notes a ballot seen in a message; a higher one than ours ends our candidacy/leadership.
    fn observe(&mut self, ballot: Ballot) {
        if self.proposer.observe(ballot) {
            self.step_down();
        }
    }

    /// Asks the peers whether they would follow this node before it campaigns (a new
    /// ballot preempts whoever leads); starts phase 1 once a quorum, itself included,
    /// grants. A pre-vote unanswered for two heartbeats is asked again.
    fn pre_vote(&mut self, now: u64) {
        let hb = u64::from(self.config.heartbeat_ticks);
        if self
            .pre_vote
            .as_ref()
            .is_some_and(|(_, _, sent)| now < sent + 2 * hb)
        {
            return;
        }
        let ballot = self.proposer.next_ballot();
        self.pre_vote = Some((ballot, vec![self.config.id], now));
        let commit = self.learner.delivered();
        for peer in self.detector.peer_ids() {
            self.out
                .send
                .push((peer, Message::PreVote { ballot, commit }));
        }
        self.on_pre_vote_reply(self.config.id, ballot, true);
    }

    /// A pre-vote is granted unless this node hears a live leader other than the asker,
    /// or the asker trails this node's commit index by more than `leader_lag_slots_max`.
    /// Nor is it granted to a node that does not vote for the next slot this node will
    /// deliver: a removed node that has not learnt its removal would otherwise depose
    /// the leaders of the remaining voters again and again (it can only lead slots they
    /// already chose); a node this node does not know as a voter yet is granted once this
    /// node has caught up.
    fn grants_pre_vote(&self, from: NodeId, commit: Slot) -> bool {
        let lag_max = self.config.leader_lag_slots_max;
        let current = self.leader().is_some_and(|l| l != from);
        let votes = self.active().is_voter(from);
        !current && votes && commit.saturating_add(lag_max) >= self.learner.delivered()
    }

    fn on_pre_vote_reply(&mut self, from: NodeId, ballot: Ballot, granted: bool) {
        let Some((asked, votes, _)) = self.pre_vote.as_mut() else {
            return;
        };
        if *asked != ballot || !granted || !self.proposer.is_follower() {
            return;
        }
        if !votes.contains(&from) {
            votes.push(from);
        }
        let first = self.learner.delivered() + 1;
        let m = self.learner.memberships().for_slot(first);
        if m.is_voter(self.config.id) && m.votes(votes.iter()) >= m.quorum() {
            self.pre_vote = None;
            let now = self.detector.now();
            let ballot = self.proposer.start_phase1(m, now, first, &mut self.out);
            // Durable before the Prepares leave (same Ready): see `promise_own`.
            self.acceptor.promise_own(ballot, &mut self.out);
        }
    }

    fn step_down(&mut self) {
        let me = self.config.id;
        let mut refused: Vec<(NodeId, Vec<Bytes>)> = Vec::new();
        for (origin, c) in self.proposer.step_down() {
            if origin == me {
                self.out.dropped.push(c);
            } else if let Some((_, cs)) = refused.iter_mut().find(|(o, _)| *o == origin) {
                cs.push(c);
            } else {
                refused.push((origin, vec![c]));
            }
        }
        for (origin, commands) in refused {
            self.out.send.push((origin, Message::Refused { commands }));
        }
        self.reads.fail_all(&mut self.out);
        let hb = u64::from(self.config.heartbeat_ticks);
        let jitter = 1 + self.next_random() % hb;
        self.campaign_not_before = self.detector.now() + jitter;
        if self.leader_hint.is_some_and(|h| h.node == self.config.id) {
            self.leader_hint = None;
        }
    }

    /// Starts a read round where `read_at` allows one (else the waiting reads wait);
    /// returns the newest round out, which the heartbeat asks peers to acknowledge.
    fn start_read_round(&mut self) -> u64 {
        let at = self.read_at().map(|(index, m)| (index, m.clone()));
        let round = self.reads.start_round(at.as_ref().map(|(i, m)| (*i, m)));
        self.reads.answer_confirmed(self.config.id, &mut self.out);
        round
    }

    /// SplitMix64.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
