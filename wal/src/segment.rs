//! The in-memory index of the log: which segment holds each record, at which offset.
//!
//! Built by recovery on open, extended by the group-commit leader after each write,
//! cut by truncation. Reads look a record up here (O(1): segment by binary search,
//! record by position) and read it with one `read_at` through the segment's shared
//! read handle, then check it against its checksums. A log that keeps no offsets
//! (`Options::index_records` false, `offsets.rs`) is read only by iterators, in order:
//! each walks from a segment's start, record header to record header (`walk`).
//!
//! Invariants: segments are sorted and contiguous (`segments[k].next_index() ==
//! segments[k + 1].first_index`); there is always at least one segment (the last is
//! the one being appended to); `offsets` (when kept) are increasing and each record
//! ends where the next begins, the last one at `end`.

use crate::error::Error;
use crate::format::{self, RECORD_HEADER_BYTES, RECORD_HEADER_LEN, SEGMENT_HEADER_BYTES};
use crate::offsets::Offsets;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use vfs::FileRead;

/// One segment file as the index sees it.
#[derive(Debug)]
pub(crate) struct SegmentIndex {
    /// Index of the segment's first record (also in its file name).
    pub first_index: u64,
    pub path: PathBuf,
    pub file: Arc<dyn FileRead>,
    /// Byte offset of each record's header; record `first_index + k` is at
    /// `offsets.get(k)`.
    pub offsets: Offsets,
    /// Byte offset just past the last record (the segment header's end when empty).
    pub end: u64,
}

impl SegmentIndex {
    /// Index one past the segment's last record.
    pub fn next_index(&self) -> u64 {
        self.first_index + self.offsets.len() as u64
    }

    /// Where record `index` starts. Callers hold it to this segment's range.
    pub fn offset_of(&self, index: u64) -> u64 {
        let k = (index - self.first_index) as usize;
        self.offsets.get(k).unwrap_or_else(|| {
            panic!(
                "record {index} is not in the segment from {}",
                self.first_index
            )
        })
    }

    /// Where record `index` (which this segment holds) starts, and its payload length.
    fn locate(&self, index: u64) -> (u64, u64) {
        let start = self.offset_of(index);
        let k = (index - self.first_index) as usize;
        let end = self.offsets.get(k + 1).unwrap_or(self.end);
        (start, end - start - RECORD_HEADER_BYTES)
    }
}

/// All segments of the log, oldest first.
#[derive(Debug)]
pub(crate) struct Index {
    pub segments: Vec<SegmentIndex>,
    pub record_bytes_max: u32,
    /// Bumped by every suffix truncation (bytes read before may be stale).
    pub generation: u64,
}

impl Index {
    pub fn first_index(&self) -> u64 {
        self.segments.first().map_or(1, |s| s.first_index)
    }

    /// One past the last record written to a file (appends still queued are not here).
    pub fn next_index(&self) -> u64 {
        self.segments.last().map_or(1, SegmentIndex::next_index)
    }

    pub fn last_mut(&mut self) -> &mut SegmentIndex {
        let n = self.segments.len();
        assert!(n > 0, "the log always has a segment");
        &mut self.segments[n - 1]
    }

    fn out_of_range(&self, index: u64) -> Error {
        Error::OutOfRange {
            index,
            first: self.first_index(),
            next: self.next_index(),
        }
    }

    /// The segment holding `index`, or `OutOfRange`.
    fn segment_of(&self, index: u64) -> Result<&SegmentIndex, Error> {
        if index < self.first_index() || index >= self.next_index() {
            return Err(self.out_of_range(index));
        }
        let k = self.segments.partition_point(|s| s.first_index <= index);
        Ok(&self.segments[k - 1])
    }

    /// Reads and checks record `index`, returning its payload (one positioned read).
    pub fn read(&self, index: u64) -> Result<Vec<u8>, Error> {
        let seg = self.segment_of(index)?;
        if !seg.offsets.is_kept() {
            return Err(Error::Unindexed { index });
        }
        let (offset, len) = seg.locate(index);
        let mut buf = vec![0u8; RECORD_HEADER_LEN + len as usize];
        seg.file.read_exact_at(&mut buf, offset).map_err(|e| {
            Error::io(
                format!("read record {index} from {}", seg.path.display()),
                e,
            )
        })?;
        check(seg, offset, &buf, index, len, self.record_bytes_max)?;
        buf.copy_within(RECORD_HEADER_LEN.., 0);
        buf.truncate(len as usize);
        Ok(buf)
    }

    /// Reads record `index` through `ahead`, which holds the bytes of a run of records
    /// read in one go: sequential reads cost one `read_at` per `READ_AHEAD_BYTES`.
    fn read_ahead(&self, index: u64, ahead: &mut ReadAhead) -> Result<Vec<u8>, Error> {
        let seg = self.segment_of(index)?;
        let (offset, len) = if seg.offsets.is_kept() {
            seg.locate(index)
        } else {
            self.walk(seg, index, ahead)?
        };
        let total = RECORD_HEADER_BYTES + len;
        self.fill(seg, offset, total, ahead)?;
        let at = (offset - ahead.start) as usize;
        let record = &ahead.bytes[at..at + total as usize];
        check(seg, offset, record, index, len, self.record_bytes_max)?;
        ahead.next = Some((index + 1, offset + total));
        Ok(record[RECORD_HEADER_LEN..].to_vec())
    }

