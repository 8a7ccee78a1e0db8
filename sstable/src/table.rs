//! An open table: validated at open; index and filter held in owned memory; data
//! blocks read through its [`Source`] (a `MADV_RANDOM` map, or `pread` into a shared
//! block cache: `source.rs`).
//!
//! The index block is decoded once at open into an array (`IndexEntry`: separator
//! location, seqno, block handle; 40 bytes per data block) plus a dense array of each
//! separator's first 8 bytes as a big-endian `u64` (8 bytes per block), so the index
//! search is a binary search over integers that stays in the CPU caches and touches
//! the table's tail (where the separators are) only when prefixes tie.
//!
//! A point lookup asks the bloom filter, binary-searches the index for the first
//! block whose separator is at or after `(key, snapshot)`, binary-searches that
//! block's restarts, and scans forward. If the block ends first (the separator was
//! shortened, or the key's versions continue in the next block) it goes on with the
//! next block, whose first entry then decides.
//!
//! Invariant: `tail` holds the file's bytes from `tail_base` to its end (filter, meta,
//! index, footer), validated at open; `filter_lines` and every `IndexEntry::key_start`
//! are file offsets inside it.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;

use vfs::{Fs, Mapped};

use crate::block::{Block, Found};
use crate::bloom::BloomParams;
use crate::entry::{compare, Entry};
use crate::error::Error;
use crate::format::{BlockKind, Handle};
use crate::info::TableInfo;
use crate::open::{key_prefix, validate, IndexEntry};
use crate::source::{BlockBytes, ReadMode, Run, Source};
use crate::tail::{copy_tail, read_tail, Tail};

