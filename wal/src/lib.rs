//! A segmented, checksummed, group-committed append-only log.
//!
//! The storage engine's write-ahead log, its manifest and the consensus log are all a
//! [`Wal`]: a sequence of opaque records numbered 1, 2, 3, ... kept in segment files
//! in one directory, every byte going through [`vfs::Fs`].
//!
//! # A tour
//!
//! ```
//! use std::{path::Path, sync::Arc};
//! use wal::{Options, SyncMode, Wal};
//!
//! let fs = Arc::new(vfs::SimFs::new());
//! let dir = Path::new("/log");
//! let log = Wal::open(fs.clone(), dir, Options::default())?;
//! assert_eq!((log.first_index(), log.next_index()), (1, 1));
//!
//! // Durable: returns after an fdatasync covers the record. Concurrent Durable
//! // appenders share one fdatasync (group commit).
//! let a = log.append(b"promise ballot 7", SyncMode::Durable)?;
//! // Buffered: handed to the OS with one write; survives a process crash, not a power loss.
//! let b = log.append(b"some cache hint", SyncMode::Buffered)?;
//! log.sync()?; // ... until now: everything appended so far is durable.
//! assert_eq!((a, b), (1, 2));
//!
//! // Reads are one positioned read each, through an in-memory index of offsets.
//! assert_eq!(log.read(1)?, b"promise ballot 7");
//! let all: Vec<_> = log.iter_from(1)?.collect::<Result<_, _>>()?;
//! assert_eq!(all.len(), 2);
//!
//! // Overwrite from record 2 on (the consensus layer replacing an unchosen entry).
//! log.truncate_suffix(2)?;
//! assert_eq!(log.append(b"accept slot 2", SyncMode::Durable)?, 2);
//!
//! // After a power loss, open keeps every acknowledged record and cuts a torn tail.
//! drop(log);
//! fs.crash(vfs::CrashMode::DropUnsynced);
//! let log = Wal::open(fs, dir, Options::default())?;
//! assert_eq!(log.read(2)?, b"accept slot 2");
//! # Ok::<(), wal::Error>(())
//! ```
//!
//! # How it is built (reading order)
//! - [`format`](mod@format): the byte grammar of segments and records (`docs/format-wal.md`).
//! - `recovery`: open: check every record, cut a torn tail, refuse mid-log damage.
//! - `commit`: the leader/follower group-commit queue (LevelDB's `DBImpl::Write`).
//! - `writer`: the active segment: one write per group, rolling, syncing.
//! - `segment`: the in-memory index of record offsets, and reads.
//! - `truncate`: dropping whole old segments, or the newest records.
//!
//! After a failed write or fsync the log latches: every later write returns
//! [`Error::Poisoned`] (the kernel may have dropped the dirty pages, so retrying the
//! fsync could falsely succeed). Reopen it to recover what is on disk.

mod commit;
mod error;
pub mod format;
mod offsets;
mod recovery;
mod seg_reader;
mod segment;
mod truncate;
mod writer;

pub use error::Error;
pub use segment::WalIter;

use commit::Queue;
use segment::Index;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use vfs::Fs;
use writer::Writer;

/// Recovery reads segment files through one buffer of this many bytes (records longer
/// than it are checked piece by piece), so opening a log takes memory independent of
/// segment and record sizes.
pub const RECOVERY_BUFFER_BYTES: usize = 256 << 10;

/// The largest `segment_bytes_max`: every record then starts below 4 GiB into its
/// segment, where the index's 32-bit offsets reach (`offsets.rs`).
pub const SEGMENT_BYTES_LIMIT: u64 = 1 << 32;

/// Limits of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// A segment is sealed and a new one started before a record would take it past
    /// this size (a segment always takes at least one record). Default 64 MiB, at most
    /// [`SEGMENT_BYTES_LIMIT`].
    pub segment_bytes_max: u64,
    /// Longest record payload accepted by `append`. Default 16 MiB, at most
    /// `format::RECORD_BYTES_LIMIT`. Recovery and reads accept longer records already in
    /// the log (written under a higher limit) when their checksums are valid.
    pub record_bytes_max: u32,
    /// Every this many unsynced bytes, the active segment's new bytes are handed to the
    /// kernel's write-back (`FileWrite::write_back`, which does not wait), so a sync
    /// (a durable group's or `Wal::sync`) finds at most about this many dirty bytes to
    /// write, however much was appended without durability since the last one. Default
    /// 256 KiB (as the storage engine's, which says why); 0: never (the kernel writes
    /// them back when it decides).
    pub bytes_per_sync: u64,
    /// Keep each record's offset in memory (4 bytes a record, for as long as the record
    /// is in the log), which [`Wal::read`], [`Wal::iter_from`] an index inside a
    /// segment, and [`Wal::truncate_suffix`] need. Default true. False suits a log that
    /// is only ever read in order from its first record (replayed at open, as the
    /// storage engine does): those calls then answer [`Error::Unindexed`], and
    /// `iter_from` takes only a segment's first index (`first_index()` among them).
    pub index_records: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_bytes_max: 64 << 20,
            record_bytes_max: 16 << 20,
            bytes_per_sync: 256 << 10,
            index_records: true,
        }
    }
}

