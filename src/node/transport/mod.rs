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
use std::sync::{Arc, Mutex, RwLock};

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::node::dir_ids::DirIds;
use crate::paxos::{Message, NodeId};
use peer::PeerLink;
use queue::PeerQueue;
pub use queue::QueueLimits;
use wire::{SnapshotMsg, Wire};

/// The peers by id (ourselves excluded). It changes when the members do
/// (`Transport::set_peers`); the listener admits only the peers it holds at the time.
#[derive(Debug, Default)]
pub struct PeerTable {
    links: RwLock<BTreeMap<NodeId, Arc<PeerLink>>>,
}

impl PeerTable {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<NodeId, Arc<PeerLink>>> {
        self.links.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<NodeId, Arc<PeerLink>>> {
        self.links.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The link to `id`, if it is a peer now.
    pub fn get(&self, id: &NodeId) -> Option<Arc<PeerLink>> {
        self.read().get(id).cloned()
    }

    /// True if `id` is a peer now.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.read().contains_key(id)
    }

    /// Every link now.
    pub fn all(&self) -> Vec<Arc<PeerLink>> {
        self.read().values().cloned().collect()
    }
}

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
    limits: QueueLimits,
    /// The dialer of each peer.
    dialers: Mutex<BTreeMap<NodeId, JoinHandle<()>>>,
    listener: Mutex<Option<JoinHandle<()>>>,
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
        let peers = Arc::new(PeerTable::default());
        let listener = tokio::spawn(listener::run(listener, ctx.clone(), peers.clone(), inbound));
        let transport = Transport {
            ctx,
            peers,
            limits,
            dialers: Mutex::new(BTreeMap::new()),
            listener: Mutex::new(Some(listener)),
        };
        transport.set_peers(members);
        transport
    }

    /// Makes `members` (ourselves skipped) the peers: dials the new ones, and drops the
    /// links (queued frames included) of those no longer listed. An id keeps the address
    /// it was first given (ids are never reused).
    pub fn set_peers(&self, members: &[(NodeId, String)]) {
        let wanted: BTreeMap<NodeId, &String> = members
            .iter()
            .filter(|(id, _)| *id != self.ctx.self_id)
            .map(|(id, addr)| (*id, addr))
            .collect();
        let mut dialers = self.dialers.lock().unwrap_or_else(|p| p.into_inner());
        let mut links = self.peers.write();
        links.retain(|id, _| {
            let keep = wanted.contains_key(id);
            if !keep {
                if let Some(task) = dialers.remove(id) {
                    task.abort();
                }
            }
            keep
        });
        for (id, addr) in wanted {
            if links.contains_key(&id) {
                continue;
            }
            let link = Arc::new(PeerLink::new(id, addr.clone(), PeerQueue::new(self.limits)));
            links.insert(id, link.clone());
            dialers.insert(id, tokio::spawn(peer::run(link, self.ctx.clone())));
        }
    }

    /// Queues a consensus message for `to` (never blocks; may drop the oldest queued one).
    pub fn send(&self, to: NodeId, msg: &Wire) {
        let Some(link) = self.peers.get(&to) else {
            debug!(to, "message for a node that is not a peer (now) dropped");
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
    pub fn link(&self, id: NodeId) -> Option<Arc<PeerLink>> {
        self.peers.get(&id)
    }

    /// Frames dropped on the current links so far.
    pub fn dropped_total(&self) -> u64 {
        self.peers.all().iter().map(|l| l.queue.dropped()).sum()
    }

    /// Stops every link task and waits until their sockets (listener included) are closed.
    pub async fn shutdown(&self) {
        let tasks = self.abort_all();
        for t in tasks {
            let _ = t.await; // Err(cancelled) is the expected outcome
        }
    }

    fn abort_all(&self) -> Vec<JoinHandle<()>> {
        let dialers = std::mem::take(&mut *self.dialers.lock().unwrap_or_else(|p| p.into_inner()));
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let tasks: Vec<JoinHandle<()>> = dialers.into_values().chain(listener).collect();
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
