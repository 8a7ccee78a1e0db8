//! Session deadlines, kept in memory by every node and acted on by the leader.
//!
//! Deadlines are not replicated state: they follow a monotonic clock
//! (`tokio::time::Instant`) local to this node. Applying a slot tells the table which
//! sessions were created or removed ([`LeaseEffect`]); keepalives (which never go
//! through the log) push a deadline to `now + ttl`. Only the leader's table matters:
//! when a node becomes leader it calls [`LeaseTable::restart_all`], giving every live
//! session a full TTL from then, and it proposes `ExpireSessions` for the sessions
//! [`LeaseTable::expired`] returns. Bounded by the number of live sessions.

use crate::kv::command::SessionId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// A change to the set of live sessions, produced by applying a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseEffect {
    Created { id: SessionId, ttl_ms: u64 },
    Removed { id: SessionId },
}

#[derive(Clone, Copy, Debug)]
struct Lease {
    ttl_ms: u64,
    deadline: Instant,
}

/// The deadlines of the live sessions this node knows of.
#[derive(Debug, Default)]
pub struct LeaseTable {
    leases: Mutex<HashMap<SessionId, Lease>>,
}

fn deadline_after(now: Instant, ttl_ms: u64) -> Instant {
    now + Duration::from_millis(ttl_ms)
}

impl LeaseTable {
    /// An empty table, shared between the state machine, the HTTP layer and the expiry
    /// loop (`crate::server::expiry`).
    pub fn new() -> Arc<LeaseTable> {
        Arc::new(LeaseTable::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SessionId, Lease>> {
        // A panic while holding this lock cannot leave the map inconsistent (single
        // inserts and removes), so a poisoned lock is still usable.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the table with `sessions`, each with a full TTL from now.
    pub fn load(&self, sessions: Vec<(SessionId, u64)>) {
        let now = Instant::now();
        let mut map = self.lock();
        map.clear();
        for (id, ttl_ms) in sessions {
            map.insert(
                id,
                Lease {
                    ttl_ms,
                    deadline: deadline_after(now, ttl_ms),
                },
            );
        }
    }

    /// Applies the session changes of one applied slot.
    pub fn apply_effects(&self, effects: Vec<LeaseEffect>) {
        if !effects.is_empty() {
            self.apply_effects_at(effects, Instant::now());
        }
    }

    /// [`LeaseTable::apply_effects`] at a given time.
    pub fn apply_effects_at(&self, effects: Vec<LeaseEffect>, now: Instant) {
        let mut map = self.lock();
        for effect in effects {
            match effect {
                LeaseEffect::Created { id, ttl_ms } => {
                    map.insert(
                        id,
                        Lease {
                            ttl_ms,
                            deadline: deadline_after(now, ttl_ms),
                        },
                    );
                }
                LeaseEffect::Removed { id } => {
                    map.remove(&id);
                }
            }
        }
    }

    /// A new leader: every live session gets a full TTL from now.
    pub fn restart_all(&self) {
        self.restart_all_at(Instant::now());
    }

    /// [`LeaseTable::restart_all`] at a given time.
    pub fn restart_all_at(&self, now: Instant) {
        for lease in self.lock().values_mut() {
            lease.deadline = deadline_after(now, lease.ttl_ms);
        }
    }

    /// Records a keepalive: the session's deadline becomes now + ttl. Returns the TTL,
    /// or None when this node knows no such live session.
    pub fn keepalive(&self, id: SessionId) -> Option<u64> {
        self.keepalive_at(id, Instant::now())
    }

    /// [`LeaseTable::keepalive`] at a given time.
    pub fn keepalive_at(&self, id: SessionId, now: Instant) -> Option<u64> {
        self.lock().get_mut(&id).map(|lease| {
            lease.deadline = deadline_after(now, lease.ttl_ms);
            lease.ttl_ms
        })
    }

    /// The TTL of a live session.
    pub fn ttl_ms(&self, id: SessionId) -> Option<u64> {
        self.lock().get(&id).map(|l| l.ttl_ms)
    }

    /// Up to `count_max` sessions whose deadline is at or before `now`, oldest first.
    pub fn expired(&self, now: Instant, count_max: usize) -> Vec<SessionId> {
        let map = self.lock();
        let mut due: Vec<(Instant, SessionId)> = map
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, l)| (l.deadline, *id))
            .collect();
        due.sort();
        due.into_iter().take(count_max).map(|(_, id)| id).collect()
    }

    /// How many live sessions the table holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no session is live.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_keepalives_and_leader_restarts() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let table = LeaseTable::new();
        table.apply_effects_at(
            vec![
                LeaseEffect::Created {
                    id: SessionId(1),
                    ttl_ms: 1000,
                },
                LeaseEffect::Created {
                    id: SessionId(2),
                    ttl_ms: 3000,
                },
            ],
            t0,
        );
        assert!(table.expired(at(999), 10).is_empty());
        assert_eq!(table.keepalive_at(SessionId(1), at(999)), Some(1000));
        assert!(table.expired(at(1998), 10).is_empty());
        assert_eq!(table.expired(at(1999), 10), vec![SessionId(1)]);
        table.restart_all_at(at(2000));
        assert!(table.expired(at(2999), 10).is_empty());
        assert_eq!(table.expired(at(3000), 10), vec![SessionId(1)]);
        assert_eq!(table.expired(at(5000), 1), vec![SessionId(1)]);
        assert_eq!(table.expired(at(5000), 10).len(), 2);
        table.apply_effects_at(vec![LeaseEffect::Removed { id: SessionId(1) }], at(5000));
        assert_eq!(table.keepalive_at(SessionId(1), at(5000)), None);
        assert_eq!(table.len(), 1);
        table.load(vec![(SessionId(9), 1000)]);
        assert_eq!(table.ttl_ms(SessionId(2)), None);
        assert_eq!(table.ttl_ms(SessionId(9)), Some(1000));
    }
}
