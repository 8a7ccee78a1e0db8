//! `NodeConfig`: who this node is, who its peers are, where its data lives, and every
//! limit of the node layer (units last in the names), checked by `validate()`.
//!
//! The consensus core's own configuration (this node's id, the member ids, the core's
//! timing and limits) is held whole in `core`, not copied field by field: `new` builds
//! it from the member list, and `validate` checks that `core.members` still lists the
//! ids of `members` in order. The consensus timing is in ticks of `tick_ms`: with the
//! defaults (10 ms ticks, heartbeats every 5 ticks, suspicion after 30 silent ticks) a
//! crashed leader is suspected after about 300 ms and replaced well within 1-2 s.

use std::path::PathBuf;
use std::sync::Arc;

use super::error::StartError;
use super::members::MemberAddr;
use super::transport::auth::ClusterSecret;
use super::transport::peer_tls::PeerTls;
use crate::paxos::{self, NodeId};

/// Bytes of envelope and framing around a command or chunk inside one frame (generous).
pub const FRAME_OVERHEAD_BYTES: u64 = 64 * 1024;

/// The configuration of one node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The consensus core's configuration: this node's id (`core.id`, its position in
    /// the member list, counting from 1), the member ids, and the core's timing in
    /// ticks and limits. Invariant (`validate`): `core.members` is the ids of
    /// `members`, in the same order.
    pub core: paxos::Config,
    /// The cluster's first members `(id, peer address host:port)` (`CONCIERGES`): the
    /// first membership, and part of the cluster id. Later members come from the log.
    pub members: Vec<(NodeId, String)>,
    /// Members learnt when this node joined a running cluster (this node included):
    /// dialed until the node has caught up with the log that added it.
    pub peers_known: Vec<MemberAddr>,
    /// This data directory was made by joining, in this very start, under an id the
    /// cluster just gave a learner (`server::join` checked it votes nowhere): no vote
    /// was ever counted from this id, so no peer needs to vouch for the directory
    /// (`dir_ids.rs`). Peers that are gone for good could never vouch for it.
    pub new_member: bool,
    /// The address this node serves clients on (reported to peers in the handshake).
    pub client_addr: String,
    /// Where to listen for peers; `None` = this node's address in `members`.
    pub peer_listen_addr: Option<String>,
    /// The node keeps its acceptor log in `data_dir/paxos/`.
    pub data_dir: PathBuf,
    /// Mixed into the cluster id peers check in their handshake (0 = none; set for a
    /// cluster restored from a backup, recorded in its data directories).
    pub cluster_token: u64,
    /// The secret that authenticates peers to each other (`transport/auth.rs`); None =
    /// peer links are not authenticated (start-up warns in a cluster of several nodes).
    pub cluster_secret: Option<ClusterSecret>,
    /// Mutual TLS between peers (`transport/peer_tls.rs`); None = plain TCP.
    pub peer_tls: Option<Arc<PeerTls>>,

    /// Length of one consensus tick (the core counts its timing in ticks).
    pub tick_ms: u64,

    /// Largest frame payload accepted or sent on a peer link.
    pub frame_bytes_max: u32,
    /// Consensus frames queued per peer (the oldest is dropped beyond this).
    pub peer_queue_messages_max: usize,
    /// Bytes of consensus frames queued per peer (the oldest are dropped beyond this):
    /// a peer that is down costs at most this much memory whatever the value sizes.
    /// At least `frame_bytes_max`.
    pub peer_queue_bytes_max: usize,
    /// Snapshot frames queued per peer (new ones wait beyond this).
    pub peer_queue_bulk_messages_max: usize,
    /// Received messages waiting for the driver (readers wait beyond this).
    pub inbound_queue_messages_max: usize,
    /// Unauthenticated inbound peer connections at once; one more evicts the oldest.
    /// Authenticated ones are counted apart (one per peer: a peer's new connection
    /// replaces its old one), so a flood of these cannot displace real peers.
    pub inbound_handshakes_max: usize,
    /// First reconnect delay after a failed or lost connection.
    pub reconnect_backoff_ms_min: u64,
    /// Cap of the doubling reconnect delay.
    pub reconnect_backoff_ms_max: u64,
    /// Deadline of one TCP connect.
    pub connect_timeout_ms: u64,
    /// Deadline of the hello exchange.
    pub handshake_timeout_ms: u64,
    /// Deadline of writing out the queue once; a stuck peer is then reconnected.
    pub write_timeout_ms: u64,

    /// Default deadline of `propose`, `read_index` and `wait_applied`.
    pub request_timeout_ms: u64,
    /// Requests from handles waiting for the driver.
    pub request_queue_max: usize,
    /// Proposals of this node waiting to be applied.
    pub proposals_pending_max: usize,
    /// Slots handed to the apply thread and not yet applied; new proposals are refused
    /// (NotReady) beyond this.
    pub apply_lag_slots_max: u64,
    /// Persist batches in flight to the persistence thread at once.
    pub persist_batches_inflight_max: usize,

    /// Applied slots kept in the acceptor log behind the state machine (lagging peers
    /// catch up from these without a snapshot).
    pub log_tail_slots: u64,
    /// Newly applied slots between two compactions of the acceptor log.
    pub compact_every_slots: u64,
    /// Segment size of the acceptor log.
    pub wal_segment_bytes_max: u64,
    /// Largest snapshot chunk the state machine may produce; chunks travel whole (one
    /// `install_chunk` per chunk on the receiver), and a larger one fails the transfer.
    pub snapshot_chunk_bytes_max: usize,
    /// Snapshot chunks in flight (sent, not yet acknowledged).
    pub snapshot_window_chunks: usize,
    /// A snapshot transfer with no acknowledgement for this long is restarted.
    pub snapshot_ack_timeout_ms: u64,
    /// Least time between two snapshot transfers to the same peer.
    pub snapshot_retry_ms_min: u64,
}

