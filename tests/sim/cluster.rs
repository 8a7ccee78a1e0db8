//! A whole cluster of real `Core`s in one thread: the driver loop of each node (persist
//! before send, deliveries applied to a state-machine log), the node's real acceptor log on
//! a power-loss file system (`disk.rs`), crashes that keep exactly what was fsynced,
//! restarts as new incarnations that receive frames queued for the old one, pauses,
//! snapshots, compaction with a log tail, clients with values of varied sizes and reads
//! with ids that restart per incarnation (as the driver's do), all from one seed. In half
//! the runs, faults aimed at a candidate's next incarnation too: crashes while its own
//! promise is being fsynced, quick restarts, slow fsyncs, peers' redial backoff, and the
//! redial of a peer holding a Promise for the crashed campaign timed to the next one.
//! In half the runs (their own RNG stream), membership churn (`churn.rs`): spare nodes
//! join as learners, learners are promoted, voters and learners removed, with a
//! membership delay drawn per run; the checker knows each slot's voters (`voters.rs`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use concierge::paxos::{
    Config, Core, Memberships, Message, NodeId, Persist, Value, RECONFIG_DELAY_SLOTS,
};

use super::checker::{command, show, Check, Checker};
use super::churn;
use super::describe::describe;
use super::disk::Disk;
use super::network::{Fate, NetFaults, Network, Proc};
use super::rng::Rng;

/// Everything a run varies, drawn from its seed.
#[derive(Clone, Debug)]
pub struct Params {
    pub nodes: usize,
    pub net: NetFaults,
    /// Chance per tick that some node crashes during the faulty phase.
    pub crash_per_mille: u64,
    /// Chance per tick that a node with a Ready still persisting crashes (half the time
    /// right after that Ready's persist, before its messages leave): the window a driver
    /// crash hits when the core relies on state not yet durable. Drawn from its own RNG.
    pub crash_pending_per_mille: u64,
    /// Chance that a node whose Ready sends Prepares (a new campaign) crashes within a few
    /// ticks: aimed at a candidate whose ballot or promise may not be durable yet, so that
    /// promises for that campaign reach its next incarnation. Drawn from its own RNG.
    pub crash_campaign_per_mille: u64,
    /// Chance that a node whose Ready persists a promise of its own ballot crashes at once,
    /// before that fsync completes unless it completes within the tick (its Prepares may
    /// have left already). Drawn, like the three after it, from the `aim` RNG.
    pub crash_own_promise_per_mille: u64,
    /// Chance that a crash aimed at a campaign restarts the node quickly (2 ticks up to a
    /// suspicion timeout: a supervisor restart), before its peers elect another leader.
    pub quick_restart_per_mille: u64,
    /// Chance, at a restart, that a peer whose queue holds a Promise for the restarted
    /// node's earlier campaign redials only once that node campaigns again (0-2 ticks
    /// after its Prepares are taken; at the latest after `redial_ticks_max`): the stale
    /// Promise then arrives during the new campaign, ahead of that peer's fresh answer.
    pub stale_promise_per_mille: u64,
    /// Chance that a Ready's fsync stalls for a few heartbeats (a slow disk): a candidate
    /// waits that much longer for its own promise, while other replies arrive.
    pub slow_fsync_per_mille: u64,
    /// Chance per tick that a partition starts during the faulty phase.
    pub partition_per_mille: u64,
    /// A Ready's persist takes 0..=this many ticks (its messages wait for it).
    pub persist_delay_max: u64,
    pub faulty_ticks: u64,
    /// After the faults stop, everything proposed must be delivered everywhere within this.
    pub quiet_ticks_max: u64,
    pub heartbeat_ticks: u32,
    pub window_slots_max: u64,
    pub batch_commands_max: usize,
    pub catchup_slots_max: u64,
    /// Chance per tick that a running node is paused (SIGSTOP) during the faulty phase.
    pub pause_per_mille: u64,
    /// Applied slots kept behind the compaction point (the node's `log_tail_slots`).
    pub log_tail_slots: u64,
    /// Applied slots between two compactions (the node's `compact_every_slots`).
    pub compact_every_slots: u64,
    /// Padding of a command beyond its 8-byte id: 0..=this.
    pub command_pad_bytes_max: usize,
    /// Command bytes per slot; the frame limit and the catch-up and promise budgets
    /// scale with it as in production (1 MiB values, 64 MiB frames, 8 MiB replies).
    pub batch_bytes_max: usize,
    /// Accepted slots one Promise chunk reports.
    pub promise_slots_max: u64,
    /// Nodes beyond `nodes` that start only when a membership change adds them.
    pub spare_nodes: usize,
    /// Chance per tick, in the faulty phase, that the leader is asked for a membership change.
    pub churn_per_mille: u64,
    /// Slots between a membership change and the first slot it governs.
    pub reconfig_delay: u64,
}

