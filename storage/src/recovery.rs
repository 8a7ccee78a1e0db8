//! Opening a database: manifest, tables, WAL replay, cleanup.
//!
//! Steps:
//! 0. Take `LOCK` (one engine per directory; held until the `Inner` drops, after the
//!    background threads stopped). A second open fails with [`Error::AlreadyOpen`]
//!    before it touches anything: two engines on one directory would delete each
//!    other's WAL segments and tables.
//! 1. Open the manifest (`manifest.rs`); a directory without `CURRENT` is a new
//!    database and gets an initial snapshot, unless it holds tables, a WAL or
//!    manifest records: then it lost its `CURRENT` and open fails with
//!    [`Error::MissingCurrent`] before writing anything (`fresh.rs`).
//! 2. Open every table the manifest names without reading it: a missing file, or one
//!    whose length differs from the manifest's, is an error naming it. Each table's
//!    tail (index, filter, meta) is read, validated and checked against the manifest
//!    by the first read that needs it (`sstable::Table::open_lazy`); a damaged tail is
//!    an error of that read, naming the table, and latches nothing. So opening costs
//!    a file open per table, whatever the data's size.
//! 3. Replay the WAL into a memtable: every record whose seqnos are above the
//!    manifest's flushed seqno (records are whole batches: none straddles it). A
//!    damaged record before the WAL's tail is an error; the wal crate cuts a torn tail.
//!    If the replayed data fills a memtable it is written to a level-0 table at once.
//!    3b. What is left in the memtable is frozen and handed to the flush thread (as
//!    after a switch: the WAL keeps its records until that flush is installed), and
//!    an empty memtable takes writes: a restarted engine that is only read does not
//!    hold its recovered writes in memory (RocksDB flushes them during open; this
//!    way open does not wait for it).
//! 4. Start a new manifest (a snapshot of the recovered state, then `CURRENT`).
//! 5. Remove obsolete files: tables the manifest does not name (left by a crash
//!    mid-flush or mid-compaction), `*.tmp` files, and WAL segments wholly flushed.
//!
//! The directory layout: `CURRENT`, `manifest/` (a wal), `wal/` (a wal), `<n>.sst`.

use crate::batch::BatchRecord;
use crate::error::Error;
use crate::flush::write_memtable;
use crate::inner::{Frozen, Inner, State, WriteState};
use crate::manifest::{Manifest, ManifestState};
use crate::memtable::Memtable;
use crate::options::{Options, TableReads};
use crate::rate_limit::RateLimiter;
use crate::snapshot::SnapshotList;
use crate::super_version::SuperVersion;
use crate::table_file::finish_tables;
use crate::version::{parse_table_file_name, TableHandle, Version};
use parking_lot::{Condvar, Mutex, RwLock};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;
use vfs::Fs;
use wal::Wal;

/// Name of the lock file that keeps a second engine out of the directory.
pub const LOCK_FILE: &str = "LOCK";

/// Name of the WAL directory.
pub const WAL_DIR: &str = "wal";

