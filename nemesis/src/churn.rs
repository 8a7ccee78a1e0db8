//! Membership churn (`--faults ...,members`): carries out the steps the cycle planner
//! (`membership.rs`) chooses against the real cluster, through the membership API
//! (`member_api.rs`) and the node processes (`cluster.rs`), and keeps the client pool
//! (`pool.rs`) to the current members.
//!
//! Every call that may fail is retried within a bound ([`ADD_MS_MAX`] and its
//! siblings); after an answer that leaves the outcome unknown, the membership is read
//! back from `GET /v1/cluster` ([`Churn::observe`]) rather than assumed. A step that
//! cannot finish within its bounds leaves the cluster as it is (a learner not promoted,
//! a removal not made) and says so in its [`MemberRecord`]; the next step is planned
//! from what the cluster then reports, so it finishes the job.
//!
//! Invariants: a node joins the pool only once it answers `/ready`; a node being removed
//! stays in it (clients keep reaching it: it must not answer a stale read once it has
//! left) until its process is stopped, which happens [`REMOVED_LINGER_MS`] after the
//! removal governs (a member's commit index passed the change's slot plus the delay),
//! and its slot is retired; a node leaves the pool before its disk is lost; a lost directory is deleted and its slot never runs again,
//! so a lost node never comes back under its old id. Runs only on the task that owns
//! the [`Cluster`] (it spawns processes).

use crate::accounts;
use crate::client::Shared;
use crate::cluster::{Cluster, Exit, SlotState};
use crate::member_api::{self, ClusterView, Reply};
use crate::membership::{Cycle, Step, View};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Time to get an add chosen, ms.
pub const ADD_MS_MAX: u64 = 20_000;
/// Time for a new node to join and answer `/ready`, ms.
pub const READY_MS_MAX: u64 = 30_000;
/// Time to get a promotion chosen (the learner catching up meanwhile), ms.
pub const PROMOTE_MS_MAX: u64 = 30_000;
/// Time to get a removal chosen, ms.
pub const REMOVE_MS_MAX: u64 = 20_000;
/// Time for a removal to govern before the removed node is stopped anyway, ms.
pub const GOVERN_MS_MAX: u64 = 10_000;
/// How long a removed node keeps running, and taking client requests, once its
/// removal governs, ms.
pub const REMOVED_LINGER_MS: u64 = 1_000;
/// Pause between retries, ms.
pub const RETRY_PAUSE_MS: u64 = 250;
/// Slots between a change's slot and the first slot it governs (docs/consensus.md:
/// 64 for clusters made by this version).
pub const DELAY_SLOTS: u64 = 64;
/// Restarts of a node whose join failed (no member answered it), at most.
pub const JOIN_ATTEMPTS_MAX: u32 = 5;
/// Slots laid out in one run, at most (each has its ports, user and directory).
pub const SLOTS_MAX: usize = 64;

/// One membership step as it happened (a line of faults.jsonl).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct MemberRecord {
    pub step: String,
    /// What happened, in order.
    pub detail: Vec<String>,
    /// False when a bound ran out before the step was done.
    pub finished: bool,
    /// Ids added, promoted and removed, and the voter whose disk was lost.
    pub added: Vec<u64>,
    pub promoted: Vec<u64>,
    pub removed: Vec<u64>,
    pub disk_lost: Option<u64>,
    /// The membership the cluster reported after the step.
    pub voters_after: Vec<u64>,
    pub learners_after: Vec<u64>,
}

/// Totals for the summary.
#[derive(Clone, Debug, Default)]
pub struct ChurnStats {
    pub steps: u32,
    pub unfinished: u32,
    pub adds: u32,
    pub promotes: u32,
    pub removes: u32,
    pub disks_lost: u32,
    pub replacements: u32,
    pub cycles: u32,
    /// Fewest and most voters the cluster reported after a step.
    pub voters_min: Option<usize>,
    pub voters_max: Option<usize>,
    /// The voters after the final restart.
    pub final_voters: Vec<u64>,
    pub final_learners: Vec<u64>,
}

