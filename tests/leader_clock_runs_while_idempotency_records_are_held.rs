//! The leader keeps the idempotency clock moving while records are held, even with no
//! writes at all (`server::clock` proposes `LeaderClock`): the applied index grows on
//! an otherwise idle one-node cluster after one idempotent write, while the revision
//! (which only key changes move) stays. Without the loop, the clock would move only
//! with the leader's own idempotent writes, and records written through followers
//! would never retire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::Method;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_ticks_the_clock_while_records_are_held() {
    let c = Cluster::start(1, "leader-clock").await;
    let a = c
        .call(
            0,
            Method::PUT,
            "/v1/keys/k",
            Some(b"v".to_vec()),
            &[("Idempotency-Key", "r1")],
        )
        .await;
    assert_eq!(a.status.as_u16(), 201, "{}", a.text());
    let cluster = c.get(0, "/v1/cluster").await.json();
    let (applied, revision) = (
        cluster["applied_index"].as_u64().unwrap(),
        cluster["revision"].as_u64().unwrap(),
    );
    let start = Instant::now();
    loop {
        let now = c.get(0, "/v1/cluster").await.json();
        if now["applied_index"].as_u64().unwrap() > applied {
            assert_eq!(now["revision"].as_u64().unwrap(), revision, "{now}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no leader clock was applied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The record still answers the retry.
    let again = c
        .call(
            0,
            Method::PUT,
            "/v1/keys/k",
            Some(b"v".to_vec()),
            &[("Idempotency-Key", "r1")],
        )
        .await;
    assert_eq!(again.json(), a.json());
}
