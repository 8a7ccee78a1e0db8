//! Snapshot transfer to a peer behind our compaction point, and the receiving side's
//! bookkeeping.
//!
//! Sender (`send_snapshot`, one task per peer at most): takes a point-in-time snapshot
//! from the apply thread and streams its chunks unchanged (each at most
//! `snapshot_chunk_bytes_max`, else the transfer fails) as `Chunk{seq}` frames on the peer link's bulk lane with at most `snapshot_window_chunks`
//! unacknowledged. It gives up (and the driver starts over when the core asks again) if the
//! link's connection changes (epoch), no ack arrives within `snapshot_ack_timeout_ms`, or
//! the receiver answers `Done{ok: false}`. Success is `Done{ok: true}`.
//!
//! The last chunk carries `digest`, the XXH3-64 of every chunk's bytes in order
//! (`snapshot_digest.rs`).
//!
//! Receiver (`Incoming`, owned by the driver): chunk 0 starts an install on the apply thread
//! (replacing any unfinished one, which the state machine then discards); further chunks
//! must continue the same transfer in sequence, else the install is aborted and the sender
//! told `Done{ok: false}`. A stalled install is aborted after the ack timeout. The apply
//! thread finishes the install only if the bytes it staged hash to the last chunk's digest;
//! otherwise it answers `Done{ok: false}` and keeps its state, and the transfer is retried
//! (the sender fails, and its driver starts a new transfer when its core again finds this
//! node behind the compaction point).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use super::apply::{ApplyOp, Chunk};
use super::snapshot_digest::SnapshotDigest;
use super::state_machine::SnapshotSource;
use super::transport::peer::PeerLink;
use super::transport::wire::{SnapshotMsg, Wire};
use super::transport::{BulkError, Transport};
use crate::paxos::{NodeId, Slot};

/// Settings of one transfer.
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    pub chunk_bytes_max: usize,
    pub window_chunks: usize,
    pub ack_timeout: Duration,
}

/// Streams a snapshot to `peer`; returns the slot it covered.
pub async fn send_snapshot(
    peer: NodeId,
    transfer: u64,
    transport: Arc<Transport>,
    apply: mpsc::Sender<ApplyOp>,
    mut acks: mpsc::Receiver<SnapshotMsg>,
    limits: SendLimits,
) -> Result<Slot, String> {
    let link = transport
        .link(peer)
        .ok_or_else(|| format!("node {peer} is not a peer"))?
        .clone();
    if !link.connected() {
        return Err("peer link is down".into());
    }
    let epoch = link.epoch();
    let (reply, source) = oneshot::channel();
    apply
        .send(ApplyOp::TakeSnapshot { reply })
        .await
        .map_err(|_| "apply thread stopped".to_string())?;
    let source = source
        .await
        .map_err(|_| "apply thread stopped".to_string())?
        .map_err(|e| format!("taking a snapshot failed: {e}"))?;
    let slot = source.slot();
    info!(peer, slot, transfer, "sending snapshot");

    let mut seq = 0u64; // next chunk to send
    let mut acked = 0u64; // chunks acknowledged (all below this)

    // The state machine's chunks travel whole: the receiver calls install_chunk once per
    // chunk exactly as snapshot() produced it (a chunk may be a self-contained unit).
    // One chunk of lookahead flags the last one.
    let mut digest = SnapshotDigest::new();
    let mut source = Some(source);
    let mut pending: Option<Bytes> = read_nonempty(&mut source).await?;
    loop {
        let piece = pending.take();
        if let Some(p) = &piece {
            if p.len() > limits.chunk_bytes_max {
                return Err(format!(
                    "the state machine produced a chunk of {} bytes, above snapshot_chunk_bytes_max {}",
                    p.len(),
                    limits.chunk_bytes_max
                ));
            }
        }
        pending = read_nonempty(&mut source).await?;
        let more = pending.is_some();
        let data = piece.unwrap_or_default(); // an empty snapshot is one empty last chunk
        let last = !more;
        digest.update(&data);
        while seq - acked >= limits.window_chunks as u64 {
            match next_reply(&mut acks, transfer, &link, epoch, limits.ack_timeout).await? {
                SnapshotMsg::Ack { seq, .. } => acked = acked.max(seq + 1),
                other => return Err(format!("receiver ended the transfer early: {other:?}")),
            }
        }
        if link.epoch() != epoch || !link.connected() {
            return Err("connection changed during the transfer".into());
        }
        let msg = Wire::Snapshot(SnapshotMsg::Chunk {
            transfer,
            slot,
            seq,
            data,
            last,
            digest: last.then(|| digest.value()),
        });
        let deadline = Instant::now() + limits.ack_timeout;
        loop {
            match transport.send_bulk(peer, &msg) {
                Ok(()) => break,
                Err(BulkError::Full) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(format!("cannot queue chunk {seq}: {e:?}")),
            }
        }
        seq += 1;
        if last {
            break;
        }
    }
    // Wait for the receiver to finish installing (acks of the last chunks come first).
    loop {
        match next_reply(&mut acks, transfer, &link, epoch, limits.ack_timeout).await? {
            SnapshotMsg::Done { ok: true, .. } => return Ok(slot),
            SnapshotMsg::Done { ok: false, .. } => {
                return Err("receiver refused the snapshot".into())
            }
            _ => {}
        }
    }
}

