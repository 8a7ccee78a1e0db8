//! A put reaches the cluster when the first endpoints are dead (nothing listens, or
//! the node was killed) or answer 503 (a node that knows no leader); a client with
//! only such endpoints gets an error that says nothing was applied.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{free_port, Cluster};
use concierge_client::{Applied, Client, ClientConfig, Error};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_fails_over_past_dead_endpoints() {
    let mut cluster = Cluster::start(3, "failover-dead").await;
    cluster.kill(0);
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let mut endpoints = vec![nobody.clone()];
    endpoints.extend(cluster.endpoints());
    let client = Client::connect(endpoints).unwrap();
    let put = client.put("f/1", "v").await.unwrap();
    assert_eq!(put.version, 1);
    // Later calls start at the endpoint that answered.
    let got = client.get("f/1").await.unwrap().unwrap();
    assert_eq!(got.version, 1);

    // With every endpoint dead, the call ends with "unreachable": nothing was sent.
    let mut config = ClientConfig::new([nobody, cluster.endpoint(0)]);
    config.call_deadline = Duration::from_secs(2);
    config.attempt_timeout = Duration::from_secs(1);
    let dead = Client::new(config).unwrap();
    match dead.put("f/2", "v").await {
        Err(e @ Error::Unreachable { .. }) => assert_eq!(e.applied(), Applied::No),
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_fails_over_past_a_node_that_answers_503() {
    // Node 1 of a 3-node cluster whose other members never start: it knows no leader.
    let lone = Cluster::spawn(3, "failover-503-lone", &[0]);
    let cluster = Cluster::start(3, "failover-503").await;
    let lonely = Client::connect([lone.endpoint(0)]).unwrap();
    // Wait until it serves HTTP (it never becomes ready).
    let mut tries = 0;
    while lonely.health(0).await.is_err() {
        tries += 1;
        assert!(tries < 300, "the lone node never served /health");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut config = ClientConfig::new([lone.endpoint(0)]);
    config.call_deadline = Duration::from_secs(3);
    config.attempt_timeout = Duration::from_millis(2500);
    let only_lone = Client::new(config).unwrap();
    match only_lone.put("g/1", "v").await {
        Err(e @ Error::Unavailable(_)) => {
            assert_eq!(e.status(), Some(503));
            assert_eq!(e.applied(), Applied::No);
        }
        other => panic!("expected 503 unavailable, got {other:?}"),
    }

    let mut endpoints = vec![lone.endpoint(0)];
    endpoints.extend(cluster.endpoints());
    let client = Client::connect(endpoints).unwrap();
    assert_eq!(client.put("g/1", "v").await.unwrap().version, 1);
    assert!(matches!(client.ready(0).await, Err(Error::Unavailable(_))));
}
