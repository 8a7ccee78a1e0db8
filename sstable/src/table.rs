//! An open table: validated at open, then read through the mapped bytes.
//!
//! The index block is decoded once at open into an array (`IndexEntry`: separator
//! location, seqno, block handle; 40 bytes per data block) plus a dense array of each
//! separator's first 8 bytes as a big-endian `u64` (8 bytes per block), so the index
//! search is a binary search over integers that stays in the CPU caches and touches
//! the mapped index block only when prefixes tie.
//!
//! A point lookup asks the bloom filter, binary-searches the index for the first
//! block whose separator is at or after `(key, snapshot)`, binary-searches that
//! block's restarts, and scans forward. If the block ends first (the separator was
//! shortened, or the key's versions continue in the next block) it goes on with the
//! next block, whose first entry then decides.
//!
//! Data block checksums: each data block's crc is checked the first time any reader
//! touches it, and the block's bit is then set in `verified` (one `AtomicU64` per 64
//! blocks, `Relaxed`: the bytes are immutable, the bit only saves work; two threads
//! may both verify). Later reads skip the crc. A 4 KiB crc costs about as much as the
//! rest of a lookup, and the mapped file cannot change under us (DESIGN: mmap only
//! immutable, synced files).

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use vfs::{Fs, Mapped};

use crate::block::{Block, Found};
use crate::bloom::BloomParams;
use crate::entry::{compare, EntryRef};
use crate::error::Error;
use crate::format::{BlockKind, Handle};
use crate::info::TableInfo;
use crate::open::{checked_block, contents_range, key_prefix, validate, IndexEntry};

/// A table opened for reading. Cheap to clone (an `Arc` inside); `Send + Sync`.
#[derive(Clone)]
pub struct Table {
    inner: Arc<Inner>,
}

struct Inner {
    bytes: Mapped,
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
    /// Bit `i` set: data block `i`'s checksum has been verified.
    verified: Box<[AtomicU64]>,
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
        let bytes = fs
            .map(path)
            .map_err(|e| Error::io(format!("mapping table {}", path.display()), e))?;
        Table::from_bytes(bytes)
    }

    /// Validates `bytes` as a whole table file (for tests and fuzzing; `open` uses it).
    pub fn from_bytes(bytes: Mapped) -> Result<Table, Error> {
        let layout = validate(&bytes)?;
        let words = layout.blocks.len().div_ceil(64);
        let verified = (0..words).map(|_| AtomicU64::new(0)).collect();
        let prefixes = layout
            .blocks
            .iter()
            .map(|e| key_prefix(separator(&bytes, e)))
            .collect();
        Ok(Table {
            inner: Arc::new(Inner {
                bytes,
                info: layout.info,
                index: layout.index,
                filter: layout.filter,
                meta: layout.meta,
                filter_lines: layout.filter_lines,
                bloom: layout.bloom,
                prefixes,
                blocks: layout.blocks.into_boxed_slice(),
                verified,
            }),
        })
    }

    /// The table's properties.
    /// Heap bytes this open table holds: its decoded index (entries, key prefixes and
    /// checksum-verified bits). The filter and the blocks stay in the mapped file.
    pub fn index_memory_bytes(&self) -> usize {
        let inner = &self.inner;
        std::mem::size_of_val(&*inner.blocks)
            + std::mem::size_of_val(&*inner.prefixes)
            + std::mem::size_of_val(&*inner.verified)
    }

    /// Bytes of the bloom filter, read through the file mapping.
    pub fn filter_bytes(&self) -> usize {
        self.inner.filter_lines.len()
    }

    pub fn info(&self) -> &TableInfo {
        &self.inner.info
    }

    /// The newest version of `key` with seqno <= `snapshot`, tombstones included
    /// (the caller decides what a `Kind::Delete` means).
    pub fn get(&self, key: &[u8], snapshot: u64) -> Result<Option<EntryRef<'_>>, Error> {
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
            let (block, _) = self.data_block(i)?;
            match block.find(key, snapshot)? {
                Found::Entry(e) => return Ok(Some(e)),
                Found::Absent => return Ok(None),
                Found::End => i += 1,
            }
        }
        Ok(None)
    }

    /// False only if no version of `key` is in the table (bloom filter).
    pub fn may_contain(&self, key: &[u8]) -> bool {
        let lines = self
            .inner
            .bytes
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

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.inner.bytes
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
        let bytes = self.bytes();
        let candidates = self.inner.blocks.get(lo..lo + tied).unwrap_or_default();
        lo + candidates.partition_point(|e| {
            compare(separator(bytes, e), e.seqno, key, seqno) == std::cmp::Ordering::Less
        })
    }

    /// Data block `i` (< `num_blocks()`), checksum-verified on first use, and the
    /// range of its contents in the file.
    pub(crate) fn data_block(&self, i: usize) -> Result<(Block<'_>, Range<usize>), Error> {
        let handle = self
            .inner
            .blocks
            .get(i)
            .ok_or_else(|| {
                Error::corrupt(self.inner.index.offset, "data block number past the index")
            })?
            .handle;
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let flag = self.inner.verified.get(word);
        let known_good = flag.is_some_and(|w| w.load(AtomicOrdering::Relaxed) & bit != 0);
        let contents = if known_good {
            let range = contents_range(self.inner.bytes.len(), handle)
                .ok_or_else(|| Error::corrupt(handle.offset, "data block handle past the end"))?;
            self.bytes().get(range).unwrap_or_default()
        } else {
            let contents = checked_block(self.bytes(), handle, BlockKind::Data)?;
            if let Some(w) = flag {
                w.fetch_or(bit, AtomicOrdering::Relaxed);
            }
            contents
        };
        let block = Block::parse(contents, handle.offset)?;
        if block.is_empty() {
            return Err(Error::corrupt(handle.offset, "empty data block"));
        }
        let start = handle.offset as usize;
        Ok((block, start..start + contents.len()))
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
    /// found bad by someone who read them from the disk).
    pub(crate) fn forget_verified(&self, i: usize) {
        if let Some(w) = self.inner.verified.get(i / 64) {
            w.fetch_and(!(1u64 << (i % 64)), AtomicOrdering::Relaxed);
        }
    }

    /// A data block already returned by `data_block`, re-read from its range.
    #[inline]
    pub(crate) fn block_at(&self, range: Range<usize>) -> Result<Block<'_>, Error> {
        let offset = range.start as u64;
        let contents = self
            .bytes()
            .get(range)
            .ok_or_else(|| Error::corrupt(offset, "data block past the end"))?;
        Block::parse(contents, offset)
    }
}

/// The separator key of an index entry (validated in bounds at open).
#[inline]
fn separator<'a>(bytes: &'a [u8], e: &IndexEntry) -> &'a [u8] {
    bytes
        .get(e.key_start..e.key_start + e.key_len as usize)
        .unwrap_or_default()
}