impl Params {
    /// Draws a run's parameters; `extra` is a separate stream for the ones added later
    /// (so older parameters keep their draws).
    pub fn draw(rng: &mut Rng, extra: &mut Rng) -> Params {
        let delay_max = rng.range(1, 6);
        let command_pad_bytes_max = extra.below(1024) as usize;
        let batch_bytes_max = command_pad_bytes_max + 8 + extra.below(64) as usize;
        Params {
            nodes: if rng.below(2) == 0 { 3 } else { 5 },
            net: NetFaults {
                drop_per_mille: rng.below(150),
                dup_per_mille: rng.below(60),
                delay_max,
                held_max: extra.range(16, 1024) as usize,
                // 64 values and a framing allowance, as 64 MiB frames and 1 MiB values.
                frame_bytes_max: batch_bytes_max * 64 + FRAME_OVERHEAD_BYTES,
                redial_ticks_min: 0,
                redial_ticks_max: 0,
            },
            crash_per_mille: rng.below(12),
            crash_pending_per_mille: 0,
            crash_campaign_per_mille: 0,
            crash_own_promise_per_mille: 0,
            quick_restart_per_mille: 0,
            slow_fsync_per_mille: 0,
            stale_promise_per_mille: 0,
            partition_per_mille: rng.below(8),
            persist_delay_max: rng.range(0, 3),
            faulty_ticks: 900,
            quiet_ticks_max: 1200,
            heartbeat_ticks: rng.range(2, 5) as u32,
            window_slots_max: rng.range(1, 8),
            batch_commands_max: rng.range(1, 6) as usize,
            catchup_slots_max: rng.range(2, 16),
            pause_per_mille: extra.below(4),
            promise_slots_max: extra.range(1, 64),
            log_tail_slots: extra.below(48),
            compact_every_slots: extra.range(1, 16),
            command_pad_bytes_max,
            batch_bytes_max,
            spare_nodes: 0,
            churn_per_mille: 0,
            reconfig_delay: RECONFIG_DELAY_SLOTS,
        }
    }

    /// The cluster's first membership: nodes 1..=nodes vote.
    fn genesis(&self) -> Memberships {
        Memberships::genesis((1..=self.nodes as NodeId).collect(), self.reconfig_delay)
    }

    /// The memberships after applying `log` (slots 1..=len) to the first one, as a
    /// node's state machine keeps them for its core.
    fn memberships_after(&self, log: &[Value]) -> Memberships {
        let mut m = self.genesis();
        for (slot, v) in (1..).zip(log) {
            if let Value::Reconfigure(change) = v {
                let _ = m.apply(slot, change);
            }
        }
        m.retire(log.len() as u64);
        m
    }

    fn config(&self, id: NodeId) -> Config {
        let mut c = Config::new(id, (1..=self.nodes as NodeId).collect());
        c.heartbeat_ticks = self.heartbeat_ticks;
        c.suspect_ticks = self.heartbeat_ticks * 3 + 2 * self.net.delay_max as u32 + 4;
        c.suspect_ticks_increment = 4;
        c.suspect_ticks_max = c.suspect_ticks * 3;
        c.suspect_decay_ticks = 200;
        c.leader_lag_slots_max = self.window_slots_max * 2 + 8;
        c.window_slots_max = self.window_slots_max;
        c.batch_commands_max = self.batch_commands_max;
        c.batch_bytes_max = self.batch_bytes_max;
        c.catchup_bytes_max = self.batch_bytes_max * 8;
        c.promise_bytes_max = self.batch_bytes_max * 8;
        c.promise_slots_max = self.promise_slots_max;
        c.proposals_queued_max = 64;
        c.catchup_slots_max = self.catchup_slots_max;
        c.reads_pending_max = 16;
        c
    }
}

/// A Ready whose persist is under way; its messages wait for it.
struct Persisting {
    done_at: u64,
    persist: Vec<Persist>,
    send: Vec<(NodeId, Message)>,
}

struct Node {
    id: NodeId,
    /// None while crashed.
    core: Option<Core>,
    /// The node's acceptor log on its own power-loss file system.
    disk: Disk,
    /// Readys taken but not yet durable, in order.
    persisting: VecDeque<Persisting>,
    /// The state machine: log[s - 1] is slot s. Durable only up to the disk's compaction
    /// point (the state machine is synced before the log is checkpointed).
    log: Vec<Value>,
    incarnation: u64,
    down_until: u64,
    /// Nonzero while paused (SIGSTOP): the tick it resumes at.
    paused_until: u64,
    /// The driver's next read id: restarts at 1 in each incarnation, like the node's.
    next_read_id: u64,
    was_leader: bool,
    /// False for a spare node until a membership change adds it.
    started: bool,
}