impl Options {
    /// Checks the limits make sense together.
    pub fn validate(&self) -> Result<(), Error> {
        let floor = format::SEGMENT_HEADER_BYTES + format::RECORD_HEADER_BYTES;
        if self.segment_bytes_max <= floor {
            return Err(Error::InvalidOptions {
                reason: format!(
                    "segment_bytes_max {} must exceed {floor}",
                    self.segment_bytes_max
                ),
            });
        }
        if self.segment_bytes_max > SEGMENT_BYTES_LIMIT {
            return Err(Error::InvalidOptions {
                reason: format!(
                    "segment_bytes_max {} above 4 GiB (records are indexed by 32-bit offsets)",
                    self.segment_bytes_max
                ),
            });
        }
        if self.record_bytes_max > format::RECORD_BYTES_LIMIT {
            return Err(Error::InvalidOptions {
                reason: format!("record_bytes_max {} above 1 GiB", self.record_bytes_max),
            });
        }
        Ok(())
    }
}

/// How durable an append must be before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// After an fdatasync covering the record: survives a power loss.
    Durable,
    /// After the record is handed to the OS (one write): survives a process crash.
    Buffered,
    /// As soon as the record has its index and its place in the next group: nothing is
    /// written yet, and nothing survives a crash until a later `sync` (or an append
    /// that waits) covers it. For a caller that orders records under its own lock and
    /// waits for durability after releasing it, so that writers arriving while an
    /// fsync is in flight queue behind it and share the next one.
    Queued,
}

/// Counters since open, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records accepted by `append`/`append_many`.
    pub appends: u64,
    /// Groups written by a leader (each one write, two if it rolled a segment).
    pub groups: u64,
    /// `write_all` calls on segment files.
    pub writes: u64,
    pub bytes_written: u64,
    /// `sync_data` calls on segment files (group commits, rolls, cuts).
    pub data_syncs: u64,
    /// `sync_dir` calls (new and removed segments).
    pub dir_syncs: u64,
    /// Bytes handed to the kernel's write-back before a sync (`Options::bytes_per_sync`).
    pub written_back_bytes: u64,
    pub segments_created: u64,
    pub segments_removed: u64,
    /// Bytes of torn tail cut off by open.
    pub recovered_tail_bytes: u64,
    /// The largest buffer open's recovery allocated to read segment bytes.
    pub recovery_buffer_bytes_max: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    pub appends: AtomicU64,
    pub groups: AtomicU64,
    pub writes: AtomicU64,
    pub bytes_written: AtomicU64,
    pub data_syncs: AtomicU64,
    pub dir_syncs: AtomicU64,
    pub written_back_bytes: AtomicU64,
    pub segments_created: AtomicU64,
    pub segments_removed: AtomicU64,
    pub recovered_tail_bytes: AtomicU64,
    pub recovery_buffer_bytes_max: AtomicU64,
    pub sync_latency: SyncLatency,
}

/// How long each segment fdatasync took (nanoseconds); shared, so a reader can hold
/// it apart from the log ([`Wal::sync_latency_histogram`]).
#[derive(Debug)]
pub(crate) struct SyncLatency(pub Arc<telemetry::Histogram>);

impl Default for SyncLatency {
    fn default() -> Self {
        SyncLatency(Arc::new(telemetry::Histogram::latency()))
    }
}

/// What every part of the log reads: the file system, the directory, the limits,
/// the index of records and the counters.
#[derive(Debug)]
pub(crate) struct Shared {
    pub fs: Arc<dyn Fs>,
    pub dir: PathBuf,
    pub opts: Options,
    pub index: Arc<RwLock<Index>>,
    pub stats: StatsCounters,
}

/// A segmented, checksummed append-only log. `Send + Sync`: share it as `Arc<Wal>`;
/// many threads may append at once.
///
/// Lock order: `maintenance` -> `queue` -> `writer` -> `shared.index`.
#[derive(Debug)]
pub struct Wal {
    shared: Shared,
    queue: Mutex<Queue>,
    queue_cv: Condvar,
    /// The active segment; only the group-commit leader (or a quiesced truncation) locks it.
    writer: Mutex<Writer>,
    /// Serialises the truncations.
    maintenance: Mutex<()>,
}

// Shared across threads as `Arc<Wal>` by every user: keep it so.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Wal>();
    send_sync::<WalIter>();
};

/// Locks a mutex; a panic elsewhere while holding it does not make the data unusable
/// (every critical section leaves it consistent or poisons the log first).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn read_index(i: &RwLock<Index>) -> RwLockReadGuard<'_, Index> {
    i.read().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn write_index(i: &RwLock<Index>) -> RwLockWriteGuard<'_, Index> {
    i.write().unwrap_or_else(|p| p.into_inner())
}

