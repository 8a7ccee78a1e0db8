//! An open table: its data blocks read through its [`Source`] (a `MADV_RANDOM` map,
//! or `pread` into a shared block cache: `source.rs`); its index and filter (the
//! tail: `loaded.rs`) held in owned memory once loaded.
//!
//! Opening: `open`/`open_with` load and validate the tail at once (tools, tests, a
//! table just written). `open_lazy` (the engine's open) only opens or maps the file
//! and checks its length against what the caller knows about it (the manifest's
//! `TableInfo`): nothing of the file is read, so opening an engine of many tables
//! costs a file open each. The tail is then loaded by the first call that needs the
//! index or the filter, validated as at an eager open, and checked against the
//! expected properties; a failure is an error of that call (nothing is kept, a
//! later call tries again), never a panic. Two threads racing to load both read and
//! validate, and one result is published through a `OnceLock`: each sees a whole,
//! validated index, never a partial one.
//!
//! The index block stays as it was read, in the tail, beside a dense array of each
//! separator's first 8 bytes as a big-endian `u64` (8 bytes per block) and each data
//! block's end offset (4 bytes per block: the handles), so the index search is a
//! binary search over integers that stays in the CPU caches and decodes index entries
//! (separator and seqno) only where prefixes tie.
//!
//! A point lookup checks the key range (`info`, known without loading), asks the
//! bloom filter, binary-searches the index for the first block whose separator is at
//! or after `(key, snapshot)`, binary-searches that block's restarts, and scans
//! forward. If the block ends first (the separator was shortened, or the key's
//! versions continue in the next block) it goes on with the next block, whose first
//! entry then decides.
//!
//! Invariant: once `loaded` is set, its `info` equals `info`.

use std::fmt;
use std::path::Path;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::{Arc, OnceLock};

use vfs::{Fs, Mapped};

use crate::block::{Block, Found};
use crate::entry::Entry;
use crate::error::Error;
use crate::format::{BlockKind, Handle};
use crate::info::TableInfo;
use crate::loaded::Loaded;
use crate::source::{BlockBytes, ReadMode, Run, Source};

/// A table opened for reading. Cheap to clone (an `Arc` inside); `Send + Sync`.
#[derive(Clone)]
pub struct Table {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    /// The table's properties: from its meta block (eager open) or as the caller
    /// expects them (lazy open; checked when the tail loads).
    info: TableInfo,
    /// The tail, validated and decoded; set once, on first use or at open.
    loaded: OnceLock<Loaded>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("info", &self.inner.info)
            .field("loaded", &self.is_loaded())
            .finish_non_exhaustive()
    }
}

impl Table {
    /// Maps the file at `path` and validates it (footer, index, filter, meta).
    pub fn open(fs: &dyn Fs, path: &Path) -> Result<Table, Error> {
        Table::open_with(fs, path, &ReadMode::Mapped)
    }

    /// Opens the file at `path` to read its data blocks as `mode` says, reads its
    /// tail (filter, meta, index) into owned memory and validates it.
    pub fn open_with(fs: &dyn Fs, path: &Path, mode: &ReadMode) -> Result<Table, Error> {
        Table::eager(open_source(fs, path, mode)?)
    }

    /// Opens the file at `path` to read its data blocks as `mode` says, without
    /// reading any of it: the file's length must be `expected.file_bytes` (an
    /// `fstat`, or the map's length). The tail is loaded on first use and must then
    /// state exactly `expected` (see the module doc).
    pub fn open_lazy(
        fs: &dyn Fs,
        path: &Path,
        mode: &ReadMode,
        expected: TableInfo,
    ) -> Result<Table, Error> {
        let source = open_source(fs, path, mode)?;
        let len = source.file_len()?;
        if len != expected.file_bytes {
            return Err(Error::corrupt(
                0,
                format!(
                    "file is {len} bytes, expected {} bytes",
                    expected.file_bytes
                ),
            ));
        }
        Ok(Table {
            inner: Arc::new(Inner {
                source,
                info: expected,
                loaded: OnceLock::new(),
            }),
        })
    }

