//! A super version: the memtable, the frozen memtable (if any) and the table version
//! that together hold all data at one moment; the unit readers pin.
//!
//! The engine swaps in a new `Arc<SuperVersion>` on every memtable switch, flush and
//! compaction (under its state lock); readers clone the current `Arc` and then read
//! without locks. Invariant: every write with seqno <= the engine's published last
//! seqno at the time a reader loaded it is in `mem`, `imm` or `version` of every
//! super version installed after that write's memtable insert.

use crate::error::Error;
use crate::memtable::{MemGet, Memtable};
use crate::merge_iter::{LevelIter, Source, TableCursor};
use crate::version::{Found, Version};
use std::sync::Arc;

/// Memtable, frozen memtable and tables (see the module doc).
pub struct SuperVersion {
    /// The memtable taking writes.
    pub mem: Arc<Memtable>,
    /// The frozen memtable waiting to be flushed.
    pub imm: Option<Arc<Memtable>>,
    /// The tables.
    pub version: Arc<Version>,
}

impl SuperVersion {
    /// The value of `key` as of `snapshot`: memtables first, then tables newest first.
    pub fn get(&self, key: &[u8], snapshot: u64) -> Result<Option<Vec<u8>>, Error> {
        for mem in std::iter::once(&self.mem).chain(self.imm.iter()) {
            match mem.get(key, snapshot) {
                MemGet::Value(v) => return Ok(Some(v)),
                MemGet::Deleted => return Ok(None),
                MemGet::Absent => {}
            }
        }
        Ok(match self.version.get(key, snapshot)? {
            Some(Found::Value(v)) => Some(v),
            Some(Found::Deleted) | None => None,
        })
    }

    /// One source per memtable and level-0 table (newest first) and one per sorted level.
    pub fn sources(&self) -> Vec<Source> {
        let mut sources =
            Vec::with_capacity(2 + self.version.levels.iter().map(Vec::len).sum::<usize>());
        sources.push(Source::Mem(self.mem.iter()));
        if let Some(imm) = &self.imm {
            sources.push(Source::Mem(imm.iter()));
        }
        for t in &self.version.levels[0] {
            sources.push(Source::Table(TableCursor::new(t)));
        }
        for level in &self.version.levels[1..] {
            if !level.is_empty() {
                sources.push(Source::Level(LevelIter::new(level.clone())));
            }
        }
        sources
    }
}
