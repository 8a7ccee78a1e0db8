//! Publication of writes to readers, in seqno order, only once they are as durable as
//! their options demand (RocksDB's rule: a write's seqno becomes visible only after
//! its WAL bytes are written, and fsynced when `sync`).
//!
//! A write is appended to the WAL and inserted into the memtable under the write
//! lock; readers read at `Inner::last_seqno`, so the insert stays invisible until
//! that moves past it. Under the write lock a writer either publishes at once (a
//! non-sync write with nothing pending before it: `last_seqno` already equals its
//! first seqno - 1) or queues a [`Pending`] entry here (in seqno order, since the
//! queue is only appended to under the write lock). A sync write marks its entry
//! ready after `Wal::sync` succeeded (concurrent syncers share one fdatasync inside
//! the WAL: the group's sync covers every member appended before it); a non-sync
//! write queued behind one is ready at once but waits, like RocksDB's write group,
//! until everything before it is published. Whoever marks an entry ready publishes
//! the ready prefix of the queue (stores the last seqno of it) and wakes the waiters.
//!
//! A failed fsync sets `failed`: nothing queued is ever published (the engine is
//! latched anyway), and every writer still waiting gets [`SyncFailed`], which
//! `Inner::wait_published` turns into a latch and `Poisoned`.
//!
//! Invariants: `pending` is in ascending seqno order, every entry is above
//! `last_seqno`; it holds at most one entry per writer thread blocked in `commit`
//! (each waits for its own entry), so it is bounded by the number of writer threads.

use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

/// A queued write: its last seqno, and whether its WAL bytes are durable enough.
#[derive(Debug, Clone, Copy)]
struct Pending {
    last: u64,
    ready: bool,
}

#[derive(Debug, Default)]
struct Queue {
    pending: VecDeque<Pending>,
    /// A sync failed: nothing queued gets published, ever.
    failed: bool,
    /// Threads blocked on the condvar (skip the wake-up syscall when none).
    waiters: u32,
}

/// A WAL fsync failed before the write waited for was published: it never will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyncFailed;

/// The queue of written but unpublished writes (see the module doc). It moves the
/// engine's `last_seqno` (`Inner::last_seqno`, passed in by the caller).
#[derive(Debug, Default)]
pub(crate) struct Publisher {
    queue: Mutex<Queue>,
    cv: Condvar,
}

impl Publisher {
    /// Queues a write with seqnos up to `last` (call under the write lock, after its
    /// WAL append and memtable insert). `ready`: no fsync to wait for.
    pub fn enqueue(&self, last_seqno: &AtomicU64, last: u64, ready: bool) {
        let mut q = self.queue.lock();
        q.pending.push_back(Pending { last, ready });
        if ready {
            self.advance(last_seqno, &mut q);
        }
    }

    /// Marks the write ending at `last` durable (its fsync succeeded) and publishes
    /// what can be published.
    pub fn mark_ready(&self, last_seqno: &AtomicU64, last: u64) {
        let mut q = self.queue.lock();
        if let Some(p) = q.pending.iter_mut().find(|p| p.last == last) {
            p.ready = true;
        }
        self.advance(last_seqno, &mut q);
    }

    /// A sync failed: no queued write will ever be published; wakes every waiter.
    pub fn fail(&self) {
        let mut q = self.queue.lock();
        q.failed = true;
        if q.waiters > 0 {
            self.cv.notify_all();
        }
    }

    /// Waits until seqno `last` is published; `SyncFailed` if it never will be (the
    /// caller latches the engine).
    pub fn wait_published(&self, last_seqno: &AtomicU64, last: u64) -> Result<(), SyncFailed> {
        if last_seqno.load(Ordering::Acquire) >= last {
            return Ok(());
        }
        let mut q = self.queue.lock();
        loop {
            if last_seqno.load(Ordering::Acquire) >= last {
                return Ok(());
            }
            if q.failed {
                return Err(SyncFailed);
            }
            q.waiters += 1;
            self.cv.wait(&mut q);
            q.waiters -= 1;
        }
    }

    /// Publishes the ready prefix of the queue.
    fn advance(&self, last_seqno: &AtomicU64, q: &mut Queue) {
        if q.failed {
            return;
        }
        let mut published = None;
        while let Some(p) = q.pending.front() {
            if !p.ready {
                break;
            }
            published = Some(p.last);
            q.pending.pop_front();
        }
        if let Some(last) = published {
            last_seqno.store(last, Ordering::Release);
            if q.waiters > 0 {
                self.cv.notify_all();
            }
        }
    }
}
