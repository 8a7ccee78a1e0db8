//! The apply thread: the only owner of the `StateMachine`. It applies chosen slots in
//! order, answers this node's waiting proposals, syncs on request (before the acceptor log
//! is truncated), hands out snapshots, and installs received ones.
//!
//! Invariants: `applied` equals `sm.applied_index()` and only moves forward; a slot is
//! applied only if it is `applied + 1` (slots at or below `applied`, redelivered after a
//! restart or a snapshot, are skipped; a gap is a fatal error and applying stops). During
//! an install nothing is applied. A failed `apply` is fatal too: the replica can no longer
//! be trusted to match the others, so it stops and says so.

use super::metrics::NodeMetrics;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use super::envelope;
use super::error::NodeError;
use super::pending::Pending;
use super::snapshot_digest::{Progress, StreamCheck};
use super::state_machine::{SnapshotSource, StateMachine};
use super::transport::wire::{SnapshotMsg, Wire};
use super::transport::Transport;
use crate::paxos::{Change, NodeId, Slot, Value};

/// One snapshot chunk on its way to the apply thread.
#[derive(Debug)]
pub struct Chunk {
    pub seq: u64,
    pub data: Bytes,
    pub last: bool,
    /// The whole-snapshot checksum, on the last chunk (see `snapshot_digest.rs`).
    pub digest: Option<u64>,
}

/// Work for the apply thread, in order.
pub enum ApplyOp {
    /// A chosen slot.
    Deliver(Slot, Value, Instant),
    /// Make the applied state durable, then report `ApplyEvent::Synced`.
    Sync,
    /// Take a snapshot of the applied state.
    TakeSnapshot {
        reply: oneshot::Sender<io::Result<Box<dyn SnapshotSource>>>,
    },
    /// Install a snapshot streamed by `from`; chunks arrive on `chunks` (closed = abort).
    Install {
        from: NodeId,
        transfer: u64,
        slot: Slot,
        chunks: mpsc::Receiver<Chunk>,
    },
}

/// What the apply thread tells the driver.
#[derive(Debug)]
pub enum ApplyEvent {
    /// Everything through `slot` is applied and durable.
    Synced(Slot),
    /// The state through `slot` is installed (or was already held), with every
    /// membership change it holds, for the core's memberships as of `slot`.
    Installed {
        slot: Slot,
        changes: Vec<(Slot, Change)>,
    },
    /// Applying stopped for good.
    Failed(String),
}

/// Who this node is, to recognise its own commands.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub node: NodeId,
    pub incarnation: u64,
}

/// The apply thread's state.
pub struct Applier {
    pub sm: Box<dyn StateMachine>,
    pub me: Identity,
    pub pending: Arc<Pending>,
    pub applied_tx: watch::Sender<Slot>,
    pub events: mpsc::Sender<ApplyEvent>,
    pub transport: Arc<Transport>,
    pub stop: Arc<AtomicBool>,
    pub metrics: Arc<NodeMetrics>,
}

impl Applier {
    /// Runs until the channel closes, `stop` is raised, or applying fails.
    pub fn run(mut self, mut ops: mpsc::Receiver<ApplyOp>) {
        let mut applied = self.sm.applied_index();
        self.applied_tx.send_replace(applied);
        while let Some(op) = ops.blocking_recv() {
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            let result = match op {
                ApplyOp::Deliver(slot, value, chosen_at) => {
                    let commands = value.commands() as u64;
                    let result = self.deliver(&mut applied, slot, value);
                    if result.is_ok() {
                        self.metrics
                            .commit_apply
                            .observe_duration(chosen_at.elapsed());
                        self.metrics
                            .commands_applied
                            .fetch_add(commands, Ordering::Relaxed);
                    }
                    result
                }
                ApplyOp::Sync => match self.sm.sync() {
                    Ok(()) => {
                        let _ = self.events.blocking_send(ApplyEvent::Synced(applied));
                        Ok(())
                    }
                    Err(e) => Err(format!("state machine sync failed: {e}")),
                },
                ApplyOp::TakeSnapshot { reply } => {
                    let _ = reply.send(self.sm.snapshot());
                    Ok(())
                }
                ApplyOp::Install {
                    from,
                    transfer,
                    slot,
                    chunks,
                } => {
                    self.install(&mut applied, from, transfer, slot, chunks);
                    Ok(())
                }
            };
            if let Err(reason) = result {
                error!(%reason, applied, "apply stopped");
                self.pending.fail_all(&NodeError::Apply {
                    reason: reason.clone(),
                });
                let _ = self.events.blocking_send(ApplyEvent::Failed(reason));
                return;
            }
            self.applied_tx.send_if_modified(|a| {
                let changed = *a != applied;
                *a = applied;
                changed
            });
        }
        self.applied_tx.send_replace(applied);
        debug!(applied, "apply thread stopped");
    }

