//! The test: a writer writes numbered keys while a watch streams them; the node
//! serving the watch is killed mid-stream; the stream resumes on another node and
//! delivers every revision exactly once, in order, with the writer's revisions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use concierge_client::{EventKind, WatchOptions};
use futures_util::StreamExt;
use std::time::Duration;

const WRITES: usize = 300;
const KILL_AFTER: usize = 100;
const HOLD_AT: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_node_serving_a_watch_loses_and_repeats_nothing() {
    let mut cluster = Cluster::start(3, "watch-kill").await;
    let client = cluster.client();
    let start = client.cluster().await.unwrap().revision + 1;
    let mut watch = client.watch(WatchOptions::prefix("w/").from_revision(start));

    // The writer: one key per revision, through its own client (it fails over too). It
    // waits at write HOLD_AT until the kill, so the rest are written after it.
    let (killed_tx, mut killed_rx) = tokio::sync::watch::channel(false);
    let writer_client = cluster.client();
    let writer = tokio::spawn(async move {
        let mut revisions = Vec::with_capacity(WRITES);
        for i in 0..WRITES {
            if i == HOLD_AT {
                killed_rx.wait_for(|k| *k).await.unwrap();
            }
            let put = writer_client
                .put(&format!("w/{i:05}"), i.to_string())
                .await
                .unwrap_or_else(|e| panic!("write {i}: {e}"));
            assert_eq!(put.version, 1, "write {i} applied twice");
            revisions.push(put.mod_revision);
        }
        revisions
    });

    let mut events = Vec::with_capacity(WRITES);
    let mut killed = None;
    while events.len() < WRITES {
        let event = tokio::time::timeout(Duration::from_secs(60), watch.next())
            .await
            .expect("the watch delivers within 60 s")
            .expect("the watch does not end")
            .expect("the watch does not fail");
        events.push(event);
        if events.len() == KILL_AFTER {
            let serving = cluster.node_of(&watch.endpoint().unwrap());
            cluster.kill(serving);
            killed = Some(serving);
            killed_tx.send(true).unwrap();
        }
    }
    let revisions = writer.await.unwrap();

    assert!(killed.is_some());
    assert!(
        watch.connections() >= 2,
        "the watch never reconnected: the kill did not reach it"
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.key,
            format!("w/{i:05}"),
            "event {i} out of order or repeated"
        );
        assert_eq!(e.kind, EventKind::Put);
        assert_eq!(e.value.as_deref(), Some(i.to_string().as_bytes()));
        assert_eq!(e.mod_revision, revisions[i], "event {i}'s revision");
    }
    assert!(events
        .windows(2)
        .all(|w| w[0].mod_revision < w[1].mod_revision));
    assert_eq!(watch.next_revision(), Some(revisions[WRITES - 1] + 1));
}
