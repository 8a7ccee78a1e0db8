//! A member restarted with another cluster secret is refused by its peers and refuses
//! them: it takes no part (the other two go on electing and writing without it, and it
//! never serves what they wrote), and both sides log why. Restarted with the right
//! secret it catches up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{write_secret_file, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_another_secret_is_refused() {
    let mut c = Cluster::start(3, "peer-othersecret").await;
    let right = c
        .env
        .iter()
        .find(|(k, _)| k == "CLUSTER_SECRET_FILE")
        .map(|(_, v)| v.clone())
        .expect("the harness gives every cluster a secret");
    c.wait_leader(Duration::from_secs(30)).await;

    // Node 3 comes back with a secret of its own.
    c.kill(2);
    let other_root = c.root.join("other");
    std::fs::create_dir_all(&other_root).unwrap();
    let other = write_secret_file(&other_root);
    assert_ne!(
        std::fs::read(&other).unwrap(),
        std::fs::read(&right).unwrap()
    );
    set_secret_file(&mut c, other.to_string_lossy().into_owned());
    c.launch(2);

    // The two with the right secret write on without it.
    let leader = leader_of_the_two(&c).await;
    for k in 0..20 {
        let a = c.put(leader, &format!("/v1/keys/w{k}"), b"x").await;
        assert!(a.status.is_success(), "{}", a.text());
    }
    // Both sides refuse each other's handshakes, and say so.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs: Vec<String> = c
            .nodes
            .iter()
            .map(|n| std::fs::read_to_string(&n.log).unwrap_or_default())
            .collect();
        let refused_by_peers = logs[..2].iter().all(|l| l.contains("not authenticated"));
        let refused_by_it = logs[2].contains("not authenticated");
        if refused_by_peers && refused_by_it {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal logged: peers {refused_by_peers}, node 3 {refused_by_it}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Node 3 took no part: it never applied the writes made since.
    let j = c.get(2, "/v1/keys/w19").await;
    assert_ne!(
        j.status.as_u16(),
        200,
        "node 3 served a write it could not have seen"
    );
    let cluster = c.get(2, "/v1/cluster").await.json();
    assert_ne!(
        cluster["leader_id"].as_u64(),
        Some(leader as u64 + 1),
        "node 3 follows the leader it cannot authenticate: {cluster}"
    );

    // With the right secret it joins and catches up.
    c.kill(2);
    set_secret_file(&mut c, right);
    c.launch(2);
    c.wait_ready(2, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = c.get(2, "/v1/keys/w19").await;
        if a.status.as_u16() == 200 {
            assert_eq!(a.body, b"x");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 3 never caught up: {}",
            a.text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The leader nodes 1 and 2 agree on (node 3 cannot lead: it cannot reach them).
async fn leader_of_the_two(c: &Cluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (c.leader_seen_by(0).await, c.leader_seen_by(1).await);
        if let (Some(a), Some(b)) = (a, b) {
            // (Right after node 3's restart, the two may still name it, as it led before.)
            if a == b && a != 2 {
                return a;
            }
        }
        assert!(Instant::now() < deadline, "no leader: {a:?} {b:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn set_secret_file(c: &mut Cluster, path: String) {
    c.env.retain(|(k, _)| k != "CLUSTER_SECRET_FILE");
    c.env.push(("CLUSTER_SECRET_FILE".into(), path));
}
