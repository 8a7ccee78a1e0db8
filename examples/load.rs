//! A loader of a fixed key layout, for the benches that read it back
//! (`benches/restart_to_ready.sh`, `benches/leader_stability.sh`): writes keys
//! `{prefix}{i:010}` = `v{i}-v{i}-...` for `i` in `start..start+keys`, `ops` puts per
//! transaction, from `clients` concurrent clients, then prints the write throughput.
//!
//! A thin use of the `concierge-client` crate, the code the CLI runs on: each
//! transaction carries an Idempotency-Key the client draws at random, and a 503, 504 or
//! lost connection is retried with it (through the next node) until acknowledged, so a
//! retry never applies twice and a rerun never replays an earlier run's answers. To
//! measure throughput and latency use `concierge bench` (docs/bench.md), which sends
//! each request once and reports a latency histogram.
//!
//! ```text
//! cargo run --release --example load -- --nodes http://127.0.0.1:8080 \
//!     --keys 1000000 --ops 128 --clients 16 --prefix bench/ --value-bytes 32
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use concierge_client::{Client, ClientConfig, Op, Txn};
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

/// Transaction number `t`: puts of its keys.
fn txn(o: &Opts, t: u64) -> Txn {
    let first = o.start + t * o.ops;
    let last = (first + o.ops).min(o.start + o.keys);
    (first..last).fold(Txn::new(), |txn, i| {
        txn.then(Op::put(
            format!("{}{i:010}", o.prefix),
            value_of(i, o.value_bytes),
        ))
    })
}

#[tokio::main]
async fn main() {
    let o = Arc::new(parse());
    let txns = o.keys.div_ceil(o.ops);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..o.clients {
        // Client c starts at node c (and fails over in order from there); a leader
        // election may take a while, so a call may too.
        let mut nodes = o.nodes.clone();
        nodes.rotate_left(c % o.nodes.len());
        let mut config = ClientConfig::new(nodes);
        config.call_deadline = Duration::from_secs(120);
        let client = Client::new(config).unwrap();
        let (o, next) = (o.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let t = next.fetch_add(1, Ordering::Relaxed);
                if t >= txns {
                    return Ok::<(), String>(());
                }
                client
                    .txn(&txn(&o, t))
                    .await
                    .map_err(|e| format!("txn {t}: {e}"))?;
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
    println!(
        "load: {txns} txns, {} keys in {secs:.2} s: {:.0} txns/s, {:.0} keys/s ({} clients, {} puts/txn)",
        o.keys,
        txns as f64 / secs,
        o.keys as f64 / secs,
        o.clients,
        o.ops
    );
    if failed {
        std::process::exit(1);
    }
}