/// The churn of one run.
#[derive(Debug)]
pub struct Churn {
    cycle: Cycle,
    rng: Rng,
    /// Voters whose directories were deleted.
    lost: Vec<u64>,
    /// Whether nodes run as their own users (new slots get new users).
    accounts: bool,
    pub stats: ChurnStats,
}

fn pause() -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS))
}

impl Churn {
    pub fn new(seed: u64, accounts: bool) -> Churn {
        Churn {
            cycle: Cycle::new(),
            rng: Rng::new(seed, 5),
            lost: Vec::new(),
            accounts,
            stats: ChurnStats::default(),
        }
    }

    /// A running, unpaused member to send a request to (seeded), other than `avoid`.
    fn target(&mut self, cluster: &Cluster, avoid: Option<usize>) -> Option<(usize, String)> {
        let live: Vec<usize> = cluster
            .members()
            .into_iter()
            .filter(|&i| Some(i) != avoid)
            .filter(|&i| {
                cluster
                    .nodes
                    .get(i)
                    .is_some_and(|n| n.is_running() && !n.is_paused())
            })
            .collect();
        let i = *live.get(self.rng.index(live.len().max(1)))?;
        Some((i, cluster.url(i)))
    }

    /// The newest membership any running member reports (highest membership slot,
    /// then commit index), or None when none answers.
    pub async fn observe(sh: &Shared, cluster: &Cluster) -> Option<ClusterView> {
        Self::observe_without(sh, cluster, None).await
    }

    /// One membership step: plans it from what the cluster reports and carries it out.
    /// Nodes that exited on their own meanwhile go to `exits`.
    pub async fn step(
        &mut self,
        sh: &Shared,
        cluster: &mut Cluster,
        exits: &mut Vec<Exit>,
    ) -> MemberRecord {
        let mut rec = MemberRecord::default();
        let Some(before) = Self::observe(sh, cluster).await else {
            rec.step = "observe".into();
            rec.detail
                .push("no member answered GET /v1/cluster: no change this round".into());
            self.stats.steps += 1;
            self.stats.unfinished += 1;
            return rec;
        };
        let step = self.cycle.plan(&mut self.rng, &before.view(), &self.lost);
        rec.step = step.name().into();
        let finished = match &step {
            Step::Grow => self.grow(sh, cluster, exits, &mut rec).await,
            Step::Promote { id } => self.promote(sh, cluster, *id, &mut rec).await,
            Step::RemoveLearner { id } => self.remove(sh, cluster, *id, &mut rec).await,
            Step::LoseDisk { id, leader } => self.lose_disk(sh, cluster, *id, *leader, &mut rec),
            Step::Replace { dead } => {
                let removed = self.remove(sh, cluster, *dead, &mut rec).await;
                let grown = removed && self.grow(sh, cluster, exits, &mut rec).await;
                self.stats.replacements += u32::from(grown);
                grown
            }
            Step::Shrink { id, leader } => {
                if *leader {
                    rec.detail.push(format!("id {id} leads"));
                }
                self.remove(sh, cluster, *id, &mut rec).await
            }
        };
        rec.finished = finished;
        self.stats.steps += 1;
        self.stats.unfinished += u32::from(!finished);
        if let Some(after) = Self::observe(sh, cluster).await {
            self.note(&after.view());
            rec.voters_after = after.voters;
            rec.learners_after = after.learners;
        }
        rec
    }

    /// Takes what the cluster reports into the totals.
    fn note(&mut self, view: &View) {
        let n = view.voters.len();
        self.stats.voters_min = Some(self.stats.voters_min.map_or(n, |m| m.min(n)));
        self.stats.voters_max = Some(self.stats.voters_max.map_or(n, |m| m.max(n)));
        self.cycle.observe(view);
        self.stats.cycles = self.cycle.completed;
    }

    /// Records the membership after the final restart.
    pub async fn finish(&mut self, sh: &Shared, cluster: &Cluster) {
        if let Some(v) = Self::observe(sh, cluster).await {
            self.note(&v.view());
            self.stats.final_voters = v.voters;
            self.stats.final_learners = v.learners;
        }
    }

