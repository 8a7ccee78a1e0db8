//! The one-command local default: a three-node cluster without a cluster secret still
//! starts and serves, and every node warns loudly at start-up that its peer links are
//! neither authenticated nor encrypted. (Every other process test runs with a secret.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_without_a_secret_runs_and_warns() {
    let c = Cluster::spawn_unauthenticated(3, "peer-plain");
    for i in 0..3 {
        c.wait_ready(i, Duration::from_secs(60)).await;
    }
    let leader = c.wait_leader(Duration::from_secs(30)).await;
    assert!(c
        .put(leader, "/v1/keys/k", b"plain")
        .await
        .status
        .is_success());
    let follower = c.other_than(leader);
    assert_eq!(c.get(follower, "/v1/keys/k").await.body, b"plain");
    for n in &c.nodes {
        let log = std::fs::read_to_string(&n.log).unwrap();
        assert!(
            log.contains("PEER LINKS ARE NEITHER AUTHENTICATED NOR ENCRYPTED"),
            "node {} did not warn",
            n.id
        );
    }
}
