//! The lock recipe against a real 3-node cluster: competing clients never hold it at
//! once (their critical sections never interleave, an unguarded read-modify-write
//! counter loses nothing, tokens grow); a holder whose session expires, and a holder
//! whose only node is killed, lose the lock to the next waiter, which gets a larger
//! token, and a write fenced by the tokens refuses the old holder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use concierge_client::{Client, Compare, Op, SessionLoss, Txn};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CLIENTS: usize = 4;
const ROUNDS: usize = 5;
const TTL: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Enter(u64),
    Exit(u64),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_clients_hold_the_lock_one_at_a_time() {
    let cluster = Cluster::start(3, "lock-compete").await;
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        // Each client starts at a different node.
        let mut endpoints = cluster.endpoints();
        endpoints.rotate_left(c % 3);
        let client = Client::connect(endpoints).unwrap();
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let session = client.session(Duration::from_secs(10)).await.unwrap();
            for _ in 0..ROUNDS {
                let guard = client.lock(&session, "locks/job").await.unwrap();
                log.lock().unwrap().push(Step::Enter(guard.token()));
                // An unguarded read-modify-write: only mutual exclusion keeps it exact.
                let n: u64 = match client.get("counter").await.unwrap() {
                    Some(kv) => std::str::from_utf8(&kv.value).unwrap().parse().unwrap(),
                    None => 0,
                };
                tokio::task::yield_now().await;
                client.put("counter", (n + 1).to_string()).await.unwrap();
                log.lock().unwrap().push(Step::Exit(guard.token()));
                guard.unlock().await.unwrap();
            }
            session.close().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2 * CLIENTS * ROUNDS);
    let mut last_token = 0;
    for pair in log.chunks(2) {
        match pair {
            [Step::Enter(a), Step::Exit(b)] if a == b => {
                assert!(*a > last_token, "token {a} after {last_token}");
                last_token = *a;
            }
            other => panic!("critical sections overlap: {other:?} in {log:?}"),
        }
    }
    let client = cluster.client();
    let counter = client.get("counter").await.unwrap().unwrap();
    assert_eq!(
        &counter.value[..],
        (CLIENTS * ROUNDS).to_string().as_bytes()
    );
    // Every waiter key is gone.
    let left = client
        .list_all("locks/job/", &Default::default(), 100)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// Writes `value` to `resource` only if `token` is at least the highest token the
/// fence has seen (a compare-and-set on the fence key).
async fn fenced_put(client: &Client, token: u64, value: &str) -> bool {
    loop {
        let (version, highest) = match client.get("fence").await.unwrap() {
            None => (0, 0),
            Some(kv) => (
                kv.version,
                std::str::from_utf8(&kv.value).unwrap().parse().unwrap(),
            ),
        };
        if token < highest {
            return false;
        }
        let txn = Txn::new()
            .when(Compare::version("fence", version))
            .then(Op::put("fence", token.to_string()))
            .then(Op::put("resource", value.to_string()));
        if client.txn(&txn).await.unwrap().succeeded {
            return true;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_session_expires_loses_the_lock_and_is_fenced_off() {
    let cluster = Cluster::start(3, "lock-expire").await;
    let client = cluster.client();
    let a_session = client.session(TTL).await.unwrap();
    let a = client.lock(&a_session, "locks/x").await.unwrap();
    assert!(fenced_put(&client, a.token(), "a").await);

    let b_client = cluster.client();
    let b_task = tokio::spawn(async move {
        let session = b_client.session(Duration::from_secs(10)).await.unwrap();
        let guard = b_client.lock(&session, "locks/x").await.unwrap();
        (guard, session)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b_task.is_finished(), "B took a lock A holds");

    // A stops keeping its session alive (a process that stalls): it expires.
    drop(a_session);
    assert_eq!(a.lost().await, SessionLoss::Closed);
    let (b, _b_session) = tokio::time::timeout(Duration::from_secs(30), b_task)
        .await
        .expect("B gets the lock once A's session expired")
        .unwrap();
    assert!(b.token() > a.token());
    assert_eq!(client.get(a.key()).await.unwrap(), None);
    assert!(fenced_put(&client, b.token(), "b").await);
    // A, acting late on its old token, is refused.
    assert!(!fenced_put(&client, a.token(), "a-late").await);
    assert_eq!(
        &client.get("resource").await.unwrap().unwrap().value[..],
        b"b"
    );
    assert!(a.unlock().await.is_err(), "A's key was already gone");
    b.unlock().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_whose_node_is_killed_learns_it_before_the_next_holder_starts() {
    let mut cluster = Cluster::start(3, "lock-kill").await;
    let client = cluster.client();
    // A talks to the leader only; killing it also makes a new leader restart every
    // session's TTL, so B cannot start before A's lease has run out.
    let leader = client.cluster().await.unwrap().leader_id.unwrap() as usize - 1;
    let a_client = Client::connect([cluster.endpoint(leader)]).unwrap();
    let a_session = a_client.session(TTL).await.unwrap();
    let a = a_client.lock(&a_session, "locks/y").await.unwrap();

    let order = Arc::new(Mutex::new(Vec::new()));
    let b_client = cluster.client();
    let b_order = order.clone();
    let b_task = tokio::spawn(async move {
        let session = b_client.session(Duration::from_secs(10)).await.unwrap();
        let guard = b_client.lock(&session, "locks/y").await.unwrap();
        b_order.lock().unwrap().push("B acquired");
        (guard, session)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!b_task.is_finished(), "B took a lock A holds");

    cluster.kill(leader);
    let loss = tokio::time::timeout(Duration::from_secs(30), a.lost())
        .await
        .expect("A learns it lost the lock");
    order.lock().unwrap().push("A lost");
    assert!(matches!(loss, SessionLoss::Unconfirmed { .. }), "{loss:?}");
    let (b, _b_session) = tokio::time::timeout(Duration::from_secs(30), b_task)
        .await
        .expect("B gets the lock")
        .unwrap();
    assert!(b.token() > a.token());
    assert_eq!(*order.lock().unwrap(), ["A lost", "B acquired"]);
    let survivor = cluster.client();
    assert!(fenced_put(&survivor, b.token(), "b").await);
    assert!(!fenced_put(&survivor, a.token(), "a-late").await);
    b.unlock().await.unwrap();
}
