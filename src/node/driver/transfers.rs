//! The driver's side of snapshot transfers: starting a sender task for a peer the core
//! says is behind our compaction point, and feeding received chunks to the apply thread
//! (see `snapshot.rs` for the protocol and its failure handling).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{Driver, Outgoing};
use crate::node::apply::{ApplyOp, Chunk};
use crate::node::snapshot::{self, ChunkVerdict, Incoming, SendLimits};
use crate::node::transport::wire::{SnapshotMsg, Wire};
use crate::node::transport::Transport;
use crate::paxos::{NodeId, Slot};

impl Driver {
    pub(super) fn on_chunk(&mut self, from: NodeId, transfer: u64, slot: Slot, chunk: Chunk) {
        let refuse = |t: &Transport| {
            t.send(
                from,
                &Wire::Snapshot(SnapshotMsg::Done {
                    transfer,
                    ok: false,
                }),
            );
        };
        match snapshot::judge_chunk(self.incoming.as_ref(), from, transfer, chunk.seq) {
            ChunkVerdict::Start => {
                self.incoming = None; // drops the old chunk channel: that install aborts
                let (tx, rx) = mpsc::channel(self.p.cfg.snapshot_window_chunks + 1);
                self.apply_backlog.push_back(ApplyOp::Install {
                    from,
                    transfer,
                    slot,
                    chunks: rx,
                });
                self.flush_apply();
                self.incoming = Some(Incoming {
                    from,
                    transfer,
                    next_seq: 0,
                    chunks: tx,
                    last_activity: Instant::now(),
                });
                self.forward_chunk(chunk, &refuse);
            }
            ChunkVerdict::Continue => self.forward_chunk(chunk, &refuse),
            ChunkVerdict::Refuse { abort_current } => {
                if abort_current {
                    self.incoming = None;
                }
                refuse(&self.p.transport);
            }
        }
    }

    fn forward_chunk(&mut self, chunk: Chunk, refuse: &dyn Fn(&Transport)) {
        let Some(inc) = self.incoming.as_mut() else {
            return;
        };
        let last = chunk.last;
        if inc.chunks.try_send(chunk).is_err() {
            // The install ended (finished early or failed) or overran its window.
            self.incoming = None;
            refuse(&self.p.transport);
            return;
        }
        inc.next_seq += 1;
        inc.last_activity = Instant::now();
        if last {
            self.incoming = None; // the apply thread drains what was sent
        }
    }

    pub(super) fn start_transfer(&mut self, peer: NodeId) {
        if self.outgoing.contains_key(&peer) || self.p.transport.link(peer).is_none() {
            return;
        }
        let retry = Duration::from_millis(self.p.cfg.snapshot_retry_ms_min);
        if self
            .last_transfer_end
            .get(&peer)
            .is_some_and(|t| t.elapsed() < retry)
        {
            return;
        }
        self.next_transfer += 1;
        let transfer = self.p.incarnation.rotate_left(16) ^ self.next_transfer;
        let (acks_tx, acks_rx) = mpsc::channel(self.p.cfg.snapshot_window_chunks + 4);
        let limits = SendLimits {
            chunk_bytes_max: self.p.cfg.snapshot_chunk_bytes_max,
            window_chunks: self.p.cfg.snapshot_window_chunks,
            ack_timeout: Duration::from_millis(self.p.cfg.snapshot_ack_timeout_ms),
        };
        let (transport, apply) = (self.p.transport.clone(), self.p.apply.clone());
        let task = tokio::spawn(async move {
            match snapshot::send_snapshot(peer, transfer, transport, apply, acks_rx, limits).await {
                Ok(slot) => info!(peer, slot, "snapshot sent"),
                Err(reason) => warn!(peer, %reason, "snapshot transfer failed; will retry"),
            }
        });
        self.outgoing.insert(
            peer,
            Outgoing {
                transfer,
                acks: acks_tx,
                task,
            },
        );
    }
}
