//! Snapshot sender tests over real loopback links: a transfer whose connection breaks
//! fails (so the driver restarts it), a fresh transfer then delivers every chunk whole and
//! in order with the last one flagged, and an oversize chunk fails the transfer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;

use tokio::net::TcpListener;

use super::*;
use crate::node::transport::wire::cluster_id;
use crate::node::transport::{Inbound, LinkContext, QueueLimits};

struct Source(Bytes);

impl SnapshotSource for Source {
    fn slot(&self) -> Slot {
        42
    }
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let n = self.0.len().min(1000);
        Ok(Some(self.0.split_to(n)))
    }
}

fn ctx(id: NodeId, members: &[(NodeId, String)]) -> LinkContext {
    LinkContext {
        self_id: id,
        cluster_id: cluster_id(members),
        client_addr: format!("client-{id}"),
        frame_bytes_max: 1 << 20,
        connect_timeout_ms: 500,
        handshake_timeout_ms: 500,
        write_timeout_ms: 500,
        reconnect_backoff_ms_min: 10,
        reconnect_backoff_ms_max: 50,
        inbound_handshakes_max: 8,
        secret: None,
        tls: None,
        dir_ids: crate::node::dir_ids::DirIds::in_memory(
            id,
            &members.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
        ),
    }
}

/// Serves `TakeSnapshot` requests with `data`.
fn fake_apply(data: Bytes) -> mpsc::Sender<ApplyOp> {
    let (tx, mut rx) = mpsc::channel::<ApplyOp>(4);
    tokio::spawn(async move {
        while let Some(op) = rx.recv().await {
            if let ApplyOp::TakeSnapshot { reply } = op {
                let _ = reply.send(Ok(Box::new(Source(data.clone())) as Box<dyn SnapshotSource>));
            }
        }
    });
    tx
}

/// (transfer, slot, seq, data, last, digest) of the next chunk.
type Got = (u64, Slot, u64, Bytes, bool, Option<u64>);

async fn next_chunk(rx: &mut mpsc::Receiver<Inbound>) -> Got {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no chunk in time")
            .expect("closed");
        if let Inbound::Snapshot(
            1,
            SnapshotMsg::Chunk {
                transfer,
                slot,
                seq,
                data,
                last,
                digest,
            },
        ) = item
        {
            return (transfer, slot, seq, data, last, digest);
        }
    }
}

