//! Whole-node tests on one node (a cluster of one) over the simulated file system: the
//! round trip of a proposal, restart from the acceptor log, and halting when an fsync of
//! the acceptor log fails (the node must never answer after losing durability).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use vfs::SimFs;

use super::*;
use crate::paxos::{Change, Slot};

#[derive(Default)]
struct Log {
    applied: Slot,
    commands: Vec<Bytes>,
    changes: Vec<(Slot, Change)>,
}

struct Counter(Arc<Mutex<Log>>);

impl StateMachine for Counter {
    fn applied_index(&self) -> Slot {
        self.0.lock().unwrap().applied
    }
    fn apply(&mut self, slot: Slot, commands: &[Bytes]) -> io::Result<Vec<Bytes>> {
        let mut l = self.0.lock().unwrap();
        assert_eq!(slot, l.applied + 1);
        l.applied = slot;
        l.commands.extend(commands.iter().cloned());
        Ok(commands
            .iter()
            .map(|c| Bytes::from(format!("{}!", c.len())))
            .collect())
    }
    fn apply_membership_change(&mut self, slot: Slot, change: &Change) -> io::Result<()> {
        let mut l = self.0.lock().unwrap();
        assert_eq!(slot, l.applied + 1);
        l.applied = slot;
        l.changes.push((slot, change.clone()));
        Ok(())
    }
    fn membership_changes(&self) -> io::Result<Vec<(Slot, Change)>> {
        Ok(self.0.lock().unwrap().changes.clone())
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn snapshot(&self) -> io::Result<Box<dyn SnapshotSource>> {
        Err(io::Error::other("not used"))
    }
    fn begin_install(&mut self, _slot: Slot) -> io::Result<()> {
        Err(io::Error::other("not used"))
    }
    fn install_chunk(&mut self, _chunk: &[u8]) -> io::Result<()> {
        Err(io::Error::other("not used"))
    }
    fn finish_install(&mut self) -> io::Result<()> {
        Err(io::Error::other("not used"))
    }
}

fn config() -> NodeConfig {
    let mut cfg = NodeConfig::new(1, vec![(1, "127.0.0.1:0".into())], "127.0.0.1:1", "/data");
    cfg.request_timeout_ms = 2000;
    cfg
}

async fn propose_until_ok(node: &NodeHandle, cmd: &'static [u8]) -> (Slot, Bytes) {
    for _ in 0..200 {
        match node.propose(Bytes::from_static(cmd)).await {
            Ok(r) => return r,
            Err(NodeError::NoQuorum) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("propose failed: {e}"),
        }
    }
    panic!("no leader in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_applies_restarts_and_halts_on_fsync_failure() {
    let fs = Arc::new(SimFs::new());
    let log = Arc::new(Mutex::new(Log::default()));
    let node = Node::start_with_fs(config(), fs.clone(), Box::new(Counter(log.clone())))
        .await
        .unwrap();
    let (slot, result) = propose_until_ok(&node, b"abc").await;
    assert_eq!(result, Bytes::from("3!"));
    assert_eq!(log.lock().unwrap().commands, vec![Bytes::from("abc")]);
    node.wait_applied(slot).await.unwrap();
    let index = node.read_index().await.unwrap();
    assert!(index >= slot);
    node.shutdown().await;
    assert!(matches!(
        node.propose(Bytes::from_static(b"late")).await,
        Err(NodeError::Shutdown)
    ));

    // Restart from the same (simulated) disk and state: new slots continue after the old.
    let node = Node::start_with_fs(config(), fs.clone(), Box::new(Counter(log.clone())))
        .await
        .unwrap();
    let (slot2, _) = propose_until_ok(&node, b"de").await;
    assert!(slot2 > slot);
    assert_eq!(log.lock().unwrap().commands.len(), 2);

    // The next fsync fails: the node must stop rather than answer.
    fs.fail_sync_after(0);
    let r = node.propose(Bytes::from_static(b"lost")).await;
    assert!(
        r.is_err(),
        "a proposal succeeded without a durable log: {r:?}"
    );
    node.shutdown().await;
    let st = node.status();
    assert!(st.failed.is_some(), "the node did not report the failure");
    assert!(!log.lock().unwrap().commands.contains(&Bytes::from("lost")));
}
