//! Admission of inbound peer connections, counted in two separate pools so that
//! unauthenticated connections can neither displace nor lock out real peers:
//!
//! - **pending** (not yet authenticated): at most `handshakes_max` at once. A new
//!   connection beyond that evicts the OLDEST pending one (aborts its task), so a flood
//!   of slow or half-open connections cannot keep a real peer's handshake, which takes
//!   one round trip, from being admitted: the flood's connections are always older.
//! - **authenticated**: at most one per peer. A peer's new authenticated connection
//!   replaces (aborts) its previous one, so a peer that reconnects after a silent
//!   failure is never refused for a stale connection of its own.
//!
//! A connection's task holds a [`Ticket`]; dropping it (the task ended or was aborted)
//! removes the connection from whichever pool it is in. Invariants: `pending.len() <=
//! handshakes_max`; `peers` holds at most one connection per node id; a connection is in
//! at most one of the two.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::{AbortHandle, JoinSet};

use crate::paxos::NodeId;

/// The admission state of one listener.
#[derive(Debug)]
pub struct Gate {
    handshakes_max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Unauthenticated connections, oldest first (the abort handle is None only between
    /// admission and spawn).
    pending: VecDeque<(u64, Option<AbortHandle>)>,
    /// The authenticated connection of each peer.
    peers: BTreeMap<NodeId, (u64, Option<AbortHandle>)>,
    /// Pending connections evicted so far.
    evicted: u64,
}

/// One admitted connection's place in the gate (held by its task).
#[derive(Debug)]
pub struct Ticket {
    gate: Arc<Gate>,
    id: u64,
}

impl Gate {
    pub fn new(handshakes_max: usize) -> Arc<Gate> {
        assert!(handshakes_max > 0, "handshakes_max must be positive");
        Arc::new(Gate {
            handshakes_max,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update below leaves the state consistent; a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a new connection as pending: spawns `serve(ticket)` into `tasks`, evicting
    /// the oldest pending connection first when there are `handshakes_max` already.
    /// Returns true when one was evicted.
    pub fn admit<F>(
        self: &Arc<Self>,
        tasks: &mut JoinSet<()>,
        serve: impl FnOnce(Ticket) -> F,
    ) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // The entry exists before the task does, so the task always finds it; its abort
        // handle is filled in after the spawn (the lock is not held across `serve`, which
        // may drop its ticket at once). An entry evicted before its handle arrived is
        // not aborted, but its task finds itself gone at `authenticated` and ends.
        let (id, evict) = {
            let mut s = self.state();
            let evict = if s.pending.len() >= self.handshakes_max {
                s.evicted += 1;
                s.pending.pop_front()
            } else {
                None
            };
            let id = s.next_id;
            s.next_id += 1;
            s.pending.push_back((id, None));
            assert!(s.pending.len() <= self.handshakes_max);
            (id, evict)
        };
        let evicted = evict.is_some();
        if let Some((_, Some(handle))) = evict {
            handle.abort(); // outside the lock: the aborted task's Ticket takes it
        }
        let handle = tasks.spawn(serve(Ticket {
            gate: self.clone(),
            id,
        }));
        let mut guard = self.state();
        let s = &mut *guard;
        let entry = s
            .pending
            .iter_mut()
            .chain(s.peers.values_mut())
            .find(|(i, _)| *i == id);
        if let Some((_, slot)) = entry {
            *slot = Some(handle);
        }
        evicted
    }

    /// Pending connections now.
    pub fn pending(&self) -> usize {
        self.state().pending.len()
    }

    /// Authenticated connections now.
    pub fn authenticated(&self) -> usize {
        self.state().peers.len()
    }

    /// Pending connections evicted so far.
    pub fn evicted(&self) -> u64 {
        self.state().evicted
    }
}

impl Ticket {
    /// The connection authenticated as `peer`: it leaves the pending pool and becomes
    /// `peer`'s connection, replacing (aborting) the previous one. False when it was
    /// evicted meanwhile (the caller ends it).
    pub fn authenticated(&self, peer: NodeId) -> bool {
        let replaced = {
            let mut s = self.gate.state();
            let Some(at) = s.pending.iter().position(|(id, _)| *id == self.id) else {
                return false;
            };
            let Some(entry) = s.pending.remove(at) else {
                return false;
            };
            s.peers.insert(peer, entry)
        };
        if let Some((_, Some(old))) = replaced {
            old.abort();
        }
        true
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut s = self.gate.state();
        s.pending.retain(|(id, _)| *id != self.id);
        s.peers.retain(|_, (id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Duration;
    use tokio::sync::oneshot;

    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_full_pending_pool_evicts_its_oldest_and_peers_are_apart() {
        let gate = Gate::new(2);
        let mut tasks = JoinSet::new();
        let (auth_tx, auth_rx) = oneshot::channel::<Ticket>();
        // Connection 0 authenticates as peer 7 and stays.
        gate.admit(&mut tasks, |t| async move {
            assert!(t.authenticated(7));
            let _ = auth_tx.send(t);
        });
        let held = auth_rx.await.unwrap();
        // Three idle connections with room for two: the first is evicted.
        let mut ends = Vec::new();
        let mut evicted = Vec::new();
        for _ in 0..3 {
            let (tx, rx) = oneshot::channel::<()>();
            ends.push(rx);
            evicted.push(gate.admit(&mut tasks, |t| async move {
                let _ticket = t;
                let _keep = tx;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }));
        }
        assert_eq!(evicted, vec![false, false, true]);
        settle().await;
        use oneshot::error::TryRecvError;
        assert!(
            matches!(ends[0].try_recv(), Err(TryRecvError::Closed)),
            "the oldest was aborted"
        );
        assert!(matches!(ends[1].try_recv(), Err(TryRecvError::Empty)));
        assert!(matches!(ends[2].try_recv(), Err(TryRecvError::Empty)));
        assert_eq!(gate.pending(), 2);
        assert_eq!(
            gate.authenticated(),
            1,
            "the peer's connection was not displaced"
        );
        assert_eq!(gate.evicted(), 1);
        drop(held);
        assert_eq!(gate.authenticated(), 0);
    }

    #[tokio::test]
    async fn a_peers_new_connection_replaces_its_old_one() {
        let gate = Gate::new(4);
        let mut tasks = JoinSet::new();
        let (tx, mut old_end) = oneshot::channel::<()>();
        gate.admit(&mut tasks, |t| async move {
            let _keep = tx;
            assert!(t.authenticated(3));
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        settle().await;
        assert_eq!(gate.authenticated(), 1);
        let (tx2, rx2) = oneshot::channel::<Ticket>();
        gate.admit(&mut tasks, |t| async move {
            assert!(t.authenticated(3));
            let _ = tx2.send(t);
        });
        let _new = rx2.await.unwrap();
        settle().await;
        assert!(
            matches!(
                old_end.try_recv(),
                Err(oneshot::error::TryRecvError::Closed)
            ),
            "the old connection was aborted"
        );
        assert_eq!(gate.authenticated(), 1);
        assert_eq!(gate.pending(), 0);
    }
}
