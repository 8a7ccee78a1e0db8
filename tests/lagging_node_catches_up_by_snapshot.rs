//! A follower that misses more than the consensus log keeps is caught up by a snapshot.
//!
//! A 3-node cluster; one follower is SIGKILLed; while it is down 100,000 writes
//! (25,000 `POST /v1/txn` of 4 puts each, 32 in flight, spread over the two live nodes)
//! are acknowledged. The leader must also have advanced at least
//! `log_tail_slots + compact_every_slots` (10,000 + 10,000 by default, plus a margin) slots
//! past the follower, so its log has been truncated beyond the follower's position; if the
//! leader batched the transactions into fewer slots, single-key overwrites (also counted
//! and checked) top it up. The follower is then restarted and must:
//! - install a snapshot (its log says "snapshot installed"),
//! - reach the leader's commit index in its `applied_index` (GET /v1/cluster),
//! - serve the latest value of a sample of keys with `consistency=serializable`,
//! - list exactly 100,000 keys under the prefix with `consistency=serializable`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::{Method, StatusCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Distinct keys written while the follower is down (each exactly once by a txn).
const KEYS: u64 = 100_000;
/// Puts per transaction.
const PUTS_PER_TXN: u64 = 4;
/// Requests in flight at once.
const CLIENTS: u64 = 32;
/// Slots the leader must be past the follower: the node defaults `log_tail_slots` +
/// `compact_every_slots` (src/node/config.rs) plus a margin for the compaction to run.
const SLOTS_PAST_FOLLOWER: u64 = 10_000 + 10_000 + 2_000;
/// Keys overwritten per top-up round.
const TOPUP_CHUNK: u64 = 2_000;

fn key(i: u64) -> String {
    format!("lag/{i:06}")
}

fn first_value(i: u64) -> String {
    format!("txn-{i}")
}

