//! Opening a log directory: find the segments, check every record, cut a torn tail.
//! Segments are read through one bounded buffer (`seg_reader.rs`): memory does not
//! grow with segment or record sizes.
//!
//! Rules (also in `docs/format-wal.md`):
//! - Segments are the files named `<20-digit first index>.wal`, ordered by that index;
//!   other files are ignored. Indexes must lie in `1..INDEX_LIMIT` (2^63): anything
//!   else is `Corrupt`, so index arithmetic never overflows. An empty directory becomes a new log starting at index 1
//!   (and the directory's own entry is synced in its parent).
//! - Every segment but the last must be whole: valid header naming the same first
//!   index as the file name, then valid records up to exactly the end of the file, and
//!   its last index + 1 must be the next segment's first index. Anything else is
//!   `Corrupt` (a sealed segment was synced before its successor existed, so a crash
//!   cannot damage it).
//! - Record lengths are checked against `format::RECORD_BYTES_LIMIT` (1 GiB), not the
//!   current `record_bytes_max`: a record written under a higher limit is still data.
//! - In the last segment, the first bad record (bad checksum, length past the end of
//!   the file, or above `RECORD_BYTES_LIMIT`) ends the log *if nothing valid follows it*:
//!   the rest is a torn tail from a crash and the file is cut back to the last whole
//!   record (`set_len`). If the next record (index + 1) is found intact
//!   further on, the bad record is damage in the middle of the log: `Corrupt`.
//! - A last segment shorter than its header, or all zeros, was torn while being
//!   created: it is recreated empty.
//! - The last segment is written again and synced once at open: records a crashed
//!   process wrote but never synced are part of the log now, so they must be durable
//!   too, and a sync alone does not write pages an earlier failed fsync dropped.

use crate::error::Error;
use crate::format::{
    self, RECORD_HEADER_BYTES, RECORD_HEADER_LEN, SEGMENT_HEADER_BYTES, SEGMENT_HEADER_LEN,
};
use crate::offsets::Offsets;
use crate::seg_reader::SegReader;
use crate::segment::{Index, SegmentIndex};
use crate::writer::{create_segment, Writer};
use crate::{Options, StatsCounters};
use std::path::Path;
use vfs::Fs;

/// What open found: the index of every record and the writer on the last segment.
pub(crate) struct Recovered {
    pub index: Index,
    pub writer: Writer,
    /// Bytes cut from the end of the last segment (0 after a clean shutdown).
    pub tail_bytes_dropped: u64,
}

/// Records found in one segment: their offsets, and where the valid part ends.
struct Scan {
    offsets: Offsets,
    end: u64,
}

