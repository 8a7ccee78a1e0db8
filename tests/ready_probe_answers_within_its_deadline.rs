//! `GET /ready` is a probe: it answers within its own deadline (`READY_TIMEOUT_MS`,
//! 1 s by default), 503 `not_ready` when the node cannot confirm it is caught up in
//! that time, however long requests may wait for consensus (`REQUEST_TIMEOUT_MS`).
//! Before the fix the probe waited on the read barrier with the request deadline (here
//! 30 s, plus half of it again), so a probe to a node whose peers stopped answering
//! hung for tens of seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::Method;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_answers_within_its_deadline_when_the_leader_stops() {
    let mut c = Cluster::start_with_env(
        3,
        "ready-deadline",
        &[("REQUEST_TIMEOUT_MS", "30000"), ("READY_TIMEOUT_MS", "500")],
    )
    .await;
    let leader = c.wait_leader(Duration::from_secs(20)).await;
    let follower = c.other_than(leader);
    // The leader stops answering; the follower still believes in it for a while and
    // its read barrier waits on it.
    c.pause(leader);
    let probe = Instant::now();
    let a = c
        .try_call_within(
            follower,
            Method::GET,
            "/ready",
            None,
            &[],
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|| panic!("no answer to /ready after {:?}", probe.elapsed()));
    eprintln!("probe answered {} after {:?}", a.status, probe.elapsed());
    match a.status.as_u16() {
        // A new leader may already be elected and the follower caught up.
        200 => {}
        503 => {
            assert_eq!(a.json()["error"], "not_ready", "{}", a.text());
            assert!(a.header("retry-after").is_some());
        }
        s => panic!("/ready answered {s}: {}", a.text()),
    }
    c.resume(leader);
}
