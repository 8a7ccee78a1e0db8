//! SIGKILL every node of a 3-node cluster and restart them all: every acknowledged
//! write is there and revisions continue from where they were.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::StatusCode;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_all_keeps_acknowledged_writes() {
    let mut c = Cluster::start(3, "restartall").await;
    let leader = c.wait_leader(Duration::from_secs(20)).await;
    let mut acked = Vec::new();
    let mut last_rev = 0;
    for i in 0..120u64 {
        let node = (leader + i as usize) % 3;
        let a = c
            .put(
                node,
                &format!("/v1/keys/r/{i:04}"),
                format!("value-{i}").as_bytes(),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
        last_rev = a.json()["mod_revision"].as_u64().unwrap();
        acked.push(i);
    }
    let a = c.post(leader, "/v1/sessions", "{\"ttl_ms\": 60000}").await;
    let session = a.json()["id"].as_str().unwrap().to_string();

    for i in 0..3 {
        c.kill(i);
    }
    for i in 0..3 {
        c.launch(i);
    }
    for i in 0..3 {
        c.wait_ready(i, Duration::from_secs(30)).await;
    }
    for node in 0..3 {
        let a = c.get(node, "/v1/keys?prefix=r/&limit=10000").await;
        let j = a.json();
        let entries = j["entries"].as_array().unwrap();
        assert_eq!(entries.len(), acked.len(), "node {}", node + 1);
        for (e, i) in entries.iter().zip(&acked) {
            assert_eq!(e["key"], format!("r/{i:04}"));
            let value = format!("value-{i}");
            let want = base64_of(value.as_bytes());
            assert_eq!(e["value"], want);
        }
        assert!(j["revision"].as_u64().unwrap() >= last_rev);
    }
    let a = c.put(0, "/v1/keys/r/after", b"x").await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        a.json()["mod_revision"].as_u64().unwrap(),
        last_rev + 1,
        "revisions continue"
    );
    // The session survived the restart too (its TTL restarted with the new leader).
    let a = c.get(1, &format!("/v1/sessions/{session}")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