    /// A spare slot (one whose add never went through is reused), or a new one.
    fn spare(&mut self, cluster: &mut Cluster) -> Result<usize, String> {
        if let Some(i) = cluster
            .nodes
            .iter()
            .position(|n| n.state == SlotState::Spare)
        {
            return Ok(i);
        }
        if cluster.nodes.len() >= SLOTS_MAX {
            return Err(format!("{SLOTS_MAX} slots laid out already"));
        }
        let account = if self.accounts {
            Some(accounts::ensure_one(cluster.nodes.len() + 1)?)
        } else {
            None
        };
        cluster.add_slot(account)
    }

    /// Adds a new node as a learner, starts it with `JOIN`, waits for it to serve and
    /// promotes it.
    async fn grow(
        &mut self,
        sh: &Shared,
        cluster: &mut Cluster,
        exits: &mut Vec<Exit>,
        rec: &mut MemberRecord,
    ) -> bool {
        let slot = match self.spare(cluster) {
            Ok(s) => s,
            Err(e) => {
                rec.detail.push(format!("no slot for a new node: {e}"));
                return false;
            }
        };
        let Some(id) = self.add(sh, cluster, slot, rec).await else {
            return false;
        };
        self.stats.adds += 1;
        rec.added.push(id);
        if !self.join(sh, cluster, slot, id, exits, rec).await {
            return false;
        }
        self.promote(sh, cluster, id, rec).await
    }

    /// `POST /v1/cluster/members` for `slot` until chosen; its id.
    async fn add(
        &mut self,
        sh: &Shared,
        cluster: &Cluster,
        slot: usize,
        rec: &mut MemberRecord,
    ) -> Option<u64> {
        let peer = cluster.peer_addr(slot);
        let client = cluster.client_addr(slot);
        let start = Instant::now();
        let mut tries = 0u32;
        let mut last = String::new();
        while start.elapsed() < Duration::from_millis(ADD_MS_MAX) {
            tries += 1;
            let Some((_, base)) = self.target(cluster, None) else {
                last = "no member runs".into();
                pause().await;
                continue;
            };
            match member_api::add(&sh.http, &base, &peer, &client).await {
                Reply::Done(body) => {
                    if let Some(id) = body.get("id").and_then(serde_json::Value::as_u64) {
                        rec.detail.push(format!(
                            "added n{} as learner id {id} ({tries} tries)",
                            slot + 1
                        ));
                        return Some(id);
                    }
                    last = format!("201 without an id: {body}");
                }
                Reply::Retry(why) => last = why,
                Reply::Unknown(why) | Reply::Refused(_, serde_json::Value::String(why)) => {
                    last = why
                }
                Reply::Refused(status, body) => last = format!("{status} {body}"),
            }
            // An unknown outcome, or a 400 for an address already added by an attempt
            // whose answer was lost: the cluster says whether the add was chosen.
            if let Some(id) = Self::observe(sh, cluster)
                .await
                .and_then(|v| v.id_of(&peer))
            {
                rec.detail.push(format!(
                    "added n{} as learner id {id} (learnt from GET /v1/cluster after: {last})",
                    slot + 1
                ));
                return Some(id);
            }
            pause().await;
        }
        rec.detail.push(format!(
            "add of n{} not chosen within {ADD_MS_MAX} ms ({tries} tries; last: {last})",
            slot + 1
        ));
        None
    }

