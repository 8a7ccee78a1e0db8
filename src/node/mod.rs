//! The node: drives the pure Paxos core (`crate::paxos`) with tokio, TCP and the `wal`.
//!
//! Reading order and threads:
//! - `transport/`: peer links (length-prefixed rmp-serde frames over TCP, a handshake
//!   authenticated by the cluster secret carrying node id, cluster id and client address,
//!   optionally inside mutual TLS whose certificates name member entries, bounded
//!   per-peer queues, reconnect).
//! - `driver.rs`: one tokio task owns the `Core`: ticks, inbound messages, proposals and
//!   read-index requests in; `Ready`s out, in the order the core demands.
//! - `persist.rs` + `storage.rs`: a blocking thread makes the acceptor's promises and
//!   accepts durable in `data_dir/paxos/` (one group commit per batch of Readys), and
//!   checkpoints/truncates that log behind the state machine.
//! - `apply.rs`: a blocking thread owns the `StateMachine` and applies chosen slots in
//!   order; `envelope.rs` lets it recognise this node's commands and answer their callers.
//! - `snapshot.rs`: streams a snapshot to a peer behind our compaction point, and the
//!   receiving side's bookkeeping.
//! - `members.rs`: the memberships rebuilt from the changes the state machine keeps
//!   (exactly as of the compaction point at start, the snapshot's slot after an
//!   install), the address book, and the leader's plan of a change of the members.
//! - `dir_ids.rs`: data-directory ids; a node whose directory is new takes part only once
//!   every peer confirms it never counted a vote from an earlier one.
//! - `handle.rs`: `NodeHandle`, the API the HTTP layer uses.

pub mod apply;
pub mod config;
pub mod dir_ids;
pub mod driver;
pub mod envelope;
pub mod error;
pub mod handle;
pub mod members;
pub mod metrics;
pub mod pending;
pub mod persist;
pub mod snapshot;
pub mod snapshot_digest;
pub mod state_machine;
pub mod storage;
pub mod transport;

use std::collections::hash_map::RandomState;
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};
use vfs::{Fs, RealFs};

pub use config::NodeConfig;
pub use driver::MemberChanged;
pub use error::{NodeError, StartError};
pub use handle::{MemberStatus, NodeHandle, NodeStatus};
pub use members::{MemberAddr, MemberError, MemberOp};
pub use state_machine::{SnapshotSource, StateMachine};

use crate::paxos::{Core, NodeId, Status};
use dir_ids::DirIds;
use driver::{Driver, DriverParts, View};
use handle::HandleInner;
use members::{memberships_as_of, AddressBook};
use pending::Pending;
use storage::AcceptorLog;
use transport::{LinkContext, Transport};

/// Capacity of the apply thread's event channel.
const APPLY_EVENTS_MAX: usize = 64;

/// A fresh random u64 (per-process random keys of the std hasher, mixed with the clock).
pub fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.finish()
}

/// Says at start-up what protects the peer links: nothing (a loud warning), the
/// cluster secret only (authenticated, not encrypted: a warning), or mutual TLS (quiet).
fn warn_about_peer_links(cfg: &NodeConfig) {
    if cfg.members.len() < 2 || cfg.peer_tls.is_some() {
        return;
    }
    match cfg.cluster_secret {
        None => warn!(
            listen = %cfg.listen_addr().unwrap_or_default(),
            "PEER LINKS ARE NEITHER AUTHENTICATED NOR ENCRYPTED: any process that reaches the \
             peer port can pose as a member and change the cluster's state. Give every member \
             the same secret (CLUSTER_SECRET_FILE) or peer TLS (PEER_TLS_CERT_FILE, \
             PEER_TLS_KEY_FILE, PEER_TLS_CA_FILE), and keep the peer port on a private network"
        ),
        Some(_) => warn!(
            "peer links are authenticated by the cluster secret but NOT encrypted: peer \
             traffic (keys and values included) can be read on the network, and a \
             man-in-the-middle could take over an established link; set peer TLS \
             (PEER_TLS_CERT_FILE, PEER_TLS_KEY_FILE, PEER_TLS_CA_FILE) or keep the peer port \
             on a private network"
        ),
    }
}

/// Starting a node.
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Starts a node on the real disk: opens its acceptor log, binds the peer listener,
    /// and spawns the driver, persistence and apply threads.
    pub async fn start(cfg: NodeConfig, sm: Box<dyn StateMachine>) -> std::io::Result<NodeHandle> {
        Self::start_with_fs(cfg, Arc::new(RealFs), sm).await
    }

    /// `start` on any file system (the simulator in tests).
    pub async fn start_with_fs(
        cfg: NodeConfig,
        fs: Arc<dyn Fs>,
        sm: Box<dyn StateMachine>,
    ) -> std::io::Result<NodeHandle> {
        Ok(start_inner(cfg, fs, sm).await?)
    }
}

