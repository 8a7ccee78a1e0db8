//! Dropping records from either end of the log.
//!
//! `truncate_prefix` deletes whole old segments (never the active one); it is how the
//! storage engine and the consensus log give back space once the records are
//! applied elsewhere. `truncate_suffix` drops the newest records so the consensus
//! layer can overwrite unchosen entries; it is durable on return.
//!
//! Crash safety: both only ever leave a *contiguous* run of segments on disk at every
//! step. Segment files are removed one at a time, each removal made durable
//! (`sync_dir`) before the next, oldest first for a prefix, newest first for a
//! suffix; a suffix cut inside a segment happens last (`set_len` + `sync_data`). So
//! a crash part-way leaves a log that is a prefix of the old one (suffix) or a suffix
//! of it (prefix), and open accepts it.

use crate::error::Error;
use crate::writer::Writer;
use crate::{lock, read_index, write_index, Wal};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use vfs::FileWrite;

impl Wal {
    pub(crate) fn truncate_prefix_inner(&self, index: u64) -> Result<(), Error> {
        let _maintenance = lock(&self.maintenance);
        let doomed: Vec<PathBuf> = {
            let mut idx = write_index(&self.shared.index);
            let n = idx.segments.len();
            let count = (0..n - 1)
                .take_while(|&k| idx.segments[k + 1].first_index <= index)
                .count();
            idx.segments.drain(..count).map(|s| s.path).collect()
        };
        for path in &doomed {
            self.remove_segment(path)?;
        }
        Ok(())
    }

    pub(crate) fn truncate_suffix_inner(&self, index: u64) -> Result<(), Error> {
        let _maintenance = lock(&self.maintenance);
        let mut q = self.quiesce()?;
        if index >= q.next_index {
            return Ok(());
        }
        if !self.shared.opts.index_records {
            return Err(Error::Unindexed { index });
        }
        let first = read_index(&self.shared.index).first_index();
        if index < first {
            return Err(Error::OutOfRange {
                index,
                first,
                next: q.next_index,
            });
        }
        let result = {
            let mut w = lock(&self.writer);
            self.cut_suffix(&mut w, index)
        };
        match result {
            Ok(()) => {
                q.next_index = index;
                // Everything still in the log was synced by the cut.
                q.synced_seq = q.appended_seq;
            }
            Err(_) => q.poisoned = true,
        }
        self.wake_all(&q);
        result
    }

    /// Drops records `>= index` (which the log holds, quiesced, writer held).
    fn cut_suffix(&self, w: &mut Writer, index: u64) -> Result<(), Error> {
        let (doomed, keep_path, cut_at, keep_is_last) = {
            let mut idx = write_index(&self.shared.index);
            idx.generation += 1;
            let k = idx.segments.partition_point(|s| s.first_index <= index) - 1;
            let keep_is_last = k + 1 == idx.segments.len();
            let doomed: Vec<PathBuf> = idx.segments.drain(k + 1..).map(|s| s.path).collect();
            let seg = idx.last_mut();
            let keep = (index - seg.first_index) as usize;
            let cut_at = seg.offset_of(index);
            seg.offsets.truncate(keep);
            seg.end = cut_at;
            (doomed, seg.path.clone(), cut_at, keep_is_last)
        };
        for path in doomed.iter().rev() {
            self.remove_segment(path)?;
        }
        if !keep_is_last {
            let file = self
                .shared
                .fs
                .open_append(&keep_path)
                .map_err(|e| Error::io(format!("open {}", keep_path.display()), e))?;
            *w = Writer::new(file, keep_path.clone(), self.shared.opts.bytes_per_sync);
        }
        w.file
            .set_len(cut_at)
            .map_err(|e| Error::io(format!("cut {} to {cut_at} bytes", keep_path.display()), e))?;
        w.sync_always(&self.shared)
    }

    /// Removes one segment file and makes the removal durable.
    fn remove_segment(&self, path: &Path) -> Result<(), Error> {
        let sh = &self.shared;
        sh.fs
            .remove_file(path)
            .map_err(|e| Error::io(format!("remove {}", path.display()), e))?;
        sh.fs
            .sync_dir(&sh.dir)
            .map_err(|e| Error::io(format!("sync dir {}", sh.dir.display()), e))?;
        sh.stats.dir_syncs.fetch_add(1, Relaxed);
        sh.stats.segments_removed.fetch_add(1, Relaxed);
        Ok(())
    }
}
