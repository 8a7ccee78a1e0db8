//! `TableIter`: a cursor over a table's entries in table order.
//!
//! It owns a clone of the [`Table`] (so it can outlive the borrow it came from) and
//! remembers where the current data block lies; each step decodes one entry into a
//! key buffer it reuses, so `next` allocates nothing once the buffer has grown to
//! the longest key. `value()` is a slice of the mapped file.
//!
//! Invariant: `valid()` implies the cursor sits on an entry of block `block_no`,
//! whose contents are `block_range` of the file. After an error the cursor is invalid
//! until the next seek.

use std::ops::Range;

use crate::block::Cursor;
use crate::entry::Kind;
use crate::error::Error;
use crate::table::Table;

/// A cursor over a table: `seek_to_first` / `seek`, then `valid`, `key`, `seqno`,
/// `kind`, `value`, `next`. Not positioned (invalid) when created.
#[derive(Debug)]
pub struct TableIter {
    table: Table,
    block_no: usize,
    block_range: Range<usize>,
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
            block_range: 0..0,
            cursor: Cursor::new(),
        }
    }

    /// Moves to the table's first entry (invalid if the table is empty).
    pub fn seek_to_first(&mut self) -> Result<(), Error> {
        self.cursor.valid = false;
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
        let table = &self.table;
        let i = table.index_search(key, seqno);
        if i >= table.num_blocks() {
            return Ok(());
        }
        let (block, range) = table.data_block(i)?;
        self.cursor.seek(&block, key, seqno)?;
        self.block_no = i;
        self.block_range = range;
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

    /// The current entry's value, a slice of the mapped file. Panics if not valid.
    #[inline]
    pub fn value(&self) -> &[u8] {
        assert!(self.cursor.valid, "TableIter::value on an invalid cursor");
        let start = self.block_range.start + self.cursor.value_at;
        self.table
            .bytes()
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
        let block = self.table.block_at(self.block_range.clone())?;
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
        if i >= table.num_blocks() {
            self.cursor.valid = false;
            return Ok(());
        }
        let (block, range) = table.data_block(i)?;
        self.block_no = i;
        self.block_range = range;
        self.cursor.seek_to_first(&block)
    }
}