impl Node {
    fn running(&self) -> bool {
        self.core.is_some() && self.paused_until == 0
    }
}

const NEVER: u64 = u64::MAX;
/// Room for slot numbers, ballots and framing beyond the value bytes of a frame (64 slots
/// of ~20 bytes each, with margin; the node's allowance is `FRAME_OVERHEAD_BYTES`).
const FRAME_OVERHEAD_BYTES: usize = 4096;
const CLIENTS_OUTSTANDING_MAX: usize = 24;

pub struct Sim {
    seed: u64,
    rng: Rng,
    /// Separate stream for crashes aimed at pending persists (keeps `rng`'s draws as
    /// they were for runs where none happens).
    crash_rng: Rng,
    /// Separate stream for the faults aimed at a candidate's next incarnation (own-promise
    /// crashes, quick restarts, redial backoff), so runs without them keep every draw.
    aim_rng: Rng,
    /// Separate stream for membership churn, so runs without it keep every draw.
    churn_rng: Rng,
    now: u64,
    params: Params,
    nodes: Vec<Node>,
    net: Network,
    pub checker: Checker,
    trace: bool,
    /// Commands not yet delivered anywhere -> tick of the last propose attempt.
    outstanding: BTreeMap<u64, u64>,
    /// (node, incarnation, read id) -> highest slot delivered anywhere when asked.
    reads: HashMap<(NodeId, u64, u64), u64>,
    /// (due tick, donor, receiver).
    snapshots: Vec<(u64, NodeId, NodeId)>,
    /// (due tick, node, incarnation): crashes aimed at fresh campaigns.
    campaign_crashes: Vec<(u64, usize, u64)>,
    /// (sender, node, incarnation): links whose redial waits for that incarnation's
    /// first campaign (`stale_promise_per_mille`).
    redial_on_campaign: Vec<(NodeId, usize, u64)>,
    partition_until: u64,
    healed: bool,
}

impl Sim {
    pub fn new(seed: u64, trace: bool) -> Result<Sim, String> {
        let mut rng = Rng::new(seed);
        let mut extra = Rng::new(seed ^ 0x5EED_0F00_0000_0007);
        let mut params = Params::draw(&mut rng, &mut extra);
        let mut crash_rng = Rng::new(seed ^ 0xC4A5_4ED0_0000_0001);
        params.crash_pending_per_mille = crash_rng.range(1, 3) * 5;
        params.crash_campaign_per_mille = crash_rng.range(0, 3) * 50;
        // Half the runs model the transport's redial backoff (`peer.rs`: 20 ms doubling to
        // 1 s against a 300 ms suspicion) and aim at a candidate's next incarnation.
        let mut aim_rng = Rng::new(seed ^ 0xA1A1_5EED_0000_0009);
        if aim_rng.below(2) == 0 {
            let suspect = u64::from(params.config(1).suspect_ticks);
            params.net.redial_ticks_min = aim_rng.range(1, 3);
            params.net.redial_ticks_max = aim_rng.range(suspect, 4 * suspect);
            params.crash_own_promise_per_mille = aim_rng.range(0, 4) * 50;
            params.quick_restart_per_mille = aim_rng.range(0, 4) * 250;
            params.slow_fsync_per_mille = aim_rng.range(0, 3) * 10;
            params.stale_promise_per_mille = aim_rng.range(1, 2) * 500;
        }
        // Half the runs change their members while the faults go on.
        let mut churn_rng = Rng::new(seed ^ 0xC4A2_0E5E_ED00_0013);
        if churn_rng.below(2) == 0 {
            params.spare_nodes = churn_rng.range(0, 2) as usize;
            params.churn_per_mille = churn_rng.range(10, 40);
            params.reconfig_delay = params.window_slots_max + churn_rng.below(6);
        }
        let mut nodes = Vec::new();
        let total = params.nodes + params.spare_nodes;
        for id in 1..=total as NodeId {
            let disk = Disk::new(params.net.frame_bytes_max as u32)?;
            let started = id as usize <= params.nodes;
            nodes.push(Node {
                id,
                core: started.then(|| new_core(&params, id, &disk, &[], seed, 0)),
                disk,
                persisting: VecDeque::new(),
                log: Vec::new(),
                incarnation: 0,
                down_until: if started { 0 } else { NEVER },
                paused_until: 0,
                next_read_id: 1,
                was_leader: false,
                started,
            });
        }
        let mut net = Network::new(total, params.net.clone());
        for n in nodes.iter().filter(|n| !n.started) {
            net.set_state(n.id, Proc::Crashed);
        }
        let first: Vec<NodeId> = (1..=params.nodes as NodeId).collect();
        let sim = Sim {
            seed,
            rng,
            crash_rng,
            aim_rng,
            churn_rng,
            now: 0,
            nodes,
            net,
            checker: Checker::new(first, params.reconfig_delay),
            trace,
            outstanding: BTreeMap::new(),
            reads: HashMap::new(),
            snapshots: Vec::new(),
            campaign_crashes: Vec::new(),
            redial_on_campaign: Vec::new(),
            partition_until: 0,
            healed: false,
            params,
        };
        sim.log(|| format!("params {:?}", sim.params));
        Ok(sim)
    }

