//! The run's report as text: operations per kind and outcome, faults injected, recovery
//! times, the checker's verdicts (violations in full), the other checks, and the final
//! plain line `nemesis: N passed, N failed` that CI reads.

use crate::checker::{KeyReport, Verdict};
use crate::churn::ChurnStats;
use crate::config::Config;
use crate::history::{Column, Op, PROBE_CLIENT};
use crate::run::{FaultRecord, RunReport};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The operations table: one row per kind, one column per [`Column`].
pub fn ops_table(ops: &[Op]) -> String {
    let mut rows: BTreeMap<&str, [u64; 5]> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.client != PROBE_CLIENT) {
        let row = rows.entry(op.call.kind()).or_default();
        let col = match op.outcome.column() {
            Column::Ok => 0,
            Column::Refused => 1,
            Column::NotApplied => 2,
            Column::Unknown => 3,
            Column::Unexpected => 4,
        };
        if let Some(c) = row.get_mut(col) {
            *c += 1;
        }
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "  {:<11} {:>8} {:>9} {:>11} {:>8} {:>7}",
        "kind", "ok", "404/412", "503/unsent", "unknown", "breach"
    );
    let mut total = [0u64; 5];
    for (kind, r) in &rows {
        let _ = writeln!(
            t,
            "  {kind:<11} {:>8} {:>9} {:>11} {:>8} {:>7}",
            r[0], r[1], r[2], r[3], r[4]
        );
        for (a, b) in total.iter_mut().zip(r) {
            *a += b;
        }
    }
    let _ = writeln!(
        t,
        "  {:<11} {:>8} {:>9} {:>11} {:>8} {:>7}",
        "total", total[0], total[1], total[2], total[3], total[4]
    );
    let retried = ops.iter().filter(|o| o.attempts > 1).count();
    let resolved = ops
        .iter()
        .filter(|o| o.attempts > 1 && o.complete_us.is_some())
        .count();
    let _ = writeln!(
        t,
        "  unknown outcomes retried with their Idempotency-Key: {retried}, resolved: {resolved}"
    );
    t
}

fn faults_text(faults: &[FaultRecord]) -> String {
    let mut by_what: BTreeMap<String, u32> = BTreeMap::new();
    for f in faults {
        for w in &f.what {
            // "kill leader [n2]" -> "kill leader"
            let label = w.split(" [").next().unwrap_or(w).to_string();
            *by_what.entry(label).or_default() += 1;
        }
    }
    let combined = faults.iter().filter(|f| f.what.len() > 1).count();
    let mut t = format!("  {} rounds, {combined} of them combined:", faults.len());
    for (w, n) in &by_what {
        let _ = write!(t, " {w} x{n};");
    }
    t.push('\n');
    let mut measured: Vec<u64> = faults
        .iter()
        .filter_map(|f| f.recovered_after_us)
        .map(|us| us / 1000)
        .collect();
    measured.sort_unstable();
    if let (Some(max), Some(median)) = (measured.last(), measured.get(measured.len() / 2)) {
        let _ = writeln!(
            t,
            "  first write answered after each heal: median {median} ms, max {max} ms ({} of {} rounds measured before the next one)",
            measured.len(),
            faults.len()
        );
    }
    t
}

fn churn_text(c: &ChurnStats, faults: &[FaultRecord]) -> String {
    let mut t = format!(
        "  {} steps ({} unfinished): {} adds, {} promotes, {} removes, {} disks lost, {} replacements; {} cycles 3 -> 5 -> disk lost -> replaced -> 3 completed\n",
        c.steps, c.unfinished, c.adds, c.promotes, c.removes, c.disks_lost, c.replacements, c.cycles
    );
    let _ = writeln!(
        t,
        "  voters reported after the steps: {} to {}; after the final restart: voters {:?}, learners {:?}",
        c.voters_min.map_or("?".into(), |n| n.to_string()),
        c.voters_max.map_or("?".into(), |n| n.to_string()),
        c.final_voters,
        c.final_learners
    );
    let sizes: Vec<String> = faults
        .iter()
        .filter_map(|f| f.members.as_ref())
        .map(|m| {
            format!(
                "{}{}{}",
                m.step,
                if m.finished { "" } else { "?" },
                if m.voters_after.is_empty() {
                    String::new()
                } else {
                    format!("({})", m.voters_after.len())
                }
            )
        })
        .collect();
    if !sizes.is_empty() {
        let _ = writeln!(
            t,
            "  steps (voters after; ? unfinished): {}",
            sizes.join(" ")
        );
    }
    for f in faults {
        let Some(m) = &f.members else { continue };
        if !m.finished {
            let _ = writeln!(
                t,
                "  round {} {} unfinished: {}",
                f.round,
                m.step,
                m.detail.join("; ")
            );
        }
    }
    t
}

fn keys_text(reports: &[KeyReport]) -> String {
    let ok = reports
        .iter()
        .filter(|r| r.verdict == Verdict::Linearizable)
        .count();
    let unknown = reports
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Unknown(_)))
        .count();
    let bad = reports.len() - ok - unknown;
    let ops: usize = reports.iter().map(|r| r.ops).sum();
    let unk: usize = reports.iter().map(|r| r.unknown).sum();
    let steps: u64 = reports.iter().map(|r| r.steps).sum();
    let mut t = format!(
        "  {} keys: {ok} linearizable, {unknown} unknown (budget), {bad} violations ({ops} ops checked, {unk} of unknown outcome, {steps} search steps)\n",
        reports.len()
    );
    for r in reports {
        match &r.verdict {
            Verdict::Linearizable => {}
            Verdict::Unknown(why) => {
                let _ = writeln!(t, "  key {}: UNKNOWN: {why}", r.key);
            }
            Verdict::Violation(text) => {
                for line in text.lines() {
                    let _ = writeln!(t, "  {line}");
                }
            }
        }
    }
    t
}

/// The full report.
pub fn render(cfg: &Config, r: &RunReport) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "== concierge-nemesis: seed {}, {} nodes, {} clients, {} keys, {} s of faults ({}), {:.0} s in all ==",
        cfg.seed,
        cfg.nodes,
        cfg.clients,
        cfg.keys,
        cfg.seconds,
        cfg.fault_names(),
        r.elapsed.as_secs_f64()
    );
    let _ = writeln!(
        t,
        "operations (clients; the harness's probes and final reads not counted):"
    );
    t.push_str(&ops_table(&r.ops));
    let _ = writeln!(t, "faults:");
    t.push_str(&faults_text(&r.faults));
    if let Some(c) = &r.churn {
        let _ = writeln!(t, "membership:");
        t.push_str(&churn_text(c, &r.faults));
    }
    let _ = writeln!(
        t,
        "recovery: first write acknowledged {} after the final heal, {} after the full restart",
        r.recovery
            .after_heal_ms
            .map_or("never".into(), |ms| format!("{ms} ms")),
        r.recovery
            .after_restart_ms
            .map_or("never".into(), |ms| format!("{ms} ms"))
    );
    let _ = writeln!(t, "linearizability:");
    t.push_str(&keys_text(&r.key_reports));
    let _ = writeln!(t, "checks (final revision {}):", r.final_revision);
    for c in &r.checks {
        let mark = if c.passed { "pass" } else { "FAIL" };
        let mut lines = c.details.iter();
        let _ = writeln!(
            t,
            "  [{mark}] {}: {}",
            c.name,
            lines.next().map_or("", String::as_str)
        );
        for l in lines {
            let _ = writeln!(t, "         {l}");
        }
    }
    for n in &r.notes {
        let _ = writeln!(t, "note: {n}");
    }
    t
}
