//! When one revision holds several events (here a txn writing three watched keys),
//! only the last of them carries `id:`, live and from history alike, so a client that
//! resumes with `Last-Event-ID` never skips the rest of a revision: a resume with the
//! txn's revision gets nothing of it, only what follows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sse::{Frame, Sse};
use common::Cluster;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

/// The three events of the txn, then the single put after it.
fn check(frames: &[Frame], txn_revision: u64) {
    let keys: Vec<String> = frames.iter().map(Frame::key).collect();
    assert_eq!(keys, ["t/a", "t/b", "t/c", "t/d"]);
    for f in &frames[..3] {
        assert_eq!(f.revision(), txn_revision);
    }
    let ids: Vec<Option<u64>> = frames.iter().map(|f| f.id).collect();
    assert_eq!(
        ids,
        [None, None, Some(txn_revision), Some(txn_revision + 1)],
        "only the last event of a revision carries its id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_id_marks_the_last_event_of_a_revision() {
    let c = Cluster::start(1, "watch-ids").await;
    c.put(0, "/v1/keys/t/a", b"0").await;
    let start = c.get(0, "/v1/keys/t/a").await.revision();

    let live = c
        .http
        .get(c.url(0, "/v1/watch?prefix=t/"))
        .send()
        .await
        .unwrap();
    let mut live = Sse::of(live);

    let txn = r#"{"then": [
        {"op": "put", "key": "t/a", "value": "YQ=="},
        {"op": "put", "key": "t/b", "value": "Yg=="},
        {"op": "put", "key": "t/c", "value": "Yw=="}]}"#;
    let a = c.post(0, "/v1/txn", txn).await;
    assert_eq!(a.status, 200, "{}", a.text());
    let txn_revision = a.json()["revision"].as_u64().unwrap();
    assert_eq!(txn_revision, start + 1);
    c.put(0, "/v1/keys/t/d", b"d").await;

    check(&live.changes(4, LIMIT).await, txn_revision);

    let from = format!("/v1/watch?prefix=t/&from_revision={txn_revision}");
    let mut past = Sse::of(c.http.get(c.url(0, &from)).send().await.unwrap());
    check(&past.changes(4, LIMIT).await, txn_revision);

    let resumed = c
        .http
        .get(c.url(0, "/v1/watch?prefix=t/"))
        .header("Last-Event-ID", txn_revision.to_string())
        .send()
        .await
        .unwrap();
    let first = Sse::of(resumed).changes(1, LIMIT).await.remove(0);
    assert_eq!(first.key(), "t/d");
    assert_eq!(first.id, Some(txn_revision + 1));
}
