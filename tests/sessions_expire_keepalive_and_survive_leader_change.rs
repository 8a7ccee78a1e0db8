//! Sessions on a 3-node cluster: an idle session expires no sooner than its TTL and no
//! later than twice it, taking its ephemeral keys; keepalives through a follower keep
//! one alive; closing deletes its keys; a leader change does not expire sessions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

async fn create(c: &Cluster, node: usize, ttl_ms: u64) -> (String, Instant) {
    let sent = Instant::now();
    let a = c
        .post(node, "/v1/sessions", &format!("{{\"ttl_ms\": {ttl_ms}}}"))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    (a.json()["id"].as_str().unwrap().to_string(), sent)
}

async fn alive(c: &Cluster, node: usize, id: &str) -> bool {
    let a = c.get(node, &format!("/v1/sessions/{id}")).await;
    match a.status.as_u16() {
        200 => true,
        404 => false,
        _ => panic!("session read: {} {}", a.status, a.text()),
    }
}

async fn keepalive(c: &Cluster, node: usize, id: &str) -> bool {
    // A 503 during a leader change means "not recorded, retry".
    for _ in 0..100 {
        let a = c
            .try_call(
                node,
                Method::POST,
                &format!("/v1/sessions/{id}/keepalive"),
                None,
                &[],
            )
            .await;
        match a.map(|a| a.status.as_u16()) {
            Some(200) => return true,
            Some(404) => return false,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    panic!("keepalive never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_keepalive_and_survive_leader_change() {
    let mut c = Cluster::start(3, "sessions").await;
    let leader = c.wait_leader(Duration::from_secs(20)).await;
    let follower = c.other_than(leader);

    // An idle session expires within [ttl, 2 x ttl] of its creation being acknowledged.
    let ttl = Duration::from_millis(1000);
    let (idle, created) = create(&c, follower, 1000).await;
    let acked = Instant::now();
    let a = c
        .put(follower, &format!("/v1/keys/idle/k?session={idle}"), b"x")
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let gone = loop {
        if !alive(&c, follower, &idle).await {
            break Instant::now();
        }
        assert!(
            created.elapsed() < Duration::from_secs(20),
            "the idle session never expired"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let lived = gone.duration_since(created);
    eprintln!(
        "an idle 1000 ms session lived {:?}",
        gone.duration_since(acked)
    );
    assert!(
        gone.duration_since(acked) >= ttl,
        "expired too soon: {lived:?}"
    );
    // Upper bound 2 x ttl, plus the time to observe it (polling, a read barrier).
    assert!(
        lived <= 2 * ttl + Duration::from_millis(500),
        "expired too late: {lived:?}"
    );
    let a = c.get(leader, "/v1/keys/idle/k").await;
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "the ephemeral key went with it"
    );

    // Keepalives through a follower keep a session alive well past its TTL.
    let (kept, _) = create(&c, leader, 1000).await;
    let a = c
        .put(leader, &format!("/v1/keys/kept/k?session={kept}"), b"x")
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3500) {
        assert!(keepalive(&c, follower, &kept).await, "kept session expired");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(alive(&c, leader, &kept).await);
    assert_eq!(
        c.get(follower, "/v1/keys/kept/k").await.status,
        StatusCode::OK
    );

    // Closing deletes the ephemeral keys.
    let a = c.delete(follower, &format!("/v1/sessions/{kept}")).await;
    assert_eq!(a.json()["deleted_keys"], 1);
    assert_eq!(
        c.get(leader, "/v1/keys/kept/k").await.status,
        StatusCode::NOT_FOUND
    );

    // A leader change does not expire a session that is kept alive.
    let (durable, _) = create(&c, follower, 3000).await;
    let a = c
        .put(
            follower,
            &format!("/v1/keys/durable/k?session={durable}"),
            b"x",
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert!(keepalive(&c, follower, &durable).await);
    c.kill(leader);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        assert!(
            keepalive(&c, follower, &durable).await,
            "session expired across the leader change"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let new_leader = c.wait_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    assert!(alive(&c, follower, &durable).await);
    assert_eq!(
        c.get(new_leader, "/v1/keys/durable/k").await.status,
        StatusCode::OK
    );
}
