//! A fast loader for a running Concierge cluster: writes keys `{prefix}{i:010}` for
//! `i` in `start..start+keys` with `POST /v1/txn`, `ops` puts per transaction, from
//! `clients` concurrent clients spread round-robin over the given nodes, then prints
//! the write throughput (transactions/s and keys/s).
//!
//! Every transaction carries an `Idempotency-Key`, so a 503 (not applied) or a 504 /
//! lost connection (outcome unknown) is retried safely until it is acknowledged; the
//! loader exits non-zero if a transaction is refused for any other reason. The keys
//! are `load-{run}-{t}` with `run` drawn at random per run: a retry within the run
//! reuses its key, a rerun (within the server's 10 minutes) writes instead of being
//! answered from the first run's records.
//!
//! This loader writes a fixed key layout fast (the restart and leader benchmarks read
//! it back); to measure throughput and latency use `concierge bench` (docs/bench.md),
//! which sends each request once and reports a latency histogram.
//!
//! ```text
//! cargo run --release --example load -- --nodes http://127.0.0.1:8080 \
//!     --keys 1000000 --ops 128 --clients 16 --prefix bench/ --value-bytes 32
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use reqwest::{Client, StatusCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Command-line settings.
#[derive(Clone, Debug)]
struct Opts {
    nodes: Vec<String>,
    keys: u64,
    start: u64,
    ops: u64,
    clients: usize,
    prefix: String,
    value_bytes: usize,
    /// Random per run: makes this run's Idempotency-Keys its own.
    run: u64,
}

fn parse() -> Opts {
    let mut o = Opts {
        nodes: vec!["http://127.0.0.1:8080".into()],
        keys: 100_000,
        start: 0,
        ops: 128,
        clients: 16,
        prefix: "load/".into(),
        value_bytes: 32,
        // RandomState's keys come from the OS's random source, fresh per process.
        run: std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::time::SystemTime::now(),
        ),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--nodes" => o.nodes = value().split(',').map(str::to_string).collect(),
            "--keys" => o.keys = value().parse().expect("--keys"),
            "--start" => o.start = value().parse().expect("--start"),
            "--ops" => o.ops = value().parse().expect("--ops"),
            "--clients" => o.clients = value().parse().expect("--clients"),
            "--prefix" => o.prefix = value(),
            "--value-bytes" => o.value_bytes = value().parse().expect("--value-bytes"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!((1..=128).contains(&o.ops), "--ops must be 1..=128");
    assert!(o.clients > 0 && !o.nodes.is_empty());
    o
}

/// The value written to key number `i`: deterministic, `len` bytes.
fn value_of(i: u64, len: usize) -> Vec<u8> {
    let s = format!("v{i}-");
    s.bytes().cycle().take(len.max(1)).collect()
}

/// The JSON body of transaction number `t`.
fn txn_body(o: &Opts, t: u64) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let first = o.start + t * o.ops;
    let last = (first + o.ops).min(o.start + o.keys);
    let ops: Vec<serde_json::Value> = (first..last)
        .map(|i| {
            serde_json::json!({
                "op": "put",
                "key": format!("{}{i:010}", o.prefix),
                "value": b64.encode(value_of(i, o.value_bytes)),
            })
        })
        .collect();
    serde_json::json!({ "then": ops }).to_string()
}

/// Sends transaction `t` until it is acknowledged; Err on a definite refusal.
async fn send(http: &Client, url: &str, o: &Opts, t: u64) -> Result<(), String> {
    let body = txn_body(o, t);
    let idem = format!("load-{:016x}-{t}", o.run);
    let mut backoff = Duration::from_millis(20);
    loop {
        let resp = http
            .post(url)
            .header("content-type", "application/json")
            .header("idempotency-key", &idem)
            .body(body.clone())
            .send()
            .await;
        match resp {
            Ok(r) if r.status() == StatusCode::OK => return Ok(()),
            Ok(r)
                if r.status() == StatusCode::SERVICE_UNAVAILABLE
                    || r.status() == StatusCode::GATEWAY_TIMEOUT => {}
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                return Err(format!("txn {t}: {status} {text}"));
            }
            Err(_) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

#[tokio::main]
async fn main() {
    let o = Arc::new(parse());
    let http = Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(o.clients)
        .build()
        .unwrap();
    let txns = o.keys.div_ceil(o.ops);
    let next = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..o.clients {
        let (o, http, next, done) = (o.clone(), http.clone(), next.clone(), done.clone());
        let url = format!("{}/v1/txn", o.nodes[c % o.nodes.len()]);
        tasks.push(tokio::spawn(async move {
            loop {
                let t = next.fetch_add(1, Ordering::Relaxed);
                if t >= txns {
                    return Ok::<(), String>(());
                }
                send(&http, &url, &o, t).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut failed = false;
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            eprintln!("load: {e}");
            failed = true;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "load: {n} txns, {} keys in {secs:.2} s: {:.0} txns/s, {:.0} keys/s ({} clients, {} puts/txn)",
        o.keys,
        n as f64 / secs,
        o.keys as f64 / secs,
        o.clients,
        o.ops
    );
    if failed {
        std::process::exit(1);
    }
}
