//! The active segment: writes encoded groups to it, rolls to a new segment when it is
//! full, and syncs it.
//!
//! Only the group-commit leader (or a truncation holding leadership) touches the
//! [`Writer`], so each group costs one `write_all` (two if it crosses a segment
//! boundary) and, when anyone in it asked for durability, one `sync_data`.
//!
//! Invariants: every segment but the last is fully synced before the next one is
//! created (so a power loss can only tear the last segment); a new segment's header is
//! synced and its directory entry made durable (`sync_dir`) before any record goes in.

use crate::error::Error;
use crate::format::{self, le_u32, RECORD_HEADER_LEN, SEGMENT_HEADER_BYTES};
use crate::offsets::Offsets;
use crate::segment::SegmentIndex;
use crate::{write_index, Shared};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use vfs::{FileWrite, Fs, Layered, WriteBack};

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct Writer {
    /// Written back every `Options::bytes_per_sync` unsynced bytes, so unsynced
    /// appends never pile up into one long fdatasync: under a steady put load the
    /// storage engine's log is written without durability for thousands of slots, and
    /// its sync at a checkpoint had tens of MB of dirty pages to write (71 ms) where
    /// now it has at most one step.
    pub file: Layered<WriteBack>,
    /// Path of the active segment (for error messages).
    pub path: PathBuf,
    /// True when bytes were written since the last successful `sync_data`.
    pub unsynced: bool,
    /// Offsets of the records of the chunk being written (reused: no allocation per group).
    scratch: Vec<u64>,
}

/// Creates the segment file whose first record will be `first_index`: header written
/// and synced, directory synced. Returns its write handle and its (empty) index entry.
///
/// The file is preallocated to `segment_bytes_max` (sparse, zeros): appends inside it
/// do not change the file's size, so the fdatasync of a durable append has no size
/// change to journal (one data flush, nothing else). Recovery takes the zero tail of
/// the last segment for unwritten room, and a segment is cut to its records when it
/// is sealed, so only the last one ever has such a tail.
pub(crate) fn create_segment(
    fs: &dyn Fs,
    dir: &Path,
    first_index: u64,
    opts: &crate::Options,
    sh_stats: &crate::StatsCounters,
) -> Result<(Box<dyn FileWrite>, SegmentIndex), Error> {
    let segment_bytes_max = opts.segment_bytes_max;
    let path = dir.join(format::segment_file_name(first_index));
    let ctx = |what: &str| format!("{what} new segment {}", path.display());
    let mut file = fs.create(&path).map_err(|e| Error::io(ctx("create"), e))?;
    file.write_all(&format::encode_segment_header(first_index))
        .map_err(|e| Error::io(ctx("write header of"), e))?;
    file.preallocate(segment_bytes_max)
        .map_err(|e| Error::io(ctx("preallocate"), e))?;
    let started = std::time::Instant::now();
    file.sync_data().map_err(|e| Error::io(ctx("sync"), e))?;
    sh_stats.sync_latency.0.observe_duration(started.elapsed());
    sh_stats.data_syncs.fetch_add(1, Relaxed);
    fs.sync_dir(dir)
        .map_err(|e| Error::io(format!("sync dir {}", dir.display()), e))?;
    sh_stats.dir_syncs.fetch_add(1, Relaxed);
    let read = fs.open_read(&path).map_err(|e| Error::io(ctx("open"), e))?;
    let seg = SegmentIndex {
        first_index,
        path,
        file: read,
        offsets: Offsets::new(opts.index_records),
        end: SEGMENT_HEADER_BYTES,
    };
    Ok((file, seg))
}

impl Writer {
    /// The writer of the active segment `file` at `path`.
    pub fn new(file: Box<dyn FileWrite>, path: PathBuf, bytes_per_sync: u64) -> Writer {
        Writer {
            file: WriteBack::wrap(file, bytes_per_sync),
            path,
            unsynced: false,
            scratch: Vec::new(),
        }
    }

