//! `Inner`: the state a `Db`'s handles and its background threads share.
//!
//! Threads: any number of readers and writers (writes serialize on `write`), one flush
//! thread and one compaction thread (`background.rs`), all holding an `Arc<Inner>`.
//! Shared state:
//! - `current`: the `Arc<SuperVersion>` readers clone (a short read lock), replaced
//!   under `state` on memtable switch, flush and compaction;
//! - `last_seqno`: the newest published write: inserted in a memtable and as durable
//!   as its options demand, all writes before it too (see `publish.rs`; Release); see
//!   [`Inner::read_view`] and `Db::snapshot` for the order readers load it and
//!   `current` in;
//! - `state`: manifest, version, memtables, background flags; `cv` signals any change.
//!
//! Lock order: `write` -> `state` -> `current`. Background threads never take `write`.
//!
//! This file imports none of the modules that use `Inner` (`db`, `write`, `recovery`,
//! `background`); `publish` gets the seqno to move, not `Inner`.

use crate::error::Error;
use crate::latch::Failure;
use crate::manifest::{Manifest, ManifestState};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::publish::{Publisher, SyncFailed};
use crate::read_stats::ReadStats;
use crate::snapshot::SnapshotList;
use crate::super_version::SuperVersion;
use crate::version::Version;
use parking_lot::{Condvar, Mutex, RwLock};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
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
    /// Bytes of the memtable this writer last froze, while it may still be waiting for
    /// its flush (0 once the writer has seen it flushed): see `write.rs`, making room.
    pub frozen_bytes: usize,
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
    /// True from the moment the compaction thread picks a job until that job (and its
    /// handles of the input tables) is dropped.
    pub compacting: bool,
    /// Per level: the largest key compacted last (round-robin pointer).
    pub pointers: Vec<Vec<u8>>,
    /// Set when a background job failed; the engine takes no more writes.
    pub bg_error: Option<Failure>,
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
    pub publisher: Publisher,
    pub next_file: AtomicU64,
    pub snapshots: Arc<SnapshotList>,
    pub shutdown: AtomicBool,
    /// Latched after a failed fsync/write or background error: `reason` says why.
    pub poisoned: AtomicBool,
    pub poison_reason: Mutex<Option<Failure>>,
    /// Level-0 table count, for the writer's fast path.
    pub l0_tables: AtomicUsize,
    /// Writer stalls (waits and delays for back-pressure) and their total time.
    pub stalls: AtomicU64,
    pub stall_micros: AtomicU64,
    /// Paces compaction writes (`Options::compaction_bytes_per_sec`), when set.
    pub compaction_limiter: Option<Arc<crate::rate_limit::RateLimiter>>,
    /// What iterators stepped over (shared with every iterator and snapshot).
    pub read_stats: Arc<ReadStats>,
    /// How every table of this engine reads its data blocks (`Options::table_reads`).
    pub read_mode: sstable::ReadMode,
    /// The data block cache every table shares (capacity 0 with mapped reads).
    pub block_cache: Arc<sstable::BlockCache>,
    /// Test seam: called by the compaction thread right after it reports a job done
    /// (so a test can look at the directory at exactly that moment).
    #[cfg(test)]
    pub after_compaction_reported: Mutex<Option<Box<dyn Fn() + Send>>>,
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

    /// Latches the engine (`latch.rs`): every later write fails with the first
    /// failure, as `Poisoned`.
    pub fn poison(&self, failure: Failure) {
        tracing::error!(
            reason = failure.reason(),
            "storage engine latched read-only"
        );
        let mut r = self.poison_reason.lock();
        if r.is_none() {
            *r = Some(failure);
        }
        self.poisoned.store(true, Ordering::Release);
    }

    /// The error of the failure that latched the engine (it is latched).
    fn latched_error(&self) -> Error {
        match &*self.poison_reason.lock() {
            Some(failure) => failure.error(),
            None => Failure::new(String::new(), false).error(),
        }
    }

    /// Err when latched.
    #[inline]
    pub fn check_poisoned(&self) -> Result<(), Error> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(self.latched_error());
        }
        Ok(())
    }

    /// Wraps a failure that leaves durability unknown: latches, returns the error.
    pub fn latch(&self, e: Error) -> Error {
        self.poison(Failure::new(e.to_string(), e.is_corruption()));
        e
    }

    /// Waits until seqno `last` is published; `Poisoned` (and latched) if it never
    /// will be because a WAL fsync failed first.
    pub fn wait_published(&self, last: u64) -> Result<(), Error> {
        self.publisher
            .wait_published(&self.last_seqno, last)
            .map_err(|SyncFailed| {
                self.poison(Failure::new(
                    "a WAL fsync failed before this write was published".into(),
                    false,
                ));
                self.latched_error()
            })
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
