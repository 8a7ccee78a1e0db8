//! The members of a running cluster change while clients write, and nothing
//! acknowledged is lost (issue 11).
//!
//! A 3-node cluster takes writes from a client spread over its nodes the whole time.
//! - Node 4 is added as a learner through a follower (the request is relayed to the
//!   leader), then started with an empty directory and `JOIN`; it catches up and is
//!   promoted to voter (a promotion while it lags is a 409, retried).
//! - Node 1 is removed and its process stopped: the cluster is {2, 3, 4}.
//! - Node 5 replaces it: added, joined (with node 1 gone: nothing gone may be needed to
//!   vouch for a new directory), promoted; then node 2 is removed: {3, 4, 5}.
//! - Node 4 restarts from its directory (its id and the cluster come from there, its
//!   memberships from its state), and the cluster keeps writing.
//!
//! Then every acknowledged write is read back, linearizably, on every voter, and every
//! node reports the voters {3, 4, 5}. Bad requests change nothing: a malformed address
//! is 400, an unknown id 404, a second member on one address 400.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

/// Writes `w/{n}` through the nodes in `targets` (round robin) until `stop`, recording
/// each acknowledged value; a write not acknowledged is retried with its idempotency key.
async fn writer(
    c: Arc<Mutex<Vec<u16>>>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<BTreeMap<u64, String>>>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut n = 0u64;
    while !stop.load(Ordering::Acquire) {
        n += 1;
        let value = format!("v{n}");
        let key = format!("idem-{n}");
        let start = Instant::now();
        let mut attempt = 0usize;
        loop {
            attempt += 1;
            let ports = c.lock().unwrap().clone();
            let port = ports[(n as usize + attempt) % ports.len()];
            let url = format!("http://127.0.0.1:{port}/v1/keys/w/{n}");
            let sent = http
                .put(url)
                .header("Idempotency-Key", key.as_str())
                .body(value.clone())
                .send()
                .await;
            if let Ok(resp) = sent {
                if resp.status().is_success() {
                    acked.lock().unwrap().insert(n, value.clone());
                    break;
                }
            }
            if start.elapsed() > LIMIT || stop.load(Ordering::Acquire) {
                break; // never acknowledged: not checked
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn cluster_of(c: &Cluster, i: usize) -> Value {
    c.get(i, "/v1/cluster").await.json()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// Waits until node `i` sees exactly `voters` vote.
async fn wait_voters(c: &Cluster, i: usize, voters: &[u64]) {
    let start = Instant::now();
    loop {
        let seen = cluster_of(c, i).await;
        if ids(&seen["voters"]) == voters {
            return;
        }
        assert!(start.elapsed() < LIMIT, "node {}: {seen}", i + 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Calls until the answer is not a 409 (a change still taking effect, a lagging learner).
async fn change(
    c: &Cluster,
    i: usize,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let start = Instant::now();
    loop {
        let body = body.map(|b| b.to_string().into_bytes());
        if let Some(a) = c.try_call(i, method.clone(), path, body, &[]).await {
            if a.status != StatusCode::CONFLICT && a.status != StatusCode::SERVICE_UNAVAILABLE {
                return (a.status, a.json());
            }
        }
        assert!(start.elapsed() < LIMIT, "{method} {path} kept conflicting");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_grow_replace_and_shrink_while_clients_write() {
    let mut c = Cluster::start(3, "members").await;
    let leader = c.wait_leader(LIMIT).await;
    let targets = Arc::new(Mutex::new(
        (0..3).map(|i| c.nodes[i].client_port).collect::<Vec<_>>(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let writing = tokio::spawn(writer(targets.clone(), stop.clone(), acked.clone()));

    // Bad requests change nothing.
    let follower = c.other_than(leader);
    c.call(
        follower,
        Method::POST,
        "/v1/cluster/members",
        Some(b"{\"peer_addr\": \"nope\"}".to_vec()),
        &[],
    )
    .await
    .assert_error(400, "bad_request");
    c.call(
        follower,
        Method::POST,
        "/v1/cluster/members/9/promote",
        None,
        &[],
    )
    .await
    .assert_error(404, "member_not_found");
    c.call(follower, Method::DELETE, "/v1/cluster/members/x", None, &[])
        .await
        .assert_error(404, "member_not_found");
    assert_eq!(
        ids(&cluster_of(&c, follower).await["voters"]),
        vec![1, 2, 3]
    );

    // Add node 4 through a follower, then start it with an empty directory.
    let n4 = c.add_node();
    let body = json!({
        "peer_addr": format!("127.0.0.1:{}", c.nodes[n4].peer_port),
        "client_addr": format!("127.0.0.1:{}", c.nodes[n4].client_port),
    });
    let (status, added) = change(
        &c,
        follower,
        Method::POST,
        "/v1/cluster/members",
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["id"], 4, "{added}");
    assert_eq!(added["role"], "learner");
    let seen = cluster_of(&c, leader).await;
    assert_eq!(ids(&seen["learners"]), vec![4], "{seen}");
    // Adding the same address again is refused.
    c.call(
        leader,
        Method::POST,
        "/v1/cluster/members",
        Some(body.to_string().into_bytes()),
        &[],
    )
    .await
    .assert_error(400, "bad_request");
    let join = c.url(follower, "");
    c.node_env.resize(4, Vec::new());
    c.node_env[n4] = vec![("JOIN".into(), join)];
    c.launch(n4);
    c.wait_ready(n4, LIMIT).await;
    let (status, promoted) = change(
        &c,
        leader,
        Method::POST,
        "/v1/cluster/members/4/promote",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{promoted}");
    targets.lock().unwrap().push(c.nodes[n4].client_port);
    wait_voters(&c, n4, &[1, 2, 3, 4]).await;
    assert_eq!(cluster_of(&c, n4).await["node_id"], 4);

    // Remove node 1 (through whichever node; it may be the leader) and stop it.
    targets
        .lock()
        .unwrap()
        .retain(|p| *p != c.nodes[0].client_port);
    let (status, removed) = change(&c, 1, Method::DELETE, "/v1/cluster/members/1", None).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    // Let the removal govern (the delay) before node 1 goes.
    wait_voters(&c, 1, &[2, 3, 4]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.kill(0);

    // Replace node 1 (gone for good) by node 5, which joins with node 1 down: no node
    // that is gone may be needed to vouch for the new node's directory.
    let n5 = c.add_node();
    let body5 = json!({
        "peer_addr": format!("127.0.0.1:{}", c.nodes[n5].peer_port),
        "client_addr": format!("127.0.0.1:{}", c.nodes[n5].client_port),
    });
    let (status, added) = change(&c, 2, Method::POST, "/v1/cluster/members", Some(&body5)).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["id"], 5, "{added}");
    c.node_env.resize(5, Vec::new());
    c.node_env[n5] = vec![("JOIN".into(), c.url(2, ""))];
    c.launch(n5);
    c.wait_ready(n5, LIMIT).await;
    let (status, promoted) =
        change(&c, 2, Method::POST, "/v1/cluster/members/5/promote", None).await;
    assert_eq!(status, StatusCode::OK, "{promoted}");
    wait_voters(&c, n5, &[2, 3, 4, 5]).await;
    targets.lock().unwrap().push(c.nodes[n5].client_port);

    // Shrink back to three: node 2 goes.
    targets
        .lock()
        .unwrap()
        .retain(|p| *p != c.nodes[1].client_port);
    let (status, removed) = change(&c, 2, Method::DELETE, "/v1/cluster/members/2", None).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    wait_voters(&c, n5, &[3, 4, 5]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.kill(1);

    // Node 4 restarts from its directory and the cluster goes on.
    c.kill(n4);
    c.launch(n4);
    c.wait_ready(n4, LIMIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Release);
    writing.await.unwrap();

    let acked = acked.lock().unwrap().clone();
    eprintln!("{} writes acknowledged", acked.len());
    assert!(acked.len() > 50, "only {} writes acknowledged", acked.len());
    for i in [2, n4, n5] {
        let seen = cluster_of(&c, i).await;
        assert_eq!(
            ids(&seen["voters"]),
            vec![3, 4, 5],
            "node {}: {seen}",
            i + 1
        );
        assert!(ids(&seen["learners"]).is_empty(), "{seen}");
        for (n, value) in &acked {
            let a = c.get(i, &format!("/v1/keys/w/{n}")).await;
            assert_eq!(a.status, StatusCode::OK, "node {}: w/{n}", i + 1);
            assert_eq!(a.text(), *value, "node {}: w/{n}", i + 1);
        }
    }
}
