//! Immutable sorted tables (SSTables): the files the LSM tree keeps its data in.
//!
//! A table holds versioned entries `(user key, seqno, kind, value)` sorted by user
//! key ascending (bytewise), then seqno **descending**, so the newest version of a key
//! comes first. It is written once by a [`TableBuilder`], fsynced, and from then on
//! read by a [`Table`]: its index and filter held in the table's own memory, its data
//! blocks read as its [`ReadMode`] says, through a memory map advised `MADV_RANDOM`
//! or with `pread` into a [`BlockCache`] shared by many tables. The byte layout is
//! specified in `docs/format-sstable.md`.
//!
//! # Writing a table
//! Create the file through the [`vfs::Fs`], add entries in table order, finish:
//! ```
//! use std::path::Path;
//! use sstable::{BuildOptions, Kind, Table, TableBuilder};
//! use vfs::{Fs, SimFs};
//!
//! let fs = SimFs::new();
//! fs.create_dir_all(Path::new("/db")).unwrap();
//! let path = Path::new("/db/000001.sst");
//! let mut builder = TableBuilder::new(fs.create(path).unwrap(), BuildOptions::default());
//! builder.add(b"apple", 7, Kind::Put, b"red").unwrap();
//! builder.add(b"apple", 3, Kind::Put, b"green").unwrap(); // older version: smaller seqno
//! builder.add(b"pear", 5, Kind::Delete, b"").unwrap();    // a tombstone
//! let info = builder.finish().unwrap(); // the file is fsynced; fsync the directory next
//! fs.sync_dir(Path::new("/db")).unwrap();
//! assert_eq!(info.entries, 3);
//!
//! // Reading: `get` returns the newest version at or below a snapshot seqno.
//! let table = Table::open(&fs, path).unwrap();
//! assert_eq!(table.get(b"apple", 10).unwrap().unwrap().value, b"red");
//! assert_eq!(table.get(b"apple", 6).unwrap().unwrap().value, b"green");
//! assert!(table.get(b"apple", 2).unwrap().is_none()); // no version that old
//! assert_eq!(table.get(b"pear", 9).unwrap().unwrap().kind, Kind::Delete);
//!
//! // Iterating: a cursor; `value()` borrows its block, `next` allocates nothing.
//! let mut it = table.iter();
//! it.seek(b"b").unwrap();
//! assert!(it.valid());
//! assert_eq!((it.key(), it.seqno(), it.kind()), (&b"pear"[..], 5, Kind::Delete));
//! it.next().unwrap();
//! assert!(!it.valid());
//! ```
//!
//! # Inside a table
//! - **Data blocks** (about `block_bytes` each) hold entries with prefix-compressed
//!   keys; every `restart_interval`-th key is stored whole at a *restart point*, whose
//!   offsets close the block, so lookups binary-search them (`block_builder.rs`).
//! - The **index block** has one entry per data block: a separator key at or after
//!   the block's last entry and before the next block's first, and the block handle.
//! - The **filter** is a bloom filter over user keys: about 1% false positives at
//!   10 bits per key, so most lookups of absent keys touch no data block (`bloom.rs`).
//! - The **meta** block records entry count, smallest/largest key and seqno range.
//! - The **footer** locates index, filter and meta, and ends with a magic number.
//!
//! Every block ends with a crc32. A table's tail (filter, meta, index, footer) is read
//! into memory and checked when it is opened with [`Table::open_with`], or, opened
//! with [`Table::open_lazy`] (as the engine does, so that opening many tables reads
//! none of them), by the first lookup, seek or scan that needs it; a data block is checked when it is loaded into
//! the block cache, or, through the map, the first time it is read through that
//! `Table` and remembered in a bitset (one bit per block), so repeated lookups do not
//! pay for a 4 KiB crc nor pull the whole block into the CPU cache.
//! A [`TableScan`] (compaction's reader) instead reads blocks with positioned reads
//! into its own buffer and checks every block it reads, every time: what it reads is
//! written again under a new checksum, and a bad disk must show as an error there,
//! not as a SIGBUS on a mapped page.
//! Corrupt or truncated bytes give [`Error::Corrupt`] or
//! [`Error::ChecksumMismatch`], never a panic: the crate denies
//! `clippy::indexing_slicing` and reads every length through bounds-checked `get`.
//!
//! Modules, in reading order: `format` (sizes and codecs), `entry` (order),
//! `block_builder`, `block`, `bloom`, `info`, `builder`, `tail` (the tail read into
//! owned memory), `open` (validation), `loaded` (the validated tail and decoded index
//! a table loads once), `block_cache` (the sharded LRU of data
//! blocks), `source` (map or pread + cache), `table`, `iter` (which also gives
//! `Table::iter`, so `table` does not import its cursor), `scan` (the verifying
//! reader for compaction).

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod block;
mod block_builder;
mod block_cache;
mod block_ends;
mod bloom;
mod builder;
mod cache_charge;
mod entry;
mod error;
pub mod format;
mod info;
mod iter;
mod loaded;
mod open;
mod scan;
mod source;
mod table;
mod tail;

pub use block_cache::{BlockCache, CacheStats};
pub use bloom::hash64;
pub use builder::{BuildOptions, TableBuilder};
pub use cache_charge::CacheCharge;
pub use entry::{compare, Entry, EntryRef, Kind};
pub use error::Error;
pub use info::TableInfo;
pub use iter::TableIter;
pub use scan::{TableScan, READ_AHEAD_BYTES};
pub use source::ReadMode;
pub use table::Table;
