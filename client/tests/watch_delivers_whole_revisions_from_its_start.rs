//! A watch without a start begins after the revision its first connection reflects;
//! revisions with several events (a transaction, a prefix delete) arrive whole and in
//! order; a key watch sees only its key; a start in the past replays from there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use concierge_client::{EventKind, Op, Txn, WatchOptions};
use futures_util::StreamExt;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_arrive_whole_and_a_watch_without_start_misses_nothing_after_it() {
    let cluster = Cluster::start(3, "watch-whole").await;
    let client = cluster.client();
    client.put("p/before", "0").await.unwrap();

    let mut all = client.watch(WatchOptions::prefix("p/"));
    let mut one = client.watch(WatchOptions::key("p/b"));
    // The first poll connects; nothing has happened yet.
    assert!(tokio::time::timeout(Duration::from_millis(300), all.next())
        .await
        .is_err());
    assert!(tokio::time::timeout(Duration::from_millis(300), one.next())
        .await
        .is_err());
    assert!(all.endpoint().is_some());

    let txn = Txn::new()
        .then(Op::put("p/a", "1"))
        .then(Op::put("p/b", "2"))
        .then(Op::put("p/c", "3"));
    let t = client.txn(&txn).await.unwrap();
    let d = client.delete_prefix("p/").await.unwrap();
    assert_eq!(d.deleted, 4);

    let mut got = Vec::new();
    while got.len() < 7 {
        let e = tokio::time::timeout(Duration::from_secs(30), all.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.push((e.kind, e.key, e.mod_revision));
    }
    let put = |k: &str| (EventKind::Put, k.to_string(), t.revision);
    let del = |k: &str| (EventKind::Delete, k.to_string(), d.revision);
    assert_eq!(
        got,
        [
            put("p/a"),
            put("p/b"),
            put("p/c"),
            del("p/a"),
            del("p/b"),
            del("p/before"),
            del("p/c"),
        ]
    );
    let mut mine = Vec::new();
    while mine.len() < 2 {
        let e = one.next().await.unwrap().unwrap();
        mine.push((e.kind, e.mod_revision));
    }
    assert_eq!(
        mine,
        [
            (EventKind::Put, t.revision),
            (EventKind::Delete, d.revision)
        ]
    );

    // A start in the past replays from there.
    let mut past = client.watch(WatchOptions::key("p/a").from_revision(t.revision));
    let e = past.next().await.unwrap().unwrap();
    assert_eq!((e.kind, e.mod_revision), (EventKind::Put, t.revision));
    assert_eq!(e.value.as_deref(), Some(&b"1"[..]));
}