/// See the module doc.
pub(crate) fn recover(fs: Arc<dyn Fs>, dir: &Path, opts: Options) -> Result<Inner, Error> {
    opts.validate()?;
    fs.create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let lock = fs.lock(&dir.join(LOCK_FILE)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock {
            Error::AlreadyOpen {
                dir: dir.display().to_string(),
                source: e,
            }
        } else {
            Error::io(format!("locking {}", dir.join(LOCK_FILE).display()), e)
        }
    })?;
    let wal_dir = dir.join(WAL_DIR);
    if !Manifest::exists(fs.as_ref(), dir) {
        crate::fresh::check_files(fs.as_ref(), dir, &wal_dir)?;
    }
    let (mut manifest, state) = Manifest::open(&fs, dir)?;
    let mut mstate = match state {
        Some(s) => s,
        None => {
            crate::fresh::check_manifest(manifest.log(), dir)?;
            let s = ManifestState {
                next_file: 1,
                log_index: 1,
                ..ManifestState::default()
            };
            manifest.write_snapshot(&s)?;
            s
        }
    };

    let block_cache = crate::budget::new_block_cache(&opts);
    let read_mode = match opts.table_reads {
        TableReads::Cached => sstable::ReadMode::Cached(Arc::clone(&block_cache)),
        TableReads::Mapped => sstable::ReadMode::Mapped,
    };
    let mut added = Vec::with_capacity(mstate.tables.len());
    let mut next_file = mstate.next_file.max(1);
    for (number, (level, meta)) in &mstate.tables {
        if *level as usize >= opts.levels_max {
            return Err(Error::InvalidOptions {
                reason: format!(
                    "table {number} is in level {level} but levels_max is {}",
                    opts.levels_max
                ),
            });
        }
        let table = TableHandle::open(&fs, dir, meta.clone(), &read_mode)?;
        added.push((*level, Arc::new(table)));
        next_file = next_file.max(number + 1);
    }
    let mut version = Version::empty(opts.levels_max).apply(&[], added)?;

    let wal_opts = wal::Options {
        segment_bytes_max: opts.wal_segment_bytes,
        record_bytes_max: opts.batch_bytes_max,
        bytes_per_sync: opts.bytes_per_sync,
        // Read only here, in order from the first record: no offset per record is
        // kept (4 bytes a record, 2.7 MB of a 5,000,000-key fill's heap at its peak).
        index_records: false,
    };
    let wal = Wal::open(Arc::clone(&fs), &wal_dir, wal_opts)
        .map_err(|e| Error::wal(format!("opening the WAL in {}", wal_dir.display()), e))?;
    let mut mem = Memtable::new();
    let mut last = mstate.flushed_seqno;
    let mut first_needed: Option<u64> = None;
    let iter = wal
        .iter_from(wal.first_index())
        .map_err(|e| Error::wal("replaying the WAL", e))?;
    for item in iter {
        let (index, bytes) = item.map_err(|e| Error::wal("replaying the WAL", e))?;
        let context = || format!("WAL record {index}");
        let rec = BatchRecord::decode(&bytes).map_err(|r| Error::corrupt(context(), r))?;
        if rec.last_seqno() <= mstate.flushed_seqno {
            continue;
        }
        if rec.first_seqno <= last {
            return Err(Error::corrupt(
                context(),
                format!(
                    "batch seqnos start at {} but {last} is already recovered",
                    rec.first_seqno
                ),
            ));
        }
        first_needed.get_or_insert(index);
        mem.insert_ops(rec.iter(), rec.first_seqno)?;
        last = rec.last_seqno();
        if mem.approximate_bytes() >= opts.write_buffer_bytes {
            let number = next_file;
            next_file += 1;
            if let Some(meta) = write_memtable(&fs, dir, &opts, &mem, Vec::new(), number)? {
                let handles = finish_tables(&fs, dir, vec![meta.clone()], &read_mode)?;
                let added: Vec<(u8, Arc<TableHandle>)> =
                    handles.into_iter().map(|h| (0u8, h)).collect();
                version = version.apply(&[], added)?;
                mstate.tables.insert(number, (0, meta));
            }
            mstate.flushed_seqno = last;
            mem = Memtable::new();
            first_needed = None;
        }
    }
    mstate.last_seqno = mstate.last_seqno.max(last);
    mstate.log_index = first_needed.unwrap_or_else(|| wal.next_index());
    mstate.next_file = next_file;
    manifest.write_snapshot(&mstate)?;
    remove_obsolete(&fs, dir, &mstate);
    wal.truncate_prefix(mstate.log_index)
        .map_err(|e| Error::wal("dropping flushed WAL segments", e))?;

    // What the replay left in a memtable goes to the flush thread at once (step 3b),
    // so an engine that is only read after a restart does not hold it in memory.
    let imm = (!mem.is_empty()).then(|| Frozen {
        mem: Arc::new(mem),
        wal_end: wal.next_index(),
        last_seqno: last,
    });
    let mem = Arc::new(Memtable::new());
    let version = Arc::new(version);
    let sv = SuperVersion {
        mem: Arc::clone(&mem),
        imm: imm.as_ref().map(|f| Arc::clone(&f.mem)),
        version: Arc::clone(&version),
    };
    let l0 = version.levels[0].len();
    let last_seqno = mstate.last_seqno;
    let state = State {
        manifest,
        mstate,
        version,
        mem: Arc::clone(&mem),
        switches: u64::from(imm.is_some()),
        imm,
        flushes_done: 0,
        manual_requested: 0,
        manual_done: 0,
        compacting: false,
        pointers: vec![Vec::new(); opts.levels_max],
        bg_error: None,
    };
    tracing::info!(dir = %dir.display(), last_seqno, tables = state.version.table_count(), "storage opened");
    let compaction_limiter = (opts.compaction_bytes_per_sec > 0)
        .then(|| Arc::new(RateLimiter::new(opts.compaction_bytes_per_sec)));
    let inner = Inner {
        fs,
        dir: dir.to_path_buf(),
        opts,
        wal,
        write: Mutex::new(WriteState {
            mem,
            buf: Vec::new(),
            allocated: last_seqno,
            frozen_bytes: 0,
        }),
        state: Mutex::new(state),
        cv: Condvar::new(),
        current: RwLock::new(Arc::new(sv)),
        last_seqno: AtomicU64::new(last_seqno),
        publisher: crate::publish::Publisher::default(),
        next_file: AtomicU64::new(next_file),
        snapshots: Arc::new(SnapshotList::default()),
        shutdown: AtomicBool::new(false),
        poisoned: AtomicBool::new(false),
        poison_reason: Mutex::new(None),
        l0_tables: AtomicUsize::new(l0),
        stalls: AtomicU64::new(0),
        stall_micros: AtomicU64::new(0),
        compaction_limiter,
        read_stats: Arc::default(),
        read_mode,
        block_cache,
        #[cfg(test)]
        after_compaction_reported: Mutex::new(None),
        _lock: lock,
    };
    Ok(inner)
}

/// Removes tables the manifest does not name and temporary files (best effort).
fn remove_obsolete(fs: &Arc<dyn Fs>, dir: &Path, mstate: &ManifestState) {
    let names = match fs.list_dir(dir) {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!(error = %e, "listing the database directory for cleanup");
            return;
        }
    };
    let mut removed = false;
    for name in names {
        let obsolete = match parse_table_file_name(&name) {
            Some(number) => !mstate.tables.contains_key(&number),
            None => name.ends_with(".tmp"),
        };
        if obsolete {
            match fs.remove_file(&dir.join(&name)) {
                Ok(()) => removed = true,
                Err(e) => tracing::warn!(file = %name, error = %e, "removing an obsolete file"),
            }
        }
    }
    if removed {
        if let Err(e) = fs.sync_dir(dir) {
            tracing::warn!(error = %e, "syncing the directory after cleanup");
        }
    }
}
