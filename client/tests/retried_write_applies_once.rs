//! A write whose answer is lost after the node applied it (the connection closes, or
//! a 504 comes back) is retried on the next endpoint with the same Idempotency-Key and
//! applies once: the key's version says so. Without idempotent writes the client does
//! not retry and reports the outcome as unknown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::proxy::{Loss, Proxy};
use common::Cluster;
use concierge_client::{Applied, Client, ClientConfig, Error, PutOptions};

/// A client whose first endpoint is `proxy`, then the other nodes.
fn client_through(proxy: &Proxy, cluster: &Cluster, idempotent: bool) -> Client {
    let mut endpoints = vec![proxy.endpoint.clone()];
    endpoints.extend([cluster.endpoint(1), cluster.endpoint(2)]);
    let mut config = ClientConfig::new(endpoints);
    config.idempotent_writes = idempotent;
    Client::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_is_lost_is_retried_and_applied_once() {
    let cluster = Cluster::start(3, "retry-once").await;
    let direct = cluster.client();

    for loss in [Loss::Drop, Loss::Answer504] {
        let proxy = Proxy::start(cluster.nodes[0].client_port, loss).await;
        let key = format!("once/{loss:?}");
        // A fresh client per write: after a failover a client starts at the endpoint
        // that answered, and each write must meet the proxy first.
        let client = client_through(&proxy, &cluster, true);

        // A plain put: a second application would make version 2.
        let put = client.put(&key, "v").await.unwrap();
        assert_eq!(put.version, 1, "{loss:?}: the retry applied again");
        assert!(put.created);
        assert_eq!(direct.get(&key).await.unwrap().unwrap().version, 1);

        // Create-if-absent: a second application would be a 412.
        let create = PutOptions {
            version: Some(0),
            ..PutOptions::default()
        };
        let client = client_through(&proxy, &cluster, true);
        let created = client
            .put_with(&format!("{key}/new"), "n", &create)
            .await
            .unwrap();
        assert_eq!(created.version, 1);

        // The proxy forwarded each write once, each with its own key; the retries went
        // elsewhere with the same key.
        let keys = proxy.forwarded();
        assert_eq!(keys.len(), 2, "{loss:?}: {keys:?}");
        assert!(keys.iter().all(|k| k.len() == 32), "{keys:?}");
        assert_ne!(keys[0], keys[1]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idempotency_keys_an_unknown_outcome_is_reported_not_retried() {
    let cluster = Cluster::start(3, "retry-none").await;
    let direct = cluster.client();
    for loss in [Loss::Drop, Loss::Answer504] {
        let proxy = Proxy::start(cluster.nodes[0].client_port, loss).await;
        let client = client_through(&proxy, &cluster, false);
        let key = format!("unknown/{loss:?}");
        let err = client.put(&key, "v").await.unwrap_err();
        assert_eq!(err.applied(), Applied::Unknown, "{err:?}");
        match (loss, &err) {
            (Loss::Drop, Error::OutcomeUnknown { .. }) => {}
            (Loss::Answer504, Error::Timeout(e)) => assert_eq!(e.code, "timeout"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(proxy.forwarded(), [""]);
        // It was in fact applied, once.
        assert_eq!(direct.get(&key).await.unwrap().unwrap().version, 1);
    }
}
