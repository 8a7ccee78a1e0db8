//! `TableScan`: a table's entries in order, read with positioned reads into a buffer
//! of its own and checked block by block, every time.
//!
//! For whole-table passes whose output outlives their input (compaction). What such
//! a pass reads is written again under a fresh checksum, so it must not trust the
//! readers' once-per-process check (the disk may have changed since), and it must
//! not read through the memory map (an I/O error on a mapped page is a SIGBUS that
//! kills the process, not an error). So each data block is read with
//! [`vfs::FileRead::read_at`] (consecutive blocks together, up to
//! `READ_AHEAD_BYTES` per call) and its trailer (kind and crc) is checked before any
//! entry of it is decoded. A block that fails the check is also marked unverified in
//! the [`Table`] (or dropped from the block cache), so readers check it again too.
//!
//! Where the blocks are comes from the table's index, decoded and checked at open.
//!
//! Invariant: when `valid()`, the cursor sits on an entry of block `block_no`, whose
//! checked contents are `buf[block]`.

use std::ops::Range;
use std::sync::Arc;

use vfs::FileRead;

use crate::block::{Block, Cursor};
use crate::entry::Kind;
use crate::error::Error;
use crate::format::{BlockKind, BLOCK_TRAILER_LEN};
use crate::open::check_trailer;
use crate::table::Table;

/// Bytes of consecutive data blocks read with one `read_at` (a larger block is read
/// alone, whole).
pub const READ_AHEAD_BYTES: u64 = 256 << 10;

/// A verifying forward cursor over a table: `seek_to_first`, then `valid`, `key`,
/// `seqno`, `kind`, `value`, `next`. Not positioned (invalid) when created.
#[derive(Debug)]
pub struct TableScan {
    table: Table,
    file: Arc<dyn FileRead>,
    /// Bytes read from the file, starting at file offset `buf_offset`.
    buf: Vec<u8>,
    buf_offset: u64,
    block_no: usize,
    /// The current block's checked contents, as a range of `buf`.
    block: Range<usize>,
    cursor: Cursor,
}

impl TableScan {
    /// A scan of `table` reading from `file`, which must be the table's own file.
    pub fn new(table: &Table, file: Arc<dyn FileRead>) -> TableScan {
        TableScan {
            table: table.clone(),
            file,
            buf: Vec::new(),
            buf_offset: 0,
            block_no: 0,
            block: 0..0,
            cursor: Cursor::new(),
        }
    }

    /// Moves to the table's first entry (invalid if the table is empty).
    pub fn seek_to_first(&mut self) -> Result<(), Error> {
        self.cursor.valid = false;
        self.enter_block(0)
    }

    /// True when the scan is on an entry.
    #[inline]
    pub fn valid(&self) -> bool {
        self.cursor.valid
    }

    /// The current entry's user key. Panics if not valid (a caller bug).
    #[inline]
    pub fn key(&self) -> &[u8] {
        assert!(self.cursor.valid, "TableScan::key on an invalid scan");
        &self.cursor.key
    }

    /// The current entry's seqno. Panics if not valid.
    #[inline]
    pub fn seqno(&self) -> u64 {
        assert!(self.cursor.valid, "TableScan::seqno on an invalid scan");
        self.cursor.seqno
    }

    /// The current entry's kind. Panics if not valid.
    #[inline]
    pub fn kind(&self) -> Kind {
        assert!(self.cursor.valid, "TableScan::kind on an invalid scan");
        self.cursor.kind
    }

    /// The current entry's value (valid until the next step). Panics if not valid.
    #[inline]
    pub fn value(&self) -> &[u8] {
        assert!(self.cursor.valid, "TableScan::value on an invalid scan");
        let start = self.block.start + self.cursor.value_at;
        self.buf
            .get(start..start + self.cursor.value_len)
            .unwrap_or_default()
    }

    /// Moves to the next entry; invalid after the last one. Panics if not valid.
    #[expect(
        clippy::should_implement_trait,
        reason = "a fallible cursor step, like TableIter::next"
    )]
    pub fn next(&mut self) -> Result<(), Error> {
        assert!(self.cursor.valid, "TableScan::next on an invalid scan");
        let offset = self.buf_offset + self.block.start as u64;
        let contents = self.buf.get(self.block.clone()).unwrap_or_default();
        let block = Block::parse(contents, offset)?;
        if let Err(e) = self.cursor.step(&block) {
            self.cursor.valid = false;
            return Err(e);
        }
        if !self.cursor.valid {
            self.enter_block(self.block_no + 1)?;
        }
        Ok(())
    }

    /// Reads and checks block `i` and positions on its first entry; invalid past the
    /// last block.
    fn enter_block(&mut self, i: usize) -> Result<(), Error> {
        self.cursor.valid = false;
        let Some(handle) = self.table.data_block_handle(i)? else {
            return Ok(());
        };
        let need = handle.len as usize + BLOCK_TRAILER_LEN;
        let in_buf = handle
            .offset
            .checked_sub(self.buf_offset)
            .and_then(|at| usize::try_from(at).ok())
            .filter(|&at| at + need <= self.buf.len());
        let at = match in_buf {
            Some(at) => at,
            None => {
                self.fill(handle.offset, need)?;
                0
            }
        };
        let block = self.buf.get(at..at + need).unwrap_or_default();
        let contents = match check_trailer(block, handle.offset, BlockKind::Data) {
            Ok(contents) => contents,
            Err(e) => {
                // Readers trusted this block; make them check it again.
                self.table.forget_verified(i);
                return Err(e);
            }
        };
        let parsed = Block::parse(contents, handle.offset)?;
        if parsed.is_empty() {
            return Err(Error::corrupt(handle.offset, "empty data block"));
        }
        self.cursor.seek_to_first(&parsed)?;
        self.block_no = i;
        self.block = at..at + handle.len as usize;
        Ok(())
    }

    /// Reads `need` bytes at `offset` and, read-ahead, the data blocks after them up
    /// to `READ_AHEAD_BYTES` in all.
    fn fill(&mut self, offset: u64, need: usize) -> Result<(), Error> {
        let data_end = self.table.data_end()?;
        let ahead = READ_AHEAD_BYTES.min(data_end.saturating_sub(offset));
        let len = (need as u64).max(ahead);
        let len = usize::try_from(len)
            .map_err(|_| Error::corrupt(offset, "data block larger than memory"))?;
        self.buf.clear();
        self.buf.resize(len, 0);
        self.buf_offset = offset;
        let read = self.file.read_exact_at(&mut self.buf, offset);
        if let Err(e) = read {
            self.buf.clear();
            return Err(Error::io(
                format!("reading {len} bytes of table data at offset {offset}"),
                e,
            ));
        }
        Ok(())
    }
}
