//! `NodeHandle`: what the HTTP layer (and tests) use to talk to a running node.
//!
//! Every method is bounded in time: `propose` and `read_index` fail fast with `NoQuorum`
//! (no leader) or `NotReady` (a queue is full), and otherwise give up after the request
//! timeout with `Timeout`. A timed-out proposal may still be applied later (clients retry
//! with an idempotency key; see API.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use super::driver::{MemberChanged, Request, View};
use super::envelope::{self, Origin};
use super::error::NodeError;
use super::members::{MemberError, MemberOp};
use super::pending::Pending;
use super::transport::Transport;
use crate::paxos::{Ballot, NodeId, Slot};

/// Read-index attempts when the core answers "retry" (leadership in flux).
const READ_ATTEMPTS_MAX: u32 = 3;

/// One member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: NodeId,
    pub peer_addr: String,
    /// Learnt from the member's handshake (this node's own is configured); empty while
    /// not yet known.
    pub client_addr: String,
    /// The failure detector trusts it (always true for this node).
    pub healthy: bool,
    /// Our outbound link to it is up (true for this node).
    pub connected: bool,
    /// It votes (else it is a learner) in the newest membership this node knows.
    pub voter: bool,
    /// The commit index it last reported (this node's own for itself): its progress.
    pub commit_index: Slot,
}

/// A snapshot of the node's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: NodeId,
    pub leader: Option<NodeId>,
    pub is_leader: bool,
    pub ballot: Ballot,
    pub commit_index: Slot,
    pub applied_index: Slot,
    pub members: Vec<MemberStatus>,
    /// The slot whose change made the newest membership (0: the first membership).
    pub membership_slot: Slot,
    /// Peer messages dropped because a peer's queue was full, since start.
    pub dropped_messages: u64,
    /// Why the node stopped serving, if it did.
    pub failed: Option<String>,
}

pub(crate) struct HandleInner {
    pub id: NodeId,
    pub incarnation: u64,
    pub next_seq: AtomicU64,
    pub requests: mpsc::Sender<Request>,
    pub pending: Arc<Pending>,
    pub applied: watch::Receiver<Slot>,
    pub leader: watch::Receiver<Option<NodeId>>,
    pub view: Arc<Mutex<View>>,
    pub transport: Arc<Transport>,
    /// The id peers check in their handshake (first members and cluster token).
    pub cluster_id: u64,
    /// The cluster's first members and its token: what a joining node needs to take
    /// the same cluster id and first membership (`GET /v1/cluster`).
    pub first_members: Vec<(NodeId, String)>,
    pub cluster_token: u64,
    pub client_addr: String,
    pub request_timeout: Duration,
    pub tick: Duration,
    pub shutdown: watch::Sender<bool>,
    pub metrics: Arc<super::metrics::NodeMetrics>,
    pub stopped: watch::Receiver<bool>,
}

/// A cheap, cloneable handle to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) inner: Arc<HandleInner>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("id", &self.inner.id)
            .finish()
    }
}

impl NodeHandle {
    /// The cluster's id (what peers check in their handshake; a backup records it).
    pub fn cluster_id(&self) -> u64 {
        self.inner.cluster_id
    }

