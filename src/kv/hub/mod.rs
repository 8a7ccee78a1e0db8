//! The watch hub: the live watchers of this node and the events the apply thread hands
//! them, so a write wakes only the watchers it matches and costs them only its events.
//!
//! The state machine calls [`Hub::publish`] after each slot is written, with the slot's
//! revisions and their events. The hub looks each event's key up in the [`WatchIndex`]
//! (exact keys, and prefixes by length), pushes each matching watcher one [`Batch`] per
//! revision into its bounded [`Inbox`], then records the revision and wakes those
//! watchers only. An event no watcher matches is dropped there, value and all. After a
//! snapshot install ([`Hub::jump`]) every inbox is marked lagged: the revisions in
//! between never passed through `publish`, so each stream reads them from the history.
//!
//! Invariants (what makes the hand-over from history to live events exact):
//! - publishing pushes a slot's batches and then stores its revision, all under the
//!   hub's lock; subscribing and resyncing read the revision under the same lock.
//!   So a watcher registered (or resynced) at revision M finds in its inbox every
//!   matching revision above M, and the history holds everything up to M (the slot is
//!   written to storage before it is published).
//! - lock order: the hub's lock, then an inbox's lock; a stream never holds an inbox's
//!   lock while taking the hub's.

pub mod filter;
pub mod inbox;
pub mod index;

pub use filter::Filter;
pub use inbox::{Batch, Drained, Inbox, InboxLimits};

use crate::kv::keyspace::Event;
use index::{WatchIndex, WatcherId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Default most watchers one node holds.
pub const WATCHERS_MAX_DEFAULT: usize = 100_000;
/// Default most revisions queued for one watcher before it falls back to the history.
pub const QUEUE_REVISIONS_MAX_DEFAULT: usize = 1024;
/// Default most event bytes queued for one watcher before it falls back to the history.
pub const QUEUE_BYTES_MAX_DEFAULT: usize = 4 << 20;

/// The hub's limits (this node's own; replicas need not agree on them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchLimits {
    /// Most watchers at once; one more is refused.
    pub watchers_max: usize,
    /// Bounds of each watcher's queue of live events.
    pub inbox: InboxLimits,
}

impl Default for WatchLimits {
    fn default() -> Self {
        WatchLimits {
            watchers_max: WATCHERS_MAX_DEFAULT,
            inbox: InboxLimits {
                revisions_max: QUEUE_REVISIONS_MAX_DEFAULT,
                bytes_max: QUEUE_BYTES_MAX_DEFAULT,
            },
        }
    }
}

/// The node already holds `watchers_max` watchers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyWatchers {
    pub watchers_max: usize,
}

#[derive(Default)]
struct Registry {
    index: WatchIndex,
    inboxes: HashMap<WatcherId, Arc<Inbox>>,
    next_id: WatcherId,
}

/// The live watchers of this node.
pub struct Hub {
    registry: Mutex<Registry>,
    /// The last revision published. Invariant: stored under the registry's lock, after
    /// that revision's batches were pushed.
    revision: AtomicU64,
    limits: WatchLimits,
}

/// One watcher's place in the hub; dropping it unregisters the watcher.
pub struct Subscription {
    hub: Arc<Hub>,
    id: WatcherId,
    filter: Filter,
    inbox: Arc<Inbox>,
}

