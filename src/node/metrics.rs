//! What the node measures about consensus for `/metrics`: how long a proposal of this
//! node waits to be chosen, how long a chosen slot waits to be applied, how many
//! commands a chosen slot carries, how long the acceptor log takes to make a group of
//! Paxos records durable, and how often the leader changed.
//!
//! Each is recorded by the one thread that sees the event (the driver, the apply
//! thread, the persistence thread) and read by the HTTP layer through the node's
//! handle. Invariant: recording never blocks the recorder (atomics only, and the
//! driver's own table of proposal start times, bounded by [`PROPOSALS_TIMED_MAX`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use telemetry::{Histogram, BATCH_BOUNDS};

/// Proposals whose start time the driver holds at most; beyond it, new proposals go
/// untimed until older ones are chosen or dropped (the histogram then samples).
pub const PROPOSALS_TIMED_MAX: usize = 1 << 16;

/// The node's consensus measurements (see the module doc).
#[derive(Debug)]
pub struct NodeMetrics {
    /// From the driver taking a proposal of this node to its slot being chosen and
    /// handed out for applying (nanoseconds).
    pub proposal_commit: Histogram,
    /// From a chosen slot being handed to the apply thread to its being applied.
    pub commit_apply: Histogram,
    /// Commands per chosen slot (a no-op slot counts 0).
    pub batch_commands: Histogram,
    /// One group commit of the acceptor log: write and fdatasync of Paxos records.
    pub acceptor_persist: Histogram,
    /// Each fdatasync of the acceptor log alone (the log's own histogram).
    pub acceptor_fsync: Arc<Histogram>,
    /// Times this node saw a new leader (etcd's `leader_changes_seen_total`).
    pub leader_changes: AtomicU64,
    /// Commands applied by this node since start.
    pub commands_applied: AtomicU64,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            proposal_commit: Histogram::latency(),
            commit_apply: Histogram::latency(),
            batch_commands: Histogram::new(BATCH_BOUNDS),
            acceptor_persist: Histogram::latency(),
            acceptor_fsync: Arc::new(Histogram::latency()),
            leader_changes: AtomicU64::new(0),
            commands_applied: AtomicU64::new(0),
        }
    }
}

impl NodeMetrics {
    /// The metrics of a node whose acceptor log records its fsyncs in `acceptor_fsync`.
    pub fn with_acceptor_fsync(acceptor_fsync: Arc<Histogram>) -> NodeMetrics {
        NodeMetrics {
            acceptor_fsync,
            ..NodeMetrics::default()
        }
    }

    pub fn leader_changed(&self) {
        self.leader_changes.fetch_add(1, Relaxed);
    }
}

/// The driver's start times of this node's proposals, by envelope sequence.
#[derive(Debug, Default)]
pub struct ProposalTimes {
    started: HashMap<u64, Instant>,
}

impl ProposalTimes {
    /// Notes that proposal `seq` entered the core now (untimed when the table is full).
    pub fn started(&mut self, seq: u64) {
        if self.started.len() < PROPOSALS_TIMED_MAX {
            self.started.insert(seq, Instant::now());
        }
    }

    /// Proposal `seq` was chosen: records its wait, if it was timed.
    pub fn chosen(&mut self, seq: u64, metrics: &NodeMetrics) {
        if let Some(at) = self.started.remove(&seq) {
            metrics.proposal_commit.observe_duration(at.elapsed());
        }
    }

    /// Proposal `seq` will not be chosen (dropped, refused): forgets it.
    pub fn dropped(&mut self, seq: u64) {
        self.started.remove(&seq);
    }

    /// Forgets every proposal (this node's incarnation's proposals all failed).
    pub fn clear(&mut self) {
        self.started.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_proposals_are_timed_once_and_dropped_ones_not_at_all() {
        let metrics = NodeMetrics::default();
        let mut times = ProposalTimes::default();
        times.started(1);
        times.started(2);
        times.chosen(1, &metrics);
        times.chosen(1, &metrics); // a redelivery is not a second sample
        times.dropped(2);
        times.chosen(2, &metrics);
        times.chosen(3, &metrics); // never started here (another incarnation's)
        assert_eq!(metrics.proposal_commit.snapshot().count, 1);
    }

    #[test]
    fn the_table_of_start_times_is_bounded() {
        let metrics = NodeMetrics::default();
        let mut times = ProposalTimes::default();
        for seq in 0..(PROPOSALS_TIMED_MAX as u64 + 10) {
            times.started(seq);
        }
        assert_eq!(times.started.len(), PROPOSALS_TIMED_MAX);
        times.chosen(PROPOSALS_TIMED_MAX as u64 + 5, &metrics);
        assert_eq!(metrics.proposal_commit.snapshot().count, 0);
    }
}
