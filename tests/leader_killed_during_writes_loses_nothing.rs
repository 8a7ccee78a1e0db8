//! SIGKILL the leader of a 3-node cluster during a stream of writes: writes resume
//! through the surviving nodes within a few seconds, and no acknowledged write is lost.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// How long the surviving nodes may take to accept writes again (DESIGN: about 1-2 s;
/// generous here because CI machines are shared).
const RESUME_BOUND: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_during_writes_loses_nothing() {
    let mut c = Cluster::start(3, "killleader").await;
    let leader = c.wait_leader(Duration::from_secs(20)).await;
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();

    let mut acked: Vec<(u64, u64)> = Vec::new(); // (i, mod_revision)
    let mut i = 0u64;
    let mut killed_at = None;
    let mut resumed_after = None;
    while resumed_after.is_none() || acked.len() < 150 {
        let node = survivors[(i % 2) as usize];
        i += 1;
        let path = format!("/v1/keys/w/{i:06}");
        // A write in flight to the dying leader stays unanswered until it times out
        // (its outcome is unknown); like a real client, give up on it after a second
        // and go on with the next write.
        let answer = c
            .try_call_within(
                node,
                reqwest::Method::PUT,
                &path,
                Some(i.to_string().into_bytes()),
                &[],
                Duration::from_secs(1),
            )
            .await;
        match answer {
            Some(a) if a.status == StatusCode::CREATED => {
                acked.push((i, a.json()["mod_revision"].as_u64().unwrap()));
                if let (Some(t), None) = (killed_at, resumed_after) {
                    resumed_after = Some(Instant::now().duration_since(t));
                }
            }
            Some(a) => {
                // 503 = not applied; 504 = unknown. Both are allowed while the leader is gone.
                assert!(
                    matches!(a.status.as_u16(), 503 | 504),
                    "unexpected answer {}: {}",
                    a.status,
                    a.text()
                );
                if a.status == StatusCode::SERVICE_UNAVAILABLE {
                    assert!(a.header("retry-after").is_some());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        if killed_at.is_none() && acked.len() == 50 {
            c.kill(leader);
            killed_at = Some(Instant::now());
        }
        if let Some(t) = killed_at {
            assert!(
                resumed_after.is_some() || t.elapsed() < Duration::from_secs(30),
                "writes never resumed after the leader was killed"
            );
        }
    }
    let resumed = resumed_after.unwrap();
    eprintln!("writes resumed {resumed:?} after the leader was killed");
    assert!(
        resumed < RESUME_BOUND,
        "writes resumed only after {resumed:?}"
    );

    let new_leader = c.wait_leader(Duration::from_secs(10)).await;
    assert_ne!(new_leader, leader);
    // Every acknowledged write is there, on both survivors, with increasing revisions.
    for &node in &survivors {
        let a = c.get(node, "/v1/keys?prefix=w/&limit=10000").await;
        assert_eq!(a.status, StatusCode::OK);
        let j = a.json();
        let entries = j["entries"].as_array().unwrap();
        let have: std::collections::BTreeMap<String, u64> = entries
            .iter()
            .map(|e| {
                (
                    e["key"].as_str().unwrap().to_string(),
                    e["mod_revision"].as_u64().unwrap(),
                )
            })
            .collect();
        for (i, rev) in &acked {
            let key = format!("w/{i:06}");
            assert_eq!(
                have.get(&key),
                Some(rev),
                "acknowledged {key} lost on node {}",
                node + 1
            );
        }
    }
    let revs: Vec<u64> = acked.iter().map(|(_, r)| *r).collect();
    assert!(
        revs.windows(2).all(|w| w[0] < w[1]),
        "revisions increase: {revs:?}"
    );
}
