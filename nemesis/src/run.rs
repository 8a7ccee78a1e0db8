//! One run end to end: set up the out dir, accounts, firewall and cluster; run the
//! clients, the watch follower and the fault schedule; heal; measure recovery; restart
//! the whole cluster; read the final state; then check everything.
//!
//! Process control happens only on the task that calls [`run`] (the main thread, see
//! `cluster.rs`); clients and the watcher are tokio tasks that never spawn processes.
//! Every wait is bounded; the cluster and the firewall clean up on drop.

use crate::accounts::{self, Account};
use crate::checker::{self, Budget, KeyReport};
use crate::checks::{self, CheckResult};
use crate::churn::{Churn, ChurnStats, MemberRecord};
use crate::client::{self, Shared};
use crate::cluster::{Cluster, Exit};
use crate::config::Config;
use crate::faults::{plan_round, Fault, FaultKind, Round, HOLD_MS, QUIET_MS};
use crate::firewall::Firewall;
use crate::history::{self, Op, PROBE_CLIENT};
use crate::inject::{heal_all, inject};
use crate::probes::{final_reads, leader, listing, probe_write, wait_ready, PROBE_MS_MAX};
use crate::rng::Rng;
use crate::watch::{self, WatchLog};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long nodes get to become ready at start, ms.
pub const START_READY_MS: u64 = 60_000;
/// How long the watch follower gets to reach the final revision, ms.
pub const WATCH_CATCH_UP_MS: u64 = 30_000;
/// Model steps per key for the checker.
pub const CHECK_STEPS_MAX: u64 = 20_000_000;
/// The file marking a directory as a nemesis out dir (only such are wiped).
pub const MARKER: &str = ".concierge-nemesis";
/// With membership churn on, the chance that a round makes a membership step.
pub const MEMBERS_CHANCE: f64 = 0.5;
/// The chance that a membership step keeps the round's planned faults beside it.
pub const MEMBERS_COMBINE_CHANCE: f64 = 0.3;

/// One round of faults as it happened.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct FaultRecord {
    pub round: u32,
    pub inject_us: u64,
    pub heal_us: u64,
    pub what: Vec<String>,
    pub kinds: Vec<String>,
    /// The leader (from 1) the cluster reported before the round.
    pub leader: Option<usize>,
    /// First definite write answer after the heal, µs after it (before the next round).
    pub recovered_after_us: Option<u64>,
    /// The membership step made in this round, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<MemberRecord>,
}

/// Recovery measurements.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// From the final heal to the first acknowledged write.
    pub after_heal_ms: Option<u64>,
    /// From the restart of every node to the first acknowledged write.
    pub after_restart_ms: Option<u64>,
}

/// Everything a run produced.
#[derive(Debug)]
pub struct RunReport {
    pub ops: Vec<Op>,
    pub faults: Vec<FaultRecord>,
    pub watch: WatchLog,
    pub key_reports: Vec<KeyReport>,
    pub checks: Vec<CheckResult>,
    pub recovery: Recovery,
    /// Nodes that exited without being killed.
    pub exits: Vec<Exit>,
    /// Things to know that are not failures (partitions skipped, etc.).
    pub notes: Vec<String>,
    /// Membership churn's totals, when it was on.
    pub churn: Option<ChurnStats>,
    pub final_revision: u64,
    pub elapsed: Duration,
}

impl RunReport {
    /// True when every check passed and every key is linearizable.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
            && self
                .key_reports
                .iter()
                .all(|k| k.verdict == checker::Verdict::Linearizable)
    }
}