async fn start_inner(
    cfg: NodeConfig,
    fs: Arc<dyn Fs>,
    sm: Box<dyn StateMachine>,
) -> Result<NodeHandle, StartError> {
    cfg.validate()?;
    let cfg = Arc::new(cfg);
    let dir = cfg.data_dir.join("paxos");
    let record_bytes_max = cfg.frame_bytes_max;
    let (log, durable) = {
        let (fs, open_dir, seg) = (fs.clone(), dir.clone(), cfg.wal_segment_bytes_max);
        tokio::task::spawn_blocking(move || AcceptorLog::open(fs, &open_dir, seg, record_bytes_max))
            .await
            .map_err(|e| StartError::Storage {
                context: "opening the acceptor log".into(),
                reason: e.to_string(),
            })?
            .map_err(|e| StartError::Storage {
                context: format!("opening {}", dir.display()),
                reason: e.to_string(),
            })?
    };
    let (sm, synced) = tokio::task::spawn_blocking(move || {
        let mut sm = sm;
        let synced = sm.sync().and_then(|()| sm.membership_changes());
        (sm, synced)
    })
    .await
    .map_err(|e| StartError::Io {
        context: "syncing the state machine".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let changes = synced.map_err(|e| StartError::Io {
        context: "syncing the state machine and reading its membership changes".into(),
        source: e,
    })?;
    let applied = sm.applied_index();
    if applied < durable.compacted_through {
        return Err(StartError::Storage {
            context: "state machine".into(),
            reason: format!(
                "applied index {applied} is behind the acceptor log's compaction point {}; \
                 the state machine lost data the log no longer holds",
                durable.compacted_through
            ),
        });
    }
    let compacted_through = durable.compacted_through;
    let has_state = durable.promised != crate::paxos::Ballot::ZERO
        || !durable.accepted.is_empty()
        || compacted_through > 0;
    // The state machine holds every slot <= applied (>= the acceptor log's compaction
    // point): the core starts there, as after installing a snapshot of it, with the
    // memberships as of it (`members.rs`). Those slots are chosen, so a restarted
    // leader proposes none of them again (it would re-send the log tail to every peer);
    // a peer that still lacks one catches up by snapshot. The transport also dials
    // whoever the join told of.
    let memberships = memberships_as_of(cfg.core.genesis(), &changes, applied);
    let mut book = AddressBook::new(&cfg.members, &cfg.peers_known);
    book.learn_changes(&changes);
    let join_peers: BTreeSet<NodeId> = cfg.peers_known.iter().map(|m| m.id).collect();
    let mut dialed = memberships.nodes();
    dialed.extend(join_peers.iter().copied());
    // A new directory is vouched for by every node that may have counted its votes.
    let member_ids: Vec<NodeId> = dialed.iter().copied().collect();
    let dir_ids = {
        let (fs, dir, me, new_member) = (fs.clone(), dir.clone(), cfg.core.id, cfg.new_member);
        tokio::task::spawn_blocking(move || {
            DirIds::open(
                fs,
                &dir,
                me,
                &member_ids,
                has_state || new_member,
                random_u64(),
            )
        })
        .await
        .map_err(|e| StartError::Io {
            context: "opening the data directory ids".into(),
            source: std::io::Error::other(e.to_string()),
        })??
    };
    let dir_ids = Arc::new(dir_ids);
    if !dir_ids.confirmed() {
        info!(
            dir = format_args!("{:#x}", dir_ids.dir()),
            "this data directory is new: the node takes part in consensus once every peer \
             confirms it remembers no earlier directory of this node"
        );
    }
    info!(
        id = cfg.core.id,
        applied,
        compacted_through,
        promised = %durable.promised,
        accepted = durable.accepted.len(),
        "node starting"
    );

    warn_about_peer_links(&cfg);
    let listen = cfg.listen_addr().unwrap_or_default();
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| StartError::Io {
            context: format!("binding the peer listener on {listen}"),
            source: e,
        })?;
    let (inbound_tx, inbound_rx) = mpsc::channel(cfg.inbound_queue_messages_max);
    let ctx = LinkContext {
        self_id: cfg.core.id,
        cluster_id: transport::wire::cluster_id_with_token(&cfg.members, cfg.cluster_token),
        client_addr: cfg.client_addr.clone(),
        frame_bytes_max: cfg.frame_bytes_max,
        connect_timeout_ms: cfg.connect_timeout_ms,
        handshake_timeout_ms: cfg.handshake_timeout_ms,
        write_timeout_ms: cfg.write_timeout_ms,
        reconnect_backoff_ms_min: cfg.reconnect_backoff_ms_min,
        reconnect_backoff_ms_max: cfg.reconnect_backoff_ms_max,
        inbound_handshakes_max: cfg.inbound_handshakes_max,
        secret: cfg.cluster_secret.clone(),
        tls: cfg.peer_tls.clone(),
        dir_ids: dir_ids.clone(),
    };
    let transport = Arc::new(Transport::start(
        ctx,
        &book.peers(&dialed),
        transport::QueueLimits {
            messages_max: cfg.peer_queue_messages_max,
            bytes_max: cfg.peer_queue_bytes_max,
            bulk_max: cfg.peer_queue_bulk_messages_max,
        },
        listener,
        inbound_tx,
    ));

    let incarnation = random_u64();
    let core = Core::start_at(cfg.core.clone(), durable, applied, memberships, incarnation);
    let status: Status = core.status();
    let pending = Arc::new(Pending::new(cfg.proposals_pending_max));
    let metrics = Arc::new(metrics::NodeMetrics::with_acceptor_fsync(
        log.sync_latency_histogram(),
    ));
    let stop = Arc::new(AtomicBool::new(false));

    let (applied_tx, applied_rx) = watch::channel(applied);
    let (events_tx, events_rx) = mpsc::channel(APPLY_EVENTS_MAX);
    let apply_queue = usize::try_from(cfg.apply_lag_slots_max)
        .unwrap_or(usize::MAX)
        .min(1 << 20);
    let (apply_tx, apply_rx) = mpsc::channel(apply_queue);
    let applier = apply::Applier {
        sm,
        me: apply::Identity {
            node: cfg.core.id,
            incarnation,
        },
        pending: pending.clone(),
        applied_tx,
        events: events_tx,
        transport: transport.clone(),
        stop: stop.clone(),
        metrics: metrics.clone(),
    };
    let apply_thread = spawn_thread(format!("apply-{}", cfg.core.id), move || {
        applier.run(apply_rx)
    })?;

    let jobs_max = cfg.persist_batches_inflight_max + 2;
    let (persist_tx, persist_rx) = mpsc::channel(jobs_max);
    let (persisted_tx, persisted_rx) = mpsc::channel(jobs_max);
    let persist_stop = stop.clone();
    let persist_metrics = metrics.clone();
    let persist_thread = spawn_thread(format!("persist-{}", cfg.core.id), move || {
        persist::run(log, persist_rx, persisted_tx, persist_stop, persist_metrics)
    })?;

    let (requests_tx, requests_rx) = mpsc::channel(cfg.request_queue_max);
    let (leader_tx, leader_rx) = watch::channel(status.leader);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (stopped_tx, stopped_rx) = watch::channel(false);
    let view = Arc::new(Mutex::new(View {
        core: status,
        failed: None,
        book: Arc::new(book.clone()),
    }));
    let parts = DriverParts {
        cfg: cfg.clone(),
        core,
        compacted_through,
        transport: transport.clone(),
        inbound: inbound_rx,
        requests: requests_rx,
        events: events_rx,
        apply: apply_tx,
        applied: applied_rx.clone(),
        persist: persist_tx,
        persisted: persisted_rx,
        pending: pending.clone(),
        view: view.clone(),
        leader: leader_tx,
        shutdown: shutdown_rx,
        incarnation,
        dir_ids,
        metrics: metrics.clone(),
        book,
        join_peers,
    };
    let driver_transport = transport.clone();
    tokio::spawn(async move {
        let mut driver = Driver::new(parts).run().await;
        driver.stop(&stop);
        driver_transport.shutdown().await;
        drop(driver); // closes the apply and persist channels
        let joined = tokio::task::spawn_blocking(move || {
            let a = apply_thread.join().is_ok();
            let p = persist_thread.join().is_ok();
            a && p
        })
        .await;
        if !matches!(joined, Ok(true)) {
            error!("a node thread panicked");
        }
        stopped_tx.send_replace(true);
    });

    let inner = HandleInner {
        id: cfg.core.id,
        incarnation,
        next_seq: AtomicU64::new(1),
        requests: requests_tx,
        pending,
        applied: applied_rx,
        leader: leader_rx,
        view,
        transport,
        cluster_id: transport::wire::cluster_id_with_token(&cfg.members, cfg.cluster_token),
        first_members: cfg.members.clone(),
        cluster_token: cfg.cluster_token,
        client_addr: cfg.client_addr.clone(),
        request_timeout: Duration::from_millis(cfg.request_timeout_ms),
        tick: Duration::from_millis(cfg.tick_ms),
        shutdown: shutdown_tx,
        stopped: stopped_rx,
        metrics,
    };
    Ok(NodeHandle {
        inner: Arc::new(inner),
    })
}

fn spawn_thread(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, StartError> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
        .map_err(|e| StartError::Io {
            context: format!("spawning thread {name}"),
            source: e,
        })
}

#[cfg(test)]
mod tests;