    fn deliver(&mut self, applied: &mut Slot, slot: Slot, value: Value) -> Result<(), String> {
        if slot <= *applied {
            return Ok(()); // already in the state (redelivery after restart or snapshot)
        }
        if slot != *applied + 1 {
            return Err(format!("gap: slot {slot} delivered after {applied}"));
        }
        let (origins, commands): (Vec<_>, Vec<_>) = match value {
            // The core applied the change when it delivered the slot; the state machine
            // keeps it, so a restart or a snapshot can rebuild the memberships.
            Value::Reconfigure(change) => {
                self.sm
                    .apply_membership_change(slot, &change)
                    .map_err(|e| format!("state machine failed to keep the membership change of slot {slot}: {e}"))?;
                *applied = slot;
                return Ok(());
            }
            Value::Noop => (Vec::new(), Vec::new()),
            Value::Batch(cmds) => cmds.iter().map(envelope::unwrap).unzip(),
        };
        let results = self
            .sm
            .apply(slot, &commands)
            .map_err(|e| format!("state machine failed to apply slot {slot}: {e}"))?;
        if results.len() != commands.len() {
            return Err(format!(
                "state machine returned {} results for {} commands at slot {slot}",
                results.len(),
                commands.len()
            ));
        }
        *applied = slot;
        for (origin, result) in origins.into_iter().zip(results) {
            if let Some(o) = origin {
                if o.node == self.me.node && o.incarnation == self.me.incarnation {
                    self.pending.complete(o.sequence, Ok((slot, result)));
                }
            }
        }
        Ok(())
    }

    /// Tells the driver the state through `slot` is held, with its membership changes.
    /// Without them the core cannot know who votes: applying stops (fail-stop).
    fn installed(&mut self, slot: Slot) {
        let event = match self.sm.membership_changes() {
            Ok(changes) => ApplyEvent::Installed { slot, changes },
            Err(e) => {
                let reason = format!("reading the membership changes after an install: {e}");
                error!(%reason, slot, "apply stopped");
                ApplyEvent::Failed(reason)
            }
        };
        let _ = self.events.blocking_send(event);
    }

    fn install(
        &mut self,
        applied: &mut Slot,
        from: NodeId,
        transfer: u64,
        slot: Slot,
        mut chunks: mpsc::Receiver<Chunk>,
    ) {
        let done = |t: &Transport, ok: bool| {
            t.send(from, &Wire::Snapshot(SnapshotMsg::Done { transfer, ok }));
        };
        if slot <= *applied {
            // We already hold everything it covers; tell the sender and the core.
            done(&self.transport, true);
            self.installed(*applied);
            return;
        }
        info!(from, slot, applied = *applied, "installing snapshot");
        if let Err(e) = self.sm.begin_install(slot) {
            warn!(from, slot, error = %e, "begin_install failed");
            done(&self.transport, false);
            return;
        }
        let mut check = StreamCheck::new();
        loop {
            let Some(chunk) = chunks.blocking_recv() else {
                warn!(
                    from,
                    slot, "snapshot transfer aborted; keeping the current state"
                );
                return;
            };
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            // Order, the last flag and, at the end, the whole-snapshot checksum: a stream
            // that fails is never finished (the next begin_install discards the stage).
            let progress = match check.chunk(chunk.seq, &chunk.data, chunk.last, chunk.digest) {
                Ok(p) => p,
                Err(reason) => {
                    warn!(from, slot, %reason, "snapshot stream refused");
                    done(&self.transport, false);
                    return;
                }
            };
            // An empty chunk only marks the end of an empty snapshot.
            let installed = if chunk.data.is_empty() {
                Ok(())
            } else {
                self.sm.install_chunk(&chunk.data)
            };
            if let Err(e) = installed {
                warn!(from, slot, error = %e, "install_chunk failed");
                done(&self.transport, false);
                return;
            }
            self.transport.send(
                from,
                &Wire::Snapshot(SnapshotMsg::Ack {
                    transfer,
                    seq: chunk.seq,
                }),
            );
            if progress == Progress::Complete {
                break;
            }
        }
        match self.sm.finish_install() {
            Ok(()) if self.sm.applied_index() == slot => {
                *applied = slot;
                self.applied_tx.send_replace(slot);
                info!(from, slot, "snapshot installed");
                done(&self.transport, true);
                self.installed(slot);
            }
            Ok(()) => {
                let now = self.sm.applied_index();
                warn!(
                    from,
                    slot, now, "state machine reports another index after install"
                );
                *applied = now;
                done(&self.transport, false);
            }
            Err(e) => {
                warn!(from, slot, error = %e, "finish_install failed");
                *applied = self.sm.applied_index();
                done(&self.transport, false);
            }
        }
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
