//! `TableIter`: a cursor over a table's entries in table order.
//!
//! It owns a clone of the [`Table`] (so it can outlive the borrow it came from) and
//! holds the current data block (a range of the map, or a shared buffer from the
//! block cache or its own read-ahead); each step decodes one entry into a key buffer
//! it reuses, so `next` allocates nothing once the buffer has grown to the longest
//! key. `value()` is a slice of the held block.
//!
//! A seek, and the first `CACHED_STEPS` blocks stepped into after it, read as a point
//! lookup does (through the cache); from then on the cursor reads ahead
//! (`Table::next_data_block`, 16 KiB doubling to `READ_AHEAD_BYTES`), so a long scan
//! of a cached table costs one read per window and leaves the cache as it was.
//!
//! Invariant: `valid()` implies the cursor sits on an entry of block `block_no`,
//! whose contents are `held`. After an error the cursor is invalid until the next
//! seek.

use std::ops::Range;
use std::sync::Arc;

use crate::block::Cursor;
use crate::entry::Kind;
use crate::error::Error;
use crate::source::{BlockBytes, Run};
use crate::table::{parse_data, Table};

/// Blocks a cursor steps into after a seek through the cache before it reads ahead.
const CACHED_STEPS: u32 = 2;

/// The current block's contents, owned so the cursor can keep them between calls.
#[derive(Debug, Clone)]
enum Held {
    /// Nothing yet.
    None,
    /// This file range of a mapped table (the table keeps the map alive).
    Mapped(Range<usize>),
    /// `range` of a cache or read-ahead buffer.
    Shared { buf: Arc<[u8]>, range: Range<usize> },
}

/// A cursor over a table: `seek_to_first` / `seek`, then `valid`, `key`, `seqno`,
/// `kind`, `value`, `next`. Not positioned (invalid) when created.
#[derive(Debug)]
pub struct TableIter {
    table: Table,
    block_no: usize,
    /// File offset of the current block's contents.
    block_offset: u64,
    held: Held,
    /// Bytes read ahead for the blocks after this one (cached tables).
    run: Option<Run>,
    /// Blocks entered in order since the last seek.
    steps: u32,
    cursor: Cursor,
}

impl Table {
    /// A cursor over the table's entries; position it with `seek_to_first` or `seek`.
    pub fn iter(&self) -> TableIter {
        TableIter::new(self.clone())
    }
}

impl TableIter {
    fn new(table: Table) -> TableIter {
        TableIter {
            table,
            block_no: 0,
            block_offset: 0,
            held: Held::None,
            run: None,
            steps: 0,
            cursor: Cursor::new(),
        }
    }

    /// Moves to the table's first entry (invalid if the table is empty).
    pub fn seek_to_first(&mut self) -> Result<(), Error> {
        self.cursor.valid = false;
        self.steps = 0;
        self.enter_block(0)
    }

    /// Moves to the first entry whose user key is >= `key` (its newest version).
    pub fn seek(&mut self, key: &[u8]) -> Result<(), Error> {
        self.seek_version(key, u64::MAX)
    }

    /// Moves to the first entry at or after `(key, seqno)` in table order: the newest
    /// version of `key` with seqno <= `seqno` if there is one, else the next entry.
    pub fn seek_version(&mut self, key: &[u8], seqno: u64) -> Result<(), Error> {
        self.cursor.valid = false;
        self.steps = 0;
        let table = &self.table;
        let i = table.index_search(key, seqno)?;
        if i >= table.data_blocks()? {
            return Ok(());
        }
        let (bytes, offset) = table.data_block(i)?;
        let block = parse_data(bytes.contents(), offset)?;
        self.cursor.seek(&block, key, seqno)?;
        self.held = hold(&bytes);
        self.block_no = i;
        self.block_offset = offset;
        if !self.cursor.valid {
            // Every entry of block i is before the target: the next block's first is not.
            self.enter_block(i + 1)?;
        }
        Ok(())
    }

    /// True when the cursor is on an entry.
    #[inline]
    pub fn valid(&self) -> bool {
        self.cursor.valid
    }

    /// The current entry's user key.
    ///
    /// # Panics
    /// If the cursor is not valid (a caller bug).
    #[inline]
    pub fn key(&self) -> &[u8] {
        assert!(self.cursor.valid, "TableIter::key on an invalid cursor");
        &self.cursor.key
    }

    /// The current entry's seqno. Panics if not valid.
    #[inline]
    pub fn seqno(&self) -> u64 {
        assert!(self.cursor.valid, "TableIter::seqno on an invalid cursor");
        self.cursor.seqno
    }

    /// The current entry's kind. Panics if not valid.
    #[inline]
    pub fn kind(&self) -> Kind {
        assert!(self.cursor.valid, "TableIter::kind on an invalid cursor");
        self.cursor.kind
    }

    /// The current entry's value, a slice of the held block. Panics if not valid.
    #[inline]
    pub fn value(&self) -> &[u8] {
        assert!(self.cursor.valid, "TableIter::value on an invalid cursor");
        let start = self.cursor.value_at;
        contents(&self.held, &self.table)
            .get(start..start + self.cursor.value_len)
            .unwrap_or_default()
    }

    /// Moves to the next entry; invalid after the last one. Panics if not valid.
    #[inline]
    #[expect(
        clippy::should_implement_trait,
        reason = "a fallible cursor step (docs/interfaces.md), not an Iterator"
    )]
    pub fn next(&mut self) -> Result<(), Error> {
        assert!(self.cursor.valid, "TableIter::next on an invalid cursor");
        let block = parse_data(contents(&self.held, &self.table), self.block_offset)?;
        if let Err(e) = self.cursor.step(&block) {
            self.cursor.valid = false;
            return Err(e);
        }
        if !self.cursor.valid {
            self.enter_block(self.block_no + 1)?;
        }
        Ok(())
    }

    /// Positions on the first entry of block `i`, or invalid past the last block.
    fn enter_block(&mut self, i: usize) -> Result<(), Error> {
        let table = &self.table;
        if i >= table.data_blocks()? {
            self.cursor.valid = false;
            return Ok(());
        }
        let (bytes, offset) = if self.steps < CACHED_STEPS {
            table.data_block(i)?
        } else {
            table.next_data_block(i, &mut self.run)?
        };
        self.steps = self.steps.saturating_add(1);
        let block = parse_data(bytes.contents(), offset)?;
        self.cursor.seek_to_first(&block)?;
        self.held = hold(&bytes);
        self.block_no = i;
        self.block_offset = offset;
        Ok(())
    }
}

/// What a cursor keeps of a block it read: the map range, or the shared buffer.
fn hold(bytes: &BlockBytes<'_>) -> Held {
    match bytes {
        BlockBytes::Mapped { range, .. } => Held::Mapped(range.clone()),
        BlockBytes::Shared { buf, range } => Held::Shared {
            buf: Arc::clone(buf),
            range: range.clone(),
        },
    }
}

/// The held block's contents.
#[inline]
fn contents<'a>(held: &'a Held, table: &'a Table) -> &'a [u8] {
    match held {
        Held::None => &[],
        Held::Mapped(range) => table.mapped_bytes().get(range.clone()).unwrap_or_default(),
        Held::Shared { buf, range } => buf.get(range.clone()).unwrap_or_default(),
    }
}
