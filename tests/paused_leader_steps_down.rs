//! SIGSTOP the leader past the election timeout, keep writing through the others, then
//! SIGCONT it: its old reign is over (the cluster agrees on a leader with a higher
//! ballot than the one it led with; with the monarchy rule of the leader oracle that
//! may be the old node again, under a new ballot) and every acknowledged write is
//! readable through it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_leader_steps_down() {
    let mut c = Cluster::start(3, "pauseleader").await;
    let old = c.wait_leader(Duration::from_secs(20)).await;
    let old_ballot = ballot_of(&c, old).await;
    let via = c.other_than(old);
    let mut acked = Vec::new();
    for i in 0..20u64 {
        let a = c.put(via, &format!("/v1/keys/p/{i:04}"), b"before").await;
        assert_eq!(a.status, StatusCode::CREATED);
        acked.push(i);
    }
    c.pause(old);
    let new = c.wait_leader(Duration::from_secs(15)).await;
    assert_ne!(new, old);
    assert!(ballot_of(&c, new).await > old_ballot);
    // Writes go on without the paused node.
    let start = Instant::now();
    let mut i = 20u64;
    while acked.len() < 60 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "writes did not resume"
        );
        let node = c.other_than(old);
        let a = c
            .try_call(
                node,
                reqwest::Method::PUT,
                &format!("/v1/keys/p/{i:04}"),
                Some(b"during".to_vec()),
                &[],
            )
            .await;
        if let Some(a) = a {
            if a.status == StatusCode::CREATED {
                acked.push(i);
            } else {
                assert!(
                    matches!(a.status.as_u16(), 503 | 504),
                    "{}: {}",
                    a.status,
                    a.text()
                );
            }
        }
        i += 1;
    }
    c.resume(old);
    // The old leader learns of the higher ballot: whoever leads now leads with a
    // ballot above the one the old leader had, and all three agree on it.
    let start = Instant::now();
    loop {
        let agreed = c.wait_leader(Duration::from_secs(15)).await;
        let (seen_by_old, ballot) = (c.leader_seen_by(old).await, ballot_of(&c, old).await);
        if seen_by_old == Some(agreed) && ballot > old_ballot {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the old leader kept its old ballot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Everything acknowledged is readable (linearizably) through the old leader.
    let a = c
        .get(old, "/v1/keys?prefix=p/&limit=10000&keys_only=true")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let j = a.json();
    let keys: std::collections::BTreeSet<String> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    for i in &acked {
        assert!(
            keys.contains(&format!("p/{i:04}")),
            "acknowledged p/{i:04} missing"
        );
    }
    // And it takes writes again.
    let a = c.put(old, "/v1/keys/p/after", b"x").await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
}

/// The (round, node) ballot node `i` reports.
async fn ballot_of(c: &Cluster, i: usize) -> (u64, u64) {
    let j = c.get(i, "/v1/cluster").await.json();
    (
        j["ballot"]["round"].as_u64().unwrap(),
        j["ballot"]["node"].as_u64().unwrap(),
    )
}
