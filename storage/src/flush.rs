//! Writing a memtable out as one level-0 table.
//!
//! Used by the flush thread (for the frozen memtable) and by recovery (when replayed
//! WAL records fill a memtable). Versions no reader can see (shadowed within a
//! snapshot stripe, see `compaction.rs`) are left out; tombstones stay (older
//! versions may live in lower levels).

use crate::compaction::VersionFilter;
use crate::edit::TableMeta;
use crate::error::Error;
use crate::memtable::Memtable;
use crate::options::Options;
use crate::table_file::{remove_tables, TableWriter};
use std::path::Path;
use std::sync::Arc;
use vfs::Fs;

/// Writes `mem` to table `number` in `dir` (fsynced; the caller syncs the directory).
/// None when the memtable is empty (no file is left behind).
pub fn write_memtable(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    opts: &Options,
    mem: &Memtable,
    snapshots: Vec<u64>,
    number: u64,
) -> Result<Option<TableMeta>, Error> {
    if mem.is_empty() {
        return Ok(None);
    }
    let mut writer = TableWriter::create(fs, dir, number, opts, None)?;
    let mut filter = VersionFilter::new(snapshots, false);
    let written = mem.for_each(|e| {
        if filter.keep(e.key(), e.seqno(), e.kind()).0 {
            writer.add(e.key(), e.seqno(), e.kind(), e.value())?;
        }
        Ok::<(), Error>(())
    });
    let result = written.and_then(|()| writer.finish());
    match result {
        Ok(meta) => Ok(Some(meta)),
        Err(e) => {
            remove_tables(fs, dir, [number]);
            Err(e)
        }
    }
}
