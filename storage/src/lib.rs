//! The LSM storage engine: memtable, WAL, SSTables, manifest, leveled compaction, snapshots.
//!
//! # A tour
//!
//! ```
//! use std::{ops::Bound, path::Path, sync::Arc};
//! use storage::{Db, Options, WriteBatch, WriteOptions};
//!
//! let fs = Arc::new(vfs::SimFs::new());
//! let db = Db::open(fs.clone(), Path::new("/db"), Options::default())?;
//!
//! // Single writes, and batches that apply all or nothing (also across crashes).
//! db.put(b"apple", b"red", WriteOptions::default())?;
//! let mut batch = WriteBatch::new();
//! batch.put(b"banana", b"yellow");
//! batch.put(b"cherry", b"dark red");
//! batch.delete(b"apple");
//! db.write(&batch, WriteOptions { sync: true })?; // durable on return: one group-committed fsync
//! assert_eq!(db.get(b"apple")?, None);
//!
//! // A snapshot is a fixed view: later writes do not show through it.
//! let snap = db.snapshot();
//! db.put(b"banana", b"green", WriteOptions::default())?;
//! assert_eq!(snap.get(b"banana")?, Some(b"yellow".to_vec()));
//! assert_eq!(db.get(b"banana")?, Some(b"green".to_vec()));
//!
//! // Range iteration merges memtables and every level; `prefix_iter` for prefixes.
//! let keys: Vec<Vec<u8>> = db
//!     .iter(Bound::Included(&b"b"[..]), Bound::Unbounded)?
//!     .map(|kv| kv.map(|(k, _)| k))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(keys, vec![b"banana".to_vec(), b"cherry".to_vec()]);
//!
//! // Flush the memtable to a table, merge all tables into one level.
//! db.flush()?;
//! db.compact_all()?;
//! drop(snap);
//! drop(db);
//!
//! // Reopening recovers everything: the manifest names the tables, the WAL the rest.
//! let db = Db::open(fs, Path::new("/db"), Options::default())?;
//! assert_eq!(db.get(b"cherry")?, Some(b"dark red".to_vec()));
//! # Ok::<(), storage::Error>(())
//! ```
//!
//! # How it works (reading order)
//! - `internal_key`: the order of versions: user key ascending, seqno descending.
//! - `batch`: [`WriteBatch`] and its WAL record (one record per batch, first seqno).
//! - `arena`, `memtable`: entries copied into an arena, indexed by a `BTreeSet` of
//!   16-byte keys behind a `RwLock`; cursors copy runs of entries out.
//! - `write`: the write path (one WAL record and one memtable insert per batch),
//!   back-pressure, memtable switches.
//! - `publish`: a write's seqno becomes visible only once it is as durable as its
//!   options demand, in seqno order (a failed fsync publishes nothing more).
//! - `edit`, `manifest`: the version edits and the manifest log with its `CURRENT`.
//! - `version`, `super_version`: immutable sets of tables and memtables that readers
//!   pin through `Arc`; obsolete table files go when the last pin drops.
//! - `merge_iter`, `db_iter`: merging sources, hiding old versions and tombstones;
//!   `scan_cursor`: compaction's inputs, read with checked positioned reads.
//! - `snapshot`: seqno + pinned super version, registered for compaction.
//! - Memory: [`Options::memory_budget_bytes`] is two write buffers, the tables'
//!   indexes and filters, and the block cache that every table shares
//!   (`sstable::BlockCache`, created in `recovery`, resized by `budget` as the tables
//!   change, reported in [`EngineStats`]); [`Options::table_reads`] picks `pread` into
//!   that cache or a `MADV_RANDOM` map.
//! - `flush`, `compaction`, `background`: the flush thread and the compaction thread.
//! - `recovery`: open: manifest, tables, WAL replay, cleanup; `fresh`: refusing a
//!   directory that lost its `CURRENT` instead of starting it empty.
//!
//! Every byte goes through [`vfs::Fs`], so the engine runs on `vfs::SimFs` in tests
//! (power loss included). Errors are [`Error`]; a damaged table, manifest or WAL
//! record is an error, never a panic. After a failed fsync (or background failure)
//! the engine refuses writes with [`Error::Poisoned`].

mod arena;
mod background;
mod batch;
mod budget;
mod compaction;
mod db;
mod db_iter;
mod edit;
mod engine_stats;
mod error;
mod flush;
mod fresh;
mod inner;
mod internal_key;
mod latch;
mod manifest;
mod memtable;
mod merge_iter;
mod options;
mod publish;
mod rate_limit;
mod read_stats;
mod recovery;
mod scan_cursor;
mod snapshot;
mod super_version;
mod table_file;
mod version;
mod write;

pub use batch::{WriteBatch, KEY_BYTES_MAX};
pub use db::Db;
pub use db_iter::DbIter;
pub use engine_stats::{EngineStats, StatsReader};
pub use error::{Error, Result};
pub use internal_key::prefix_successor;
pub use options::{Options, TableReads, WriteOptions};
pub use read_stats::ReadStats;
pub use snapshot::Snapshot;

/// The encoders of the engine's own records, for the fuzz targets (storage/fuzz), which
/// build valid-looking manifests from them instead of copying the formats. Not an API.
#[doc(hidden)]
pub mod records {
    pub use crate::edit::{EditKind, TableMeta, VersionEdit};
    pub use crate::manifest::encode_current;
}

#[cfg(test)]
mod db_tests;
#[cfg(test)]
mod disk_values_tests;