impl NodeConfig {
    /// A configuration with the default limits.
    pub fn new(
        id: NodeId,
        members: Vec<(NodeId, String)>,
        client_addr: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> NodeConfig {
        let core = paxos::Config::new(id, members.iter().map(|(m, _)| *m).collect());
        NodeConfig {
            core,
            members,
            client_addr: client_addr.into(),
            peers_known: Vec::new(),
            new_member: false,
            peer_listen_addr: None,
            data_dir: data_dir.into(),
            cluster_token: 0,
            cluster_secret: None,
            peer_tls: None,
            tick_ms: 10,
            frame_bytes_max: 64 << 20,
            peer_queue_messages_max: 8192,
            peer_queue_bytes_max: 64 << 20,
            peer_queue_bulk_messages_max: 4,
            inbound_queue_messages_max: 8192,
            inbound_handshakes_max: 64,
            reconnect_backoff_ms_min: 20,
            reconnect_backoff_ms_max: 1000,
            connect_timeout_ms: 1000,
            handshake_timeout_ms: 2000,
            write_timeout_ms: 5000,
            request_timeout_ms: 5000,
            request_queue_max: 16384,
            proposals_pending_max: 65536,
            apply_lag_slots_max: 4096,
            persist_batches_inflight_max: 64,
            log_tail_slots: 10_000,
            compact_every_slots: 10_000,
            wal_segment_bytes_max: 16 << 20,
            snapshot_chunk_bytes_max: 16 << 20,
            snapshot_window_chunks: 2,
            snapshot_ack_timeout_ms: 10_000,
            snapshot_retry_ms_min: 500,
        }
    }

    /// The address the peer listener binds.
    pub fn listen_addr(&self) -> Option<String> {
        self.peer_listen_addr.clone().or_else(|| {
            self.members
                .iter()
                .find(|(m, _)| *m == self.core.id)
                .map(|(_, a)| a.clone())
                .or_else(|| {
                    self.peers_known
                        .iter()
                        .find(|m| m.id == self.core.id)
                        .map(|m| m.peer_addr.clone())
                })
        })
    }

    /// Checks that the configuration can work.
    pub fn validate(&self) -> Result<(), StartError> {
        let bad = |reason: String| Err(StartError::Config { reason });
        self.core.validate().map_err(|e| StartError::Config {
            reason: e.to_string(),
        })?;
        if !self
            .core
            .members
            .iter()
            .copied()
            .eq(self.members.iter().map(|(m, _)| *m))
        {
            return bad("core.members must list the ids of members, in the same order".into());
        }
        if self.members.iter().any(|(_, a)| a.is_empty())
            || self.peers_known.iter().any(|m| m.peer_addr.is_empty())
        {
            return bad("a member has an empty peer address".into());
        }
        if self.listen_addr().is_none() {
            return bad(format!(
                "node {} is neither a first member nor a known one, and no listen address is set",
                self.core.id
            ));
        }
        if self.client_addr.is_empty() {
            return bad("client_addr is empty".into());
        }
        let positive: [(&str, u64); 23] = [
            ("peer_queue_bytes_max", self.peer_queue_bytes_max as u64),
            ("tick_ms", self.tick_ms),
            ("frame_bytes_max", u64::from(self.frame_bytes_max)),
            (
                "peer_queue_messages_max",
                self.peer_queue_messages_max as u64,
            ),
            (
                "peer_queue_bulk_messages_max",
                self.peer_queue_bulk_messages_max as u64,
            ),
            (
                "inbound_queue_messages_max",
                self.inbound_queue_messages_max as u64,
            ),
            ("inbound_handshakes_max", self.inbound_handshakes_max as u64),
            ("reconnect_backoff_ms_min", self.reconnect_backoff_ms_min),
            ("reconnect_backoff_ms_max", self.reconnect_backoff_ms_max),
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
            ("write_timeout_ms", self.write_timeout_ms),
            ("request_timeout_ms", self.request_timeout_ms),
            ("request_queue_max", self.request_queue_max as u64),
            ("proposals_pending_max", self.proposals_pending_max as u64),
            ("apply_lag_slots_max", self.apply_lag_slots_max),
            (
                "persist_batches_inflight_max",
                self.persist_batches_inflight_max as u64,
            ),
            ("compact_every_slots", self.compact_every_slots),
            ("wal_segment_bytes_max", self.wal_segment_bytes_max),
            (
                "snapshot_chunk_bytes_max",
                self.snapshot_chunk_bytes_max as u64,
            ),
            ("snapshot_window_chunks", self.snapshot_window_chunks as u64),
            ("snapshot_ack_timeout_ms", self.snapshot_ack_timeout_ms),
            ("snapshot_retry_ms_min", self.snapshot_retry_ms_min),
        ];
        for (name, v) in positive {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if self.reconnect_backoff_ms_min > self.reconnect_backoff_ms_max {
            return bad("reconnect_backoff_ms_min exceeds reconnect_backoff_ms_max".into());
        }
        let frame = u64::from(self.frame_bytes_max);
        if (self.core.batch_bytes_max as u64).saturating_add(FRAME_OVERHEAD_BYTES) > frame {
            return bad("frame_bytes_max must exceed batch_bytes_max plus overhead".into());
        }
        if (self.snapshot_chunk_bytes_max as u64).saturating_add(FRAME_OVERHEAD_BYTES) > frame {
            return bad(
                "frame_bytes_max must exceed snapshot_chunk_bytes_max plus overhead".into(),
            );
        }
        if (self.peer_queue_bytes_max as u64) < frame {
            return bad("peer_queue_bytes_max must be at least frame_bytes_max".into());
        }
        if self.snapshot_window_chunks > self.peer_queue_bulk_messages_max {
            return bad("snapshot_window_chunks exceeds peer_queue_bulk_messages_max".into());
        }
        if self.listen_addr().is_none() {
            return bad("no peer address for this node".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> NodeConfig {
        NodeConfig::new(
            2,
            vec![(1, "a:1".into()), (2, "b:1".into()), (3, "c:1".into())],
            "b:80",
            "/tmp/x",
        )
    }

    #[test]
    fn defaults_validate_and_bad_values_do_not() {
        assert!(three().validate().is_ok());
        let mut c = three();
        c.core.id = 4;
        assert!(c.validate().is_err());
        let mut c = three();
        c.core.members = vec![1, 3, 2];
        assert!(c.validate().is_err());
        let mut c = three();
        c.members.pop();
        assert!(c.validate().is_err());
        let mut c = three();
        c.frame_bytes_max = 1024;
        assert!(c.validate().is_err());
        let mut c = three();
        c.tick_ms = 0;
        assert!(c.validate().is_err());
        let mut c = three();
        c.reconnect_backoff_ms_min = 5000;
        assert!(c.validate().is_err());
        assert_eq!(three().listen_addr().as_deref(), Some("b:1"));
    }
}
