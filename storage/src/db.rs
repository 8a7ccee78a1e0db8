//! `Db`: the engine's handle and its read side.
//!
//! A `Db` is an `Arc` of a `Handle`, which owns the shared [`Inner`] (`inner.rs`) and
//! the two background threads (`background.rs`), and stops them when the last clone
//! drops. Reads take a view from `Inner` (see [`Inner::read_view`] and
//! [`Db::snapshot`] for the order they load the seqno and the super version in);
//! writes go through `write.rs`.

use crate::db_iter::DbIter;
use crate::error::Error;
use crate::inner::Inner;
use crate::internal_key::prefix_successor;
use crate::options::{Options, WriteOptions};
use crate::snapshot::Snapshot;
use crate::WriteBatch;
use parking_lot::Mutex;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use vfs::Fs;

/// Shuts the background threads down when the last `Db` clone drops.
struct Handle {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        {
            let _st = self.inner.state.lock();
            self.inner.shutdown.store(true, Ordering::Release);
            self.inner.cv.notify_all();
        }
        for t in self.threads.lock().drain(..) {
            if t.join().is_err() {
                tracing::error!("a storage background thread panicked");
            }
        }
    }
}

/// An open database. Cheap to clone (an `Arc` inside); `Send + Sync`.
#[derive(Clone)]
pub struct Db {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({})", self.inner().dir.display())
    }
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: takes `dir/LOCK`, reads the
    /// manifest, opens the tables, replays the WAL, removes obsolete files, starts
    /// background work. Fails with [`Error::AlreadyOpen`] while another `Db` (in this
    /// process or another) has `dir` open; the lock is released when the last clone
    /// of the returned `Db` drops.
    pub fn open(fs: Arc<dyn Fs>, dir: &Path, opts: Options) -> Result<Db, Error> {
        let inner = Arc::new(crate::recovery::recover(fs, dir, opts)?);
        let mut threads = Vec::with_capacity(2);
        for (name, job) in [
            (
                "storage-flush",
                crate::background::flush_loop as fn(Arc<Inner>),
            ),
            (
                "storage-compact",
                crate::background::compaction_loop as fn(Arc<Inner>),
            ),
        ] {
            let worker = Arc::clone(&inner);
            let t = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || job(worker))
                .map_err(|e| Error::io("starting a background thread", e))?;
            threads.push(t);
        }
        Ok(Db {
            handle: Arc::new(Handle {
                inner,
                threads: Mutex::new(threads),
            }),
        })
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.handle.inner
    }

    /// Applies every op of `batch` atomically; returns the seqno of its last op (the
    /// current last seqno for an empty batch). Visible to readers on return; durable
    /// on return when `opts.sync`. Readers see it only once it is as durable as
    /// `opts` asks (and every earlier write is too): a write that returns an error
    /// because its fsync failed is never visible to this engine's readers.
    pub fn write(&self, batch: &WriteBatch, opts: WriteOptions) -> Result<u64, Error> {
        crate::write::write(self.inner(), batch, opts)
    }

    /// Sets `key` to `value`.
    pub fn put(&self, key: &[u8], value: &[u8], opts: WriteOptions) -> Result<u64, Error> {
        crate::write::write_one(self.inner(), sstable::Kind::Put, key, value, opts)
    }

    /// Deletes `key`.
    pub fn delete(&self, key: &[u8], opts: WriteOptions) -> Result<u64, Error> {
        crate::write::write_one(self.inner(), sstable::Kind::Delete, key, &[], opts)
    }

    /// The latest value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let (sv, seqno) = self.inner().read_view();
        sv.get(key, seqno)
    }

    /// A consistent point-in-time view that later writes and compactions do not change.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.inner();
        let seqno = inner
            .snapshots
            .register(|| inner.last_seqno.load(Ordering::Acquire));
        Snapshot::new(
            seqno,
            inner.super_version(),
            Arc::clone(&inner.snapshots),
            Arc::clone(&inner.read_stats),
        )
    }

    /// Iterates the live keys in `[lower, upper]` as of now, in key order.
    pub fn iter(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<DbIter, Error> {
        let inner = self.inner();
        let (sv, seqno) = inner.read_view();
        let stats = Arc::clone(&inner.read_stats);
        DbIter::new(sv, seqno, (lower, upper), stats)
    }

    /// Iterates the live keys starting with `prefix`, in key order.
    pub fn prefix_iter(&self, prefix: &[u8]) -> Result<DbIter, Error> {
        let end = prefix_successor(prefix);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.iter(Bound::Included(prefix), upper)
    }

    /// Writes the memtable to a level-0 table and records it durably in the manifest.
    pub fn flush(&self) -> Result<(), Error> {
        crate::write::flush(self.inner())
    }

    /// Makes every write so far durable.
    pub fn sync_wal(&self) -> Result<(), Error> {
        let inner = self.inner();
        inner.check_poisoned()?;
        inner
            .wal
            .sync()
            .map_err(|e| inner.latch(Error::wal("syncing the WAL", e)))
    }

    /// Flushes, then merges every table into one sorted level; waits until done.
    pub fn compact_all(&self) -> Result<(), Error> {
        self.flush()?;
        let inner = self.inner();
        let mut st = inner.state.lock();
        st.manual_requested += 1;
        let ticket = st.manual_requested;
        inner.cv.notify_all();
        while st.manual_done < ticket {
            if let Some(failure) = &st.bg_error {
                return Err(failure.error());
            }
            inner.cv.wait(&mut st);
        }
        Ok(())
    }

    /// Waits until the background threads are idle: no flush pending, no compaction
    /// running and none due. Afterwards every table on disk is in the current version
    /// (unless a reader still holds an older one). For tests and tools that measure the
    /// steady state; writes from other threads can start new work at any time.
    pub fn wait_for_compactions(&self) -> Result<(), Error> {
        let inner = self.inner();
        let mut st = inner.state.lock();
        loop {
            if let Some(failure) = &st.bg_error {
                return Err(failure.error());
            }
            let due = st.manual_done < st.manual_requested
                || crate::compaction::pick(&st.version, &inner.opts, &st.pointers).is_some();
            if st.imm.is_none() && !st.compacting && !due {
                return Ok(());
            }
            inner.cv.wait(&mut st);
        }
    }

    /// The seqno of the newest write visible to readers.
    pub fn last_seqno(&self) -> u64 {
        self.inner().last_seqno.load(Ordering::Acquire)
    }

    /// Number of tables per level (level 0 first).
    pub fn level_table_counts(&self) -> Vec<usize> {
        self.inner()
            .super_version()
            .version
            .levels
            .iter()
            .map(Vec::len)
            .collect()
    }

    /// Number of live snapshots.
    pub fn snapshot_count(&self) -> usize {
        self.inner().snapshots.len()
    }

    /// Writer stalls for back-pressure so far: (count, total microseconds).
    pub fn stall_stats(&self) -> (u64, u64) {
        let inner = self.inner();
        (
            inner.stalls.load(Ordering::Relaxed),
            inner.stall_micros.load(Ordering::Relaxed),
        )
    }

    /// Memory, levels, compaction backlog, stalls and WAL fsync latency, now.
    pub fn engine_stats(&self) -> crate::EngineStats {
        crate::EngineStats::of(self.inner())
    }

    /// A reader of [`Db::engine_stats`] that does not keep the engine open.
    pub fn stats_reader(&self) -> crate::StatsReader {
        crate::StatsReader::new(self.inner())
    }

    /// Counters of the write-ahead log.
    pub fn wal_stats(&self) -> wal::Stats {
        self.inner().wal.stats()
    }

    /// Entries every dropped iterator stepped over without returning (tombstones,
    /// older versions, versions newer than its snapshot).
    pub fn hidden_entries_stepped(&self) -> u64 {
        self.inner().read_stats.hidden_entries()
    }
}
