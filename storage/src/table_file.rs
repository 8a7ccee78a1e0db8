//! Writing table files for flushes and compactions: number, build, fsync, open.
//!
//! A table is written straight to its final name `<number>.sst`; until a manifest
//! edit names it, it is garbage that the next open removes. The builder fsyncs the
//! file; [`finish_tables`] fsyncs the directory once for all outputs of a job, then
//! opens them and loads their index and filter (read back and validated here, on the
//! flush or compaction thread, so no read after the job pays for it; only tables
//! opened by recovery load on first use), so an edit only ever names files that are
//! durable and whole.

use crate::edit::TableMeta;
use crate::error::Error;
use crate::options::Options;
use crate::rate_limit::{RateLimited, RateLimiter};
use crate::version::{table_file_name, TableHandle};
use sstable::{BuildOptions, Kind, ReadMode, TableBuilder};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vfs::{Fs, Layered, WriteBack};

/// A table being written.
pub struct TableWriter {
    builder: TableBuilder,
    number: u64,
    path: PathBuf,
}

impl TableWriter {
    /// Creates `<number>.sst` in `dir`, written back every `opts.bytes_per_sync` bytes
    /// (`vfs::WriteBack`) and held to `limiter`'s rate when given (`rate_limit.rs`).
    pub fn create(
        fs: &Arc<dyn Fs>,
        dir: &Path,
        number: u64,
        opts: &Options,
        limiter: Option<Arc<RateLimiter>>,
    ) -> Result<TableWriter, Error> {
        let path = dir.join(table_file_name(number));
        let file = fs
            .create(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let mut file: Box<dyn vfs::FileWrite> =
            Box::new(WriteBack::wrap(file, opts.bytes_per_sync));
        if let Some(limiter) = limiter {
            file = Box::new(Layered::new(file, RateLimited(limiter)));
        }
        let builder = TableBuilder::new(file, build_options(opts));
        Ok(TableWriter {
            builder,
            number,
            path,
        })
    }

    /// Adds one entry (in engine order).
    #[inline]
    pub fn add(&mut self, key: &[u8], seqno: u64, kind: Kind, value: &[u8]) -> Result<(), Error> {
        self.builder
            .add(key, seqno, kind, value)
            .map_err(|e| Error::table(format!("writing {}", self.path.display()), e))
    }

    /// About how large the file is so far.
    pub fn estimated_bytes(&self) -> u64 {
        self.builder.estimated_bytes()
    }

    /// Finishes and fsyncs the file; returns its metadata.
    pub fn finish(self) -> Result<TableMeta, Error> {
        let path = self.path;
        let info = self
            .builder
            .finish()
            .map_err(|e| Error::table(format!("finishing {}", path.display()), e))?;
        Ok(TableMeta {
            number: self.number,
            file_bytes: info.file_bytes,
            entries: info.entries,
            smallest_seqno: info.smallest_seqno,
            largest_seqno: info.largest_seqno,
            smallest_key: info.smallest_key,
            largest_key: info.largest_key,
        })
    }
}

/// The table layout options derived from the engine options.
pub fn build_options(opts: &Options) -> BuildOptions {
    BuildOptions {
        block_bytes: opts.block_bytes,
        restart_interval: 16,
        bloom_bits_per_key: opts.bloom_bits_per_key,
    }
}

/// Fsyncs `dir` (making the new names durable), opens every finished table to read
/// as `mode` says and loads its index and filter.
pub fn finish_tables(
    fs: &Arc<dyn Fs>,
    dir: &Path,
    metas: Vec<TableMeta>,
    mode: &ReadMode,
) -> Result<Vec<Arc<TableHandle>>, Error> {
    if metas.is_empty() {
        return Ok(Vec::new());
    }
    fs.sync_dir(dir)
        .map_err(|e| Error::io(format!("syncing directory {}", dir.display()), e))?;
    metas
        .into_iter()
        .map(|meta| {
            let number = meta.number;
            let handle = TableHandle::open(fs, dir, meta, mode)?;
            handle.table.load().map_err(|e| {
                Error::table(format!("loading table {}", table_file_name(number)), e)
            })?;
            Ok(Arc::new(handle))
        })
        .collect()
}

/// Removes table files of an abandoned job (best effort: open removes leftovers).
pub fn remove_tables(fs: &Arc<dyn Fs>, dir: &Path, numbers: impl IntoIterator<Item = u64>) {
    for n in numbers {
        let _ = fs.remove_file(&dir.join(table_file_name(n)));
    }
}
