//! Three nodes in one process, over real TCP on 127.0.0.1, each with its own data dir:
//! 10,000 commands proposed concurrently through all three; midway the leader is shut
//! down hard and restarted from its data dir (its state machine rolled back to what it
//! had synced). At the end every node has applied the same commands in the same order,
//! each exactly once. A second scenario brings a node back only after the others truncated
//! their logs (tiny tail), so it can only catch up through a snapshot. A third wipes a
//! node's directory after it voted: it must stop instead of voting again. A fourth
//! stalls the leader's fsyncs past the suspicion timeout: it must not be deposed.
//!
//! The state machine is a recorder: it appends each applied command to an in-memory log
//! (the observer). Commands carry an id; a retried command (after an ambiguous error such
//! as the node dying under it) is recognised and not recorded twice, like the KV's
//! idempotency keys, and the test checks that only ambiguous retries ever arrive twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use concierge::node::{Node, NodeConfig, NodeError, NodeHandle, SnapshotSource, StateMachine};
use concierge::paxos::{Change, NodeId, Slot};
use vfs::SlowSyncFs;

// ---------------------------------------------------------------------------------------
// The recording state machine.

#[derive(Default, Debug, Clone)]
struct Recorded {
    applied: Slot,
    /// Each distinct command once, in apply order.
    log: Vec<Bytes>,
    seen: HashSet<Bytes>,
    /// Commands that arrived again after they were applied (ambiguous retries).
    repeats: Vec<Bytes>,
    /// The state as of the last `sync` (what survives a crash).
    synced: Option<Box<(Slot, Vec<Bytes>)>>,
    installs: usize,
    errors: Vec<String>,
}

impl Recorded {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.applied.to_be_bytes().to_vec();
        out.extend_from_slice(&(self.log.len() as u64).to_be_bytes());
        for c in &self.log {
            out.extend_from_slice(&(c.len() as u32).to_be_bytes());
            out.extend_from_slice(c);
        }
        out
    }

    fn decode(bytes: &[u8]) -> io::Result<(Slot, Vec<Bytes>)> {
        let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad snapshot");
        let take8 = |b: &[u8], at: usize| -> io::Result<u64> {
            Ok(u64::from_be_bytes(
                b.get(at..at + 8).ok_or_else(bad)?.try_into().unwrap(),
            ))
        };
        let applied = take8(bytes, 0)?;
        let n = take8(bytes, 8)?;
        let mut at = 16;
        let mut log = Vec::new();
        for _ in 0..n {
            let len =
                u32::from_be_bytes(bytes.get(at..at + 4).ok_or_else(bad)?.try_into().unwrap());
            at += 4;
            log.push(Bytes::copy_from_slice(
                bytes.get(at..at + len as usize).ok_or_else(bad)?,
            ));
            at += len as usize;
        }
        if at != bytes.len() {
            return Err(bad());
        }
        Ok((applied, log))
    }

    fn replace(&mut self, applied: Slot, log: Vec<Bytes>) {
        self.applied = applied;
        self.seen = log.iter().cloned().collect();
        self.log = log;
    }

    /// What a crash leaves: the state as of the last sync.
    fn crash(&mut self) {
        let (applied, log) = self.synced.take().map(|b| *b).unwrap_or_default();
        self.replace(applied, log.clone());
        self.synced = Some(Box::new((applied, log)));
    }
}

struct Recorder {
    state: Arc<Mutex<Recorded>>,
    stage: Option<(Slot, Vec<u8>)>,
}

struct VecSource {
    slot: Slot,
    bytes: Bytes,
}

impl SnapshotSource for VecSource {
    fn slot(&self) -> Slot {
        self.slot
    }
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        // Small chunks: a snapshot travels as many frames.
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let n = self.bytes.len().min(700);
        Ok(Some(self.bytes.split_to(n)))
    }
}

impl StateMachine for Recorder {
    fn applied_index(&self) -> Slot {
        self.state.lock().unwrap().applied
    }

    fn apply(&mut self, slot: Slot, commands: &[Bytes]) -> io::Result<Vec<Bytes>> {
        let mut s = self.state.lock().unwrap();
        if slot != s.applied + 1 {
            let e = format!("apply of slot {slot} after {}", s.applied);
            s.errors.push(e.clone());
            return Err(io::Error::other(e));
        }
        s.applied = slot;
        let mut results = Vec::with_capacity(commands.len());
        for c in commands {
            if s.seen.insert(c.clone()) {
                s.log.push(c.clone());
            } else {
                s.repeats.push(c.clone());
            }
            results.push(Bytes::from(format!("ok {slot}")));
        }
        Ok(results)
    }

