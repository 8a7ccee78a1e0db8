//! The checks besides linearizability, as pure functions over what the run recorded:
//! - `contract`: no answer the contract forbids (a 500, a malformed body);
//! - `watch_stream`: the watch saw every revision `1..=final` once, in order, across
//!   reconnects, and each event agrees with the acknowledged writes (same key, value,
//!   revision; no event for a write answered 503 or 412), and replaying the events
//!   gives the final listing;
//! - `revisions`: every report of one value (put answer, reads) names one mod_revision;
//! - `final_state`: the final listing agrees with the final linearizable reads.

use crate::history::{Call, Op, Outcome};
use crate::watch::WatchLog;
use std::collections::{BTreeMap, HashMap};

/// Details kept per failed check, at most.
pub const DETAILS_MAX: usize = 20;

/// The result of one check.
#[derive(Clone, Debug)]
pub struct CheckResult {
    pub name: &'static str,
    pub passed: bool,
    /// What failed (or, when passed, a one-line note).
    pub details: Vec<String>,
}

impl CheckResult {
    fn new(name: &'static str, failures: Vec<String>, note: String) -> CheckResult {
        let passed = failures.is_empty();
        let mut details = if passed { vec![note] } else { failures };
        let extra = details.len().saturating_sub(DETAILS_MAX);
        details.truncate(DETAILS_MAX);
        if extra > 0 {
            details.push(format!("... and {extra} more"));
        }
        CheckResult {
            name,
            passed,
            details,
        }
    }
}

/// One entry of the final `GET /v1/keys?prefix=` listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub key: String,
    pub value: String,
    pub version: u64,
    pub mod_revision: u64,
}

/// No answer outside the contract.
pub fn contract(ops: &[Op]) -> CheckResult {
    let failures: Vec<String> = ops
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Unexpected { .. }))
        .map(Op::describe)
        .collect();
    CheckResult::new(
        "contract",
        failures,
        "every answer within the contract".into(),
    )
}

/// Every value's reports name one mod_revision.
pub fn revisions(ops: &[Op]) -> CheckResult {
    let mut by_value: HashMap<(&str, &str), (u64, u64)> = HashMap::new();
    let mut failures = Vec::new();
    for op in ops {
        let (value, rev) = match (&op.call, &op.outcome) {
            (Call::Put { value, .. }, Outcome::Written { mod_revision, .. }) => {
                (value.as_str(), *mod_revision)
            }
            (
                _,
                Outcome::Found {
                    value,
                    mod_revision,
                    ..
                },
            ) => (value.as_str(), *mod_revision),
            _ => continue,
        };
        match by_value.get(&(op.key.as_str(), value)) {
            Some(&(r, first)) if r != rev => failures.push(format!(
                "{} {value}: mod_revision {rev} in op {}, {r} in op {first}",
                op.key, op.id
            )),
            Some(_) => {}
            None => {
                by_value.insert((op.key.as_str(), value), (rev, op.id));
            }
        }
    }
    CheckResult::new(
        "revisions",
        failures,
        format!("{} values, one mod_revision each", by_value.len()),
    )
}