impl Wal {
    /// Opens the log in `dir` (creating it, and a first segment, if needed). Checks
    /// every record; cuts a torn tail of the last segment back to its last whole
    /// record; damage anywhere else is [`Error::Corrupt`].
    pub fn open(fs: Arc<dyn Fs>, dir: &Path, opts: Options) -> Result<Wal, Error> {
        opts.validate()?;
        let stats = StatsCounters::default();
        let rec = recovery::recover(fs.as_ref(), dir, &opts, &stats)?;
        stats
            .recovered_tail_bytes
            .store(rec.tail_bytes_dropped, Relaxed);
        let next = rec.index.next_index();
        let shared = Shared {
            fs,
            dir: dir.to_path_buf(),
            opts,
            index: Arc::new(RwLock::new(rec.index)),
            stats,
        };
        Ok(Wal {
            shared,
            queue: Mutex::new(Queue::new(next)),
            queue_cv: Condvar::new(),
            writer: Mutex::new(rec.writer),
            maintenance: Mutex::new(()),
        })
    }

    /// Appends one record and returns its index. With `Durable`, returns only after an
    /// fdatasync covering it (concurrent Durable appenders share one fdatasync).
    pub fn append(&self, record: &[u8], mode: SyncMode) -> Result<u64, Error> {
        self.append_one(record, mode)
    }

    /// Appends several records with consecutive indexes, in one group (one write, at
    /// most one sync). After a crash a prefix of them may survive (with `Durable`,
    /// all of them once this returns). If one is too large, none is appended.
    pub fn append_many<'a>(
        &self,
        records: impl IntoIterator<Item = &'a [u8]>,
        mode: SyncMode,
    ) -> Result<Range<u64>, Error> {
        self.append_batch(records, mode)
    }

    /// Makes everything appended so far durable.
    pub fn sync(&self) -> Result<(), Error> {
        self.sync_all()
    }

    /// Index of the oldest record the log holds (equals `next_index()` when empty).
    pub fn first_index(&self) -> u64 {
        read_index(&self.shared.index).first_index()
    }

    /// The index the next append gets.
    pub fn next_index(&self) -> u64 {
        lock(&self.queue).next_index
    }

    /// Reads record `index`, checking its checksums.
    pub fn read(&self, index: u64) -> Result<Vec<u8>, Error> {
        read_index(&self.shared.index).read(index)
    }

    /// Iterates `(index, payload)` from `index` to the last record written when this
    /// is called. `index` may equal `next_index()` (an empty iterator).
    pub fn iter_from(&self, index: u64) -> Result<WalIter, Error> {
        let idx = read_index(&self.shared.index);
        let (first, next) = (idx.first_index(), idx.next_index());
        if index < first || index > next {
            return Err(Error::OutOfRange { index, first, next });
        }
        if !self.shared.opts.index_records
            && index != next
            && !idx.segments.iter().any(|s| s.first_index == index)
        {
            return Err(Error::Unindexed { index });
        }
        Ok(WalIter::new(self.shared.index.clone(), index, next))
    }

    /// Deletes every sealed segment all of whose records are below `index`. The active
    /// segment always stays, so `first_index()` may remain below `index`.
    pub fn truncate_prefix(&self, index: u64) -> Result<(), Error> {
        self.truncate_prefix_inner(index)
    }

    /// Drops every record `>= index`; durable on return (and so is every record that
    /// remains). Afterwards `next_index() == index`. A no-op when `index >=
    /// next_index()`; `OutOfRange` below `first_index()`.
    pub fn truncate_suffix(&self, index: u64) -> Result<(), Error> {
        self.truncate_suffix_inner(index)
    }

    /// Counters since open.
    pub fn stats(&self) -> Stats {
        let s = &self.shared.stats;
        Stats {
            appends: s.appends.load(Relaxed),
            groups: s.groups.load(Relaxed),
            writes: s.writes.load(Relaxed),
            bytes_written: s.bytes_written.load(Relaxed),
            data_syncs: s.data_syncs.load(Relaxed),
            dir_syncs: s.dir_syncs.load(Relaxed),
            written_back_bytes: s.written_back_bytes.load(Relaxed),
            segments_created: s.segments_created.load(Relaxed),
            segments_removed: s.segments_removed.load(Relaxed),
            recovered_tail_bytes: s.recovered_tail_bytes.load(Relaxed),
            recovery_buffer_bytes_max: s.recovery_buffer_bytes_max.load(Relaxed),
        }
    }

    /// How long each fdatasync of a segment file took since open (nanoseconds), as
    /// `/metrics` shows it.
    pub fn sync_latency(&self) -> telemetry::HistogramSnapshot {
        self.shared.stats.sync_latency.0.snapshot()
    }

    /// The histogram [`Wal::sync_latency`] reads, for a reader that must not hold the
    /// log itself (the log moves to the thread that writes it).
    pub fn sync_latency_histogram(&self) -> Arc<telemetry::Histogram> {
        Arc::clone(&self.shared.stats.sync_latency.0)
    }

    /// Number of segment files the log consists of now.
    pub fn segment_count(&self) -> usize {
        read_index(&self.shared.index).segments.len()
    }

    /// True once a write or fsync failed: the log takes no more writes.
    pub fn is_poisoned(&self) -> bool {
        lock(&self.queue).poisoned
    }

    /// The directory holding the segments.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }
}