    /// Makes `ahead` hold `seg`'s bytes `offset..offset + need`, reading a run from
    /// `offset` if it does not (at least `need` bytes, `READ_AHEAD_BYTES` if the
    /// segment has them).
    fn fill(
        &self,
        seg: &SegmentIndex,
        offset: u64,
        need: u64,
        ahead: &mut ReadAhead,
    ) -> Result<(), Error> {
        let fresh = ahead.generation == self.generation && ahead.segment_first == seg.first_index;
        if fresh && offset >= ahead.start && offset + need <= ahead.start + ahead.bytes.len() as u64
        {
            return Ok(());
        }
        let want = need.max(READ_AHEAD_BYTES.min(seg.end.saturating_sub(offset)));
        ahead.bytes.resize(want as usize, 0);
        seg.file
            .read_exact_at(&mut ahead.bytes, offset)
            .map_err(|e| Error::io(format!("read from {} at {offset}", seg.path.display()), e))?;
        ahead.generation = self.generation;
        ahead.segment_first = seg.first_index;
        ahead.start = offset;
        Ok(())
    }

    /// Where record `index` starts and its payload length, in a segment that keeps no
    /// offsets: at the segment's start for its first record, else where the record
    /// the iterator read last ended (`ahead.next`), its length from its header. The
    /// length is only bounded here (by the segment's records); the caller checks the
    /// whole record, header checksum included, once.
    fn walk(
        &self,
        seg: &SegmentIndex,
        index: u64,
        ahead: &mut ReadAhead,
    ) -> Result<(u64, u64), Error> {
        let offset = if index == seg.first_index {
            SEGMENT_HEADER_BYTES
        } else {
            match ahead.next {
                Some((next, at)) if next == index && ahead.segment_first == seg.first_index => at,
                _ => return Err(Error::Unindexed { index }),
            }
        };
        if offset + RECORD_HEADER_BYTES > seg.end {
            return Err(Error::Corrupt {
                segment: seg.path.clone(),
                offset,
                reason: format!("record {index} starts past the segment's records"),
            });
        }
        self.fill(seg, offset, RECORD_HEADER_BYTES, ahead)?;
        let at = (offset - ahead.start) as usize;
        let len = format::le_u32(&ahead.bytes[at..at + RECORD_HEADER_LEN], 0);
        if offset + RECORD_HEADER_BYTES + u64::from(len) > seg.end {
            return Err(Error::Corrupt {
                segment: seg.path.clone(),
                offset,
                reason: format!("record {index} runs past the segment's records"),
            });
        }
        Ok((offset, u64::from(len)))
    }
}

/// Checks record bytes read back against their checksums and the index's length.
fn check(
    seg: &SegmentIndex,
    offset: u64,
    record: &[u8],
    index: u64,
    len: u64,
    max: u32,
) -> Result<(), Error> {
    let corrupt = |reason: String| Error::Corrupt {
        segment: seg.path.clone(),
        offset,
        reason,
    };
    let got = format::check_record(record, index, max).map_err(corrupt)?;
    if u64::from(got) != len {
        return Err(corrupt(format!(
            "record {index}: length {got}, index says {len}"
        )));
    }
    Ok(())
}

/// Bytes an iterator reads at once (whole records beyond it are read alone).
const READ_AHEAD_BYTES: u64 = 256 << 10;

/// An iterator's buffer of bytes read ahead from one segment.
#[derive(Debug, Default)]
struct ReadAhead {
    /// `Index::generation` when read: a suffix truncation since invalidates it.
    generation: u64,
    segment_first: u64,
    /// File offset of `bytes[0]`.
    start: u64,
    bytes: Vec<u8>,
    /// The record after the last one read, and where it starts (in segment
    /// `segment_first`, or at its end): how a log without offsets finds it.
    next: Option<(u64, u64)>,
}

/// Iterator over `(index, payload)` from a starting index to the end of the log as it
/// was when the iterator was made. Stops after the first error.
#[derive(Debug)]
pub struct WalIter {
    index: Arc<RwLock<Index>>,
    next: u64,
    end: u64,
    failed: bool,
    ahead: ReadAhead,
}

impl WalIter {
    pub(crate) fn new(index: Arc<RwLock<Index>>, from: u64, end: u64) -> WalIter {
        WalIter {
            index,
            next: from,
            end,
            failed: false,
            ahead: ReadAhead::default(),
        }
    }
}

impl Iterator for WalIter {
    type Item = Result<(u64, Vec<u8>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.next >= self.end {
            return None;
        }
        let at = self.next;
        let got = crate::read_index(&self.index).read_ahead(at, &mut self.ahead);
        match got {
            Ok(payload) => {
                self.next += 1;
                Some(Ok((at, payload)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.end.saturating_sub(self.next)).unwrap_or(usize::MAX);
        if self.failed {
            (0, Some(0))
        } else {
            (0, Some(n))
        }
    }
}