/// The watch stream against the history and the final listing.
pub fn watch_stream(
    log: &WatchLog,
    ops: &[Op],
    final_revision: u64,
    listing: &[Listed],
) -> CheckResult {
    let mut failures = Vec::new();
    // Order, duplicates.
    let mut last = 0u64;
    for ev in &log.events {
        if ev.revision == last {
            failures.push(format!(
                "duplicate event at revision {} ({} {})",
                ev.revision, ev.kind, ev.key
            ));
        } else if ev.revision < last {
            failures.push(format!(
                "event at revision {} after revision {last}",
                ev.revision
            ));
        }
        last = last.max(ev.revision);
    }
    let by_rev: BTreeMap<u64, &crate::watch::WatchEvent> =
        log.events.iter().map(|e| (e.revision, e)).collect();
    // Gaps: every revision of the run is ours (a fresh cluster, one key per write).
    if let Some(c) = &log.compacted {
        failures.push(format!("a resume was answered 410 compacted: {c}"));
    } else {
        let mut missing = Vec::new();
        for r in 1..=final_revision {
            if !by_rev.contains_key(&r) {
                missing.push(r);
            }
        }
        if !missing.is_empty() {
            failures.push(format!(
                "{} revisions never delivered, first {:?}",
                missing.len(),
                &missing[..missing.len().min(10)]
            ));
        }
    }
    if last > final_revision {
        failures.push(format!(
            "event at revision {last} beyond the final revision {final_revision}"
        ));
    }
    // Events against the writes.
    let mut puts: HashMap<(&str, &str), &Op> = HashMap::new();
    for op in ops {
        if let Call::Put { value, .. } = &op.call {
            puts.insert((op.key.as_str(), value.as_str()), op);
        }
    }
    for ev in &log.events {
        if ev.kind == "put" {
            let value = ev.value.as_deref().unwrap_or("");
            match puts.get(&(ev.key.as_str(), value)) {
                None => failures.push(format!("rev {}: put of {value} to {} that no client wrote", ev.revision, ev.key)),
                Some(op) => match &op.outcome {
                    Outcome::NotApplied { .. } => failures.push(format!(
                        "rev {}: the write of op {} took effect but was answered 503 or never sent: {}",
                        ev.revision,
                        op.id,
                        op.describe()
                    )),
                    Outcome::Mismatch { .. } | Outcome::NotFound => failures.push(format!(
                        "rev {}: the write of op {} took effect but was refused: {}",
                        ev.revision,
                        op.id,
                        op.describe()
                    )),
                    Outcome::Written {
                        version,
                        mod_revision,
                    } if (*mod_revision, *version) != (ev.revision, ev.version) => failures.push(format!(
                        "rev {} version {}: op {} was answered mod_revision {mod_revision} version {version}",
                        ev.revision, ev.version, op.id
                    )),
                    _ => {}
                },
            }
        } else if ev.kind != "delete" {
            failures.push(format!("rev {}: event type {:?}", ev.revision, ev.kind));
        }
    }
    if log.compacted.is_none() {
        for op in ops {
            let (rev, what) = match &op.outcome {
                Outcome::Written { mod_revision, .. } => (*mod_revision, "put"),
                Outcome::Deleted { revision } => (*revision, "delete"),
                _ => continue,
            };
            match by_rev.get(&rev) {
                Some(ev) if ev.kind == what && ev.key == op.key => {
                    if let Call::Put { value, .. } = &op.call {
                        if ev.value.as_deref() != Some(value.as_str()) {
                            failures.push(format!("rev {rev}: the event carries {:?}, op {} wrote {value}", ev.value, op.id));
                        }
                    }
                }
                Some(ev) => failures.push(format!(
                    "rev {rev}: acknowledged {what} of {} (op {}) but the event is {} {}",
                    op.key, op.id, ev.kind, ev.key
                )),
                None if rev <= final_revision => failures.push(format!(
                    "rev {rev}: acknowledged {what} of {} (op {}) has no event",
                    op.key, op.id
                )),
                None => failures.push(format!(
                    "rev {rev}: acknowledged {what} (op {}) beyond the final revision {final_revision}",
                    op.id
                )),
            }
        }
    }
    // Replay: versions and the final state.
    let mut state: BTreeMap<&str, (String, u64)> = BTreeMap::new();
    for ev in &log.events {
        if ev.kind == "put" {
            let before = state.get(ev.key.as_str()).map_or(0, |s| s.1);
            if ev.version != before + 1 {
                failures.push(format!(
                    "rev {}: {} goes from version {before} to {}",
                    ev.revision, ev.key, ev.version
                ));
            }
            state.insert(
                ev.key.as_str(),
                (ev.value.clone().unwrap_or_default(), ev.version),
            );
        } else if state.remove(ev.key.as_str()).is_none() {
            failures.push(format!("rev {}: delete of absent {}", ev.revision, ev.key));
        }
    }
    if log.compacted.is_none() {
        let listed: BTreeMap<&str, (String, u64)> = listing
            .iter()
            .map(|l| (l.key.as_str(), (l.value.clone(), l.version)))
            .collect();
        if listed != state {
            failures.push(format!(
                "replayed events give {state:?}, the final listing {listed:?}"
            ));
        }
    }
    CheckResult::new(
        "watch",
        failures,
        format!(
            "{} events over {} connections, revisions 1..={final_revision} each once and in order",
            log.events.len(),
            log.connections
        ),
    )
}

