//! Apply-thread install tests: a snapshot stream is installed only if the assembled
//! bytes match the sender's whole-snapshot checksum.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;

use tokio::net::TcpListener;

use super::*;
use crate::node::dir_ids::DirIds;
use crate::node::snapshot_digest::SnapshotDigest;
use crate::node::transport::wire::cluster_id;
use crate::node::transport::{LinkContext, QueueLimits};

/// What the recording state machine saw.
#[derive(Default, Debug)]
struct Seen {
    staged: Vec<u8>,
    finished: Option<Vec<u8>>,
    applied: Slot,
}

struct Recorder(Arc<Mutex<Seen>>);

impl StateMachine for Recorder {
    fn applied_index(&self) -> Slot {
        self.0.lock().unwrap().applied
    }
    fn apply(&mut self, _: Slot, _: &[Bytes]) -> io::Result<Vec<Bytes>> {
        Err(io::Error::other("not used"))
    }
    fn apply_membership_change(&mut self, _: Slot, _: &Change) -> io::Result<()> {
        Err(io::Error::other("not used"))
    }
    fn membership_changes(&self) -> io::Result<Vec<(Slot, Change)>> {
        Ok(Vec::new()) // it never applies one
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn snapshot(&self) -> io::Result<Box<dyn SnapshotSource>> {
        Err(io::Error::other("not used"))
    }
    fn begin_install(&mut self, _: Slot) -> io::Result<()> {
        self.0.lock().unwrap().staged.clear();
        Ok(())
    }
    fn install_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.0.lock().unwrap().staged.extend_from_slice(chunk);
        Ok(())
    }
    fn finish_install(&mut self) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        s.finished = Some(std::mem::take(&mut s.staged));
        s.applied = 42;
        Ok(())
    }
}

/// Runs an apply thread, installs `chunks` from node 2 as snapshot slot 42, and returns
/// what the state machine saw once the install ended.
async fn install(chunks: Vec<Chunk>) -> Seen {
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Node 2 never listens: the apply thread's answers just queue on the link.
    let members = vec![
        (1, l1.local_addr().unwrap().to_string()),
        (2, "127.0.0.1:9".to_string()),
    ];
    let ctx = LinkContext {
        self_id: 1,
        cluster_id: cluster_id(&members),
        client_addr: "client-1".into(),
        frame_bytes_max: 1 << 20,
        connect_timeout_ms: 100,
        handshake_timeout_ms: 100,
        write_timeout_ms: 100,
        reconnect_backoff_ms_min: 10,
        reconnect_backoff_ms_max: 50,
        inbound_handshakes_max: 2,
        secret: None,
        tls: None,
        dir_ids: DirIds::in_memory(1, &[1, 2]),
    };
    let limits = QueueLimits {
        messages_max: 64,
        bytes_max: 1 << 20,
        bulk_max: 4,
    };
    let (inbound, _inbound_rx) = mpsc::channel(64);
    let transport = Arc::new(Transport::start(ctx, &members, limits, l1, inbound));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (events, mut events_rx) = mpsc::channel(8);
    let applier = Applier {
        sm: Box::new(Recorder(seen.clone())),
        me: Identity {
            node: 1,
            incarnation: 1,
        },
        pending: Arc::new(Pending::new(16)),
        applied_tx: watch::channel(0).0,
        events,
        transport: transport.clone(),
        stop: Arc::new(AtomicBool::new(false)),
        metrics: Arc::default(),
    };
    let (ops, ops_rx) = mpsc::channel(4);
    let thread = std::thread::spawn(move || applier.run(ops_rx));
    let (chunk_tx, chunk_rx) = mpsc::channel(chunks.len() + 1);
    for c in chunks {
        chunk_tx.send(c).await.unwrap();
    }
    ops.send(ApplyOp::Install {
        from: 2,
        transfer: 7,
        slot: 42,
        chunks: chunk_rx,
    })
    .await
    .unwrap();
    // An install that is refused sends no event: close the ops channel and join.
    drop(ops);
    drop(chunk_tx);
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap();
    while events_rx.try_recv().is_ok() {}
    transport.shutdown().await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    seen
}

/// `data` cut into chunks as a sender would send them, with the sender's digest of
/// `sent` (the bytes its state machine produced) on the last one.
fn stream(data: &[&'static [u8]], sent: &[&[u8]]) -> Vec<Chunk> {
    let mut digest = SnapshotDigest::new();
    for s in sent {
        digest.update(s);
    }
    let n = data.len();
    data.iter()
        .enumerate()
        .map(|(k, d)| Chunk {
            seq: k as u64,
            data: Bytes::from_static(d),
            last: k + 1 == n,
            digest: (k + 1 == n).then(|| digest.value()),
        })
        .collect()
}

#[tokio::test]
async fn a_stream_altered_in_transit_is_not_installed() {
    // Each chunk is well-framed and in sequence, but the bytes of chunk 1 are not the
    // ones the sender read from its state machine.
    let chunks = stream(
        &[b"first chunk ", b"second chunK"],
        &[b"first chunk ", b"second chunk"],
    );
    let seen = install(chunks).await;
    assert_eq!(seen.finished, None, "an altered snapshot was installed");
    assert_eq!(seen.applied, 0);
}

#[tokio::test]
async fn an_intact_stream_is_installed() {
    let parts: [&'static [u8]; 2] = [b"first chunk ", b"second chunk"];
    let seen = install(stream(&parts, &parts)).await;
    assert_eq!(
        seen.finished.as_deref(),
        Some(&b"first chunk second chunk"[..])
    );
    assert_eq!(seen.applied, 42);
}
