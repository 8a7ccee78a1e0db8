//! `concierge bench` as a process against a real one-node cluster: a put run and a get
//! run of 200 requests each answer every request without error, and the JSON report
//! counts them all with ordered percentiles.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use serde_json::Value;
use std::process::Command;

fn bench(endpoint: &str, workload: &str, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(["bench", workload, "--endpoints", endpoint])
        .args([
            "--requests",
            "200",
            "--clients",
            "4",
            "--keys",
            "50",
            "--json",
        ])
        .args(extra)
        .env_remove("RUST_LOG")
        .env_remove("CONCIERGE_ENDPOINTS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn check(report: &Value, workload: &str) {
    assert_eq!(report["workload"], workload, "{report}");
    assert_eq!(report["count"], 200, "{report}");
    assert_eq!(report["ok"], 200, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["errors_by_kind"], serde_json::json!({}), "{report}");
    let l = &report["latency_us"];
    let p: Vec<u64> = ["p50", "p90", "p99", "p999", "max"]
        .iter()
        .map(|q| l[q].as_u64().unwrap_or_else(|| panic!("{q}: {report}")))
        .collect();
    assert!(p[0] > 0, "{report}");
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{report}");
    assert!(report["throughput"].as_f64().unwrap() > 0.0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_and_get_runs_answer_all_200_requests() {
    let c = Cluster::start(1, "bench-one-node").await;
    let endpoint = format!("127.0.0.1:{}", c.nodes[0].client_port);
    check(&bench(&endpoint, "put", &[]), "put");
    // The get run writes its 50 keys first (not counted), so no read misses.
    check(&bench(&endpoint, "get", &[]), "get");
    check(
        &bench(
            &endpoint,
            "get",
            &["--consistency", "serializable", "--no-prefill"],
        ),
        "get",
    );
    // Open loop: 200 requests due over 0.2 s, still all answered and counted.
    let open = bench(&endpoint, "put", &["--rate", "1000"]);
    check(&open, "put");
    assert_eq!(open["rate"], 1000.0);
}
