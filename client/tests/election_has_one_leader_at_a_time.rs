//! The election recipe against a real 3-node cluster: of two competing candidates one
//! leads and the other waits behind it until it resigns; an observer sees each leader
//! (and a proclaimed value) once, in order; a leader whose session expires is replaced
//! by the waiting candidate, which gets a larger fencing token, and can no longer
//! proclaim or resign.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use concierge_client::{Client, Error, Leader, SessionLoss};
use std::time::Duration;

const NAME: &str = "elections/svc";

/// Waits until the election has `n` candidates (counting listings, not time).
async fn wait_for_candidates(client: &Client, n: usize) {
    for _ in 0..400 {
        let keys = client
            .list_all(&format!("{NAME}/"), &Default::default(), 100)
            .await
            .unwrap();
        if keys.len() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the election never had {n} candidates");
}

fn leader(key: &str, value: &str, token: u64) -> Option<Leader> {
    Some(Leader {
        key: key.to_string(),
        value: value.as_bytes().to_vec().into(),
        token,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_candidates_lead_in_turn_and_the_observer_follows() {
    let cluster = Cluster::start(3, "elect-compete").await;
    let client = cluster.client();
    let mut observer = client.observe(NAME).await.unwrap();
    assert_eq!(observer.current(), None);
    assert_eq!(client.leader(NAME).await.unwrap(), None);

    let a_session = client.session(Duration::from_secs(10)).await.unwrap();
    let a = client.campaign(&a_session, NAME, "a").await.unwrap();
    let a_leader = leader(a.key(), "a", a.token());
    assert_eq!(observer.changed().await.unwrap(), a_leader);

    // B starts at another node and campaigns behind A.
    let mut endpoints = cluster.endpoints();
    endpoints.rotate_left(1);
    let b_client = Client::connect(endpoints).unwrap();
    let b_task = tokio::spawn(async move {
        let session = b_client.session(Duration::from_secs(10)).await.unwrap();
        let b = b_client.campaign(&session, NAME, "b").await.unwrap();
        (b, session)
    });
    wait_for_candidates(&client, 2).await;
    assert_eq!(client.leader(NAME).await.unwrap(), a_leader);
    assert!(!b_task.is_finished(), "B leads while A does");

    a.proclaim("a2").await.unwrap();
    let a2 = leader(a.key(), "a2", a.token());
    assert_eq!(observer.changed().await.unwrap(), a2);
    assert_eq!(client.leader(NAME).await.unwrap(), a2);

    let a_token = a.token();
    a.resign().await.unwrap();
    let (b, b_session) = tokio::time::timeout(Duration::from_secs(30), b_task)
        .await
        .expect("B leads once A resigned")
        .unwrap();
    assert!(b.token() > a_token, "token {} after {a_token}", b.token());
    let b_leader = leader(b.key(), "b", b.token());
    assert_eq!(observer.changed().await.unwrap(), b_leader);
    assert_eq!(client.leader(NAME).await.unwrap(), b_leader);

    b.resign().await.unwrap();
    assert_eq!(observer.changed().await.unwrap(), None);
    assert_eq!(client.leader(NAME).await.unwrap(), None);
    a_session.close().await.unwrap();
    b_session.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_session_expires_is_replaced_with_a_larger_token() {
    let cluster = Cluster::start(3, "elect-expire").await;
    let client = cluster.client();
    let a_session = client.session(Duration::from_secs(2)).await.unwrap();
    let a = client.campaign(&a_session, NAME, "a").await.unwrap();

    let b_client = cluster.client();
    let b_task = tokio::spawn(async move {
        let session = b_client.session(Duration::from_secs(10)).await.unwrap();
        let b = b_client.campaign(&session, NAME, "b").await.unwrap();
        (b, session)
    });
    wait_for_candidates(&client, 2).await;
    assert!(!b_task.is_finished(), "B leads while A does");

    // A stops keeping its session alive (a stalled process): the server expires it.
    drop(a_session);
    assert_eq!(a.lost().await, SessionLoss::Closed);
    assert!(a.is_lost());
    let (b, _b_session) = tokio::time::timeout(Duration::from_secs(30), b_task)
        .await
        .expect("B leads once A's session expired")
        .unwrap();
    assert!(
        b.token() > a.token(),
        "token {} after {}",
        b.token(),
        a.token()
    );
    assert_eq!(
        client.leader(NAME).await.unwrap(),
        leader(b.key(), "b", b.token())
    );
    assert_eq!(client.get(a.key()).await.unwrap(), None);
    // The old leader can neither bring its key back nor delete B's.
    assert!(matches!(
        a.proclaim("late").await,
        Err(Error::SessionLost { .. })
    ));
    assert_eq!(client.get(a.key()).await.unwrap(), None);
    assert!(matches!(a.resign().await, Err(Error::SessionLost { .. })));
    assert_eq!(
        client.leader(NAME).await.unwrap(),
        leader(b.key(), "b", b.token())
    );
    b.resign().await.unwrap();
}
