//! `/metrics` (docs/API.md, Metrics) is a valid Prometheus text document on every node,
//! and its families count what happened: after writes through a follower and through
//! the leader, each node's request latency by route, proposal-to-commit and
//! commit-to-apply latency, batch sizes, acceptor log persist latency, applied commands
//! and leader changes have counted them; the storage engine's families are there.
//! The document is checked line by line: every sample belongs to a family with HELP
//! and TYPE, histogram buckets are cumulative and end in `+Inf` equal to `_count`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const WRITES: usize = 12;

/// Parses a Prometheus text document into `sample line -> value`, checking its shape.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut helped = BTreeSet::new();
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(helped.insert(name.clone()), "HELP twice for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap().to_string();
            let kind = parts.next().unwrap().to_string();
            assert!(
                ["gauge", "counter", "histogram"].contains(&kind.as_str()),
                "{line}"
            );
            assert!(typed.insert(name, kind).is_none(), "TYPE twice: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = value.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
        let name = series.split('{').next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "no TYPE before {line}");
        assert!(helped.contains(family), "no HELP before {line}");
        if typed[family] == "counter" {
            assert!(family.ends_with("_total"), "counter {family} not _total");
        }
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "sample twice: {line}"
        );
    }
    // Histograms: buckets cumulative within one label set, +Inf equal to _count.
    for (family, kind) in &typed {
        if kind != "histogram" {
            continue;
        }
        let bucket = format!("{family}_bucket");
        let (mut last_labels, mut last) = (String::new(), 0.0);
        for line in text.lines().filter(|l| l.starts_with(&bucket)) {
            let (series, v) = line.rsplit_once(' ').unwrap();
            let v: f64 = v.parse().unwrap();
            let labels = strip_le(&series[bucket.len()..]);
            if labels == last_labels {
                assert!(v >= last, "{family} buckets not cumulative at {line}");
            }
            if series.contains("le=\"+Inf\"") {
                let count = format!("{family}_count{labels}");
                assert_eq!(samples.get(&count), Some(&v), "{count} vs {line}");
            }
            (last_labels, last) = (labels, v);
        }
    }
    samples
}

/// Labels (`{a="x",le="1"}`) without the `le` label, which comes last: `{a="x"}`,
/// or nothing when `le` was the only one.
fn strip_le(labels: &str) -> String {
    match labels.rfind("le=\"") {
        Some(at) => format!("{}}}", labels[..at].trim_end_matches(',')).replace("{}", ""),
        None => labels.to_string(),
    }
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {:#?}", samples.keys().collect::<Vec<_>>()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_counts_requests_proposals_applies_and_fsyncs() {
    let c = Cluster::start(3, "metrics").await;
    let leader = c.wait_leader(Duration::from_secs(30)).await;
    let follower = c.other_than(leader);
    for i in 0..WRITES {
        let via = if i % 2 == 0 { leader } else { follower };
        let a = c.put(via, &format!("/v1/keys/m{i}"), b"v").await;
        assert_eq!(a.status.as_u16(), 201, "{}", a.text());
    }
    assert_eq!(c.get(follower, "/v1/keys/m0").await.status.as_u16(), 200);

    for (node, proposed) in [(leader, WRITES / 2), (follower, WRITES / 2)] {
        let m = parse(&c.get(node, "/metrics").await.text());
        let put = r#"{method="PUT",route="/v1/keys/{key}"}"#;
        let puts = value(
            &m,
            &format!("concierge_http_request_duration_seconds_count{put}"),
        );
        assert!(puts >= proposed as f64, "node {node}: {puts} PUTs timed");
        // Each node times the proposals it made (a follower proposes through the leader).
        let timed = value(&m, "concierge_proposal_commit_duration_seconds_count");
        assert!(
            timed >= proposed as f64,
            "node {node}: {timed} proposals timed"
        );
        // Every node applies every write, and times each chosen slot's apply.
        let applied = value(&m, "concierge_commands_applied_total");
        assert!(applied >= WRITES as f64, "node {node}: {applied} applied");
        assert!(value(&m, "concierge_commit_apply_duration_seconds_count") >= 1.0);
        let commands = value(&m, "concierge_proposal_batch_commands_sum");
        assert!(
            commands >= WRITES as f64,
            "node {node}: {commands} commands chosen"
        );
        assert!(
            value(
                &m,
                "concierge_disk_acceptor_log_persist_duration_seconds_count"
            ) >= 1.0
        );
        let fsyncs = value(
            &m,
            "concierge_disk_acceptor_log_fsync_duration_seconds_count",
        );
        assert!(fsyncs >= 1.0, "node {node}: {fsyncs} acceptor log fsyncs");
        assert!(value(&m, "concierge_leader_changes_seen_total") >= 1.0);
        assert!(m.contains_key("concierge_storage_memtable_bytes"));
        assert!(value(&m, "concierge_storage_block_cache_capacity_bytes") > 0.0);
        assert!(m.contains_key(r#"concierge_storage_level_tables{level="0"}"#));
        assert!(m.contains_key("concierge_disk_wal_fsync_duration_seconds_count"));
        assert!(m.contains_key("concierge_apply_lag_slots"));
    }
}
