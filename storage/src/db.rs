//! `Db`: the engine's handle, its shared state, and the read side.
//!
//! Threads: any number of readers and writers (writes serialize on `write`), one flush
//! thread and one compaction thread (`background.rs`). Shared state:
//! - `current`: the `Arc<SuperVersion>` readers clone (a short read lock), replaced
//!   under `state` on memtable switch, flush and compaction;
//! - `last_seqno`: the newest published write: inserted in a memtable and as durable
//!   as its options demand, all writes before it too (see `publish.rs`; Release); see [`Inner::read_view`] and [`Db::snapshot`] for the order
//!   readers load it and `current` in;
//! - `state`: manifest, version, memtables, background flags; `cv` signals any change.
//!
//! Lock order: `write` -> `state` -> `current`. Background threads never take `write`.

use crate::db_iter::DbIter;
use crate::error::Error;
use crate::internal_key::prefix_successor;
use crate::manifest::{Manifest, ManifestState};
use crate::memtable::Memtable;
use crate::options::{Options, WriteOptions};
use crate::snapshot::{Snapshot, SnapshotList};
use crate::super_version::SuperVersion;
use crate::version::Version;
use crate::WriteBatch;
use parking_lot::{Condvar, Mutex, RwLock};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use vfs::Fs;
use wal::Wal;

/// The writer's own state, guarded by `Inner::write`.
pub(crate) struct WriteState {
    /// The memtable taking writes (same as `current.mem`).
    pub mem: Arc<Memtable>,
    /// Reused buffer for the encoded WAL record.
    pub buf: Vec<u8>,
    /// The last seqno handed to a write (>= `Inner::last_seqno`, the last published).
    pub allocated: u64,
}

/// State guarded by `Inner::state`.
pub(crate) struct State {
    pub manifest: Manifest,
    /// What the manifest holds (mirrors every durable edit).
    pub mstate: ManifestState,
    pub version: Arc<Version>,
    pub mem: Arc<Memtable>,
    /// The frozen memtable, the WAL index where the memtable after it starts, and the
    /// last seqno in it (or before it).
    pub imm: Option<Frozen>,
    /// Memtable switches so far, and flushes completed (a flush completes switch n).
    pub switches: u64,
    pub flushes_done: u64,
    /// Manual full compactions requested and completed.
    pub manual_requested: u64,
    pub manual_done: u64,
    /// Per level: the largest key compacted last (round-robin pointer).
    pub pointers: Vec<Vec<u8>>,
    /// Set when a background job failed; the engine takes no more writes.
    pub bg_error: Option<String>,
}

/// A frozen memtable waiting for its flush.
#[derive(Clone)]
pub(crate) struct Frozen {
    pub mem: Arc<Memtable>,
    /// WAL index of the first record NOT in this memtable (or older ones).
    pub wal_end: u64,
    /// Every write with seqno <= this is in this memtable or in tables.
    pub last_seqno: u64,
}

/// Everything the handles and the background threads share.
pub(crate) struct Inner {
    pub fs: Arc<dyn Fs>,
    pub dir: PathBuf,
    pub opts: Options,
    pub wal: Wal,
    pub write: Mutex<WriteState>,
    pub state: Mutex<State>,
    pub cv: Condvar,
    pub current: RwLock<Arc<SuperVersion>>,
    pub last_seqno: AtomicU64,
    /// Writes waiting to be published (for their fsync, or for one before them).
    pub publisher: crate::publish::Publisher,
    pub next_file: AtomicU64,
    pub snapshots: Arc<SnapshotList>,
    pub shutdown: AtomicBool,
    /// Latched after a failed fsync/write or background error: `reason` says why.
    pub poisoned: AtomicBool,
    pub poison_reason: Mutex<Option<String>>,
    /// Level-0 table count, for the writer's fast path.
    pub l0_tables: AtomicUsize,
    /// Writer stalls (waits and delays for back-pressure) and their total time.
    pub stalls: AtomicU64,
    pub stall_micros: AtomicU64,
    /// The directory's `LOCK`. Last field: released after everything else of the
    /// engine is closed, and `Inner` drops only after the background threads stopped.
    pub _lock: Box<dyn vfs::FileLock>,
}

impl Inner {
    /// The current super version (a short read lock and an `Arc` clone).
    #[inline]
    pub fn super_version(&self) -> Arc<SuperVersion> {
        Arc::clone(&self.current.read())
    }

    /// An unregistered read view: the super version FIRST, then the seqno.
    ///
    /// In this order every version in the pinned tables is <= the seqno (tables only
    /// hold data published before they were installed), so no compaction can have
    /// dropped an older version this reader needs; and the writes with seqno <= it
    /// that the view misses (in a memtable switched in after the load) are all newer
    /// than everything it sees, so the view is still a prefix of the history. (The
    /// other order can lose a key: seqno S loaded, then k@S+1 flushed and compacted
    /// over k@old, then the new super version read at S finds neither.) A registered
    /// [`Snapshot`] loads the seqno first instead: compaction sees its registration.
    #[inline]
    pub fn read_view(&self) -> (Arc<SuperVersion>, u64) {
        let sv = self.super_version();
        (sv, self.last_seqno.load(Ordering::Acquire))
    }

    /// Publishes a new super version from `st` (call with the state lock held).
    pub fn install(&self, st: &State) {
        let sv = SuperVersion {
            mem: Arc::clone(&st.mem),
            imm: st.imm.as_ref().map(|f| Arc::clone(&f.mem)),
            version: Arc::clone(&st.version),
        };
        *self.current.write() = Arc::new(sv);
        self.l0_tables
            .store(st.version.levels[0].len(), Ordering::Release);
    }

    /// Latches the engine: every later write fails with `Poisoned { reason }`.
    pub fn poison(&self, reason: String) {
        tracing::error!(%reason, "storage engine latched read-only");
        let mut r = self.poison_reason.lock();
        if r.is_none() {
            *r = Some(reason);
        }
        self.poisoned.store(true, Ordering::Release);
    }

    /// Err when latched.
    #[inline]
    pub fn check_poisoned(&self) -> Result<(), Error> {
        if self.poisoned.load(Ordering::Acquire) {
            let reason = self.poison_reason.lock().clone().unwrap_or_default();
            return Err(Error::Poisoned { reason });
        }
        Ok(())
    }

    /// Wraps a failure that leaves durability unknown: latches, returns the error.
    pub fn latch(&self, e: Error) -> Error {
        self.poison(e.to_string());
        e
    }

    /// Counts a writer stall that began at `since`.
    pub fn note_stall(&self, since: std::time::Instant) {
        self.stalls.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stall_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// A new file number.
    pub fn new_file_number(&self) -> u64 {
        self.next_file.fetch_add(1, Ordering::Relaxed)
    }
}

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
        Snapshot::new(seqno, inner.super_version(), Arc::clone(&inner.snapshots))
    }

    /// Iterates the live keys in `[lower, upper]` as of now, in key order.
    pub fn iter(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<DbIter, Error> {
        let (sv, seqno) = self.inner().read_view();
        DbIter::new(sv, seqno, lower, upper)
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
            if let Some(reason) = &st.bg_error {
                return Err(Error::Poisoned {
                    reason: reason.clone(),
                });
            }
            inner.cv.wait(&mut st);
        }
        Ok(())
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

    /// Counters of the write-ahead log.
    pub fn wal_stats(&self) -> wal::Stats {
        self.inner().wal.stats()
    }
}
