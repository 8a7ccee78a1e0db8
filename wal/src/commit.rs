//! Group commit: many threads append at once, one write and one fdatasync per group.
//!
//! The scheme is LevelDB's `DBImpl::Write` leader/follower queue. An appender encodes
//! its record straight into the shared pending buffer (under the queue lock, so the
//! index it is given is the record's position), then waits. Whoever finds no leader
//! at work becomes the leader: it takes the whole pending buffer, drops the queue
//! lock, writes the buffer with one `write_all` and, if any appender in it (or a
//! `sync` call) asked for durability, issues one `sync_data`; then it publishes the
//! new written/synced marks and wakes everyone. Appenders that arrived meanwhile
//! filled a fresh buffer; one of them leads the next group.
//!
//! Waiting is by sequence number (records ever accepted, never reused), not by log
//! index, because truncation may hand an index out again.
//!
//! Invariants: at most one leader (`leader_active`) touches the `Writer`;
//! `synced_seq <= written_seq <= appended_seq`; the pending buffer holds exactly the
//! records `appended_seq - buf_records .. appended_seq`, with log indexes
//! `next_index - buf_records .. next_index`; it holds at most `PENDING_BYTES_MAX`
//! bytes plus the records of one call. After a failed write or sync, `poisoned` is
//! set for good.

use crate::error::Error;
use crate::format;
use crate::{lock, SyncMode, Wal};
use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::MutexGuard;

/// Appenders wait (and lead) rather than queue more than this many encoded bytes.
pub(crate) const PENDING_BYTES_MAX: usize = 4 << 20;
/// A recycled group buffer larger than this is freed rather than kept.
const SPARE_BYTES_MAX: usize = 1 << 20;

/// The writer queue, guarded by `Wal::queue`.
#[derive(Debug)]
pub(crate) struct Queue {
    /// Encoded records waiting for a leader.
    pub buf: Vec<u8>,
    /// A cleared buffer kept for the next group (no allocation per group).
    pub spare: Vec<u8>,
    pub buf_records: u64,
    /// The index the next accepted record gets.
    pub next_index: u64,
    pub appended_seq: u64,
    pub written_seq: u64,
    pub synced_seq: u64,
    /// Records up to this sequence must be synced by the next leader.
    pub sync_wanted_seq: u64,
    pub leader_active: bool,
    pub poisoned: bool,
    /// Threads blocked on `queue_cv` (a wake-up costs a syscall; skip it when none).
    pub waiters: u32,
}

impl Queue {
    pub fn new(next_index: u64) -> Queue {
        Queue {
            buf: Vec::new(),
            spare: Vec::new(),
            buf_records: 0,
            next_index,
            appended_seq: 0,
            written_seq: 0,
            synced_seq: 0,
            sync_wanted_seq: 0,
            leader_active: false,
            poisoned: false,
            waiters: 0,
        }
    }

    fn done(&self, seq_end: u64, mode: SyncMode) -> bool {
        match mode {
            SyncMode::Durable => self.synced_seq >= seq_end,
            SyncMode::Buffered => self.written_seq >= seq_end,
            SyncMode::Queued => true,
        }
    }
}

impl Wal {
    pub(crate) fn append_one(&self, record: &[u8], mode: SyncMode) -> Result<u64, Error> {
        self.check_len(record.len())?;
        let pcrc = format::payload_crc(record);
        let mut q = self.wait_for_room()?;
        let index = q.next_index;
        format::encode_record(&mut q.buf, index, record, pcrc);
        self.accepted(&mut q, 1, mode);
        let seq_end = q.appended_seq;
        self.wait_done(q, seq_end, mode)?;
        Ok(index)
    }

