//! The peer transport: one outbound TCP connection per peer (dialed by `peer.rs`, with
//! reconnect and capped exponential backoff) and a listener for inbound ones
//! (`listener.rs`, admitting connections through `gate.rs`), carrying length-prefixed
//! rmp-serde frames (`frame.rs`, `wire.rs`; the protocol is `docs/peer-protocol.md`).
//! Every connection starts with the handshake (`handshake.rs`), which authenticates both
//! sides by the cluster secret when one is configured (`auth.rs`). With peer TLS
//! (`peer_tls.rs`) the handshake runs inside a mutually authenticated TLS stream, and
//! each side checks that the other's certificate names the member it claims or was dialed.
//!
//! Sending never blocks: frames go into a bounded per-peer [`PeerQueue`](queue::PeerQueue)
//! that drops the oldest consensus frame when full (counted in `dropped`). Received
//! messages reach the driver through one bounded channel of [`Inbound`] items.
//! Messages to ourselves never touch the transport (the driver steps them directly).

pub mod auth;
pub mod frame;
pub mod gate;
pub mod handshake;
pub mod listener;
pub mod peer;
pub mod peer_tls;
pub mod queue;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::node::dir_ids::DirIds;
use crate::paxos::{Message, NodeId};
use peer::PeerLink;
use queue::PeerQueue;
pub use queue::QueueLimits;
use wire::{SnapshotMsg, Wire};

/// The peers by id (ourselves excluded).
pub type PeerTable = BTreeMap<NodeId, Arc<PeerLink>>;

/// What a received frame becomes for the driver.
#[derive(Debug)]
pub enum Inbound {
    Paxos(NodeId, Message),
    Snapshot(NodeId, SnapshotMsg),
}

/// The settings every link task reads.
#[derive(Debug, Clone)]
pub struct LinkContext {
    pub self_id: NodeId,
    pub cluster_id: u64,
    pub client_addr: String,
    pub frame_bytes_max: u32,
    pub connect_timeout_ms: u64,
    pub handshake_timeout_ms: u64,
    pub write_timeout_ms: u64,
    pub reconnect_backoff_ms_min: u64,
    pub reconnect_backoff_ms_max: u64,
    /// Unauthenticated inbound connections at once (`gate.rs`).
    pub inbound_handshakes_max: usize,
    /// The cluster secret authenticating both sides of every handshake; None = peers are
    /// not authenticated (start-up warns).
    pub secret: Option<auth::ClusterSecret>,
    /// Mutual TLS on every peer connection (`peer_tls.rs`); None = plain TCP.
    pub tls: Option<Arc<peer_tls::PeerTls>>,
    /// This node's data-directory id and what it remembers of its peers'.
    pub dir_ids: Arc<DirIds>,
}

/// Why a bulk frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkError {
    /// The bulk lane is full; try again after the peer drained it.
    Full,
    /// Unknown peer or the frame could not be encoded (logged).
    Unsendable,
}

/// The running transport: the link tasks and the queues that feed them.
#[derive(Debug)]
pub struct Transport {
    ctx: Arc<LinkContext>,
    peers: Arc<PeerTable>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Transport {
    /// Starts one dialer per peer and the accept loop on `listener`.
    pub fn start(
        ctx: LinkContext,
        members: &[(NodeId, String)],
        limits: QueueLimits,
        listener: TcpListener,
        inbound: mpsc::Sender<Inbound>,
    ) -> Transport {
        let ctx = Arc::new(ctx);
        let peers: PeerTable = members
            .iter()
            .filter(|(id, _)| *id != ctx.self_id)
            .map(|(id, addr)| {
                let queue = PeerQueue::new(limits);
                (*id, Arc::new(PeerLink::new(*id, addr.clone(), queue)))
            })
            .collect();
        let peers = Arc::new(peers);
        let mut tasks = Vec::new();
        for link in peers.values() {
            tasks.push(tokio::spawn(peer::run(link.clone(), ctx.clone())));
        }
        tasks.push(tokio::spawn(listener::run(
            listener,
            ctx.clone(),
            peers.clone(),
            inbound,
        )));
        Transport {
            ctx,
            peers,
            tasks: Mutex::new(tasks),
        }
    }

    /// Queues a consensus message for `to` (never blocks; may drop the oldest queued one).
    pub fn send(&self, to: NodeId, msg: &Wire) {
        let Some(link) = self.peers.get(&to) else {
            warn!(to, "message for an unknown peer dropped");
            return;
        };
        match frame::encode(msg, self.ctx.frame_bytes_max) {
            Ok(bytes) => link.queue.push(bytes),
            Err(e) => warn!(to, error = %e, "message dropped: cannot frame it"),
        }
    }

    /// Queues a snapshot frame for `to` on the bulk lane (refused when that lane is full).
    pub fn send_bulk(&self, to: NodeId, msg: &Wire) -> Result<(), BulkError> {
        let Some(link) = self.peers.get(&to) else {
            return Err(BulkError::Unsendable);
        };
        let bytes = frame::encode(msg, self.ctx.frame_bytes_max).map_err(|e| {
            warn!(to, error = %e, "snapshot frame dropped: cannot frame it");
            BulkError::Unsendable
        })?;
        if link.queue.push_bulk(bytes) {
            Ok(())
        } else {
            Err(BulkError::Full)
        }
    }

    /// The link to `id`, if it is a peer.
    pub fn link(&self, id: NodeId) -> Option<&Arc<PeerLink>> {
        self.peers.get(&id)
    }

    /// Frames dropped on all links so far.
    pub fn dropped_total(&self) -> u64 {
        self.peers.values().map(|l| l.queue.dropped()).sum()
    }

    /// Stops every link task and waits until their sockets (listener included) are closed.
    pub async fn shutdown(&self) {
        let tasks = self.abort_all();
        for t in tasks {
            let _ = t.await; // Err(cancelled) is the expected outcome
        }
    }

    fn abort_all(&self) -> Vec<JoinHandle<()>> {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in &tasks {
            t.abort();
        }
        tasks
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.abort_all();
    }
}

#[cfg(test)]
mod tests;