    /// The cluster's first members (`CONCIERGES` of its first start) and its token.
    pub fn first_members(&self) -> (&[(NodeId, String)], u64) {
        (&self.inner.first_members, self.inner.cluster_token)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// Proposes one command; resolves when this node has applied it, with the slot and the
    /// state machine's result. Gives up after `request_timeout_ms`.
    pub async fn propose(&self, command: Bytes) -> Result<(Slot, Bytes), NodeError> {
        self.propose_within(command, self.inner.request_timeout)
            .await
    }

    /// `propose` with an explicit deadline.
    pub async fn propose_within(
        &self,
        command: Bytes,
        timeout: Duration,
    ) -> Result<(Slot, Bytes), NodeError> {
        let inner = &self.inner;
        let seq = inner.next_seq.fetch_add(1, Ordering::Relaxed);
        let rx = inner.pending.register(seq).ok_or(NodeError::NotReady {
            reason: "too many proposals waiting",
        })?;
        let origin = Origin {
            node: inner.id,
            incarnation: inner.incarnation,
            sequence: seq,
        };
        let envelope = envelope::wrap(origin, &command);
        if let Err(e) = inner.requests.try_send(Request::Propose { seq, envelope }) {
            inner.pending.forget(seq);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => NodeError::NotReady {
                    reason: "request queue full",
                },
                mpsc::error::TrySendError::Closed(_) => NodeError::Shutdown,
            });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(NodeError::Shutdown),
            Err(_) => {
                inner.pending.forget(seq);
                Err(NodeError::Timeout {
                    ms: timeout.as_millis() as u64,
                })
            }
        }
    }

    /// A linearizable read point: a slot such that every write acknowledged before this
    /// call is at or below it. Serve the read after `wait_applied(slot)`.
    pub async fn read_index(&self) -> Result<Slot, NodeError> {
        let timeout = self.inner.request_timeout;
        let deadline = Instant::now() + timeout;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (reply, rx) = oneshot::channel();
            self.inner
                .requests
                .try_send(Request::ReadIndex { reply })
                .map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => NodeError::NotReady {
                        reason: "request queue full",
                    },
                    mpsc::error::TrySendError::Closed(_) => NodeError::Shutdown,
                })?;
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = match tokio::time::timeout(left, rx).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => return Err(NodeError::Shutdown),
                Err(_) => {
                    return Err(NodeError::Timeout {
                        ms: timeout.as_millis() as u64,
                    })
                }
            };
            match answer {
                Err(NodeError::NoQuorum) if attempt < READ_ATTEMPTS_MAX => {
                    tokio::time::sleep(self.inner.tick * 10).await;
                }
                other => return other,
            }
        }
    }

    /// Waits until this node has applied `slot` (or the request timeout passes).
    pub async fn wait_applied(&self, slot: Slot) -> Result<(), NodeError> {
        let timeout = self.inner.request_timeout;
        let mut rx = self.inner.applied.clone();
        let waited = tokio::time::timeout(timeout, async {
            rx.wait_for(|a| *a >= slot).await.map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(NodeError::Shutdown),
            Err(_) => Err(NodeError::Timeout {
                ms: timeout.as_millis() as u64,
            }),
        }
    }

    /// The last slot this node applied.
    pub fn applied_index(&self) -> Slot {
        *self.inner.applied.borrow()
    }

    /// The node's consensus measurements (`/metrics`).
    pub fn metrics(&self) -> &super::metrics::NodeMetrics {
        &self.inner.metrics
    }

    /// Changes the members (on the leader only: `NotLeader` names the one it knows).
    /// Resolves once the change is chosen and applied here; it governs the slots from
    /// `slot + delay` on. Gives up after the request timeout (the change may still be
    /// chosen: read `status().members` to see).
    pub async fn change_members(&self, op: MemberOp) -> Result<MemberChanged, MemberError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .requests
            .try_send(Request::ChangeMembers { op, reply })
            .map_err(|e| {
                MemberError::Node(match e {
                    mpsc::error::TrySendError::Full(_) => NodeError::NotReady {
                        reason: "request queue full",
                    },
                    mpsc::error::TrySendError::Closed(_) => NodeError::Shutdown,
                })
            })?;
        let timeout = self.inner.request_timeout;
        let changed = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer?,
            Ok(Err(_)) => return Err(MemberError::Node(NodeError::Shutdown)),
            Err(_) => {
                return Err(MemberError::Node(NodeError::Timeout {
                    ms: timeout.as_millis() as u64,
                }))
            }
        };
        self.wait_applied(changed.slot)
            .await
            .map_err(MemberError::Node)?;
        Ok(changed)
    }

    /// The node's state as of its last tick.
    pub fn status(&self) -> NodeStatus {
        let inner = &self.inner;
        let (core, failed, book) = {
            let view = inner.view.lock().unwrap_or_else(|p| p.into_inner());
            (view.core.clone(), view.failed.clone(), view.book.clone())
        };
        let m = &core.membership;
        let members = m
            .voters
            .iter()
            .chain(&m.learners)
            .map(|id| {
                let entry = book.get(*id);
                let peer_addr = entry.map(|e| e.peer_addr.clone()).unwrap_or_default();
                let voter = m.is_voter(*id);
                if *id == inner.id {
                    return MemberStatus {
                        id: *id,
                        peer_addr,
                        client_addr: inner.client_addr.clone(),
                        healthy: true,
                        connected: true,
                        voter,
                        commit_index: core.commit_index,
                    };
                }
                let link = inner.transport.link(*id);
                let healthy = core.peers_healthy.iter().any(|(p, ok)| p == id && *ok);
                let learnt = link.as_ref().and_then(|l| l.client_addr());
                let client_addr = learnt
                    .filter(|a| !a.is_empty())
                    .or_else(|| entry.map(|e| e.client_addr.clone()))
                    .unwrap_or_default();
                MemberStatus {
                    id: *id,
                    peer_addr,
                    client_addr,
                    healthy,
                    connected: link.is_some_and(|l| l.connected()),
                    voter,
                    commit_index: core
                        .peers_commit
                        .iter()
                        .find(|(p, _)| p == id)
                        .map_or(0, |(_, c)| *c),
                }
            })
            .collect();
        NodeStatus {
            id: inner.id,
            leader: core.leader,
            is_leader: core.is_leader,
            ballot: core.ballot,
            commit_index: core.commit_index,
            applied_index: *inner.applied.borrow(),
            members,
            membership_slot: m.id,
            dropped_messages: inner.transport.dropped_total(),
            failed,
        }
    }

    /// The leader this node believes in (None = none known): `status().leader` without
    /// building the whole status (every response carries it).
    pub fn leader(&self) -> Option<NodeId> {
        *self.inner.leader.borrow()
    }

    /// Watches the leader this node believes in (None = none known).
    pub fn subscribe_leader(&self) -> watch::Receiver<Option<NodeId>> {
        self.inner.leader.clone()
    }

    /// Resolves once the node has stopped: shut down, or halted on its own (its acceptor
    /// log failed, or a peer remembers another data directory of it). Gives why it failed,
    /// if it did.
    pub async fn stopped(&self) -> Option<String> {
        let mut stopped = self.inner.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
        self.status().failed
    }

    /// Stops the node: no further persist, send or apply; waiting requests fail with
    /// `Shutdown`. Returns once its threads and sockets are released.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let mut stopped = self.inner.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
    }
}
