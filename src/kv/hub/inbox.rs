//! `Inbox`: one watcher's bounded queue of live events, filled by the apply thread and
//! drained by the watcher's stream.
//!
//! The hub pushes whole revisions (a [`Batch`]: the revision's events this watcher
//! matches), so a revision is never split. Past `revisions_max` queued revisions or
//! `bytes_max` queued bytes the inbox drops everything and is marked lagged: its
//! stream then reads what it missed from the history (bounded reads) and comes back
//! to live events, so a slow reader costs bounded memory and never blocks the writer.
//! Invariants: `bytes` is the sum of the queued batches' sizes; while lagged the queue
//! is empty and stays empty until the hub resyncs it.

use crate::kv::keyspace::Event;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Bytes an event is counted as: key, value and a fixed overhead for the rest.
pub fn event_bytes(e: &Event) -> usize {
    const EVENT_OVERHEAD_BYTES: usize = 64;
    e.key.len() + e.value.as_ref().map_or(0, |v| v.len()) + EVENT_OVERHEAD_BYTES
}

/// The events of one revision that one watcher matches, in the order they happened.
#[derive(Clone, Debug)]
pub struct Batch {
    pub revision: u64,
    /// Shared with every other watcher the same events matched.
    pub events: Vec<Arc<Event>>,
    /// Whether the batch ends the revision for this watcher (always, but for a part
    /// of a revision a chunked command stored in several, read from the history).
    pub complete: bool,
}

impl Batch {
    /// The bytes this batch is counted as.
    pub fn bytes(&self) -> usize {
        self.events.iter().map(|e| event_bytes(e)).sum()
    }
}

/// How much an inbox may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxLimits {
    pub revisions_max: usize,
    pub bytes_max: usize,
}

#[derive(Default)]
struct State {
    batches: VecDeque<Batch>,
    bytes: usize,
    lagged: bool,
}

/// What a drain found.
#[derive(Debug)]
pub enum Drained {
    /// Whole revisions in order (possibly none).
    Batches(Vec<Batch>),
    /// The inbox overflowed or the state jumped: read the history, then resync.
    Lagged,
}

/// One watcher's queue and the signal that wakes its stream.
#[derive(Default)]
pub struct Inbox {
    state: Mutex<State>,
    notify: Notify,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue half-updated in a way
        // that matters (every update is a push, a clear or a flag), so go on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `batch`; on overflow drops everything and marks the inbox lagged. Returns
    /// whether the stream should be woken.
    pub fn push(&self, batch: Batch, limits: InboxLimits) -> bool {
        let mut s = self.lock();
        if s.lagged {
            return false; // it will read this from the history
        }
        let bytes = batch.bytes();
        if s.batches.len() >= limits.revisions_max || s.bytes + bytes > limits.bytes_max {
            s.batches.clear();
            s.bytes = 0;
            s.lagged = true;
        } else {
            s.bytes += bytes;
            s.batches.push_back(batch);
        }
        true
    }

    /// Drops the queue and marks the inbox lagged (the state jumped past what it holds).
    pub fn lag(&self) {
        let mut s = self.lock();
        s.batches.clear();
        s.bytes = 0;
        s.lagged = true;
    }

    /// Empties the queue and clears the lagged mark (the hub calls this under its lock).
    pub fn reset(&self) {
        let mut s = self.lock();
        s.batches.clear();
        s.bytes = 0;
        s.lagged = false;
    }

    /// Takes queued revisions, at least one if any, until about `bytes_max` bytes.
    pub fn drain(&self, bytes_max: usize) -> Drained {
        let mut s = self.lock();
        if s.lagged {
            return Drained::Lagged;
        }
        let mut out = Vec::new();
        let mut taken = 0;
        while let Some(front) = s.batches.front() {
            let bytes = front.bytes();
            if !out.is_empty() && taken + bytes > bytes_max {
                break;
            }
            let Some(batch) = s.batches.pop_front() else {
                break;
            };
            taken += bytes;
            out.push(batch);
        }
        s.bytes -= taken;
        Drained::Batches(out)
    }

    /// Wakes the stream (a wake with no waiter is kept for its next wait).
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Waits for a wake.
    pub async fn woken(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::keyspace::EventKind;

    fn batch(revision: u64, value_bytes: usize) -> Batch {
        let e = Event {
            kind: EventKind::Put,
            key: "k".into(),
            value: Some(vec![b'v'; value_bytes].into()),
            version: 1,
            create_revision: revision,
            mod_revision: revision,
            session: None,
        };
        Batch {
            complete: true,
            revision,
            events: vec![Arc::new(e)],
        }
    }

    fn revisions(d: Drained) -> Vec<u64> {
        match d {
            Drained::Batches(b) => b.iter().map(|b| b.revision).collect(),
            Drained::Lagged => panic!("lagged"),
        }
    }

    #[test]
    fn overflow_drops_the_queue_until_reset() {
        let limits = InboxLimits {
            revisions_max: 3,
            bytes_max: 1 << 20,
        };
        let inbox = Inbox::default();
        for r in 1..=3 {
            assert!(inbox.push(batch(r, 10), limits));
        }
        assert_eq!(revisions(inbox.drain(usize::MAX)), [1, 2, 3]);
        for r in 4..=7 {
            inbox.push(batch(r, 10), limits);
        }
        assert!(matches!(inbox.drain(usize::MAX), Drained::Lagged));
        assert!(
            !inbox.push(batch(8, 10), limits),
            "a lagged inbox takes nothing"
        );
        assert!(matches!(inbox.drain(usize::MAX), Drained::Lagged));
        inbox.reset();
        assert!(inbox.push(batch(9, 10), limits));
        assert_eq!(revisions(inbox.drain(usize::MAX)), [9]);
    }

    #[test]
    fn bytes_bound_the_queue_and_a_drain() {
        let limits = InboxLimits {
            revisions_max: 100,
            bytes_max: 1000,
        };
        let inbox = Inbox::default();
        inbox.push(batch(1, 400), limits);
        inbox.push(batch(2, 400), limits);
        assert_eq!(
            revisions(inbox.drain(500)),
            [1],
            "one revision per 500 bytes"
        );
        assert_eq!(revisions(inbox.drain(10)), [2], "at least one revision");
        assert_eq!(revisions(inbox.drain(10)), Vec::<u64>::new());
        inbox.push(batch(3, 600), limits);
        inbox.push(batch(4, 600), limits);
        assert!(matches!(inbox.drain(usize::MAX), Drained::Lagged));
    }
}