pub(crate) fn recover(
    fs: &dyn Fs,
    dir: &Path,
    opts: &Options,
    stats: &StatsCounters,
) -> Result<Recovered, Error> {
    fs.create_dir_all(dir)
        .map_err(|e| Error::io(format!("create dir {}", dir.display()), e))?;
    let names = fs
        .list_dir(dir)
        .map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
    let mut found: Vec<(u64, String)> = names
        .into_iter()
        .filter_map(|n| format::parse_segment_file_name(&n).map(|i| (i, n)))
        .collect();
    found.sort();
    // Records already in the log may be longer than today's limit (written under a
    // higher one): believe any length up to the format's ceiling that checksums.
    let max = format::RECORD_BYTES_LIMIT;
    let mut index = Index {
        segments: Vec::new(),
        record_bytes_max: max,
        generation: 0,
    };

    let Some(last_k) = found.len().checked_sub(1) else {
        let (file, seg) = create_segment(fs, dir, 1, opts, stats)?;
        // The directory itself may be new: make its entry durable in its parent.
        let parent = vfs::parent_dir(dir);
        fs.sync_dir(parent)
            .map_err(|e| Error::io(format!("sync dir {}", parent.display()), e))?;
        let writer = Writer::new(file, seg.path.clone(), opts.bytes_per_sync);
        index.segments.push(seg);
        return Ok(Recovered {
            index,
            writer,
            tail_bytes_dropped: 0,
        });
    };

    let mut tail_bytes_dropped = 0;
    for (k, (first, name)) in found.iter().enumerate() {
        let (first, is_last) = (*first, k == last_k);
        let path = dir.join(name);
        let corrupt = |offset: u64, reason: String| Error::Corrupt {
            segment: path.clone(),
            offset,
            reason,
        };
        if first == 0 || first >= format::INDEX_LIMIT {
            return Err(corrupt(
                0,
                format!(
                    "segment first index {first} outside 1..{}",
                    format::INDEX_LIMIT
                ),
            ));
        }
        let file = fs
            .open_read(&path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        let len = file
            .len()
            .map_err(|e| Error::io(format!("length of {}", path.display()), e))?;
        let io_err = |e| Error::io(format!("read {}", path.display()), e);
        let mut reader = SegReader::new(file.as_ref(), len, &stats.recovery_buffer_bytes_max);
        if let Some(prev) = index.segments.last() {
            if prev.next_index() != first {
                return Err(corrupt(
                    0,
                    format!(
                        "segment starts at index {first} but the one before ends at {}",
                        prev.next_index() - 1
                    ),
                ));
            }
        }
        if is_last && (len < SEGMENT_HEADER_BYTES || reader.zeros_from(0).map_err(io_err)?) {
            // Torn while being created (its header is written and synced before any record).
            drop(reader);
            drop(file);
            let (file, seg) = create_segment(fs, dir, first, opts, stats)?;
            tail_bytes_dropped = len;
            let writer = Writer::new(file, seg.path.clone(), opts.bytes_per_sync);
            index.segments.push(seg);
            return Ok(Recovered {
                index,
                writer,
                tail_bytes_dropped,
            });
        }
        let header = reader.bytes(0, SEGMENT_HEADER_LEN).map_err(io_err)?;
        let named = format::decode_segment_header(header).map_err(|r| corrupt(0, r))?;
        if named != first {
            return Err(corrupt(
                0,
                format!("header names first index {named}, file name says {first}"),
            ));
        }
        let scan = match scan_records(&mut reader, first, is_last, max, opts.index_records) {
            Ok(scan) => scan,
            Err(ScanError::Io(e)) => return Err(io_err(e)),
            Err(ScanError::Bad(at, reason)) => return Err(corrupt(at, reason)),
        };
        // `first < INDEX_LIMIT`, so this cannot overflow; the records must stay below it.
        if scan.offsets.len() as u64 > format::INDEX_LIMIT - first {
            return Err(corrupt(
                0,
                format!(
                    "{} records from index {first} run past the index limit {}",
                    scan.offsets.len(),
                    format::INDEX_LIMIT
                ),
            ));
        }
        if is_last {
            let mut w = fs
                .open_append(&path)
                .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
            if scan.end < len {
                // Zeros after the last non-zero byte are preallocated room, not a torn
                // write: only what lies before them counts as dropped.
                let written_end = reader.written_end(scan.end).map_err(io_err)?;
                tail_bytes_dropped = written_end - scan.end;
                w.set_len(scan.end)
                    .map_err(|e| Error::io(format!("cut torn tail of {}", path.display()), e))?;
                reader.cut(scan.end);
            }
            // Records a crashed process wrote but never synced are now part of the log:
            // make them durable, so `sync` and `Durable` later mean what they say. Write
            // them again first: if that process's fsync failed, the kernel may hold
            // them in pages that read back fine but were never written and that no
            // later fsync writes (Linux marks them clean); appending after such a hole
            // would turn it into damage in the middle of the log at the next power loss.
            reader
                .rewrite_prefix(scan.end, w.as_mut())
                .map_err(|e| Error::io(format!("rewrite {}", path.display()), e))?;
            w.sync_data()
                .map_err(|e| Error::io(format!("sync {}", path.display()), e))?;
            stats
                .data_syncs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Room to append without size changes again (see `create_segment`).
            w.preallocate(opts.segment_bytes_max)
                .map_err(|e| Error::io(format!("preallocate {}", path.display()), e))?;
            drop(reader);
            index.segments.push(SegmentIndex {
                first_index: first,
                path: path.clone(),
                file,
                offsets: scan.offsets,
                end: scan.end,
            });
            let writer = Writer::new(w, path, opts.bytes_per_sync);
            return Ok(Recovered {
                index,
                writer,
                tail_bytes_dropped,
            });
        }
        drop(reader);
        index.segments.push(SegmentIndex {
            first_index: first,
            path: path.clone(),
            file,
            offsets: scan.offsets,
            end: scan.end,
        });
    }
    unreachable!("the loop returns at the last segment")
}

/// Why a segment's scan stopped short.
enum ScanError {
    /// Reading the file failed.
    Io(std::io::Error),
    /// A bad record where the rules allow none: `(offset, reason)`.
    Bad(u64, String),
}

impl From<std::io::Error> for ScanError {
    fn from(e: std::io::Error) -> ScanError {
        ScanError::Io(e)
    }
}

/// Checks the records of one segment (after its header). In the last segment a bad
/// record with nothing valid after it ends the scan (torn tail); anywhere else a bad
/// record is an error.
fn scan_records(
    r: &mut SegReader<'_>,
    first: u64,
    is_last: bool,
    max: u32,
    keep_offsets: bool,
) -> Result<Scan, ScanError> {
    let mut offsets = Offsets::new(keep_offsets);
    let mut at = SEGMENT_HEADER_BYTES;
    let mut index = first;
    while at < r.len() {
        match r.check_record(at, index, max)? {
            Ok(len) => {
                if offsets.push(at).is_none() {
                    return Err(ScanError::Bad(
                        at,
                        "a record starts past 4 GiB into its segment".to_string(),
                    ));
                }
                at += RECORD_HEADER_BYTES + u64::from(len);
                index += 1;
            }
            Err(reason) if !is_last => {
                return Err(ScanError::Bad(
                    at,
                    format!("{reason} (in a sealed segment)"),
                ))
            }
            Err(reason) => {
                if let Some(next_at) = find_record(r, at + 1, index + 1, max)? {
                    return Err(ScanError::Bad(
                        at,
                        format!(
                            "{reason}; record {} follows intact at offset {next_at}",
                            index + 1
                        ),
                    ));
                }
                break;
            }
        }
    }
    Ok(Scan {
        offsets,
        end: at.min(r.len()),
    })
}

/// The first offset at or after `from` holding a whole valid record `index`, if any.
/// A zero-filled tail is answered at once; otherwise each offset costs one 16-byte CRC
/// (the header checksum) before any payload is checked.
fn find_record(
    r: &mut SegReader<'_>,
    from: u64,
    index: u64,
    max: u32,
) -> std::io::Result<Option<u64>> {
    if r.zeros_from(from)? {
        return Ok(None);
    }
    let Some(last) = r.len().checked_sub(RECORD_HEADER_BYTES) else {
        return Ok(None);
    };
    for q in from..=last {
        let header = r.bytes(q, RECORD_HEADER_LEN)?;
        if format::check_record_header(header, index, max).is_ok()
            && r.check_record(q, index, max)?.is_ok()
        {
            return Ok(Some(q));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// An in-memory file for the scanner.
    #[derive(Debug)]
    struct Mem(Vec<u8>);

    impl vfs::FileRead for Mem {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
            let rest = self.0.get(offset as usize..).unwrap_or_default();
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            Ok(n)
        }
        fn len(&self) -> std::io::Result<u64> {
            Ok(self.0.len() as u64)
        }
    }

    /// Scans `bytes` as a segment; `Err((offset, reason))` for a bad record.
    fn scan(
        bytes: &[u8],
        first: u64,
        is_last: bool,
        max: u32,
    ) -> Result<(usize, usize), (usize, String)> {
        let file = Mem(bytes.to_vec());
        let largest = AtomicU64::new(0);
        let mut r = SegReader::new(&file, bytes.len() as u64, &largest);
        match scan_records(&mut r, first, is_last, max, true) {
            Ok(s) => Ok((s.offsets.len(), s.end as usize)),
            Err(ScanError::Bad(at, reason)) => Err((at as usize, reason)),
            Err(ScanError::Io(e)) => panic!("i/o error from memory: {e}"),
        }
    }

    fn segment(first: u64, records: &[&[u8]]) -> Vec<u8> {
        let mut out = format::encode_segment_header(first).to_vec();
        for (k, r) in records.iter().enumerate() {
            format::encode_record(&mut out, first + k as u64, r, format::payload_crc(r));
        }
        out
    }

    #[test]
    fn clean_segment_scans_whole() {
        let s = segment(5, &[b"a", b"bb", b""]);
        assert_eq!(scan(&s, 5, false, 100).unwrap(), (3, s.len()));
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let s = segment(1, &[b"first", b"second record"]);
        let whole = SEGMENT_HEADER_LEN + RECORD_HEADER_LEN + 5;
        for cut in whole..s.len() {
            let got = scan(&s[..cut], 1, true, 100).unwrap();
            assert_eq!(got, (1, whole), "cut at {cut}");
            let sealed = scan(&s[..cut], 1, false, 100);
            assert_eq!(sealed.is_err(), cut > whole, "sealed segment cut at {cut}");
        }
    }

    #[test]
    fn bad_record_followed_by_a_good_one_is_corruption() {
        let mut s = segment(1, &[b"first", b"second", b"third"]);
        let second = SEGMENT_HEADER_LEN + RECORD_HEADER_LEN + 5;
        for byte in second..second + RECORD_HEADER_LEN + 6 {
            let mut bad = s.clone();
            bad[byte] ^= 0x04;
            let (at, _) = scan(&bad, 1, true, 100).err().unwrap();
            assert_eq!(at, second, "flip in byte {byte}");
        }
        // The same damage in the last record is a torn tail.
        let third = second + RECORD_HEADER_LEN + 6;
        s[third + 2] ^= 1;
        assert_eq!(scan(&s, 1, true, 100).unwrap().1, third);
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let mut s = segment(1, &[b"first"]);
        let end = s.len();
        s.extend_from_slice(&[0u8; 300]);
        assert_eq!(scan(&s, 1, true, 100).unwrap().1, end);
    }
}