    pub(crate) fn append_batch<'a>(
        &self,
        records: impl IntoIterator<Item = &'a [u8]>,
        mode: SyncMode,
    ) -> Result<Range<u64>, Error> {
        let mut q = self.wait_for_room()?;
        let first = q.next_index;
        let buf_start = q.buf.len();
        let mut n = 0u64;
        for record in records {
            if let Err(e) = self.check_len(record.len()) {
                q.buf.truncate(buf_start); // all or nothing: forget the ones encoded so far
                return Err(e);
            }
            format::encode_record(&mut q.buf, first + n, record, format::payload_crc(record));
            n += 1;
        }
        if n == 0 {
            return Ok(first..first);
        }
        self.accepted(&mut q, n, mode);
        let seq_end = q.appended_seq;
        self.wait_done(q, seq_end, mode)?;
        Ok(first..first + n)
    }

    /// Makes every record appended so far durable.
    pub(crate) fn sync_all(&self) -> Result<(), Error> {
        let mut q = lock(&self.queue);
        if q.poisoned {
            return Err(Error::Poisoned);
        }
        let seq_end = q.appended_seq;
        q.sync_wanted_seq = q.sync_wanted_seq.max(seq_end);
        self.wait_done(q, seq_end, SyncMode::Durable)
    }

    fn check_len(&self, len: usize) -> Result<(), Error> {
        let max = self.shared.opts.record_bytes_max;
        if len > max as usize {
            return Err(Error::TooLarge {
                len: len as u64,
                max: u64::from(max),
            });
        }
        Ok(())
    }

    /// The queue lock, once the pending buffer has room (leading a group to make room).
    fn wait_for_room(&self) -> Result<MutexGuard<'_, Queue>, Error> {
        let mut q = lock(&self.queue);
        loop {
            if q.poisoned {
                return Err(Error::Poisoned);
            }
            if q.buf.len() < PENDING_BYTES_MAX {
                return Ok(q);
            }
            q = if q.leader_active {
                self.wait(q)
            } else {
                self.lead(q)?
            };
        }
    }

    fn accepted(&self, q: &mut Queue, n: u64, mode: SyncMode) {
        q.next_index += n;
        q.buf_records += n;
        q.appended_seq += n;
        if mode == SyncMode::Durable {
            q.sync_wanted_seq = q.appended_seq;
        }
        self.shared.stats.appends.fetch_add(n, Relaxed);
    }

    /// Waits until records up to `seq_end` are written (or synced), leading groups
    /// whenever no one else is.
    fn wait_done<'g>(
        &'g self,
        mut q: MutexGuard<'g, Queue>,
        seq_end: u64,
        mode: SyncMode,
    ) -> Result<(), Error> {
        loop {
            if q.done(seq_end, mode) {
                return Ok(());
            }
            if q.poisoned {
                return Err(Error::Poisoned);
            }
            q = if q.leader_active {
                self.wait(q)
            } else {
                self.lead(q)?
            };
        }
    }

    fn wait<'g>(&self, mut q: MutexGuard<'g, Queue>) -> MutexGuard<'g, Queue> {
        q.waiters += 1;
        let mut q = self.queue_cv.wait(q).unwrap_or_else(|p| p.into_inner());
        q.waiters -= 1;
        q
    }

    /// Wakes every waiter, if there are any.
    pub(crate) fn wake_all(&self, q: &Queue) {
        if q.waiters > 0 {
            self.queue_cv.notify_all();
        }
    }

    /// Leads one group: everything pending is written with one write and, if wanted,
    /// synced with one fdatasync, without holding the queue lock. A failure poisons
    /// the log and is returned to the leader; followers see `Poisoned`.
    fn lead<'g>(&'g self, mut q: MutexGuard<'g, Queue>) -> Result<MutexGuard<'g, Queue>, Error> {
        assert!(!q.leader_active, "one leader at a time");
        q.leader_active = true;
        let spare = std::mem::take(&mut q.spare);
        let group = std::mem::replace(&mut q.buf, spare);
        let group_first = q.next_index - q.buf_records;
        q.buf_records = 0;
        let group_seq_end = q.appended_seq;
        let sync = q.sync_wanted_seq > q.synced_seq;
        drop(q);

        let result = {
            let mut w = lock(&self.writer);
            let mut r = w.write_group(&self.shared, &group, group_first);
            if r.is_ok() && sync {
                r = w.sync(&self.shared);
            }
            r
        };
        if !group.is_empty() {
            self.shared.stats.groups.fetch_add(1, Relaxed);
        }

        let mut q = lock(&self.queue);
        q.leader_active = false;
        if group.capacity() <= SPARE_BYTES_MAX && q.spare.capacity() < group.capacity() {
            let mut group = group;
            group.clear();
            q.spare = group;
        }
        match &result {
            Ok(()) => {
                q.written_seq = group_seq_end;
                if sync {
                    q.synced_seq = group_seq_end;
                }
            }
            Err(_) => q.poisoned = true,
        }
        self.wake_all(&q);
        result.map(|()| q)
    }

    /// Takes leadership for a maintenance operation: waits for the current leader,
    /// then writes out (without syncing) everything still pending. The caller holds
    /// the returned queue guard (blocking appenders) until it is done.
    pub(crate) fn quiesce(&self) -> Result<MutexGuard<'_, Queue>, Error> {
        let mut q = lock(&self.queue);
        loop {
            if q.poisoned {
                return Err(Error::Poisoned);
            }
            if q.leader_active {
                q = self.wait(q);
            } else if q.buf_records > 0 {
                q = self.lead(q)?;
            } else {
                return Ok(q);
            }
        }
    }
}
