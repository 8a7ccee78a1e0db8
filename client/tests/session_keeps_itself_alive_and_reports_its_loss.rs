//! A session handle keeps its session alive past 3 x its TTL through keepalives every
//! ttl/3 (a session created beside it without keepalives is gone by then), reports
//! `Expired` when the server says the session is gone, and `Unconfirmed` when every
//! endpoint is dead, instead of going on silently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use concierge_client::{Error, PageOptions, PutOptions, SessionLoss};
use std::time::Duration;

const TTL: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_session_outlives_three_ttls_and_an_unkept_one_does_not() {
    let cluster = Cluster::start(3, "session-kept").await;
    let client = cluster.client();
    let kept = client.session(TTL).await.unwrap();
    let unkept = client.create_session(Some(TTL)).await.unwrap();
    let owned = PutOptions {
        session: Some(kept.id().to_string()),
        ..PutOptions::default()
    };
    client.put_with("s/kept", "k", &owned).await.unwrap();

    tokio::time::sleep(TTL * 3 + TTL / 2).await;

    assert_eq!(kept.loss(), None);
    let detail = client
        .session_info(kept.id(), &PageOptions::default())
        .await
        .unwrap();
    assert_eq!(detail.keys, ["s/kept"]);
    // The server expires a session no later than 2 x ttl after its last keepalive.
    assert!(matches!(
        client
            .session_info(&unkept.id, &PageOptions::default())
            .await,
        Err(Error::SessionNotFound(_))
    ));

    let id = kept.id().to_string();
    assert_eq!(kept.close().await.unwrap(), 1);
    assert_eq!(client.get("s/kept").await.unwrap(), None);
    assert!(matches!(
        client.keepalive(&id).await,
        Err(Error::SessionNotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_closed_elsewhere_is_reported_expired() {
    let cluster = Cluster::start(3, "session-expired").await;
    let client = cluster.client();
    let session = client.session(TTL).await.unwrap();
    let mut loss = session.subscribe();
    client.close_session(session.id()).await.unwrap();
    let reported = tokio::time::timeout(Duration::from_secs(30), session.lost())
        .await
        .expect("the loss is reported");
    assert_eq!(reported, SessionLoss::Expired);
    loss.changed().await.unwrap();
    assert_eq!(*loss.borrow(), Some(SessionLoss::Expired));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_every_node_reports_the_session_lost() {
    let mut cluster = Cluster::start(3, "session-lost").await;
    let client = cluster.client();
    let session = client.session(TTL).await.unwrap();
    assert_eq!(session.loss(), None);
    for i in 0..3 {
        cluster.kill(i);
    }
    let reported = tokio::time::timeout(Duration::from_secs(30), session.lost())
        .await
        .expect("the loss is reported");
    match reported {
        SessionLoss::Unconfirmed { last_error } => assert!(!last_error.is_empty()),
        other => panic!("expected Unconfirmed, got {other:?}"),
    }
}