/// A table opened for reading. Cheap to clone (an `Arc` inside); `Send + Sync`.
#[derive(Clone)]
pub struct Table {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    /// The file's bytes from `tail_base` on: filter, meta, index, footer.
    tail: Box<[u8]>,
    tail_base: usize,
    info: TableInfo,
    index: Handle,
    filter: Handle,
    meta: Handle,
    filter_lines: Range<usize>,
    bloom: BloomParams,
    /// The decoded index: data block `i` is `blocks[i]`.
    blocks: Box<[IndexEntry]>,
    /// `prefixes[i]` is `key_prefix` of block `i`'s separator: a dense array (8 bytes
    /// per block) that the index search can binary-search within the CPU caches.
    prefixes: Box<[u64]>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("info", &self.inner.info)
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
        match mode {
            ReadMode::Mapped => {
                let bytes = fs
                    .map_random(path)
                    .map_err(|e| Error::io(format!("mapping table {}", path.display()), e))?;
                Table::from_bytes(bytes)
            }
            ReadMode::Cached(cache) => {
                let file = fs
                    .open_read(path)
                    .map_err(|e| Error::io(format!("opening table {}", path.display()), e))?;
                // Lookups read one block: no readahead on this handle. (Iterators read
                // ahead explicitly; compaction reads through a handle of its own.)
                file.advise_random()
                    .map_err(|e| Error::io(format!("advising {}", path.display()), e))?;
                let (tail, base) = read_tail(file.as_ref())?;
                let source = Source::Cached {
                    file,
                    cache: Arc::clone(cache),
                    id: cache.new_table_id(),
                };
                Table::build(source, tail, base)
            }
        }
    }

    /// Validates `bytes` as a whole table file, read through them as a map (for tests
    /// and fuzzing; `open` uses it).
    pub fn from_bytes(bytes: Mapped) -> Result<Table, Error> {
        let (tail, base) = copy_tail(&bytes);
        Table::build(Source::mapped(bytes, 0), tail, base)
    }

    fn build(source: Source, tail: Vec<u8>, tail_base: usize) -> Result<Table, Error> {
        let view = Tail::from(&tail, tail_base);
        let layout = validate(&view)?;
        let source = match source {
            Source::Mapped { bytes, .. } => Source::mapped(bytes, layout.blocks.len()),
            cached => cached,
        };
        let prefixes = layout
            .blocks
            .iter()
            .map(|e| key_prefix(separator(&view, e)))
            .collect();
        Ok(Table {
            inner: Arc::new(Inner {
                source,
                tail: tail.into_boxed_slice(),
                tail_base,
                info: layout.info,
                index: layout.index,
                filter: layout.filter,
                meta: layout.meta,
                filter_lines: layout.filter_lines,
                bloom: layout.bloom,
                prefixes,
                blocks: layout.blocks.into_boxed_slice(),
            }),
        })
    }

    /// Heap bytes this open table holds for its index: the decoded entries and key
    /// prefixes, the checksum-verified bits, and its tail less the filter (index and
    /// meta blocks, footer). Data blocks are not counted (map or block cache).
    pub fn index_memory_bytes(&self) -> usize {
        let inner = &self.inner;
        std::mem::size_of_val(&*inner.blocks)
            + std::mem::size_of_val(&*inner.prefixes)
            + inner.source.memory_bytes()
            + inner.tail.len().saturating_sub(self.filter_bytes())
    }

    /// Heap bytes of the bloom filter (held in the table's tail).
    pub fn filter_bytes(&self) -> usize {
        self.inner.filter_lines.len()
    }

    /// The table's properties.
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
        if !self.may_contain(key) {
            return Ok(None);
        }
        let mut i = self.index_search(key, snapshot);
        while i < self.num_blocks() {
            let (bytes, offset) = self.data_block(i)?;
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
    pub fn may_contain(&self, key: &[u8]) -> bool {
        let lines = self
            .tail()
            .get(self.inner.filter_lines.clone())
            .unwrap_or_default();
        self.inner.bloom.may_contain(lines, key)
    }

    /// Every block of the file in file order, with its kind and handle (for tools
    /// and tests that inspect or damage a table on purpose).
    pub fn blocks(&self) -> Vec<(BlockKind, Handle)> {
        let mut out: Vec<_> = self
            .inner
            .blocks
            .iter()
            .map(|e| (BlockKind::Data, e.handle))
            .collect();
        out.push((BlockKind::Filter, self.inner.filter));
        out.push((BlockKind::Meta, self.inner.meta));
        out.push((BlockKind::Index, self.inner.index));
        out
    }

    /// The mapped file, for cursors holding a range of it (empty if not mapped).
    #[inline]
    pub(crate) fn mapped_bytes(&self) -> &[u8] {
        self.inner.source.mapped_bytes()
    }

    fn tail(&self) -> Tail<'_> {
        Tail::from(&self.inner.tail, self.inner.tail_base)
    }

    /// Number of data blocks.
    pub fn data_blocks(&self) -> usize {
        self.inner.blocks.len()
    }

    /// Number of data blocks.
    pub(crate) fn num_blocks(&self) -> usize {
        self.inner.blocks.len()
    }

    /// The first data block whose separator is at or after `(key, seqno)`;
    /// `num_blocks()` if there is none.
    pub(crate) fn index_search(&self, key: &[u8], seqno: u64) -> usize {
        // Separators whose prefix is below the key's are before the target, those
        // above are after it; only equal prefixes need the whole key compared.
        let prefixes = &self.inner.prefixes;
        let prefix = key_prefix(key);
        let lo = prefixes.partition_point(|&p| p < prefix);
        let tied = prefixes
            .get(lo..)
            .unwrap_or_default()
            .partition_point(|&p| p == prefix);
        let tail = self.tail();
        let candidates = self.inner.blocks.get(lo..lo + tied).unwrap_or_default();
        lo + candidates.partition_point(|e| {
            compare(separator(&tail, e), e.seqno, key, seqno) == std::cmp::Ordering::Less
        })
    }

    /// Data block `i` (< `num_blocks()`), checked (on first use, or on load into the
    /// cache), and the file offset of its contents.
    pub(crate) fn data_block(&self, i: usize) -> Result<(BlockBytes<'_>, u64), Error> {
        let handle = self.handle_of(i)?;
        Ok((self.inner.source.block(i, handle)?, handle.offset))
    }

    /// Data block `i` for an iterator stepping through blocks in order: cached
    /// tables read ahead through `run` and do not fill the cache; mapped tables
    /// read as `data_block` does.
    pub(crate) fn next_data_block(
        &self,
        i: usize,
        run: &mut Option<Run>,
    ) -> Result<(BlockBytes<'_>, u64), Error> {
        let handle = self.handle_of(i)?;
        match self
            .inner
            .source
            .sequential_block(handle, self.data_end(), run)
        {
            Some(read) => Ok((read?, handle.offset)),
            None => self.data_block(i),
        }
    }

    fn handle_of(&self, i: usize) -> Result<Handle, Error> {
        self.data_block_handle(i).ok_or_else(|| {
            Error::corrupt(self.inner.index.offset, "data block number past the index")
        })
    }

    /// The handle of data block `i`, if there is one.
    pub(crate) fn data_block_handle(&self, i: usize) -> Option<Handle> {
        self.inner.blocks.get(i).map(|e| e.handle)
    }

    /// File offset just past the last data block (where the filter block starts).
    pub(crate) fn data_end(&self) -> u64 {
        self.inner.filter.offset
    }

    /// Makes readers check data block `i` again on their next use (its bytes were
    /// found bad by someone who read them from the disk): its verified bit is
    /// cleared, or its cached copy dropped.
    pub(crate) fn forget_verified(&self, i: usize) {
        match &self.inner.source {
            Source::Mapped { verified, .. } => {
                if let Some(w) = verified.get(i / 64) {
                    w.fetch_and(!(1u64 << (i % 64)), AtomicOrdering::Relaxed);
                }
            }
            Source::Cached { cache, id, .. } => {
                if let Some(handle) = self.data_block_handle(i) {
                    cache.remove(*id, handle.offset);
                }
            }
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

/// The separator key of an index entry (validated in bounds at open).
#[inline]
fn separator<'a>(bytes: &Tail<'a>, e: &IndexEntry) -> &'a [u8] {
    bytes
        .get(e.key_start..e.key_start + e.key_len as usize)
        .unwrap_or_default()
}