fn second_value(i: u64) -> String {
    format!("put-{i}")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Sends one write until it is acknowledged with `ok`; 503, 504 and lost connections
/// are retried with the same idempotency key.
async fn write_acked(
    c: &Cluster,
    node: usize,
    method: Method,
    path: &str,
    body: Vec<u8>,
    idem: &str,
    ok: &[StatusCode],
) {
    let start = Instant::now();
    loop {
        let a = c
            .try_call(
                node,
                method.clone(),
                path,
                Some(body.clone()),
                &[
                    ("idempotency-key", idem),
                    ("content-type", "application/json"),
                ],
            )
            .await;
        match a {
            Some(a) if ok.contains(&a.status) => return,
            Some(a)
                if a.status == StatusCode::SERVICE_UNAVAILABLE
                    || a.status == StatusCode::GATEWAY_TIMEOUT => {}
            Some(a) => panic!("{method} {path}: {} {}", a.status, a.text()),
            None => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{method} {path} not acknowledged within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cluster_json(c: &Cluster, i: usize) -> Option<serde_json::Value> {
    let a = c.try_call(i, Method::GET, "/v1/cluster", None, &[]).await?;
    (a.status == StatusCode::OK).then(|| a.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_node_catches_up_by_snapshot() {
    let mut c = Cluster::start(3, "lagsnap").await;
    let leader = c.wait_leader(Duration::from_secs(20)).await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    c.kill(follower);
    let at_kill = cluster_json(&c, leader).await.unwrap()["commit_index"]
        .as_u64()
        .unwrap();

    // 100,000 writes through the two live nodes.
    let c = Arc::new(c);
    let txns = KEYS / PUTS_PER_TXN;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..CLIENTS {
        let (c, next) = (c.clone(), next.clone());
        let node = if w % 2 == 0 { leader } else { other };
        tasks.push(tokio::spawn(async move {
            loop {
                let t = next.fetch_add(1, Ordering::Relaxed);
                if t >= txns {
                    return;
                }
                let ops: Vec<_> = (t * PUTS_PER_TXN..(t + 1) * PUTS_PER_TXN)
                    .map(|i| {
                        serde_json::json!({"op": "put", "key": key(i),
                                           "value": b64(first_value(i).as_bytes())})
                    })
                    .collect();
                let body = serde_json::json!({ "then": ops }).to_string().into_bytes();
                write_acked(
                    &c,
                    node,
                    Method::POST,
                    "/v1/txn",
                    body,
                    &format!("lag-txn-{t}"),
                    &[StatusCode::OK],
                )
                .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let after_txns = cluster_json(&c, leader).await.unwrap()["commit_index"]
        .as_u64()
        .unwrap();
    eprintln!(
        "{txns} txns ({KEYS} puts) in {secs:.1} s: {:.0} txns/s, {:.0} keys/s, {} slots",
        txns as f64 / secs,
        KEYS as f64 / secs,
        after_txns - at_kill
    );

    // Top up with single-key overwrites until the leader's log must have been truncated
    // past the follower.
    let mut overwritten = 0u64;
    loop {
        let commit = cluster_json(&c, leader).await.unwrap()["commit_index"]
            .as_u64()
            .unwrap();
        if commit >= at_kill + SLOTS_PAST_FOLLOWER {
            break;
        }
        assert!(overwritten + TOPUP_CHUNK <= KEYS, "top-up ran out of keys");
        let next = Arc::new(AtomicU64::new(overwritten));
        let end = overwritten + TOPUP_CHUNK;
        let mut tasks = Vec::new();
        for w in 0..CLIENTS {
            let (c, next) = (c.clone(), next.clone());
            let node = if w % 2 == 0 { leader } else { other };
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        return;
                    }
                    write_acked(
                        &c,
                        node,
                        Method::PUT,
                        &format!("/v1/keys/{}", key(i)),
                        second_value(i).into_bytes(),
                        &format!("lag-put-{i}"),
                        &[StatusCode::OK],
                    )
                    .await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        overwritten = end;
    }
    let target = cluster_json(&c, leader).await.unwrap()["commit_index"]
        .as_u64()
        .unwrap();
    eprintln!(
        "{overwritten} top-up puts; leader commit index {target} ({} slots past the kill)",
        target - at_kill
    );

    // Restart the follower; it must catch up by snapshot.
    let mut c = Arc::try_unwrap(c).ok().expect("writers finished");
    let log_before = std::fs::metadata(&c.nodes[follower].log).unwrap().len() as usize;
    let restarted = Instant::now();
    c.launch(follower);
    let start = Instant::now();
    loop {
        if let Some(j) = cluster_json(&c, follower).await {
            if j["applied_index"].as_u64().unwrap() >= target {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "node {} did not apply through {target} within 90 s",
            follower + 1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "node {} applied through {target} {:.1} s after restart",
        follower + 1,
        restarted.elapsed().as_secs_f64()
    );
    let log = std::fs::read(&c.nodes[follower].log).unwrap();
    let log = String::from_utf8_lossy(&log[log_before..]);
    assert!(
        log.contains("snapshot installed"),
        "node {} caught up without installing a snapshot",
        follower + 1
    );

    // Serializable reads on the follower return the latest values.
    for i in (0..KEYS)
        .step_by(97)
        .chain([KEYS - 1, overwritten.saturating_sub(1)])
    {
        let a = c
            .get(
                follower,
                &format!("/v1/keys/{}?consistency=serializable", key(i)),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}: {}", key(i), a.text());
        let want = if i < overwritten {
            second_value(i)
        } else {
            first_value(i)
        };
        assert_eq!(a.text(), want, "{}", key(i));
    }

    // A serializable listing on the follower counts exactly the keys written.
    let mut count = 0u64;
    let mut after: Option<String> = None;
    loop {
        let mut path =
            "/v1/keys?prefix=lag/&keys_only=true&limit=10000&consistency=serializable".to_string();
        if let Some(k) = &after {
            path.push_str(&format!("&start_after={}", k.replace('/', "%2F")));
        }
        let a = c.get(follower, &path).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        let j = a.json();
        let entries = j["entries"].as_array().unwrap();
        for e in entries {
            assert_eq!(e["key"].as_str().unwrap(), key(count));
            count += 1;
        }
        if !j["more"].as_bool().unwrap() {
            break;
        }
        after = Some(entries.last().unwrap()["key"].as_str().unwrap().to_string());
    }
    assert_eq!(count, KEYS);
}
