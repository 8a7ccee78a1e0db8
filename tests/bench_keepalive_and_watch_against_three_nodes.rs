//! `concierge bench keepalive` and `concierge bench watch` as processes against a real
//! 3-node cluster: no session is lost and all are closed; every watcher receives every
//! acknowledged write once, in order; the JSON counts agree with each other; `--plot`
//! writes an SVG holding its series; wrong flags are usage errors (exit 2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use serde_json::Value;
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_concierge"))
        .arg("bench")
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("CONCIERGE_ENDPOINTS")
        .output()
        .unwrap()
}

fn report(args: &[&str]) -> Value {
    let out = bench(args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn u(v: &Value, path: &[&str]) -> u64 {
    let mut x = v;
    for p in path {
        x = &x[p];
    }
    x.as_u64()
        .unwrap_or_else(|| panic!("{}: not a count in {v}", path.join(".")))
}

fn percentiles_ordered(l: &Value) {
    let p: Vec<u64> = ["p50", "p90", "p99", "p999", "max"]
        .iter()
        .map(|q| l[q].as_u64().unwrap_or_else(|| panic!("{q}: {l}")))
        .collect();
    assert!(p[0] > 0, "{l}");
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{l}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_and_watch_runs_lose_nothing() {
    let c = Cluster::start(3, "bench-three-nodes").await;
    c.wait_leader(std::time::Duration::from_secs(30)).await;
    let endpoints = c
        .nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.client_port))
        .collect::<Vec<_>>()
        .join(",");

    // 150 sessions of 3 s, each kept alive every second (150/s) for 2 s.
    let r = report(&[
        "keepalive",
        "--endpoints",
        &endpoints,
        "--sessions",
        "150",
        "--ttl",
        "3",
        "--duration",
        "2",
        "--clients",
        "6",
        "--json",
    ]);
    assert_eq!(r["workload"], "keepalive", "{r}");
    assert_eq!(r["rate"], 150.0, "{r}");
    let count = u(&r, &["count"]);
    // Due times below 2 s at one per 1/150 s.
    assert!((299..=301).contains(&count), "{r}");
    assert_eq!(u(&r, &["ok"]), count, "{r}");
    assert_eq!(u(&r, &["errors"]), 0, "{r}");
    percentiles_ordered(&r["latency_us"]);
    let s = &r["sessions"];
    assert_eq!(u(s, &["sessions"]), 150, "{r}");
    assert_eq!(u(s, &["created"]), 150, "{r}");
    assert_eq!(u(s, &["lost"]), 0, "{r}");
    assert_eq!(u(s, &["closed"]), 150, "{r}");
    assert_eq!(u(s, &["close_errors"]), 0, "{r}");
    assert_eq!(u(s, &["ttl_ms"]), 3000, "{r}");
    // Closed means gone: the cluster holds no session.
    let listed = c.get(0, "/v1/sessions").await.json();
    assert_eq!(listed["sessions"], serde_json::json!([]), "{listed}");

    // 30 watchers of one key, 2 writers at 100 writes/s for 2 s, with a plot.
    let svg = common::temp_dir("bench-plot").join("watch.svg");
    let r = report(&[
        "watch",
        "--endpoints",
        &endpoints,
        "--watchers",
        "30",
        "--clients",
        "2",
        "--rate",
        "100",
        "--duration",
        "2",
        "--json",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(r["workload"], "watch", "{r}");
    let writes = u(&r, &["count"]);
    assert!((199..=201).contains(&writes), "{r}");
    assert_eq!(u(&r, &["ok"]), writes, "{r}");
    let w = &r["watch"];
    assert_eq!(u(w, &["watchers"]), 30, "{r}");
    assert_eq!(u(w, &["writes_acknowledged"]), writes, "{r}");
    assert_eq!(u(w, &["events_expected"]), writes * 30, "{r}");
    assert_eq!(u(w, &["events_delivered"]), writes * 30, "{r}");
    for zero in [
        "events_missed",
        "events_duplicate",
        "events_out_of_order",
        "events_unacknowledged",
        "events_unstamped",
        "watchers_with_gaps",
    ] {
        assert_eq!(u(w, &[zero]), 0, "{zero}: {r}");
    }
    assert!(w["events_per_second"].as_f64().unwrap() > 0.0, "{r}");
    percentiles_ordered(&w["delivery_latency_us"]);
    let plot = std::fs::read_to_string(&svg).unwrap();
    assert!(plot.starts_with("<svg"), "{}", &plot[..plot.len().min(200)]);
    assert!(plot.trim_end().ends_with("</svg>"));
    // plotters writes each text on a line of its own.
    for series in [
        "\np50\n",
        "\np99\n",
        "\nmax\n",
        "by percentile",
        "<polyline",
    ] {
        assert!(plot.contains(series), "the plot has no {series}");
    }
    let _ = std::fs::remove_dir_all(svg.parent().unwrap());

    // Wrong flags are usage errors, before anything is sent.
    for args in [
        &["watch", "--watchers", "0"][..],
        &["keepalive", "--ttl", "0.5"],
        &["keepalive", "--sessions", "0"],
        &["keepalive", "--target", "etcd"],
        &["put", "--no-such-flag"],
        &["put", "--plot", ""],
    ] {
        let out = bench(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