    fn log(&self, line: impl FnOnce() -> String) {
        if self.trace {
            println!("t={} {}", self.now, line());
        }
    }

    /// Runs to quiescence; Err names the property that failed.
    pub fn run(&mut self) -> Check {
        let end = self.params.faulty_ticks + self.params.quiet_ticks_max;
        while self.now <= end {
            let faulty = self.now < self.params.faulty_ticks;
            if !faulty && !self.healed {
                self.heal_everything()?;
            }
            self.resume_paused();
            self.net.release(&mut self.rng, self.now);
            self.complete_persists()?;
            self.deliver_messages()?;
            self.tick_nodes()?;
            self.clients()?;
            self.compactions()?;
            self.snapshots()?;
            if faulty {
                self.faults()?;
            } else if self.quiescent() {
                self.log(|| "quiescent: every command delivered everywhere".into());
                return Ok(());
            }
            self.now += 1;
        }
        let lag: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("n{}:{}", n.id, n.log.len()))
            .collect();
        let leaders: Vec<String> = self
            .nodes
            .iter()
            .filter_map(|n| n.core.as_ref().map(|c| (n.id, c.status())))
            .map(|(id, s)| format!("n{id}:{}{}", s.ballot, if s.is_leader { "*" } else { "" }))
            .collect();
        Err(format!(
            "liveness: {} ticks after faults stopped, {} commands undelivered (first {:?}), \
             chosen through {}, nodes applied {}, ballots {}",
            self.params.quiet_ticks_max,
            self.outstanding.len(),
            self.outstanding.keys().next(),
            self.checker.max_delivered,
            lag.join(" "),
            leaders.join(" ")
        ))
    }

    /// Every command delivered, and every node of the newest membership running with
    /// everything chosen applied (nodes removed, or never added, may lag).
    fn quiescent(&self) -> bool {
        let members = self.checker.voters.latest_nodes();
        self.now >= self.params.faulty_ticks + 100
            && self.outstanding.is_empty()
            && self
                .nodes
                .iter()
                .filter(|n| members.contains(&n.id))
                .all(|n| n.running() && n.log.len() as u64 == self.checker.max_delivered)
    }

    fn heal_everything(&mut self) -> Check {
        self.healed = true;
        self.net.heal();
        self.net.faults.drop_per_mille = 0;
        self.net.faults.dup_per_mille = 0;
        self.log(|| "faults stop: network healed, crashed nodes restart".into());
        for i in 0..self.nodes.len() {
            if self.nodes[i].core.is_none() && self.nodes[i].started {
                self.restart(i)?;
            }
            if self.nodes[i].paused_until != 0 {
                self.nodes[i].paused_until = self.now;
            }
        }
        self.resume_paused();
        Ok(())
    }

    /// Paused nodes whose pause is over run again (with everything queued for them).
    fn resume_paused(&mut self) {
        for i in 0..self.nodes.len() {
            let n = &mut self.nodes[i];
            if n.paused_until != 0 && self.now >= n.paused_until {
                n.paused_until = 0;
                let id = n.id;
                self.net.set_state(id, Proc::Running);
                self.log(|| format!("resume n{id}"));
            }
        }
    }

    /// Persists that completed (on running nodes): make them durable, then release their
    /// messages.
    fn complete_persists(&mut self) -> Check {
        for i in 0..self.nodes.len() {
            while self.nodes[i].running()
                && self.nodes[i]
                    .persisting
                    .front()
                    .is_some_and(|p| p.done_at <= self.now)
            {
                if let Some(p) = self.nodes[i].persisting.pop_front() {
                    self.nodes[i].disk.persist(&p.persist)?;
                    let from = self.nodes[i].id;
                    for (to, msg) in p.send {
                        self.send(from, to, msg);
                    }
                }
            }
        }
        Ok(())
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let line = if self.trace {
            Some(describe(&msg))
        } else {
            None
        };
        let fate = self.net.send(&mut self.rng, self.now, from, to, msg);
        if let Some(line) = line {
            let what = match fate {
                Fate::Sent => "send".to_string(),
                Fate::Duplicated => "send (duplicated)".to_string(),
                Fate::Dropped => "drop".to_string(),
                Fate::Held => "hold".to_string(),
                Fate::TooLarge(n) => format!("too large ({n} bytes)"),
            };
            self.log(|| format!("{what} n{from}->n{to} {line}"));
        }
    }

    fn deliver_messages(&mut self) -> Check {
        let due = self.net.due(&mut self.rng, self.now);
        let mut touched = vec![false; self.nodes.len()];
        for e in due {
            let i = e.to as usize - 1;
            if !self.nodes[i].running() {
                continue;
            }
            if let Some(core) = self.nodes[i].core.as_mut() {
                if self.trace {
                    let (from, to, line) = (e.from, e.to, describe(&e.msg));
                    println!("t={} recv n{from}->n{to} {line}", self.now);
                }
                core.step(e.from, e.msg);
                touched[i] = true;
            }
        }
        for (i, t) in touched.into_iter().enumerate() {
            if t {
                self.drain(i)?;
            }
        }
        Ok(())
    }

    fn tick_nodes(&mut self) -> Check {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].running() {
                continue;
            }
            let Some(core) = self.nodes[i].core.as_mut() else {
                continue;
            };
            core.tick();
            let status = core.status();
            if status.is_leader != self.nodes[i].was_leader {
                self.nodes[i].was_leader = status.is_leader;
                let id = self.nodes[i].id;
                let what = if status.is_leader {
                    "becomes leader"
                } else {
                    "steps down"
                };
                self.log(|| format!("leader change: n{id} {what} (ballot {})", status.ballot));
            }
            self.drain(i)?;
        }
        Ok(())
    }

    /// The driver's ready cycle for node i: apply deliveries, answer reads, start persists.
    fn drain(&mut self, i: usize) -> Check {
        let Some(core) = self.nodes[i].core.as_mut() else {
            return Ok(());
        };
        if !core.has_ready() {
            return Ok(());
        }
        let ready = core.ready();
        let (id, inc) = (self.nodes[i].id, self.nodes[i].incarnation);
        for (slot, value) in ready.deliver {
            let applied = self.nodes[i].log.len() as u64;
            let nodes = &self.nodes;
            let holds = |n: NodeId| {
                let node = nodes.get(n as usize - 1);
                let accepted = node.and_then(|n| n.disk.state.accepted.get(&slot));
                accepted.is_some_and(|(_, v)| *v == value)
            };
            self.checker.deliver(id, applied, slot, &value, holds)?;
            self.log(|| format!("deliver n{id} slot {slot} {}", show(&value)));
            for c in commands(&value) {
                self.outstanding.remove(&c);
            }
            self.nodes[i].log.push(value);
        }
        for (read, index) in ready.reads {
            // Kept after the answer: a duplicated forwarded reply answers twice. An id the
            // node never asked in this incarnation is ignored, as the driver ignores it.
            let Some(&asked_at) = self.reads.get(&(id, inc, read)) else {
                self.log(|| format!("read n{id} #{read} -> {index:?} (not asked: ignored)"));
                continue;
            };
            self.log(|| format!("read n{id} #{read} -> {index:?}"));
            if let Some(index) = index {
                self.checker.read(id, read, asked_at, index)?;
            }
        }
        let campaigns = ready
            .send
            .iter()
            .any(|(_, m)| matches!(m, Message::Prepare { .. }));
        let faulty = self.now < self.params.faulty_ticks;
        if campaigns {
            let (now, aimed) = (self.now, std::mem::take(&mut self.redial_on_campaign));
            for (from, node, incarnation) in aimed {
                if (node, incarnation) == (i, inc) {
                    let at = now + self.aim_rng.range(0, 2);
                    self.log(|| format!("n{from} redials n{id} at t={at}"));
                    self.net.redial_at(from, id, at);
                } else {
                    self.redial_on_campaign.push((from, node, incarnation));
                }
            }
        }
        if campaigns && faulty && self.crash_rng.chance(self.params.crash_campaign_per_mille) {
            let at = self.now + self.crash_rng.range(0, 3);
            self.campaign_crashes.push((at, i, inc));
        }
        let own_promise = ready
            .persist
            .iter()
            .any(|p| matches!(p, Persist::Promise(b) if b.node == id));
        if own_promise && faulty && self.aim_rng.chance(self.params.crash_own_promise_per_mille) {
            self.campaign_crashes.push((self.now, i, inc));
        }
        for peer in ready.snapshot_needed {
            let due = self.now + self.rng.range(2, 10);
            self.log(|| format!("snapshot needed: n{id} will stream to n{peer}"));
            self.snapshots.push((due, id, peer));
        }
        for c in commands(&Value::Batch(ready.dropped)) {
            self.log(|| format!("dropped n{id} c{c} (not applied)"));
            self.checker.dropped(c)?;
        }
        // As the driver: messages that vouch for no state leave at once.
        let (send, early): (Vec<_>, Vec<_>) = ready
            .send
            .into_iter()
            .partition(|(_, m)| m.waits_for_persist());
        for (to, msg) in early {
            self.send(id, to, msg);
        }
        if !ready.persist.is_empty() || !send.is_empty() {
            let last = self.nodes[i].persisting.back().map_or(0, |p| p.done_at);
            let delay = if ready.persist.is_empty() {
                0
            } else {
                let usual = self.rng.range(0, self.params.persist_delay_max);
                if self.aim_rng.chance(self.params.slow_fsync_per_mille) {
                    usual
                        + self
                            .aim_rng
                            .range(4, 4 * u64::from(self.params.heartbeat_ticks))
                } else {
                    usual
                }
            };
            let done_at = (self.now + delay).max(last);
            self.nodes[i].persisting.push_back(Persisting {
                done_at,
                persist: ready.persist,
                send,
            });
            if done_at <= self.now {
                self.complete_persists()?;
            }
        }
        Ok(())
    }

    fn up_node(&mut self) -> Option<usize> {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].running())
            .collect();
        if up.is_empty() {
            return None;
        }
        Some(up[self.rng.below(up.len() as u64) as usize])
    }

    /// Clients: create unique commands, propose them at random nodes, re-propose commands
    /// not delivered after a while (their forwarding path may have crashed), ask reads.
    fn clients(&mut self) -> Check {
        let creating = self.now < self.params.faulty_ticks + 100;
        if creating && self.outstanding.len() < CLIENTS_OUTSTANDING_MAX && self.rng.chance(400) {
            let id = self.checker.created;
            self.checker.created += 1;
            self.outstanding.insert(id, NEVER);
        }
        let due: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, &last)| last == NEVER || self.now >= last + 60)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(i) = self.up_node() else { break };
            let node = self.nodes[i].id;
            let Some(core) = self.nodes[i].core.as_mut() else {
                continue;
            };
            let pad = (id as usize * 7919) % (self.params.command_pad_bytes_max + 1);
            let result = core.propose(command(id, pad));
            if result.is_ok() {
                self.checker.proposed(id);
            }
            let retry = if result.is_ok() {
                self.now
            } else {
                self.now.saturating_sub(50)
            };
            self.outstanding.insert(id, retry);
            self.log(|| format!("propose c{id} at n{node}: {result:?}"));
            self.drain(i)?;
        }
        if self.rng.chance(30) {
            if let Some(i) = self.up_node() {
                let id = self.nodes[i].next_read_id;
                self.nodes[i].next_read_id += 1;
                let (node, inc) = (self.nodes[i].id, self.nodes[i].incarnation);
                self.reads
                    .insert((node, inc, id), self.checker.max_delivered);
                if let Some(core) = self.nodes[i].core.as_mut() {
                    core.read_index(id);
                }
                self.log(|| format!("read-index n{node} #{id}"));
                self.drain(i)?;
            }
        }
        Ok(())
    }

    /// As the node's driver: once `compact_every_slots` more slots are applied past the
    /// compaction point and its tail, the state machine syncs and the core and the acceptor
    /// log are compacted through `applied - log_tail_slots`.
    fn compactions(&mut self) -> Check {
        if !self.rng.chance(250) {
            return Ok(());
        }
        let Some(i) = self.up_node() else {
            return Ok(());
        };
        let applied = self.nodes[i].log.len() as u64;
        let node = &mut self.nodes[i];
        let compacted = node.disk.state.compacted_through;
        let trigger = compacted + self.params.log_tail_slots + self.params.compact_every_slots;
        if applied < trigger {
            return Ok(());
        }
        let through = applied - self.params.log_tail_slots;
        if let Some(core) = node.core.as_mut() {
            core.compact(through);
        }
        node.disk.checkpoint(through)?;
        let id = node.id;
        self.log(|| format!("compact n{id} through {through}"));
        Ok(())
    }

    fn snapshots(&mut self) -> Check {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = self.snapshots.drain(..).partition(|s| s.0 <= now);
        self.snapshots = later;
        for (_, donor, receiver) in due {
            let (d, r) = (donor as usize - 1, receiver as usize - 1);
            if !self.nodes[d].running() || !self.nodes[r].running() {
                continue;
            }
            let through = self.nodes[d].log.len();
            if through <= self.nodes[r].log.len() {
                continue;
            }
            // The snapshot is the donor's state machine; the checker already holds each
            // of its slots in the global sequence, so the receiver's log stays a prefix.
            let log = self.checker.chosen_prefix(through);
            if log != self.nodes[d].log {
                return Err(format!(
                    "agreement: n{donor}'s state differs from the chosen sequence"
                ));
            }
            let memberships = self.params.memberships_after(&log);
            let node = &mut self.nodes[r];
            node.log = log;
            node.disk.checkpoint(through as u64)?;
            if let Some(core) = node.core.as_mut() {
                core.install_snapshot(through as u64, memberships);
            }
            self.log(|| format!("snapshot n{donor}->n{receiver} through {through}"));
            self.drain(r)?;
        }
        Ok(())
    }

    fn faults(&mut self) -> Check {
        for i in 0..self.nodes.len() {
            if self.nodes[i].core.is_none() && self.now >= self.nodes[i].down_until {
                self.restart(i)?;
            }
        }
        if self.rng.chance(self.params.crash_per_mille) {
            let i = self.rng.below(self.nodes.len() as u64) as usize;
            if self.nodes[i].core.is_some() {
                let down = self.rng.range(5, 150);
                self.crash(i, down);
            }
        }
        self.crash_while_persisting()?;
        self.crash_campaigns();
        self.churn()?;
        self.pause_one();
        if self.net.is_partitioned() {
            if self.now >= self.partition_until {
                self.net.heal();
                self.log(|| "partition heals".into());
            }
        } else if self.rng.chance(self.params.partition_per_mille) {
            let sides: Vec<u8> = (0..self.nodes.len())
                .map(|_| self.rng.below(2) as u8)
                .collect();
            self.partition_until = self.now + self.rng.range(20, 200);
            self.log(|| format!("partition {sides:?} until t={}", self.partition_until));
            self.net.partition(sides);
        }
        Ok(())
    }

    /// Asks the leader, now and then, for a membership change (`churn.rs`); a spare the
    /// change adds starts at once with an empty disk (it learns the log as a learner).
    fn churn(&mut self) -> Check {
        if !self.churn_rng.chance(self.params.churn_per_mille) {
            return Ok(());
        }
        let leader = (0..self.nodes.len()).find(|&i| {
            let n = &self.nodes[i];
            n.running() && n.core.as_ref().is_some_and(|c| c.status().is_leader)
        });
        let Some(i) = leader else {
            return Ok(());
        };
        let started: Vec<bool> = self.nodes.iter().map(|n| n.started).collect();
        let total = self.nodes.len() as NodeId;
        let Some(core) = self.nodes[i].core.as_mut() else {
            return Ok(());
        };
        let latest = core.memberships().latest().clone();
        let Some(p) = churn::pick(&mut self.churn_rng, &latest, total, &started) else {
            return Ok(());
        };
        let result = core.reconfigure(p.change);
        let id = self.nodes[i].id;
        self.log(|| format!("churn: n{id} proposes to {}: {result:?}", p.what));
        if result.is_ok() {
            if let Some(n) = p.starts {
                self.start_spare(n as usize - 1);
            }
        }
        self.drain(i)
    }

    /// A spare node starts for the first time, with an empty disk.
    fn start_spare(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.started = true;
        node.down_until = 0;
        node.core = Some(new_core(
            &self.params,
            node.id,
            &node.disk,
            &[],
            self.seed,
            0,
        ));
        let id = node.id;
        self.net.set_state(id, Proc::Running);
        self.log(|| format!("start n{id} (a spare, empty disk)"));
    }

    /// Crashes the candidates picked in `drain` once their moment comes (if still the same
    /// incarnation and running).
    fn crash_campaigns(&mut self) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) =
            self.campaign_crashes.drain(..).partition(|c| c.0 <= now);
        self.campaign_crashes = later;
        for (_, i, inc) in due {
            if self.nodes[i].running() && self.nodes[i].incarnation == inc {
                let mut down = self.crash_rng.range(5, 60);
                if self.aim_rng.chance(self.params.quick_restart_per_mille) {
                    let suspect = u64::from(self.params.config(1).suspect_ticks);
                    down = self.aim_rng.range(2, suspect);
                }
                self.log(|| format!("crash aimed at n{}'s campaign", i + 1));
                self.crash(i, down);
            }
        }
    }

    /// Pauses a running node (SIGSTOP) for longer than a suspicion: its ticks stop, its
    /// persists stall, frames for it queue at the senders; then it resumes as it was.
    fn pause_one(&mut self) {
        if !self.crash_rng.chance(self.params.pause_per_mille) {
            return;
        }
        let i = self.crash_rng.below(self.nodes.len() as u64) as usize;
        if !self.nodes[i].running() {
            return;
        }
        let suspect = u64::from(self.params.config(1).suspect_ticks);
        let len = self.crash_rng.range(suspect, 3 * suspect + 40);
        let node = &mut self.nodes[i];
        node.paused_until = self.now + len;
        let id = node.id;
        self.net.set_state(id, Proc::Paused);
        self.log(|| format!("pause n{id} for {len}"));
    }

    /// Crashes a node that has a Ready with records still persisting, sometimes just after
    /// the first such persist completed but before its messages left.
    fn crash_while_persisting(&mut self) -> Check {
        if !self.crash_rng.chance(self.params.crash_pending_per_mille) {
            return Ok(());
        }
        let pending: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i].running()
                    && self.nodes[i]
                        .persisting
                        .iter()
                        .any(|p| !p.persist.is_empty())
            })
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let i = pending[self.crash_rng.below(pending.len() as u64) as usize];
        if self.crash_rng.chance(500) {
            // Complete the persists up to and including the first one with records, and
            // lose that one's messages (earlier ones' messages go out as usual).
            while let Some(p) = self.nodes[i].persisting.pop_front() {
                self.nodes[i].disk.persist(&p.persist)?;
                if !p.persist.is_empty() {
                    let (id, n) = (self.nodes[i].id, p.send.len());
                    self.log(|| format!("n{id} persisted a Ready; its {n} messages are lost"));
                    break;
                }
                let from = self.nodes[i].id;
                for (to, msg) in p.send {
                    self.send(from, to, msg);
                }
            }
        }
        let down = self.crash_rng.range(5, 150);
        self.crash(i, down);
        Ok(())
    }

    fn crash(&mut self, i: usize, down: u64) {
        let tear_seed = self.crash_rng.next_u64();
        let node = &mut self.nodes[i];
        node.core = None;
        let lost = node.persisting.len();
        node.persisting.clear();
        node.disk.crash(tear_seed);
        // The state machine keeps what it had synced: at least the compaction point (it
        // syncs before the log is compacted), at most everything it applied.
        let compacted = node.disk.state.compacted_through as usize;
        let kept = compacted
            + self
                .crash_rng
                .below((node.log.len() - compacted + 1) as u64) as usize;
        node.log.truncate(kept);
        node.down_until = self.now + down;
        node.paused_until = 0;
        node.was_leader = false;
        let id = node.id;
        let frames = self.net.set_state(id, Proc::Crashed);
        self.net.crashed(&mut self.aim_rng, self.now, id);
        self.log(|| {
            format!(
                "crash n{id} ({lost} unpersisted readys and {frames} queued frames lost), \
                 down for {down}"
            )
        });
    }

    fn restart(&mut self, i: usize) -> Check {
        let node = &mut self.nodes[i];
        node.incarnation += 1;
        node.next_read_id = 1;
        node.disk.restart()?;
        node.core = Some(new_core(
            &self.params,
            node.id,
            &node.disk,
            &node.log,
            self.seed,
            node.incarnation,
        ));
        let (id, from) = (node.id, node.log.len());
        self.net.set_state(id, Proc::Running);
        self.net.restarted(self.now, id);
        self.redial_on_campaign.retain(|&(_, node, _)| node != i);
        let faulty = self.now < self.params.faulty_ticks;
        if faulty && self.aim_rng.chance(self.params.stale_promise_per_mille) {
            let holders = self.net.holding_own_promise(id);
            if let Some(&from) =
                holders.get(self.aim_rng.below(holders.len().max(1) as u64) as usize)
            {
                let latest = self.now + self.params.net.redial_ticks_max;
                self.net.redial_at(from, id, latest);
                let inc = self.nodes[i].incarnation;
                self.redial_on_campaign.push((from, i, inc));
                self.log(|| format!("n{from}'s link to n{id} waits for its campaign"));
            }
        }
        self.log(|| format!("restart n{id} (redelivers after slot {from})"));
        Ok(())
    }
}

/// A node's core as its driver builds it at start-up, from what its disk replayed and
/// what its state machine (`log`, every slot it applied and kept: at least through the
/// compaction point) holds, with an incarnation number distinct per start (the node draws a random one).
fn new_core(
    params: &Params,
    id: NodeId,
    disk: &Disk,
    log: &[Value],
    seed: u64,
    incarnation: u64,
) -> Core {
    let incarnation = seed.rotate_left(17) ^ (u64::from(id) << 48) ^ incarnation;
    // The state machine holds every slot through `log.len()` (at least the compaction
    // point): the core starts there, as after installing a snapshot of it (`node::start`).
    Core::start_at(
        params.config(id),
        disk.state.clone(),
        log.len() as u64,
        params.memberships_after(log),
        incarnation,
    )
}

fn commands(value: &Value) -> Vec<u64> {
    match value {
        Value::Noop | Value::Reconfigure(_) => Vec::new(),
        Value::Batch(cs) => cs
            .iter()
            .filter_map(|c| c.get(..8))
            .filter_map(|c| <[u8; 8]>::try_from(c).ok().map(u64::from_le_bytes))
            .collect(),
    }
}