    /// Writes `group` (whole encoded records, the first with index `first_index`) to
    /// the log, rolling segments as they fill, and publishes the records in the index.
    pub fn write_group(
        &mut self,
        sh: &Shared,
        group: &[u8],
        first_index: u64,
    ) -> Result<(), Error> {
        let max = sh.opts.segment_bytes_max;
        let mut index = first_index;
        let mut pos = 0usize;
        let mut chunk = 0usize;
        let mut base = self.file.len();
        self.scratch.clear();
        while pos < group.len() {
            let record_bytes = RECORD_HEADER_LEN + le_u32(group, pos) as usize;
            let at = base + (pos - chunk) as u64;
            if at > SEGMENT_HEADER_BYTES && at + record_bytes as u64 > max {
                self.write_chunk(sh, &group[chunk..pos])?;
                self.roll(sh, index)?;
                chunk = pos;
                base = self.file.len();
            }
            self.scratch.push(base + (pos - chunk) as u64);
            pos += record_bytes;
            index += 1;
        }
        assert_eq!(pos, group.len(), "a group holds whole records");
        self.write_chunk(sh, &group[chunk..])
    }

    /// One `write_all` of whole records to the active segment, then publishes them.
    fn write_chunk(&mut self, sh: &Shared, bytes: &[u8]) -> Result<(), Error> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.write_all(bytes).map_err(|e| {
            Error::io(
                format!("write {} bytes to {}", bytes.len(), self.path.display()),
                e,
            )
        })?;
        self.unsynced = true;
        sh.stats.writes.fetch_add(1, Relaxed);
        sh.stats
            .bytes_written
            .fetch_add(bytes.len() as u64, Relaxed);
        let mut idx = write_index(&sh.index);
        let seg = idx.last_mut();
        for &offset in &self.scratch {
            // `Options::validate` keeps segments within 32-bit offsets.
            if seg.offsets.push(offset).is_none() {
                return Err(Error::TooLarge {
                    len: offset,
                    max: crate::SEGMENT_BYTES_LIMIT,
                });
            }
        }
        seg.end = self.file.len();
        self.scratch.clear();
        drop(idx);
        let handed = self.file.layer_mut().take_written_back();
        sh.stats.written_back_bytes.fetch_add(handed, Relaxed);
        Ok(())
    }

    /// Seals the active segment (cut to its records, synced) and starts a new one at
    /// `first_index`.
    fn roll(&mut self, sh: &Shared, first_index: u64) -> Result<(), Error> {
        let end = self.file.len();
        self.file
            .set_len(end)
            .map_err(|e| Error::io(format!("seal {}", self.path.display()), e))?;
        self.sync_always(sh)?;
        let (file, seg) =
            create_segment(sh.fs.as_ref(), &sh.dir, first_index, &sh.opts, &sh.stats)?;
        self.file = WriteBack::wrap(file, sh.opts.bytes_per_sync);
        self.path = seg.path.clone();
        self.unsynced = false;
        write_index(&sh.index).segments.push(seg);
        sh.stats.segments_created.fetch_add(1, Relaxed);
        Ok(())
    }

    /// fdatasync of the active segment, if anything was written since the last one.
    pub fn sync(&mut self, sh: &Shared) -> Result<(), Error> {
        if !self.unsynced {
            return Ok(());
        }
        self.sync_always(sh)
    }

    /// fdatasync of the active segment, unconditionally (after `set_len`).
    pub fn sync_always(&mut self, sh: &Shared) -> Result<(), Error> {
        let started = std::time::Instant::now();
        self.file
            .sync_data()
            .map_err(|e| Error::io(format!("fdatasync {}", self.path.display()), e))?;
        sh.stats.sync_latency.0.observe_duration(started.elapsed());
        sh.stats.data_syncs.fetch_add(1, Relaxed);
        self.unsynced = false;
        Ok(())
    }
}