    fn apply_membership_change(&mut self, slot: Slot, _: &Change) -> io::Result<()> {
        // The members never change in this test.
        let e = format!("a membership change at slot {slot}");
        self.state.lock().unwrap().errors.push(e.clone());
        Err(io::Error::other(e))
    }

    fn membership_changes(&self) -> io::Result<Vec<(Slot, Change)>> {
        Ok(Vec::new())
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut s = self.state.lock().unwrap();
        s.synced = Some(Box::new((s.applied, s.log.clone())));
        Ok(())
    }

    fn snapshot(&self) -> io::Result<Box<dyn SnapshotSource>> {
        let s = self.state.lock().unwrap();
        Ok(Box::new(VecSource {
            slot: s.applied,
            bytes: Bytes::from(s.encode()),
        }))
    }

    fn begin_install(&mut self, slot: Slot) -> io::Result<()> {
        self.stage = Some((slot, Vec::new()));
        Ok(())
    }

    fn install_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        match &mut self.stage {
            Some((_, buf)) => {
                buf.extend_from_slice(chunk);
                Ok(())
            }
            None => Err(io::Error::other("chunk without begin_install")),
        }
    }

    fn finish_install(&mut self) -> io::Result<()> {
        let (slot, bytes) = self
            .stage
            .take()
            .ok_or_else(|| io::Error::other("no install"))?;
        let (applied, log) = Recorded::decode(&bytes)?;
        if applied != slot {
            return Err(io::Error::other(format!(
                "snapshot says {applied}, expected {slot}"
            )));
        }
        let mut s = self.state.lock().unwrap();
        s.replace(applied, log.clone());
        s.synced = Some(Box::new((applied, log)));
        s.installs += 1;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Cluster plumbing.

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "concierge-{tag}-{}-{}",
            std::process::id(),
            concierge::node::random_u64()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

struct Cluster {
    members: Vec<(NodeId, String)>,
    dirs: Vec<PathBuf>,
    states: Vec<Arc<Mutex<Recorded>>>,
    nodes: RwLock<Vec<Option<NodeHandle>>>,
    tweak: fn(&mut NodeConfig),
    /// Per node, its disk: every fsync of its acceptor log can be made slow.
    disks: Vec<SlowSyncFs>,
}

impl Cluster {
    fn new(root: &Path, tweak: fn(&mut NodeConfig)) -> Cluster {
        let ports = free_ports(3);
        let members: Vec<(NodeId, String)> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| (i as NodeId + 1, format!("127.0.0.1:{p}")))
            .collect();
        Cluster {
            dirs: (1..=3).map(|i| root.join(format!("n{i}"))).collect(),
            states: (0..3)
                .map(|_| Arc::new(Mutex::new(Recorded::default())))
                .collect(),
            nodes: RwLock::new(vec![None, None, None]),
            members,
            tweak,
            disks: (0..3).map(|_| SlowSyncFs::new(0)).collect(),
        }
    }

    async fn start(&self, id: NodeId) {
        let i = id as usize - 1;
        let mut cfg = NodeConfig::new(
            id,
            self.members.clone(),
            format!("127.0.0.1:{}", 18000 + id),
            self.dirs[i].clone(),
        );
        (self.tweak)(&mut cfg);
        let sm = Recorder {
            state: self.states[i].clone(),
            stage: None,
        };
        // The port was just released by the previous incarnation; retry briefly.
        let mut tries = 0;
        let handle = loop {
            let fs = Arc::new(self.disks[i].clone());
            match Node::start_with_fs(cfg.clone(), fs, Box::new(sm_clone(&sm))).await {
                Ok(h) => break h,
                Err(e) if tries < 50 && e.kind() == io::ErrorKind::AddrInUse => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("node {id} failed to start: {e}"),
            }
        };
        self.nodes.write().unwrap()[i] = Some(handle);
    }

    /// Shuts a node down hard (nothing more is persisted, sent or applied) and rolls its
    /// state machine back to its last sync, as a crash would.
    async fn kill(&self, id: NodeId) {
        let handle = self.nodes.write().unwrap()[id as usize - 1].take();
        if let Some(h) = handle {
            h.shutdown().await;
        }
        self.states[id as usize - 1].lock().unwrap().crash();
    }

    fn node(&self, id: NodeId) -> Option<NodeHandle> {
        self.nodes.read().unwrap()[id as usize - 1].clone()
    }

    async fn leader(&self, deadline: Duration) -> NodeId {
        let start = Instant::now();
        loop {
            for id in 1..=3 {
                if let Some(h) = self.node(id) {
                    let st = h.status();
                    if st.is_leader {
                        return id;
                    }
                }
            }
            assert!(start.elapsed() < deadline, "no leader within {deadline:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn shutdown_all(&self) {
        for id in 1..=3 {
            let h = self.node(id);
            if let Some(h) = h {
                h.shutdown().await;
            }
        }
    }
}

fn sm_clone(sm: &Recorder) -> Recorder {
    Recorder {
        state: sm.state.clone(),
        stage: None,
    }
}

fn command(i: usize) -> Bytes {
    Bytes::from(format!("cmd-{i:05}"))
}

/// Proposes commands `range` with `workers` concurrent proposers spread over the live
/// nodes; retries until each is acknowledged. Returns the ids retried after an ambiguous
/// error (the command may have been applied anyway).
async fn propose_all(
    cluster: Arc<Cluster>,
    range: std::ops::Range<usize>,
    workers: usize,
    acked: Arc<AtomicUsize>,
    max_slot: Arc<AtomicU64>,
) -> BTreeSet<usize> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let ambiguous = Arc::new(Mutex::new(BTreeSet::new()));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (cluster, next, acked, ambiguous, max_slot) = (
            cluster.clone(),
            next.clone(),
            acked.clone(),
            ambiguous.clone(),
            max_slot.clone(),
        );
        let end = range.end;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return;
                }
                let mut via = (i + w) % 3;
                let started = Instant::now();
                loop {
                    assert!(
                        started.elapsed() < Duration::from_secs(30),
                        "command {i} never acknowledged"
                    );
                    let Some(node) = cluster.node(via as NodeId + 1) else {
                        via = (via + 1) % 3;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    };
                    match node
                        .propose_within(command(i), Duration::from_secs(3))
                        .await
                    {
                        Ok((slot, result)) => {
                            assert_eq!(result, Bytes::from(format!("ok {slot}")));
                            max_slot.fetch_max(slot, Ordering::Relaxed);
                            acked.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(NodeError::Timeout { .. }) | Err(NodeError::Shutdown) => {
                            ambiguous.lock().unwrap().insert(i);
                            via = (via + 1) % 3;
                        }
                        Err(NodeError::NoQuorum) | Err(NodeError::NotReady { .. }) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            via = (via + 1) % 3;
                        }
                        Err(e) => panic!("command {i}: {e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let set = ambiguous.lock().unwrap().clone();
    set
}

async fn wait_all_applied(cluster: &Cluster, count: usize, deadline: Duration) {
    let all: Vec<u64> = (1..=cluster.states.len() as u64).collect();
    wait_applied(cluster, &all, count, deadline).await;
}

/// Waits until nodes `ids` each applied at least `count` commands (a follower applies
/// a slot after the leader acknowledged it).
async fn wait_applied(cluster: &Cluster, ids: &[u64], count: usize, deadline: Duration) {
    let start = Instant::now();
    loop {
        let done = ids
            .iter()
            .all(|&id| cluster.states[id as usize - 1].lock().unwrap().log.len() >= count);
        if done {
            return;
        }
        if start.elapsed() > deadline {
            let lens: Vec<_> = cluster
                .states
                .iter()
                .map(|s| {
                    let s = s.lock().unwrap();
                    (s.applied, s.log.len())
                })
                .collect();
            panic!("not all nodes applied {count} commands: (applied, commands) = {lens:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn check_same_order(cluster: &Cluster, count: usize, ambiguous: &BTreeSet<usize>) {
    let first = cluster.states[0].lock().unwrap().clone();
    let want: BTreeSet<Bytes> = (0..count).map(command).collect();
    let got: BTreeSet<Bytes> = first.log.iter().cloned().collect();
    assert_eq!(got.len(), first.log.len(), "a command recorded twice");
    assert_eq!(got, want, "node 1 did not apply every command");
    for (i, s) in cluster.states.iter().enumerate() {
        let s = s.lock().unwrap();
        assert!(
            s.errors.is_empty(),
            "node {} apply errors: {:?}",
            i + 1,
            s.errors
        );
        assert_eq!(
            s.log.len(),
            count,
            "node {} applied {} commands",
            i + 1,
            s.log.len()
        );
        assert!(
            s.log == first.log,
            "node {} applied another order than node 1",
            i + 1
        );
        for r in &s.repeats {
            let id: usize = std::str::from_utf8(&r[4..]).unwrap().parse().unwrap();
            assert!(
                ambiguous.contains(&id),
                "command {id} was applied twice but never retried"
            );
        }
    }
}

/// Every node gives a read index at or above every acknowledged write and reaches it;
/// every node eventually reports every member's client address and health.
async fn check_reads_and_status(cluster: &Cluster, max_acked_slot: Slot) {
    for id in 1..=3 {
        let node = cluster.node(id).unwrap();
        let index = node.read_index().await.unwrap();
        assert!(
            index >= max_acked_slot,
            "node {id}: read index {index} below acknowledged slot {max_acked_slot}"
        );
        node.wait_applied(index).await.unwrap();
        assert!(node.applied_index() >= index);
    }
    let start = Instant::now();
    'poll: loop {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "members never all healthy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        for id in 1..=3 {
            let st = cluster.node(id).unwrap().status();
            assert_eq!(st.id, id);
            assert!(st.failed.is_none(), "node {id} failed: {:?}", st.failed);
            for m in &st.members {
                let want = format!("127.0.0.1:{}", 18000 + m.id);
                if m.client_addr != want || !m.healthy {
                    continue 'poll;
                }
            }
        }
        return;
    }
}

fn fast_failover(cfg: &mut NodeConfig) {
    cfg.tick_ms = 10;
    cfg.request_timeout_ms = 3000;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_commands_same_order_across_a_leader_restart() {
    let root = TempDir::new("three-nodes");
    let cluster = Arc::new(Cluster::new(&root.0, fast_failover));
    for id in 1..=3 {
        cluster.start(id).await;
    }
    let leader = cluster.leader(Duration::from_secs(10)).await;

    const TOTAL: usize = 10_000;
    let acked = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let max_slot = Arc::new(AtomicU64::new(0));
    let proposing = tokio::spawn(propose_all(
        cluster.clone(),
        0..TOTAL,
        64,
        acked.clone(),
        max_slot.clone(),
    ));

    // Midway: kill the leader hard, time the failover, restart it from its data dir.
    while acked.load(Ordering::Relaxed) < TOTAL / 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_at = Instant::now();
    cluster.kill(leader).await;
    let new_leader = loop {
        let l = cluster.leader(Duration::from_secs(10)).await;
        if l != leader {
            break l;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let failover = killed_at.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.start(leader).await;

    let ambiguous = proposing.await.unwrap();
    let elapsed = started.elapsed();
    wait_all_applied(&cluster, TOTAL, Duration::from_secs(30)).await;
    check_same_order(&cluster, TOTAL, &ambiguous);
    check_reads_and_status(&cluster, max_slot.load(Ordering::Relaxed)).await;
    let st = cluster.node(new_leader).unwrap().status();
    eprintln!(
        "{TOTAL} commands in {elapsed:?} ({:.0}/s) through 3 nodes; leader {leader} killed, \
         node {new_leader} led after {failover:?}; {} ambiguous retries; final slot {}; \
         dropped peer messages {}",
        TOTAL as f64 / elapsed.as_secs_f64(),
        ambiguous.len(),
        st.applied_index,
        st.dropped_messages
    );
    cluster.shutdown_all().await;
}

fn tiny_tail(cfg: &mut NodeConfig) {
    fast_failover(cfg);
    cfg.log_tail_slots = 20;
    cfg.compact_every_slots = 20;
    cfg.snapshot_chunk_bytes_max = 1024;
    cfg.wal_segment_bytes_max = 16 * 1024; // truncation drops whole segments
                                           // A peer's outbound queue keeps frames for a node that is down (or has never run):
                                           // small enough here that it cannot hold the whole history, which a node that starts
                                           // late would otherwise replay from it and never need a snapshot.
    cfg.peer_queue_messages_max = 64;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_truncation_point_catches_up_by_snapshot() {
    let root = TempDir::new("snapshot");
    let cluster = Arc::new(Cluster::new(&root.0, tiny_tail));
    // A brand-new cluster serves once every member has started (node/dir_ids.rs): start
    // all three, then take node 3 down at once.
    for id in 1..=3 {
        cluster.start(id).await;
    }
    cluster.leader(Duration::from_secs(10)).await;
    cluster.kill(3).await;

    // Few workers: small batches, many slots, so the two logs truncate several times.
    const FIRST: usize = 600;
    let acked = Arc::new(AtomicUsize::new(0));
    let max_slot = Arc::new(AtomicU64::new(0));
    let mut ambiguous = propose_all(
        cluster.clone(),
        0..FIRST,
        2,
        acked.clone(),
        max_slot.clone(),
    )
    .await;
    let slots = cluster.node(1).unwrap().status().applied_index;
    assert!(slots > 100, "only {slots} slots; the logs did not truncate");

    // Node 3 has been down since the start: what it missed is long gone from every log.
    cluster.start(3).await;
    const TOTAL: usize = 800;
    ambiguous.extend(
        propose_all(
            cluster.clone(),
            FIRST..TOTAL,
            4,
            acked.clone(),
            max_slot.clone(),
        )
        .await,
    );
    wait_all_applied(&cluster, TOTAL, Duration::from_secs(30)).await;
    check_same_order(&cluster, TOTAL, &ambiguous);
    let installs = cluster.states[2].lock().unwrap().installs;
    assert!(installs >= 1, "node 3 caught up without a snapshot");
    eprintln!("node 3 caught up with {installs} snapshot install(s) over {slots}+ slots");
    cluster.shutdown_all().await;
}

/// Starts all three nodes, waits for a leader, and writes commands `0..count` through
/// two workers. Returns the leader and the counters `propose_all` keeps going with.
async fn start_all_and_write(
    cluster: &Arc<Cluster>,
    count: usize,
) -> (NodeId, Arc<AtomicUsize>, Arc<AtomicU64>) {
    for id in 1..=3 {
        cluster.start(id).await;
    }
    let leader = cluster.leader(Duration::from_secs(10)).await;
    let acked = Arc::new(AtomicUsize::new(0));
    let max_slot = Arc::new(AtomicU64::new(0));
    propose_all(
        cluster.clone(),
        0..count,
        2,
        acked.clone(),
        max_slot.clone(),
    )
    .await;
    (leader, acked, max_slot)
}

/// A node whose data directory was wiped after it voted must not vote again as if it had
/// promised nothing: its peers remember the old directory and refuse it, it stops with a
/// message saying why, and the other two keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_directory_was_wiped_stops_instead_of_voting() {
    let root = TempDir::new("wiped");
    let cluster = Arc::new(Cluster::new(&root.0, fast_failover));
    let (_, acked, max_slot) = start_all_and_write(&cluster, 50).await;
    wait_all_applied(&cluster, 50, Duration::from_secs(30)).await;

    cluster.kill(3).await;
    std::fs::remove_dir_all(&cluster.dirs[2]).unwrap();
    cluster.start(3).await;
    let node3 = cluster.node(3).unwrap();
    let start = Instant::now();
    let reason = loop {
        if let Some(reason) = node3.status().failed {
            break reason;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "node 3 came back with an empty directory and did not stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        reason.contains("remembers an earlier data directory"),
        "node 3 stopped for another reason: {reason}"
    );
    assert_eq!(node3.status().leader, None, "node 3 took part in consensus");

    // The other two still form a quorum and serve.
    propose_all(cluster.clone(), 50..80, 2, acked.clone(), max_slot.clone()).await;
    wait_applied(&cluster, &[1, 2], 80, Duration::from_secs(30)).await;
    cluster.shutdown_all().await;
}

/// A leader whose fsyncs stall (a slow disk, a large checkpoint's writeback) is not
/// deposed: heartbeats and commit notices vouch for no acceptor state and leave without
/// waiting for the fsync (`Message::waits_for_persist`), so its followers keep hearing
/// it. Before, every message waited behind the fsync, and a stall longer than the
/// suspicion timeout cost an election.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_fsyncs_stall_is_not_deposed() {
    let root = TempDir::new("slow-fsync");
    let cluster = Arc::new(Cluster::new(&root.0, one_second_suspicion));
    let (leader, acked, max_slot) = start_all_and_write(&cluster, 20).await;
    let ballot = cluster.node(leader).unwrap().status().ballot;

    // Each fsync of the leader now takes 3 suspicion timeouts.
    let stall_ms = 3 * 1000;
    cluster.disks[leader as usize - 1]
        .delay_ms()
        .store(stall_ms, Ordering::Relaxed);
    let writes = tokio::spawn(propose_all(
        cluster.clone(),
        20..22,
        1,
        acked.clone(),
        max_slot.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(2 * stall_ms)).await;
    for id in 1..=3 {
        let st = cluster.node(id).unwrap().status();
        assert_eq!(
            (st.leader, st.ballot),
            (Some(leader), ballot),
            "node {id} moved to another leader or ballot while the leader's fsyncs stalled"
        );
    }
    cluster.disks[leader as usize - 1]
        .delay_ms()
        .store(0, Ordering::Relaxed);
    writes.await.unwrap();
    wait_all_applied(&cluster, 22, Duration::from_secs(30)).await;
    cluster.shutdown_all().await;
}

/// Ticks of 10 ms, a peer suspected after 1 s of silence: long enough that only the
/// stalled fsync, not a busy test machine, could silence a leader.
fn one_second_suspicion(cfg: &mut NodeConfig) {
    fast_failover(cfg);
    cfg.core.suspect_ticks = 100;
    cfg.core.suspect_ticks_max = 300;
}