    /// Validates `bytes` as a whole table file, read through them as a map (for tests
    /// and fuzzing; `open` uses it).
    pub fn from_bytes(bytes: Mapped) -> Result<Table, Error> {
        Table::eager(Source::Mapped { bytes })
    }

    fn eager(source: Source) -> Result<Table, Error> {
        let loaded = Loaded::read(&source)?;
        Ok(Table {
            inner: Arc::new(Inner {
                source,
                info: loaded.info.clone(),
                loaded: OnceLock::from(loaded),
            }),
        })
    }

    /// The loaded tail, loading it now if no one has (see the module doc).
    fn loaded(&self) -> Result<&Loaded, Error> {
        if let Some(loaded) = self.inner.loaded.get() {
            return Ok(loaded);
        }
        let loaded = Loaded::read(&self.inner.source)?;
        if loaded.info != self.inner.info {
            return Err(Error::corrupt(
                loaded.meta_offset(),
                format!(
                    "meta block states {:?}, expected {:?}",
                    loaded.info, self.inner.info
                ),
            ));
        }
        // A racing loader may have published first: its copy is the same, ours drops.
        Ok(self.inner.loaded.get_or_init(|| loaded))
    }

    /// True once the tail (index and filter) is in memory.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.get().is_some()
    }

    /// Loads the index and filter now if they are not yet (a no-op once loaded).
    pub fn load(&self) -> Result<(), Error> {
        self.loaded().map(|_| ())
    }

    /// Heap bytes this open table holds for its index: the separators' key prefixes,
    /// the data blocks' end offsets, the checksum-verified bits, and its tail less the
    /// filter (index and
    /// meta blocks, footer); 0 before the tail is loaded. Data blocks are not counted
    /// (map or block cache).
    pub fn index_memory_bytes(&self) -> usize {
        self.inner
            .loaded
            .get()
            .map_or(0, Loaded::index_memory_bytes)
    }

    /// Heap bytes of the bloom filter (held in the table's tail; 0 before it loads).
    pub fn filter_bytes(&self) -> usize {
        self.inner.loaded.get().map_or(0, Loaded::filter_bytes)
    }

    /// The table's properties (known without loading the tail).
    pub fn info(&self) -> &TableInfo {
        &self.inner.info
    }

    /// The newest version of `key` with seqno <= `snapshot`, tombstones included
    /// (the caller decides what a `Kind::Delete` means), its value copied out.
    pub fn get(&self, key: &[u8], snapshot: u64) -> Result<Option<Entry>, Error> {
        let info = &self.inner.info;
        if info.entries == 0
            || key < info.smallest_key.as_slice()
            || key > info.largest_key.as_slice()
        {
            return Ok(None);
        }
        let loaded = self.loaded()?;
        if !loaded.may_contain(key) {
            return Ok(None);
        }
        let mut i = loaded.index_search(key, snapshot)?;
        while i < loaded.num_blocks() {
            let (bytes, offset) = self.block_of(loaded, i)?;
            let block = parse_data(bytes.contents(), offset)?;
            match block.find(key, snapshot)? {
                Found::Entry(e) => {
                    return Ok(Some(Entry {
                        seqno: e.seqno,
                        kind: e.kind,
                        value: e.value.to_vec(),
                    }))
                }
                Found::Absent => return Ok(None),
                Found::End => i += 1,
            }
        }
        Ok(None)
    }

    /// False only if no version of `key` is in the table (bloom filter).
    pub fn may_contain(&self, key: &[u8]) -> Result<bool, Error> {
        Ok(self.loaded()?.may_contain(key))
    }

    /// Every block of the file in file order, with its kind and handle (for tools
    /// and tests that inspect or damage a table on purpose).
    pub fn blocks(&self) -> Result<Vec<(BlockKind, Handle)>, Error> {
        self.loaded()?.blocks()
    }

    /// The mapped file, for cursors holding a range of it (empty if not mapped).
    #[inline]
    pub(crate) fn mapped_bytes(&self) -> &[u8] {
        self.inner.source.mapped_bytes()
    }

    /// Number of data blocks.
    pub fn data_blocks(&self) -> Result<usize, Error> {
        Ok(self.loaded()?.num_blocks())
    }

    /// The first data block whose separator is at or after `(key, seqno)`;
    /// `data_blocks()` if there is none.
    pub(crate) fn index_search(&self, key: &[u8], seqno: u64) -> Result<usize, Error> {
        self.loaded()?.index_search(key, seqno)
    }

    /// Data block `i` (< `data_blocks()`), checked (on first use, or on load into
    /// the cache), and the file offset of its contents.
    pub(crate) fn data_block(&self, i: usize) -> Result<(BlockBytes<'_>, u64), Error> {
        self.block_of(self.loaded()?, i)
    }

    fn block_of<'a>(&'a self, loaded: &Loaded, i: usize) -> Result<(BlockBytes<'a>, u64), Error> {
        let handle = loaded.handle_of(i)?;
        let bytes = self.inner.source.block(i, handle, &loaded.verified)?;
        Ok((bytes, handle.offset))
    }

    /// Data block `i` for an iterator stepping through blocks in order: cached
    /// tables read ahead through `run` and do not fill the cache; mapped tables
    /// read as `data_block` does.
    pub(crate) fn next_data_block(
        &self,
        i: usize,
        run: &mut Option<Run>,
    ) -> Result<(BlockBytes<'_>, u64), Error> {
        let loaded = self.loaded()?;
        let handle = loaded.handle_of(i)?;
        match self
            .inner
            .source
            .sequential_block(handle, loaded.data_end(), run)
        {
            Some(read) => Ok((read?, handle.offset)),
            None => self.block_of(loaded, i),
        }
    }

    /// The handle of data block `i`, if there is one.
    pub(crate) fn data_block_handle(&self, i: usize) -> Result<Option<Handle>, Error> {
        Ok(self.loaded()?.handle(i))
    }

    /// File offset just past the last data block (where the filter block starts).
    pub(crate) fn data_end(&self) -> Result<u64, Error> {
        Ok(self.loaded()?.data_end())
    }

    /// Makes readers check data block `i` again on their next use (its bytes were
    /// found bad by someone who read them from the disk): its verified bit is
    /// cleared, or its cached copy dropped. Nothing to do before the tail loads.
    pub(crate) fn forget_verified(&self, i: usize) {
        let Some(loaded) = self.inner.loaded.get() else {
            return;
        };
        match &self.inner.source {
            Source::Mapped { .. } => {
                if let Some(w) = loaded.verified.get(i / 64) {
                    w.fetch_and(!(1u64 << (i % 64)), AtomicOrdering::Relaxed);
                }
            }
            Source::Cached { cache, id, .. } => {
                if let Some(handle) = loaded.handle(i) {
                    cache.remove(*id, handle.offset);
                }
            }
        }
    }
}

