//! `POST /v1/compact`: a watch from below the compaction revision answers 410
//! `compacted` with `compact_revision`; history from it on still streams; a future
//! revision or one already compacted is a 400 that changes nothing; `/metrics` and
//! `/v1/cluster` report the history and data sizes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sse::Sse;
use common::Cluster;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_drops_history_below_a_revision() {
    let c = Cluster::start(3, "compact").await;
    let mut last = 0;
    for i in 0..10 {
        let a = c.put(i % 3, &format!("/v1/keys/w/{i}"), b"v").await;
        last = a.json()["mod_revision"].as_u64().unwrap();
    }
    assert!(last >= 10);
    let before = c.get(0, "/v1/cluster").await.json();
    let history_before = before["history_bytes"].as_u64().unwrap();
    assert!(history_before > 0, "{before}");
    assert!(before["db_size_bytes"].as_u64().unwrap() > 0, "{before}");
    assert!(before["live_bytes"].as_u64().unwrap() > 0, "{before}");

    let r = last - 4;
    let ok = c
        .post(1, "/v1/compact", &format!(r#"{{"revision": {r}}}"#))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["compact_revision"].as_u64(), Some(r - 1));
    assert_eq!(
        ok.json()["revision"].as_u64(),
        Some(last),
        "a compaction takes no revision"
    );

    // Every node: below r is gone, r on still streams.
    for i in 0..3 {
        // A linearizable read: this node has applied the compaction.
        assert_eq!(c.get(i, "/v1/keys/w/0").await.status, 200);
        let old = c
            .get(i, &format!("/v1/watch?prefix=w/&from_revision={}", r - 1))
            .await;
        old.assert_error(410, "compacted");
        assert_eq!(old.json()["compact_revision"].as_u64(), Some(r - 1));
        let resp = c
            .http
            .get(c.url(i, &format!("/v1/watch?prefix=w/&from_revision={r}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut sse = Sse::of(resp);
        let frames = sse.changes(5, Duration::from_secs(10)).await;
        let revs: Vec<u64> = frames.iter().map(|f| f.revision()).collect();
        assert_eq!(revs, (r..=last).collect::<Vec<_>>(), "node {}", i + 1);
    }

    // Bad revisions: 400, nothing changes.
    for body in [
        format!(r#"{{"revision": {}}}"#, last + 1),
        format!(r#"{{"revision": {r}}}"#),
        format!(r#"{{"revision": {}}}"#, r - 2),
        r#"{"revision": 0}"#.to_string(),
        r#"{"revision": "x"}"#.to_string(),
        r#"{}"#.to_string(),
    ] {
        c.post(2, "/v1/compact", &body)
            .await
            .assert_error(400, "bad_request");
    }
    let after = c.get(0, "/v1/cluster").await.json();
    assert_eq!(after["compact_revision"].as_u64(), Some(r - 1), "{after}");
    assert_eq!(after["revision"].as_u64(), Some(last), "{after}");
    assert!(
        after["history_bytes"].as_u64().unwrap() < history_before,
        "{after}"
    );

    let metrics = c.get(0, "/metrics").await.text();
    for name in [
        "concierge_db_size_bytes",
        "concierge_live_bytes",
        "concierge_history_bytes",
        "concierge_history_revisions",
    ] {
        assert!(metrics.contains(&format!("\n{name} ")), "{name} missing");
    }
    assert!(
        metrics.contains("\nconcierge_history_revisions 5\n"),
        "{metrics}"
    );
}