    /// Starts the learner in `slot` with `JOIN` and waits until it answers `/ready`;
    /// then it joins the pool.
    async fn join(
        &mut self,
        sh: &Shared,
        cluster: &mut Cluster,
        slot: usize,
        id: u64,
        exits: &mut Vec<Exit>,
        rec: &mut MemberRecord,
    ) -> bool {
        let start = Instant::now();
        let mut attempts = 0u32;
        let url = cluster.url(slot);
        loop {
            if !cluster.nodes.get(slot).is_some_and(|n| n.is_running()) {
                attempts += 1;
                if attempts > JOIN_ATTEMPTS_MAX {
                    rec.detail.push(format!(
                        "n{} failed to join {JOIN_ATTEMPTS_MAX} times",
                        slot + 1
                    ));
                    return false;
                }
                // Through the leader when it runs (it knows the add); else any member,
                // which may not know it yet (then the node exits and is started again).
                let leader = Self::observe_without(sh, cluster, Some(slot))
                    .await
                    .and_then(|v| v.leader)
                    .and_then(|l| cluster.slot_of(l))
                    .filter(|&l| {
                        cluster
                            .nodes
                            .get(l)
                            .is_some_and(|n| n.is_running() && !n.is_paused())
                    });
                let via = match leader {
                    Some(l) => cluster.url(l),
                    None => self
                        .target(cluster, Some(slot))
                        .map(|(_, u)| u)
                        .unwrap_or_default(),
                };
                if let Some(n) = cluster.nodes.get_mut(slot) {
                    n.server_id = Some(id);
                    n.state = SlotState::Member;
                    n.join = Some(via);
                }
                if let Err(e) = cluster.start(slot) {
                    rec.detail.push(format!("starting n{}: {e}", slot + 1));
                    return false;
                }
            }
            let ready = sh
                .http
                .get(format!("{url}/ready"))
                .timeout(Duration::from_millis(1_500))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ready {
                sh.pool.insert(slot, url);
                rec.detail.push(format!(
                    "n{} (id {id}) joined and ready after {} ms",
                    slot + 1,
                    start.elapsed().as_millis()
                ));
                return true;
            }
            for e in cluster.reap_exited() {
                let joined = cluster
                    .nodes
                    .get(slot)
                    .is_some_and(|n| n.data_dir.join("cluster.json").exists());
                if e.node == slot + 1 && !joined {
                    // The join itself failed (the member asked did not answer): the
                    // directory is still new; start again through another member.
                    rec.detail.push(format!(
                        "n{} exited before joining ({}): {}",
                        slot + 1,
                        e.status,
                        cluster.log_tail(slot, 1)
                    ));
                } else {
                    exits.push(e);
                }
            }
            if start.elapsed() > Duration::from_millis(READY_MS_MAX) {
                rec.detail.push(format!(
                    "n{} (id {id}) not ready within {READY_MS_MAX} ms",
                    slot + 1
                ));
                return false;
            }
            pause().await;
        }
    }

    /// Promotes learner `id` once it has caught up.
    async fn promote(
        &mut self,
        sh: &Shared,
        cluster: &Cluster,
        id: u64,
        rec: &mut MemberRecord,
    ) -> bool {
        let start = Instant::now();
        let mut waits = 0u32;
        let mut last = String::new();
        while start.elapsed() < Duration::from_millis(PROMOTE_MS_MAX) {
            let Some((_, base)) = self.target(cluster, None) else {
                pause().await;
                continue;
            };
            match member_api::promote(&sh.http, &base, id).await {
                Reply::Done(_) => {
                    rec.detail.push(format!(
                        "promoted id {id} after {} ms ({waits} retries)",
                        start.elapsed().as_millis()
                    ));
                    rec.promoted.push(id);
                    self.stats.promotes += 1;
                    return true;
                }
                Reply::Retry(why) => {
                    waits += 1;
                    last = why;
                }
                Reply::Unknown(why) | Reply::Refused(_, serde_json::Value::String(why)) => {
                    last = why
                }
                Reply::Refused(status, body) => last = format!("{status} {body}"),
            }
            if !last.starts_with("409") {
                // After a lost answer (or a 400 "already votes"), ask the cluster.
                if let Some(v) = Self::observe(sh, cluster).await {
                    if v.voters.contains(&id) {
                        rec.detail.push(format!(
                            "id {id} votes (learnt from GET /v1/cluster after: {last})"
                        ));
                        rec.promoted.push(id);
                        self.stats.promotes += 1;
                        return true;
                    }
                    if !v.has(id) {
                        rec.detail
                            .push(format!("id {id} is no member: cannot promote ({last})"));
                        return false;
                    }
                }
            }
            pause().await;
        }
        rec.detail.push(format!(
            "id {id} not promoted within {PROMOTE_MS_MAX} ms ({waits} retries; last: {last}); it stays a learner"
        ));
        false
    }

