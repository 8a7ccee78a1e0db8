//! A table's loaded tail: its filter, meta and index blocks read into owned memory,
//! validated, and the index decoded for search. A [`Table`](crate::Table) loads this
//! on first use (a lazily opened table) or at open (an eagerly opened one), and then
//! holds it for its life. A cached table's tail is charged to the block cache while
//! held (`CacheCharge`), so indexes and filters share the cache's budget.
//!
//! Loading reads the footer first (`tail.rs`), checks it before trusting its offsets,
//! then reads the tail in one read and validates everything in it (`open::validate`).
//! Nothing here is shared until it is whole: the table publishes a `Loaded` through a
//! `OnceLock`, so a reader sees either no index or a complete, validated one.
//!
//! Invariant: `tail` holds the file's bytes from `tail_base` to its end (filter, meta,
//! index, footer); `filter_lines` and every `IndexEntry::key_start` are file offsets
//! inside it; `prefixes[i]` is `key_prefix` of `blocks[i]`'s separator; `verified` has
//! one bit per data block for a mapped table and is empty for a cached one.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::atomic::AtomicU64;

use crate::bloom::BloomParams;
use crate::cache_charge::CacheCharge;
use crate::entry::compare;
use crate::error::Error;
use crate::format::{BlockKind, Handle};
use crate::info::TableInfo;
use crate::open::{key_prefix, validate, IndexEntry};
use crate::source::Source;
use crate::tail::Tail;

/// A table's validated tail and decoded index (see the module doc).
#[derive(Debug)]
pub(crate) struct Loaded {
    tail: Box<[u8]>,
    tail_base: usize,
    /// The table's properties as its meta block states them.
    pub(crate) info: TableInfo,
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
    /// For a mapped table, bit `i` set: data block `i`'s checksum has been verified.
    pub(crate) verified: Box<[AtomicU64]>,
    /// For a cached table, this memory (index and filter) charged to the block cache
    /// for as long as it is held.
    _charge: Option<CacheCharge>,
}

impl Loaded {
    /// Reads `source`'s tail and validates it.
    pub(crate) fn read(source: &Source) -> Result<Loaded, Error> {
        let (tail, tail_base) = source.read_tail()?;
        let view = Tail::from(&tail, tail_base);
        let layout = validate(&view)?;
        let prefixes = layout
            .blocks
            .iter()
            .map(|e| key_prefix(separator(&view, e)))
            .collect();
        let bits = match source {
            Source::Mapped { .. } => layout.blocks.len().div_ceil(64),
            Source::Cached { .. } => 0,
        };
        let mut loaded = Loaded {
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
            verified: (0..bits).map(|_| AtomicU64::new(0)).collect(),
            _charge: None,
        };
        if let Source::Cached { cache, .. } = source {
            let bytes = loaded.index_memory_bytes() + loaded.filter_bytes();
            loaded._charge = Some(CacheCharge::new(cache, bytes as u64));
        }
        Ok(loaded)
    }

    fn tail(&self) -> Tail<'_> {
        Tail::from(&self.tail, self.tail_base)
    }

    /// Heap bytes held for the index: decoded entries, key prefixes, verified bits,
    /// and the tail less the filter (index and meta blocks, footer).
    pub(crate) fn index_memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.blocks)
            + std::mem::size_of_val(&*self.prefixes)
            + std::mem::size_of_val(&*self.verified)
            + self.tail.len().saturating_sub(self.filter_bytes())
    }

    /// Heap bytes of the bloom filter (held in the tail).
    pub(crate) fn filter_bytes(&self) -> usize {
        self.filter_lines.len()
    }

    /// False only if no version of `key` is in the table (bloom filter).
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        let lines = self
            .tail()
            .get(self.filter_lines.clone())
            .unwrap_or_default();
        self.bloom.may_contain(lines, key)
    }

    /// Every block of the file in file order, with its kind and handle.
    pub(crate) fn blocks(&self) -> Vec<(BlockKind, Handle)> {
        let mut out: Vec<_> = self
            .blocks
            .iter()
            .map(|e| (BlockKind::Data, e.handle))
            .collect();
        out.push((BlockKind::Filter, self.filter));
        out.push((BlockKind::Meta, self.meta));
        out.push((BlockKind::Index, self.index));
        out
    }

    /// Number of data blocks.
    pub(crate) fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// File offset of the meta block (where a disagreement about properties is).
    pub(crate) fn meta_offset(&self) -> u64 {
        self.meta.offset
    }

    /// The first data block whose separator is at or after `(key, seqno)`;
    /// `num_blocks()` if there is none.
    pub(crate) fn index_search(&self, key: &[u8], seqno: u64) -> usize {
        // Separators whose prefix is below the key's are before the target, those
        // above are after it; only equal prefixes need the whole key compared.
        let prefix = key_prefix(key);
        let lo = self.prefixes.partition_point(|&p| p < prefix);
        let tied = self
            .prefixes
            .get(lo..)
            .unwrap_or_default()
            .partition_point(|&p| p == prefix);
        let tail = self.tail();
        let candidates = self.blocks.get(lo..lo + tied).unwrap_or_default();
        lo + candidates.partition_point(|e| {
            compare(separator(&tail, e), e.seqno, key, seqno) == Ordering::Less
        })
    }

    /// The handle of data block `i`, if there is one.
    pub(crate) fn handle(&self, i: usize) -> Option<Handle> {
        self.blocks.get(i).map(|e| e.handle)
    }

    /// The handle of data block `i`, or a corruption error past the index.
    pub(crate) fn handle_of(&self, i: usize) -> Result<Handle, Error> {
        self.handle(i)
            .ok_or_else(|| Error::corrupt(self.index.offset, "data block number past the index"))
    }

    /// File offset just past the last data block (where the filter block starts).
    pub(crate) fn data_end(&self) -> u64 {
        self.filter.offset
    }
}

/// The separator key of an index entry (validated in bounds when loaded).
#[inline]
fn separator<'a>(bytes: &Tail<'a>, e: &IndexEntry) -> &'a [u8] {
    bytes
        .get(e.key_start..e.key_start + e.key_len as usize)
        .unwrap_or_default()
}