/// The next non-empty chunk of the snapshot; None (and `source` taken) after the last.
async fn read_nonempty(
    source: &mut Option<Box<dyn SnapshotSource>>,
) -> Result<Option<Bytes>, String> {
    while let Some(mut src) = source.take() {
        let (src, next) = tokio::task::spawn_blocking(move || {
            let next = src.next_chunk();
            (src, next)
        })
        .await
        .map_err(|e| format!("snapshot reader panicked: {e}"))?;
        match next.map_err(|e| format!("reading the snapshot failed: {e}"))? {
            Some(b) if b.is_empty() => *source = Some(src),
            Some(b) => {
                *source = Some(src);
                return Ok(Some(b));
            }
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// How often a waiting sender looks at the link for a broken connection.
const LINK_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Waits for the next snapshot message of `transfer`, failing early if the link's
/// connection changed (the receiver lost the stream) or after `timeout`.
async fn next_reply(
    acks: &mut mpsc::Receiver<SnapshotMsg>,
    transfer: u64,
    link: &PeerLink,
    epoch: u64,
    timeout: Duration,
) -> Result<SnapshotMsg, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if link.epoch() != epoch || !link.connected() {
            return Err("connection changed during the transfer".into());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("no answer from the receiver in time".into());
        }
        match tokio::time::timeout(left.min(LINK_CHECK_INTERVAL), acks.recv()).await {
            Err(_) => {}
            Ok(None) => return Err("transfer cancelled".into()),
            Ok(Some(msg)) => match &msg {
                SnapshotMsg::Ack { transfer: t, .. } | SnapshotMsg::Done { transfer: t, .. }
                    if *t == transfer =>
                {
                    return Ok(msg)
                }
                other => debug!(?other, "stray snapshot message"),
            },
        }
    }
}

/// An install in progress on this node.
#[derive(Debug)]
pub struct Incoming {
    pub from: NodeId,
    pub transfer: u64,
    pub next_seq: u64,
    pub chunks: mpsc::Sender<Chunk>,
    pub last_activity: Instant,
}

/// What the driver should do with a received chunk.
#[derive(Debug)]
pub enum ChunkVerdict {
    /// Start a new install (abort the current one, if any: only ever one of the same
    /// sender, whose earlier transfer is dead).
    Start,
    /// Forward it to the running install.
    Continue,
    /// Refuse it: answer `Done{ok: false}` (and abort the running install if it was ours).
    Refuse { abort_current: bool },
}

/// Classifies chunk `seq` of `transfer` from `from` against the running install.
/// First come, first served: a transfer from another sender is refused while one runs
/// (the stall timer ends an install whose sender went silent). Letting each newcomer
/// preempt the running install livelocked two senders (catch-up had asked both), each
/// aborting the other's transfer and retrying, and the node never caught up.
pub fn judge_chunk(
    current: Option<&Incoming>,
    from: NodeId,
    transfer: u64,
    seq: u64,
) -> ChunkVerdict {
    match current {
        Some(c) if seq == 0 && c.from != from => ChunkVerdict::Refuse {
            abort_current: false,
        },
        _ if seq == 0 => ChunkVerdict::Start,
        Some(c) if c.from == from && c.transfer == transfer => {
            if c.next_seq == seq {
                ChunkVerdict::Continue
            } else {
                ChunkVerdict::Refuse {
                    abort_current: true,
                }
            }
        }
        _ => ChunkVerdict::Refuse {
            abort_current: false,
        },
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
