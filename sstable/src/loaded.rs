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
//! The index is searched where it lies, in the tail: a lookup binary-searches the dense
//! `prefixes` array and decodes only the index entries whose prefix ties with its
//! key's; the block it then reads has its handle in `block_ends`. Beside the index
//! block's own bytes, 12 bytes per block are held: the 8-byte prefix and the 4-byte
//! end (a decoded array of whole entries held 40 bytes per block instead of the end).
//!
//! Invariant: `tail` holds the file's bytes from `tail_base` to its end (filter, meta,
//! index, footer), every entry of its index block validated (`open::validate`), so
//! decoding one again cannot fail on good memory; `filter_lines` are file offsets
//! inside it; `prefixes[i]` is `key_prefix` of index entry `i`'s separator and
//! `blocks.handle(i)` its handle; `verified` has one bit per data block for a mapped
//! table and is empty for a cached one.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::atomic::AtomicU64;

use crate::block::Block;
use crate::block_ends::BlockEnds;
use crate::bloom::BloomParams;
use crate::cache_charge::CacheCharge;
use crate::entry::compare;
use crate::error::Error;
use crate::format::{BlockKind, Handle};
use crate::info::TableInfo;
use crate::open::{index_entry, key_prefix, validate};
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
    /// `prefixes[i]` is `key_prefix` of block `i`'s separator: a dense array (8 bytes
    /// per block) that the index search can binary-search within the CPU caches.
    prefixes: Box<[u64]>,
    /// Where each data block ends: their handles.
    blocks: BlockEnds,
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
        let bits = match source {
            Source::Mapped { .. } => layout.prefixes.len().div_ceil(64),
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
            prefixes: layout.prefixes.into_boxed_slice(),
            blocks: BlockEnds::new(layout.block_ends),
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

    /// Heap bytes held for the index: key prefixes, block ends, verified bits, and the
    /// tail less the filter (index and meta blocks, footer).
    pub(crate) fn index_memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.prefixes)
            + self.blocks.memory_bytes()
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
    pub(crate) fn blocks(&self) -> Result<Vec<(BlockKind, Handle)>, Error> {
        let mut out = (0..self.num_blocks())
            .map(|i| Ok((BlockKind::Data, self.handle_of(i)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        out.push((BlockKind::Filter, self.filter));
        out.push((BlockKind::Meta, self.meta));
        out.push((BlockKind::Index, self.index));
        Ok(out)
    }

    /// Number of data blocks.
    pub(crate) fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The index block, as validated at load.
    fn index_block(&self) -> Result<Block<'_>, Error> {
        let start = self.index.offset as usize;
        let contents = self
            .tail()
            .get(start..start + self.index.len as usize)
            .ok_or_else(|| Error::corrupt(self.index.offset, "index block outside the tail"))?;
        Block::parse(contents, self.index.offset)
    }

    /// File offset of the meta block (where a disagreement about properties is).
    pub(crate) fn meta_offset(&self) -> u64 {
        self.meta.offset
    }

    /// The first data block whose separator is at or after `(key, seqno)`;
    /// `num_blocks()` if there is none.
    pub(crate) fn index_search(&self, key: &[u8], seqno: u64) -> Result<usize, Error> {
        // Separators whose prefix is below the key's are before the target, those
        // above are after it; only equal prefixes need the whole key compared.
        let prefix = key_prefix(key);
        let mut lo = self.prefixes.partition_point(|&p| p < prefix);
        let tied = self
            .prefixes
            .get(lo..)
            .unwrap_or_default()
            .partition_point(|&p| p == prefix);
        if tied == 0 {
            return Ok(lo);
        }
        // The first tied entry not below the target, searching [lo, hi).
        let index = self.index_block()?;
        let mut hi = lo + tied;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (e, _) = index_entry(&index, mid as u32)?;
            if compare(e.delta, e.seqno, key, seqno) == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The handle of data block `i`, if there is one.
    #[inline]
    pub(crate) fn handle(&self, i: usize) -> Option<Handle> {
        self.blocks.handle(i)
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
