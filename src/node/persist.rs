//! The persistence thread: owns the `AcceptorLog` and makes the core's records durable off
//! the driver task, so the driver keeps feeding the core while an fsync runs.
//!
//! Jobs are handled strictly in order. Consecutive `Records` jobs that are already queued
//! share ONE group commit (one fdatasync); each job is then reported back, in order, with
//! the messages that may now leave the node. Invariant: a job's messages are released only
//! after its records (and every earlier job's) are durable. A storage error is fatal: it is
//! reported and the thread stops (the acceptor can no longer keep its promises).

use super::metrics::NodeMetrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, error};

use super::storage::AcceptorLog;
use crate::paxos::{Message, NodeId, Persist, Slot};

/// Work for the persistence thread.
#[derive(Debug)]
pub enum PersistJob {
    /// Make `records` durable, then release `send`.
    Records {
        records: Vec<Persist>,
        send: Vec<(NodeId, Message)>,
    },
    /// Checkpoint the log at `through` and drop the prefix (see `storage.rs`).
    Checkpoint(Slot),
}

/// One finished job: its messages may be sent now.
#[derive(Debug)]
pub enum PersistDone {
    Released(Vec<(NodeId, Message)>),
    Failed(String),
}

/// Runs until the job channel closes or `stop` is raised.
pub fn run(
    mut log: AcceptorLog,
    mut jobs: mpsc::Receiver<PersistJob>,
    done: mpsc::Sender<PersistDone>,
    stop: Arc<AtomicBool>,
    metrics: Arc<NodeMetrics>,
) {
    let mut group: Vec<PersistJob> = Vec::new();
    while let Some(first) = jobs.blocking_recv() {
        group.push(first);
        while let Ok(next) = jobs.try_recv() {
            group.push(next);
        }
        if stop.load(Ordering::Acquire) {
            break;
        }
        if let Err(reason) = handle_group(&mut log, &mut group, &done, &metrics) {
            error!(%reason, "acceptor log failed; this node stops persisting");
            let _ = done.blocking_send(PersistDone::Failed(reason));
            return;
        }
    }
    debug!("persistence thread stopped");
}

fn handle_group(
    log: &mut AcceptorLog,
    group: &mut Vec<PersistJob>,
    done: &mpsc::Sender<PersistDone>,
    metrics: &NodeMetrics,
) -> Result<(), String> {
    let mut jobs = group.drain(..).peekable();
    while jobs.peek().is_some() {
        // A run of Records jobs: one group commit, then release each in order.
        let mut records = Vec::new();
        let mut sends = Vec::new();
        while let Some(PersistJob::Records { .. }) = jobs.peek() {
            if let Some(PersistJob::Records { records: r, send }) = jobs.next() {
                records.extend(r);
                sends.push(send);
            }
        }
        if !sends.is_empty() {
            let started = std::time::Instant::now();
            log.persist(&records).map_err(|e| e.to_string())?;
            metrics.acceptor_persist.observe_duration(started.elapsed());
            for send in sends {
                if done.blocking_send(PersistDone::Released(send)).is_err() {
                    return Ok(()); // the driver is gone
                }
            }
        }
        if let Some(PersistJob::Checkpoint(through)) = jobs.peek() {
            let through = *through;
            jobs.next();
            log.checkpoint(through).map_err(|e| e.to_string())?;
            debug!(
                through,
                first_index = log.first_index(),
                "acceptor log checkpointed"
            );
            if done
                .blocking_send(PersistDone::Released(Vec::new()))
                .is_err()
            {
                return Ok(());
            }
        }
    }
    Ok(())
}