/// Opens (or maps) the file at `path` as `mode` says; reads nothing of it.
fn open_source(fs: &dyn Fs, path: &Path, mode: &ReadMode) -> Result<Source, Error> {
    match mode {
        ReadMode::Mapped => {
            let bytes = fs
                .map_random(path)
                .map_err(|e| Error::io(format!("mapping table {}", path.display()), e))?;
            Ok(Source::Mapped { bytes })
        }
        ReadMode::Cached(cache) => {
            let file = fs
                .open_read(path)
                .map_err(|e| Error::io(format!("opening table {}", path.display()), e))?;
            // Lookups read one block: no readahead on this handle. (Iterators read
            // ahead explicitly; compaction reads through a handle of its own.)
            file.advise_random()
                .map_err(|e| Error::io(format!("advising {}", path.display()), e))?;
            Ok(Source::Cached {
                file,
                cache: Arc::clone(cache),
                id: cache.new_table_id(),
            })
        }
    }
}

/// Parses a data block's contents (at file offset `offset`); an empty one is corrupt.
#[inline]
pub(crate) fn parse_data(contents: &[u8], offset: u64) -> Result<Block<'_>, Error> {
    let block = Block::parse(contents, offset)?;
    if block.is_empty() {
        return Err(Error::corrupt(offset, "empty data block"));
    }
    Ok(block)
}