/// The final listing against the final reads (the last definite read of each key).
pub fn final_state(final_reads: &[Op], listing: &[Listed]) -> CheckResult {
    let mut failures = Vec::new();
    let mut last: BTreeMap<&str, &Op> = BTreeMap::new();
    for op in final_reads.iter().filter(|o| o.outcome.is_definite()) {
        last.insert(op.key.as_str(), op);
    }
    for (key, op) in &last {
        let listed = listing.iter().find(|l| l.key == *key);
        let agree = match (&op.outcome, listed) {
            (Outcome::NotFound, None) => true,
            (
                Outcome::Found {
                    value,
                    version,
                    mod_revision,
                },
                Some(l),
            ) => (value, *version, *mod_revision) == (&l.value, l.version, l.mod_revision),
            _ => false,
        };
        if !agree {
            failures.push(format!(
                "{key}: final read {:?}, listing {listed:?}",
                op.outcome
            ));
        }
    }
    for l in listing {
        if !last.contains_key(l.key.as_str()) {
            failures.push(format!("{}: listed but never read at the end", l.key));
        }
    }
    CheckResult::new(
        "final-state",
        failures,
        format!(
            "{} keys read after the full restart agree with the listing",
            last.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::WatchEvent;

    fn put_op(id: u64, key: &str, value: &str, outcome: Outcome) -> Op {
        Op {
            id,
            client: 0,
            node: 0,
            key: key.into(),
            call: Call::Put {
                value: value.into(),
                if_version: None,
            },
            invoke_us: id,
            complete_us: Some(id + 1),
            outcome,
            attempts: 1,
        }
    }

    fn ev(revision: u64, kind: &str, key: &str, value: Option<&str>, version: u64) -> WatchEvent {
        WatchEvent {
            revision,
            kind: kind.into(),
            key: key.into(),
            value: value.map(str::to_string),
            version,
            id: Some(revision),
            at_us: 0,
            node: 0,
        }
    }

    fn log(events: Vec<WatchEvent>) -> WatchLog {
        WatchLog {
            events,
            connections: 1,
            ..WatchLog::default()
        }
    }

    #[test]
    fn a_complete_stream_passes_and_gaps_duplicates_and_503s_fail() {
        let ops = vec![
            put_op(
                1,
                "k",
                "a",
                Outcome::Written {
                    version: 1,
                    mod_revision: 1,
                },
            ),
            put_op(
                2,
                "k",
                "b",
                Outcome::Written {
                    version: 2,
                    mod_revision: 2,
                },
            ),
            put_op(3, "k", "c", Outcome::NotApplied { status: 503 }),
        ];
        let listing = vec![Listed {
            key: "k".into(),
            value: "b".into(),
            version: 2,
            mod_revision: 2,
        }];
        let good = log(vec![
            ev(1, "put", "k", Some("a"), 1),
            ev(2, "put", "k", Some("b"), 2),
        ]);
        assert!(watch_stream(&good, &ops, 2, &listing).passed);
        let gap = log(vec![ev(2, "put", "k", Some("b"), 2)]);
        assert!(!watch_stream(&gap, &ops, 2, &listing).passed);
        let dup = log(vec![
            ev(1, "put", "k", Some("a"), 1),
            ev(1, "put", "k", Some("a"), 1),
            ev(2, "put", "k", Some("b"), 2),
        ]);
        assert!(!watch_stream(&dup, &ops, 2, &listing).passed);
        let took_effect = log(vec![
            ev(1, "put", "k", Some("a"), 1),
            ev(2, "put", "k", Some("b"), 2),
            ev(3, "put", "k", Some("c"), 3),
        ]);
        let r = watch_stream(&took_effect, &ops, 3, &listing);
        assert!(!r.passed);
        assert!(
            r.details.iter().any(|d| d.contains("503")),
            "{:?}",
            r.details
        );
    }

    #[test]
    fn revisions_must_agree() {
        let mut read = put_op(
            2,
            "k",
            "a",
            Outcome::Found {
                value: "a".into(),
                version: 1,
                mod_revision: 9,
            },
        );
        read.call = Call::Get;
        let ops = vec![
            put_op(
                1,
                "k",
                "a",
                Outcome::Written {
                    version: 1,
                    mod_revision: 1,
                },
            ),
            read,
        ];
        assert!(!revisions(&ops).passed);
    }
}