impl Hub {
    /// A hub with no watchers, at `revision`.
    pub fn new(limits: WatchLimits, revision: u64) -> Arc<Hub> {
        Arc::new(Hub {
            registry: Mutex::new(Registry::default()),
            revision: AtomicU64::new(revision),
            limits,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Every update of the registry is a whole insert or remove; a panic elsewhere
        // while holding the lock leaves it consistent enough to go on.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last revision published.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// How many watchers are registered.
    pub fn watchers(&self) -> usize {
        self.lock().index.len()
    }

    /// The hub's limits.
    pub fn limits(&self) -> WatchLimits {
        self.limits
    }

    /// Registers a watcher following `filter`. Returns its subscription and the revision
    /// it was registered at: its inbox gets every matching revision above it.
    pub fn subscribe(
        self: &Arc<Self>,
        filter: Filter,
    ) -> Result<(Subscription, u64), TooManyWatchers> {
        let mut r = self.lock();
        if r.index.len() >= self.limits.watchers_max {
            return Err(TooManyWatchers {
                watchers_max: self.limits.watchers_max,
            });
        }
        let id = r.next_id;
        r.next_id += 1;
        let inbox = Arc::new(Inbox::default());
        r.index.insert(&filter, id);
        r.inboxes.insert(id, Arc::clone(&inbox));
        let at = self.revision();
        drop(r);
        let sub = Subscription {
            hub: Arc::clone(self),
            id,
            filter,
            inbox,
        };
        Ok((sub, at))
    }

    /// Empties a lagged inbox and returns the revision it resumes live events after.
    fn resync(&self, inbox: &Inbox) -> u64 {
        let _r = self.lock();
        inbox.reset();
        self.revision()
    }

    fn unsubscribe(&self, id: WatcherId, filter: &Filter) {
        let mut r = self.lock();
        r.index.remove(filter, id);
        r.inboxes.remove(&id);
    }

    /// Adds to `out` the watchers some of `events` matches (the events of a command
    /// applied in chunks: they are not kept for [`Hub::publish`], which marks these
    /// watchers lagged instead, so memory is the watchers, not the events).
    pub(crate) fn matching(&self, events: &[Event], out: &mut HashSet<WatcherId>) {
        let r = self.lock();
        if r.index.is_empty() {
            return;
        }
        let mut ids = Vec::new();
        for event in events {
            ids.clear();
            r.index.matching(&event.key, &mut ids);
            out.extend(ids.iter().copied());
        }
    }

    /// Hands the watchers the events of one written slot: `(revision, events)` in
    /// revision order; marks the `lagged` watchers lagged (a chunked command's events
    /// matched them: they read its revision from the history); then `revision` is the
    /// slot's last revision.
    pub(crate) fn publish(
        &self,
        revisions: Vec<(u64, Vec<Event>)>,
        lagged: &HashSet<WatcherId>,
        revision: u64,
    ) {
        let mut woken: Vec<Arc<Inbox>> = Vec::new();
        {
            let r = self.lock();
            for id in lagged {
                // A watcher that left since is gone from the registry.
                if let Some(inbox) = r.inboxes.get(id) {
                    inbox.lag();
                    woken.push(Arc::clone(inbox));
                }
            }
            if !r.index.is_empty() {
                let mut ids = Vec::new();
                for (rev, events) in revisions {
                    let mut batches: HashMap<WatcherId, Vec<Arc<Event>>> = HashMap::new();
                    for event in events {
                        ids.clear();
                        r.index.matching(&event.key, &mut ids);
                        if ids.is_empty() {
                            continue;
                        }
                        let event = Arc::new(event);
                        for id in &ids {
                            batches.entry(*id).or_default().push(Arc::clone(&event));
                        }
                    }
                    for (id, events) in batches {
                        let Some(inbox) = r.inboxes.get(&id) else {
                            continue;
                        };
                        let batch = Batch {
                            revision: rev,
                            events,
                            complete: true,
                        };
                        if inbox.push(batch, self.limits.inbox) {
                            woken.push(Arc::clone(inbox));
                        }
                    }
                }
            }
            self.revision.store(revision, Ordering::Release);
        }
        for inbox in woken {
            inbox.wake();
        }
    }

    /// The state jumped to `revision` without publishing (a snapshot was installed):
    /// every watcher reads what it missed from the history.
    pub(crate) fn jump(&self, revision: u64) {
        let inboxes: Vec<Arc<Inbox>> = {
            let r = self.lock();
            for inbox in r.inboxes.values() {
                inbox.lag();
            }
            self.revision.store(revision, Ordering::Release);
            r.inboxes.values().cloned().collect()
        };
        for inbox in inboxes {
            inbox.wake();
        }
    }
}

impl Subscription {
    /// What this watcher follows.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The hub's last published revision.
    pub fn revision(&self) -> u64 {
        self.hub.revision()
    }

    /// Takes queued revisions (at least one if any) up to about `bytes_max` bytes.
    pub fn drain(&self, bytes_max: usize) -> Drained {
        self.inbox.drain(bytes_max)
    }

    /// After [`Drained::Lagged`]: empties the inbox and returns the revision from which
    /// on live events are queued again (read the history up to it).
    pub fn resync(&self) -> u64 {
        self.hub.resync(&self.inbox)
    }

    /// Waits until the hub pushed something (or marked the inbox lagged).
    pub async fn woken(&self) {
        self.inbox.woken().await;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.id, &self.filter);
    }
}

#[cfg(test)]
mod tests;