    /// Removes member `id` (a voter or a learner), waits until the removal governs,
    /// then stops its process and retires its slot.
    async fn remove(
        &mut self,
        sh: &Shared,
        cluster: &mut Cluster,
        id: u64,
        rec: &mut MemberRecord,
    ) -> bool {
        let slot = cluster.slot_of(id);
        let start = Instant::now();
        let mut last = String::new();
        let mut gone = false;
        while start.elapsed() < Duration::from_millis(REMOVE_MS_MAX) {
            let Some((_, base)) = self.target(cluster, slot) else {
                pause().await;
                continue;
            };
            match member_api::remove(&sh.http, &base, id).await {
                Reply::Done(_) => {
                    gone = true;
                    break;
                }
                Reply::Retry(why) => last = why,
                Reply::Unknown(why) | Reply::Refused(_, serde_json::Value::String(why)) => {
                    last = why
                }
                Reply::Refused(status, body) => last = format!("{status} {body}"),
            }
            if !last.starts_with("409") {
                if let Some(v) = Self::observe(sh, cluster).await {
                    if !v.has(id) {
                        gone = true;
                        break;
                    }
                }
            }
            pause().await;
        }
        if !gone {
            rec.detail.push(format!(
                "removal of id {id} not chosen within {REMOVE_MS_MAX} ms (last: {last}); it stays"
            ));
            return false;
        }
        rec.removed.push(id);
        self.stats.removes += 1;
        // Let the change govern before the node goes: a removed voter still votes for
        // the slots before it. (Stopping it earlier would be safe, as any crash is, but
        // would cost the smaller cluster a voter meanwhile.)
        let governs = Instant::now();
        let mut governed = false;
        while governs.elapsed() < Duration::from_millis(GOVERN_MS_MAX) {
            if let Some(v) = Self::observe_without(sh, cluster, slot).await {
                if !v.has(id) && v.commit_index >= v.membership_slot + DELAY_SLOTS {
                    governed = true;
                    break;
                }
            }
            pause().await;
        }
        rec.detail.push(format!(
            "removed id {id} after {} ms; {} after {} ms more; {}",
            governs.duration_since(start).as_millis(),
            if governed {
                "governs"
            } else {
                "not seen governing"
            },
            governs.elapsed().as_millis(),
            slot.map_or("its node was already down for good".into(), |s| format!(
                "stopped n{}",
                s + 1
            ))
        ));
        if let Some(s) = slot {
            // The removed node serves on for a while, still in the pool: a request it
            // answers now must still be right (no stale read from a node that has left).
            tokio::time::sleep(Duration::from_millis(REMOVED_LINGER_MS)).await;
            sh.pool.remove(s);
            cluster.retire(s);
        }
        true
    }

    /// Like [`Churn::observe`], but not asking the slot `skip` (a node being removed
    /// still reports its own old view).
    async fn observe_without(
        sh: &Shared,
        cluster: &Cluster,
        skip: Option<usize>,
    ) -> Option<ClusterView> {
        let mut best: Option<ClusterView> = None;
        for i in cluster.members() {
            if Some(i) == skip {
                continue;
            }
            let Some(node) = cluster.nodes.get(i) else {
                continue;
            };
            if !node.is_running() || node.is_paused() {
                continue;
            }
            let Ok(v) = member_api::view(&sh.http, &cluster.url(i)).await else {
                continue;
            };
            if best.as_ref().is_none_or(|b| {
                (v.membership_slot, v.commit_index) > (b.membership_slot, b.commit_index)
            }) {
                best = Some(v);
            }
        }
        best
    }

    /// SIGKILLs voter `id` and deletes its data directory.
    fn lose_disk(
        &mut self,
        sh: &Shared,
        cluster: &mut Cluster,
        id: u64,
        leader: bool,
        rec: &mut MemberRecord,
    ) -> bool {
        let Some(slot) = cluster.slot_of(id) else {
            rec.detail
                .push(format!("voter id {id} has no slot here: no disk lost"));
            return false;
        };
        sh.pool.remove(slot);
        match cluster.lose_disk(slot) {
            Ok(()) => {
                self.lost.push(id);
                self.stats.disks_lost += 1;
                rec.disk_lost = Some(id);
                rec.detail.push(format!(
                    "n{} (id {id}{}) SIGKILLed and its data directory deleted",
                    slot + 1,
                    if leader { ", the leader" } else { "" }
                ));
                true
            }
            Err(e) => {
                rec.detail.push(e);
                false
            }
        }
    }
}
