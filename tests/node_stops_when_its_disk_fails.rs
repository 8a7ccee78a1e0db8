//! A node whose disk fails stops (fail-stop): it never answers a client as if a write
//! were durable, and `NodeHandle::stopped()` resolves on its own with the reason,
//! which is what makes `concierge serve` log it and exit non-zero (`main.rs`).
//!
//! One node (a cluster of one) on simulated disks: its acceptor log on one `SimFs`,
//! its key-value store (the real `storage` engine under the real state machine) on
//! another, so each failure hits exactly one of them.
//! - The key-value store's disk fills up: applying fails. The node used to only mark
//!   itself failed and keep running (voting, answering every request with an error,
//!   never exiting); now it halts like for a failed acceptor log.
//! - The acceptor log's disk fills up, or its fsync fails (EIO): the node halts. It is
//!   then restarted on the same disk without a power loss (what a supervisor does),
//!   takes writes, loses power, and must still start with every acknowledged write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use concierge::kv::{Command, KvOptions, KvStateMachine, LeaseTable, Outcome, Reply};
use concierge::node::{Node, NodeConfig, NodeError, NodeHandle};
use storage::Db;
use vfs::{CrashMode, SimFs};

/// How long a node may take to notice its failure and stop (a liveness bound: the
/// tests pass as soon as it stops).
const STOP_WITHIN: Duration = Duration::from_secs(30);

fn config() -> NodeConfig {
    let mut cfg = NodeConfig::new(1, vec![(1, "127.0.0.1:0".into())], "127.0.0.1:1", "/data");
    cfg.request_timeout_ms = 2000;
    cfg
}

async fn start(log_fs: &SimFs, kv_fs: &SimFs) -> NodeHandle {
    let db = Db::open(
        Arc::new(kv_fs.clone()),
        Path::new("/data/kv"),
        storage::Options::default(),
    )
    .unwrap();
    let sm = KvStateMachine::open(db, KvOptions::default(), LeaseTable::new()).unwrap();
    Node::start_with_fs(config(), Arc::new(log_fs.clone()), Box::new(sm))
        .await
        .unwrap()
}

fn put(key: &str) -> Bytes {
    Command::Put {
        key: key.into(),
        value: Bytes::from(format!("value of {key}")),
        expect_version: None,
        session: None,
    }
    .encode()
}

async fn put_until_ok(node: &NodeHandle, key: &str) {
    for _ in 0..500 {
        match node.propose(put(key)).await {
            Ok(_) => return,
            Err(NodeError::NoQuorum | NodeError::NotReady { .. }) => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("put {key}: {e}"),
        }
    }
    panic!("put {key}: no leader in time");
}

/// Waits for the node to stop on its own; returns why.
async fn stopped(node: &NodeHandle, what: &str) -> String {
    match tokio::time::timeout(STOP_WITHIN, node.stopped()).await {
        Ok(Some(reason)) => reason,
        Ok(None) => panic!("{what}: the node stopped without a reason"),
        Err(_) => panic!(
            "{what}: the node kept running after its disk failed (failed: {:?})",
            node.status().failed
        ),
    }
}

async fn assert_keys(node: &NodeHandle, keys: &[String], what: &str) {
    for key in keys {
        let probe = Command::Put {
            key: key.clone(),
            value: Bytes::from(format!("value of {key}")),
            expect_version: Some(0),
            session: None,
        };
        // A put "only if absent" fails on a key that is there: the key survived.
        let (_, reply) = node.propose(probe.encode()).await.unwrap();
        let reply = Reply::decode(&reply).unwrap();
        assert!(
            matches!(reply.outcome, Outcome::VersionMismatch { .. }),
            "{what}: acknowledged key {key} is missing after restart: {reply:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_key_value_disk_stops_the_node() {
    let (log_fs, kv_fs) = (SimFs::new(), SimFs::new());
    let node = start(&log_fs, &kv_fs).await;
    put_until_ok(&node, "a").await;
    kv_fs.fail_writes(true);
    let r = node.propose(put("b")).await;
    assert!(r.is_err(), "a put was answered Ok on a full disk: {r:?}");
    let reason = stopped(&node, "key-value disk full").await;
    assert!(reason.contains("No space left on device"), "{reason}");
    assert!(node.propose(put("c")).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_acceptor_log_disk_stops_the_node() {
    let (log_fs, kv_fs) = (SimFs::new(), SimFs::new());
    let node = start(&log_fs, &kv_fs).await;
    put_until_ok(&node, "a").await;
    log_fs.fail_writes_after(10);
    let r = node.propose(put("b")).await;
    assert!(r.is_err(), "a put was answered Ok on a full disk: {r:?}");
    let reason = stopped(&node, "acceptor log disk full").await;
    assert!(reason.contains("No space left on device"), "{reason}");

    // Room again; a restart cuts the half record and the node serves.
    log_fs.fail_writes(false);
    let node = start(&log_fs, &kv_fs).await;
    put_until_ok(&node, "c").await;
    assert_keys(&node, &["a".into(), "c".into()], "after a full disk").await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_acceptor_fsync_stops_the_node_and_a_restart_is_safe() {
    let (log_fs, kv_fs) = (SimFs::new(), SimFs::new());
    let node = start(&log_fs, &kv_fs).await;
    let mut acked: Vec<String> = Vec::new();
    for i in 0..5 {
        let key = format!("before-{i}");
        put_until_ok(&node, &key).await;
        acked.push(key);
    }
    log_fs.fail_sync_after(0);
    let r = node.propose(put("lost")).await;
    assert!(
        r.is_err(),
        "a put was answered Ok after a failed fsync: {r:?}"
    );
    let reason = stopped(&node, "acceptor fsync failed").await;
    assert!(reason.contains("Input/output error"), "{reason}");

    // Restarted on the same disk (the pages the failed fsync dropped still read
    // back), it takes writes; then the power fails.
    let node = start(&log_fs, &kv_fs).await;
    for i in 0..5 {
        let key = format!("after-{i}");
        put_until_ok(&node, &key).await;
        acked.push(key);
    }
    node.shutdown().await;
    log_fs.crash(CrashMode::DropUnsynced);
    kv_fs.crash(CrashMode::DropUnsynced);
    let node = start(&log_fs, &kv_fs).await;
    put_until_ok(&node, "last").await;
    assert_keys(
        &node,
        &acked,
        "after a failed fsync, a restart and a power loss",
    )
    .await;
    node.shutdown().await;
}