/// Prepares the out dir: wipes an earlier run's (marked) directory, refuses others
/// that are not empty, and makes it traversable by the node users.
fn prepare_out(out: &Path, shared_with_users: bool) -> Result<(), String> {
    if out.exists() {
        let empty = std::fs::read_dir(out)
            .map_err(|e| format!("{}: {e}", out.display()))?
            .next()
            .is_none();
        if !empty && !out.join(MARKER).exists() {
            return Err(format!(
                "{} exists and is not a nemesis out dir; choose another --out",
                out.display()
            ));
        }
        std::fs::remove_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    std::fs::write(out.join(MARKER), b"").map_err(|e| e.to_string())?;
    if shared_with_users {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let full = std::fs::canonicalize(out).map_err(|e| e.to_string())?;
        for dir in full.ancestors().skip(1) {
            let mode = std::fs::metadata(dir)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            if mode & 0o001 == 0 {
                return Err(format!(
                    "{} is not traversable by other users, so the node users cannot reach their data; use an --out under /tmp",
                    dir.display()
                ));
            }
        }
    }
    Ok(())
}

fn save_json_lines<T: Serialize>(path: &Path, items: &[T]) -> Result<(), String> {
    let mut text = String::new();
    for it in items {
        text.push_str(&serde_json::to_string(it).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Sleeps `ms`, but not past `deadline`; reaps crashed nodes meanwhile.
async fn sleep_watching(ms: u64, deadline: Instant, cluster: &mut Cluster, exits: &mut Vec<Exit>) {
    let until = (Instant::now() + Duration::from_millis(ms)).min(deadline);
    while Instant::now() < until {
        tokio::time::sleep(
            Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())),
        )
        .await;
        exits.extend(cluster.reap_exited());
    }
}

/// Fills in each round's recovery: the first definite write answer after its heal, if
/// one came before the next round's faults.
fn measure_rounds(faults: &mut [FaultRecord], ops: &[Op]) {
    let mut writes: Vec<(u64, u64)> = ops
        .iter()
        .filter(|o| o.call.is_write() && o.outcome.is_definite() && o.client != PROBE_CLIENT)
        .filter_map(|o| o.complete_us.map(|c| (o.invoke_us, c)))
        .collect();
    writes.sort_unstable();
    let next_injects: Vec<u64> = faults
        .iter()
        .skip(1)
        .map(|f| f.inject_us)
        .chain([u64::MAX])
        .collect();
    for (f, next) in faults.iter_mut().zip(next_injects) {
        f.recovered_after_us = writes
            .iter()
            .filter(|(inv, comp)| *inv >= f.heal_us && *comp <= next)
            .map(|(_, comp)| comp - f.heal_us)
            .min();
    }
}

/// Runs the whole thing.
pub async fn run(cfg: &Config) -> Result<RunReport, String> {
    let started = Instant::now();
    let mut notes = Vec::new();
    let mut kinds = cfg.faults.clone();
    let accounts: Option<Vec<Account>> = match accounts::ensure(cfg.nodes) {
        Ok(a) => Some(a),
        Err(e) => {
            notes.push(format!("nodes run as this user ({e})"));
            None
        }
    };
    prepare_out(&cfg.out, accounts.is_some())?;
    let mut firewall = None;
    if kinds.contains(&FaultKind::Partition) {
        let why = if accounts.is_none() {
            Err("no per-node users".to_string())
        } else {
            Firewall::setup()
        };
        match why {
            Ok(fw) => firewall = Some(fw),
            Err(e) => {
                let msg = format!("partitions skipped: {e}");
                eprintln!("nemesis: {msg}");
                notes.push(msg);
                kinds.retain(|k| *k != FaultKind::Partition);
            }
        }
    }
    // The node users may not be able to reach the binary where it was built (a clone
    // under /root, say): they run a copy in the out dir, which they can traverse.
    let binary = if accounts.is_some() {
        use std::os::unix::fs::PermissionsExt;
        let copy = cfg.out.join("concierge");
        std::fs::copy(&cfg.binary, &copy)
            .and_then(|_| std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("copying {} into the out dir: {e}", cfg.binary.display()))?;
        copy
    } else {
        cfg.binary.clone()
    };
    let mut cluster = Cluster::new(&binary, &cfg.out, cfg.nodes, accounts.as_deref(), cfg.seed)?;
    let urls: Vec<String> = (0..cfg.nodes).map(|i| cluster.url(i)).collect();
    let mut churn = cfg
        .members
        .then(|| Churn::new(cfg.seed, accounts.is_some()));
    let sh = Arc::new(Shared::new(
        urls,
        cfg.keys,
        cfg.seed,
        Duration::from_millis(cfg.timeout_ms),
        cfg.think_ms,
        cfg.resolve_fraction,
        &cfg.reads,
    )?);
    for i in 0..cfg.nodes {
        cluster.start(i)?;
    }
    if let Err(i) = wait_ready(&sh, &sh.pool.all(), Duration::from_millis(START_READY_MS)).await {
        return Err(format!(
            "node {} not ready within {START_READY_MS} ms; its log ends:\n{}",
            i + 1,
            cluster.log_tail(i, 30)
        ));
    }
    eprintln!(
        "nemesis: seed {} — {} nodes ready, {} clients on {} keys for {} s, faults {:?}{}",
        cfg.seed,
        cfg.nodes,
        cfg.clients,
        cfg.keys,
        cfg.seconds,
        kinds,
        if churn.is_some() {
            " and membership churn"
        } else {
            ""
        }
    );

    // Workload and watch.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let progress = Arc::new(AtomicU64::new(0));
    let watcher = tokio::spawn(watch::follow(sh.clone(), stop_rx, progress.clone()));
    let deadline = Instant::now() + Duration::from_secs(cfg.seconds);
    let clients: Vec<_> = (0..cfg.clients)
        .map(|c| tokio::spawn(client::run_client(sh.clone(), c as u32, deadline)))
        .collect();

    // The fault schedule. Rounds are planned over the current members (all nodes,
    // without churn) and land on their slots.
    let mut rng = Rng::new(cfg.seed, 1);
    let mut mrng = Rng::new(cfg.seed, 6);
    let mut exits: Vec<Exit> = Vec::new();
    let mut faults: Vec<FaultRecord> = Vec::new();
    let mut round = 0u32;
    while Instant::now() < deadline {
        let members = cluster.members();
        let l = leader(&sh, &cluster).await;
        let l_at = l.and_then(|s| members.iter().position(|&m| m == s));
        let mut plan = if members.len() >= 3 {
            plan_round(&mut rng, &kinds, members.len(), l_at)
        } else {
            Round {
                quiet_ms: QUIET_MS.0,
                hold_ms: HOLD_MS.0,
                faults: Vec::new(),
            }
        };
        plan.faults = plan.faults.into_iter().map(|f| f.onto(&members)).collect();
        let step_now = churn.is_some() && mrng.chance(MEMBERS_CHANCE);
        if step_now && !mrng.chance(MEMBERS_COMBINE_CHANCE) {
            plan.faults.clear();
        }
        // A step needs a quorum to make progress: never beside killing every node.
        plan.faults
            .retain(|f| !(step_now && matches!(f, Fault::Kill { target: "all", .. })));
        sleep_watching(plan.quiet_ms, deadline, &mut cluster, &mut exits).await;
        if Instant::now() >= deadline || (plan.faults.is_empty() && !step_now) {
            sleep_watching(plan.hold_ms, deadline, &mut cluster, &mut exits).await;
            continue;
        }
        round += 1;
        let inject_us = sh.now_us();
        let mut what: Vec<String> = plan.faults.iter().map(Fault::describe).collect();
        eprintln!(
            "nemesis: {:>7.1}s round {round}: {}",
            inject_us as f64 / 1e6,
            if what.is_empty() {
                "members".to_string()
            } else {
                what.join(" + ")
            }
        );
        let injected = inject(&mut cluster, firewall.as_ref(), &plan.faults);
        let held = Instant::now() + Duration::from_millis(plan.hold_ms);
        let mut member_record = None;
        if injected.is_ok() {
            if let Some(ch) = churn.as_mut() {
                if step_now {
                    let rec = ch.step(&sh, &mut cluster, &mut exits).await;
                    eprintln!(
                        "nemesis: {:>7.1}s   members {}{}: {} -> voters {:?} learners {:?}",
                        sh.now_us() as f64 / 1e6,
                        rec.step,
                        if rec.finished { "" } else { " (unfinished)" },
                        rec.detail.join("; "),
                        rec.voters_after,
                        rec.learners_after
                    );
                    what.push(format!(
                        "members {}{}",
                        rec.step,
                        if rec.finished { "" } else { " unfinished" }
                    ));
                    member_record = Some(rec);
                }
            }
            if !plan.faults.is_empty() {
                sleep_watching(plan.hold_ms, held, &mut cluster, &mut exits).await;
            }
        }
        heal_all(&mut cluster, firewall.as_ref())?;
        injected?;
        let mut kinds_done: Vec<String> = plan
            .faults
            .iter()
            .map(|f| f.kind().name().to_string())
            .collect();
        if member_record.is_some() {
            kinds_done.push("members".into());
        }
        faults.push(FaultRecord {
            round,
            inject_us,
            heal_us: sh.now_us(),
            what,
            kinds: kinds_done,
            leader: l.map(|x| x + 1),
            recovered_after_us: None,
            members: member_record,
        });
    }
    heal_all(&mut cluster, firewall.as_ref())?;
    // The probe runs while the clients finish their last operations (and retries).
    let probe = tokio::spawn(probe_write(sh.clone(), 2, "heal", Instant::now()));
    let mut ops: Vec<Op> = Vec::new();
    for c in clients {
        ops.extend(c.await.map_err(|e| format!("client task: {e}"))?);
    }
    let (probe_ops, probed) = probe.await.map_err(|e| format!("probe task: {e}"))?;
    ops.extend(probe_ops);
    let mut recovery = Recovery {
        after_heal_ms: probed.map(|d| d.as_millis() as u64),
        after_restart_ms: None,
    };
    exits.extend(cluster.reap_exited());

    // A full restart: every acknowledged write must survive it.
    eprintln!("nemesis: killing and restarting every node");
    cluster.kill_all();
    for i in cluster.members() {
        cluster.start(i)?;
    }
    let (probe_ops, probed) = probe_write(sh.clone(), 3, "restart", Instant::now()).await;
    ops.extend(probe_ops);
    recovery.after_restart_ms = probed.map(|d| d.as_millis() as u64);
    if let Some(ch) = churn.as_mut() {
        ch.finish(&sh, &cluster).await;
    }
    let mut prng = Rng::new(cfg.seed, 4);
    let reads = final_reads(&sh, &mut prng, &mut ops).await;
    let listed = listing(&sh, &mut prng).await;
    let final_revision = listed.as_ref().map_or(0, |l| l.1);
    let catch_up = Instant::now();
    while progress.load(Ordering::Relaxed) < final_revision
        && catch_up.elapsed() < Duration::from_millis(WATCH_CATCH_UP_MS)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(true);
    let watch_log = watcher.await.map_err(|e| format!("watch task: {e}"))?;
    exits.extend(cluster.reap_exited());
    cluster.kill_all();
    drop(firewall);

    // Save, then check.
    ops.sort_by_key(|o| (o.invoke_us, o.id));
    measure_rounds(&mut faults, &ops);
    history::save(&cfg.out.join("history.jsonl"), &ops).map_err(|e| e.to_string())?;
    save_json_lines(&cfg.out.join("faults.jsonl"), &faults)?;
    save_json_lines(&cfg.out.join("watch.jsonl"), &watch_log.events)?;
    eprintln!("nemesis: checking {} operations", ops.len());
    let budget = Budget {
        steps_max: CHECK_STEPS_MAX,
        deadline: Instant::now() + Duration::from_secs(cfg.check_seconds),
    };
    let key_reports = checker::check(&ops, budget);
    let mut checks_done = vec![checks::contract(&ops), checks::revisions(&ops)];
    match &listed {
        Some((l, rev)) => {
            checks_done.push(checks::watch_stream(&watch_log, &ops, *rev, l));
            checks_done.push(checks::final_state(&reads, l));
        }
        None => checks_done.push(CheckResult {
            name: "final-state",
            passed: false,
            details: vec!["no final listing within the bound".into()],
        }),
    }
    let bound = cfg.recovery_bound_s * 1000;
    let mut live = Vec::new();
    for (what, t) in [
        ("the heal", recovery.after_heal_ms),
        ("the full restart", recovery.after_restart_ms),
    ] {
        match t {
            Some(ms) if ms <= bound => {}
            Some(ms) => live.push(format!(
                "first write acknowledged {ms} ms after {what} (bound {bound} ms)"
            )),
            None => live.push(format!(
                "no write acknowledged within {PROBE_MS_MAX} ms after {what}"
            )),
        }
    }
    checks_done.push(CheckResult {
        name: "recovery",
        passed: live.is_empty(),
        details: if live.is_empty() {
            vec![format!(
                "writes acknowledged {} ms after the heal, {} ms after the full restart (bound {bound} ms)",
                recovery.after_heal_ms.unwrap_or(0),
                recovery.after_restart_ms.unwrap_or(0)
            )]
        } else {
            live
        },
    });
    checks_done.push(CheckResult {
        name: "no-crash",
        passed: exits.is_empty(),
        details: if exits.is_empty() {
            vec!["no node exited unless killed".into()]
        } else {
            exits
                .iter()
                .map(|e| format!("node {} exited on its own: {}", e.node, e.status))
                .collect()
        },
    });
    Ok(RunReport {
        ops,
        faults,
        watch: watch_log,
        key_reports,
        checks: checks_done,
        recovery,
        exits,
        notes,
        churn: churn.map(|c| c.stats),
        final_revision,
        elapsed: started.elapsed(),
    })
}
