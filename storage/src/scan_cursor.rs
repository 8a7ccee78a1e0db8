//! `ScanCursor`: compaction's input cursor over a run of tables, read one after the
//! other with [`sstable::TableScan`] (positioned reads, every block checked each
//! time it is read; see `sstable/src/scan.rs` for why compaction must not read through
//! the memory map or trust the readers' once-per-process check).
//!
//! A run is one level-0 table, or a whole sorted level (disjoint tables in key order,
//! so their concatenation is in engine order). One table's file is open at a time.
//!
//! Invariant: `valid()` implies `scan` is on an entry of `tables[at]`.

use crate::error::Error;
use crate::version::{table_file_name, TableHandle};
use sstable::{Kind, TableScan};
use std::sync::Arc;

/// A verifying forward cursor over `tables`, in order.
pub struct ScanCursor {
    tables: Vec<Arc<TableHandle>>,
    /// Index of the table `scan` reads; `tables.len()` when exhausted.
    at: usize,
    scan: Option<TableScan>,
}

fn scan_err(number: u64, e: sstable::Error) -> Error {
    Error::table(
        format!("reading table {} for compaction", table_file_name(number)),
        e,
    )
}

impl ScanCursor {
    /// An unpositioned cursor over `tables` (one table, or a sorted level).
    pub fn new(tables: Vec<Arc<TableHandle>>) -> ScanCursor {
        ScanCursor {
            tables,
            at: 0,
            scan: None,
        }
    }

    /// Positions at the first entry of the first table that has one.
    pub fn seek_to_first(&mut self) -> Result<(), Error> {
        self.enter(0)
    }

    /// Positions at the first entry with user key >= `key`, by scanning from the
    /// start (compaction never seeks; this keeps the cursor a complete source).
    pub fn seek(&mut self, key: &[u8]) -> Result<(), Error> {
        self.seek_to_first()?;
        while self.valid() && self.key() < key {
            self.next()?;
        }
        Ok(())
    }

    /// Opens table `at` (and the ones after it while they are empty).
    fn enter(&mut self, mut at: usize) -> Result<(), Error> {
        self.scan = None;
        while let Some(t) = self.tables.get(at) {
            self.at = at;
            let mut scan = t.scan()?;
            scan.seek_to_first()
                .map_err(|e| scan_err(t.meta.number, e))?;
            if scan.valid() {
                self.scan = Some(scan);
                return Ok(());
            }
            at += 1;
        }
        self.at = self.tables.len();
        Ok(())
    }

    /// True when positioned at a version.
    #[inline]
    pub fn valid(&self) -> bool {
        self.scan.as_ref().is_some_and(TableScan::valid)
    }

    #[inline]
    fn cur(&self) -> &TableScan {
        match &self.scan {
            Some(s) => s,
            None => panic!("ScanCursor used while invalid"),
        }
    }

    /// Current user key. Requires `valid()`.
    #[inline]
    pub fn key(&self) -> &[u8] {
        self.cur().key()
    }

    /// Current seqno. Requires `valid()`.
    #[inline]
    pub fn seqno(&self) -> u64 {
        self.cur().seqno()
    }

    /// Current kind. Requires `valid()`.
    #[inline]
    pub fn kind(&self) -> Kind {
        self.cur().kind()
    }

    /// Current value. Requires `valid()`.
    #[inline]
    pub fn value(&self) -> &[u8] {
        self.cur().value()
    }

    /// Moves to the next version, into the next table when this one ends.
    pub fn next(&mut self) -> Result<(), Error> {
        let number = self.tables.get(self.at).map_or(0, |t| t.meta.number);
        let Some(scan) = &mut self.scan else {
            return Ok(());
        };
        scan.next().map_err(|e| scan_err(number, e))?;
        if !scan.valid() {
            self.enter(self.at + 1)?;
        }
        Ok(())
    }
}