async fn wait_connected(t: &Transport, peer: NodeId) {
    let start = Instant::now();
    while !t.link(peer).unwrap().connected() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "link never came up"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn broken_transfer_fails_and_a_fresh_one_delivers_everything() {
    let data = Bytes::from((0..10_500u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let members = vec![
        (1, l1.local_addr().unwrap().to_string()),
        (2, l2.local_addr().unwrap().to_string()),
    ];
    let (tx1, _rx1) = mpsc::channel(64);
    let (tx2, mut rx2) = mpsc::channel(64);
    let t1 = Arc::new(Transport::start(
        ctx(1, &members),
        &members,
        queue_limits(4),
        l1,
        tx1,
    ));
    let t2 = Transport::start(ctx(2, &members), &members, queue_limits(4), l2, tx2);
    wait_connected(&t1, 2).await;
    let limits = SendLimits {
        chunk_bytes_max: 1024,
        window_chunks: 2,
        ack_timeout: Duration::from_secs(2),
    };
    let apply = fake_apply(data.clone());

    // Transfer A: the receiver goes away after the first chunk.
    let (_acks_a, acks_rx) = mpsc::channel(8);
    let a = tokio::spawn(send_snapshot(
        2,
        7,
        t1.clone(),
        apply.clone(),
        acks_rx,
        limits,
    ));
    let (transfer, slot, seq, _, _, _) = next_chunk(&mut rx2).await;
    assert_eq!((transfer, slot, seq), (7, 42, 0));
    t2.shutdown().await;
    drop(t2);
    drop(rx2);
    assert!(a.await.unwrap().is_err(), "a broken transfer must fail");

    // The receiver comes back on the same address; transfer B runs to the end.
    let l2 = TcpListener::bind(&members[1].1).await.unwrap();
    let (tx2, mut rx2) = mpsc::channel(64);
    let t2 = Transport::start(ctx(2, &members), &members, queue_limits(4), l2, tx2);
    wait_connected(&t1, 2).await;
    let (acks_b, acks_rx) = mpsc::channel(8);
    let b = tokio::spawn(send_snapshot(2, 8, t1.clone(), apply, acks_rx, limits));
    let mut got = Vec::new();
    let mut expect_seq = 0;
    loop {
        let (transfer, slot, seq, chunk, last, digest) = next_chunk(&mut rx2).await;
        if transfer != 8 {
            continue; // a stale chunk of transfer A
        }
        assert_eq!((slot, seq), (42, expect_seq));
        // Chunks travel exactly as the state machine cut them.
        let want = if last { 500 } else { 1000 };
        assert_eq!(chunk.len(), want);
        got.extend_from_slice(&chunk);
        // Only the last chunk carries the checksum, over every byte sent.
        let want_digest = last.then(|| xxhash_rust::xxh3::xxh3_64(&got));
        assert_eq!(digest, want_digest, "chunk {seq}");
        expect_seq += 1;
        // The test plays the receiver's driver: acks go straight to the sender.
        acks_b
            .send(SnapshotMsg::Ack { transfer: 8, seq })
            .await
            .unwrap();
        if last {
            break;
        }
    }
    assert_eq!(got, data.to_vec());
    assert_eq!(expect_seq, 11);
    acks_b
        .send(SnapshotMsg::Done {
            transfer: 8,
            ok: true,
        })
        .await
        .unwrap();
    assert_eq!(b.await.unwrap(), Ok(42));

    // A chunk above the limit fails the transfer before anything is sent.
    let small = SendLimits {
        chunk_bytes_max: 999,
        ..limits
    };
    let (_acks_c, acks_rx) = mpsc::channel(8);
    let apply = fake_apply(data.clone());
    let c = send_snapshot(2, 9, t1.clone(), apply, acks_rx, small).await;
    assert!(c.unwrap_err().contains("above snapshot_chunk_bytes_max"));
    t2.shutdown().await;
    t1.shutdown().await;
}

#[test]
fn chunks_are_judged_against_the_running_install() {
    let (tx, _rx) = mpsc::channel(1);
    let running = Incoming {
        from: 1,
        transfer: 5,
        next_seq: 3,
        chunks: tx,
        last_activity: Instant::now(),
    };
    assert!(matches!(judge_chunk(None, 1, 5, 0), ChunkVerdict::Start));
    // Another sender waits its turn; the same sender's new transfer replaces its old one.
    assert!(matches!(
        judge_chunk(Some(&running), 2, 9, 0),
        ChunkVerdict::Refuse {
            abort_current: false
        }
    ));
    assert!(matches!(
        judge_chunk(Some(&running), 1, 6, 0),
        ChunkVerdict::Start
    ));
    assert!(matches!(
        judge_chunk(Some(&running), 1, 5, 3),
        ChunkVerdict::Continue
    ));
    assert!(matches!(
        judge_chunk(Some(&running), 1, 5, 4),
        ChunkVerdict::Refuse {
            abort_current: true
        }
    ));
    assert!(matches!(
        judge_chunk(Some(&running), 1, 6, 3),
        ChunkVerdict::Refuse {
            abort_current: false
        }
    ));
    assert!(matches!(
        judge_chunk(None, 1, 5, 2),
        ChunkVerdict::Refuse {
            abort_current: false
        }
    ));
}

/// Queue bounds for these tests: 64 frames, 64 MiB, `bulk_max` bulk frames.
fn queue_limits(bulk_max: usize) -> QueueLimits {
    QueueLimits {
        messages_max: 64,
        bytes_max: 64 << 20,
        bulk_max,
    }
}
