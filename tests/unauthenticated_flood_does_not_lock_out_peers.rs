//! A flood of unauthenticated connections to every node's peer port (450 at once,
//! renewed as the nodes close them): idle ones that never send a byte, slow ones that
//! send one, and ones that announce a 64 MiB frame before the handshake and send 8 MiB
//! of it. Meanwhile the nodes' memory does not grow by anything like the frame cap, and
//! with the leader killed and restarted the cluster elects a leader, the restarted node
//! gets back in (its peers accept its new connections and it accepts theirs), and writes
//! go through every node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Cluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connections held open against each node at once.
const PER_NODE: usize = 150;
/// Bytes each "oversize" connection sends after its 64 MiB header.
const OVERSIZE_SENT_BYTES: usize = 8 << 20;

#[derive(Clone, Copy)]
enum Kind {
    Idle,
    Slow,
    Oversize,
}

/// One flooding connection slot: connect, misbehave, hold until closed, again.
async fn flood_one(addr: String, kind: Kind, stop: Arc<AtomicBool>, made: Arc<AtomicU64>) {
    let junk = vec![0u8; 64 << 10];
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut s) = TcpStream::connect(&addr).await {
            made.fetch_add(1, Ordering::Relaxed);
            let sent = match kind {
                Kind::Idle => Ok(()),
                Kind::Slow => s.write_all(&[0]).await,
                Kind::Oversize => {
                    async {
                        s.write_all(&(64u32 << 20).to_be_bytes()).await?;
                        let mut left = OVERSIZE_SENT_BYTES;
                        while left > 0 {
                            let n = left.min(junk.len());
                            s.write_all(&junk[..n]).await?;
                            left -= n;
                        }
                        Ok(())
                    }
                    .await
                }
            };
            if sent.is_ok() {
                // Hold it (reading whatever the node says) until the node closes it.
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => break,
                        _ => {}
                    }
                }
            }
        }
        // Renew without spinning a shared 2-core machine to death.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Kilobytes of resident memory of `pid`: (now, peak).
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn put_eventually(c: &Cluster, i: usize, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(a) = c
            .try_call(i, reqwest::Method::PUT, key, Some(b"ok".to_vec()), &[])
            .await
        {
            if a.status.is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "node {} never took {key}", i + 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_flood_does_not_lock_out_peers() {
    let mut c = Cluster::start(3, "peer-flood").await;
    c.wait_leader(Duration::from_secs(30)).await;
    let pids: Vec<u32> = c
        .nodes
        .iter()
        .map(|n| n.child.as_ref().unwrap().id())
        .collect();
    let before: Vec<u64> = pids.iter().map(|p| rss_kib(*p).0).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let mut flood = Vec::new();
    for n in &c.nodes {
        let addr = format!("127.0.0.1:{}", n.peer_port);
        for k in 0..PER_NODE {
            let kind = [Kind::Idle, Kind::Slow, Kind::Oversize][k % 3];
            flood.push(tokio::spawn(flood_one(
                addr.clone(),
                kind,
                stop.clone(),
                made.clone(),
            )));
        }
    }

    // Phase 1: let every slot connect a few times over, then look at memory.
    let deadline = Instant::now() + Duration::from_secs(120);
    while made.load(Ordering::Relaxed) < (3 * PER_NODE * 4) as u64 {
        assert!(Instant::now() < deadline, "the flood did not get going");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (i, pid) in pids.iter().enumerate() {
        let (_, peak) = rss_kib(*pid);
        let grown_mib = peak.saturating_sub(before[i]) / 1024;
        assert!(
            grown_mib < 64,
            "node {}'s peak memory grew by {grown_mib} MiB under the flood (from {} MiB)",
            i + 1,
            before[i] / 1024
        );
    }

    // Phase 2, flood still on: the leader dies and comes back; its peers must take its
    // new connections and it must take theirs.
    let leader = c.wait_leader(Duration::from_secs(60)).await;
    c.kill(leader);
    c.launch(leader);
    let leader2 = c.wait_leader(Duration::from_secs(120)).await;
    for i in 0..3 {
        put_eventually(&c, i, &format!("/v1/keys/after-restart-{i}")).await;
    }
    // The restarted node serves a write made through another node after it came back.
    let other = (leader + 1) % 3;
    put_eventually(&c, other, "/v1/keys/last").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(a) = c
            .try_call(leader, reqwest::Method::GET, "/v1/keys/last", None, &[])
            .await
        {
            if a.status.as_u16() == 200 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the restarted node {} never served the last write (leader now {})",
            leader + 1,
            leader2 + 1
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    stop.store(true, Ordering::Relaxed);
    for f in flood {
        let _ = f.await;
    }
    assert!(made.load(Ordering::Relaxed) >= (3 * PER_NODE * 4) as u64);
}
