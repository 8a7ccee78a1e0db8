//! Recovery's reader of one segment file: positioned reads through ONE buffer of at
//! most `RECOVERY_BUFFER_BYTES`, so opening a log takes memory independent of segment
//! and record sizes. A record longer than the buffer is checked piece by piece (its
//! payload checksum is computed over the pieces).
//!
//! Invariants: the buffer is allocated once per segment (`min(file length, bound)`
//! bytes, reported to the `largest` counter) and never grows; every read is checked
//! against the length taken when the reader was made, so a short file is an error or
//! a "not a record" answer, never a panic.

use crate::format::{self, RECORD_HEADER_BYTES, RECORD_HEADER_LEN};
use crate::RECOVERY_BUFFER_BYTES;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use vfs::{FileRead, FileWrite};

pub(crate) struct SegReader<'a> {
    file: &'a dyn FileRead,
    len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]` and how many bytes of `buf` hold file data.
    start: u64,
    filled: usize,
}

impl<'a> SegReader<'a> {
    /// A reader over the first `len` bytes of `file`; records its buffer in `largest`.
    pub fn new(file: &'a dyn FileRead, len: u64, largest: &AtomicU64) -> SegReader<'a> {
        let cap = len.min(RECOVERY_BUFFER_BYTES as u64) as usize;
        largest.fetch_max(cap as u64, Ordering::Relaxed);
        SegReader {
            file,
            len,
            buf: vec![0; cap],
            start: 0,
            filled: 0,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// The file was cut to `len` bytes: read nothing past it from now on.
    pub fn cut(&mut self, len: u64) {
        self.len = self.len.min(len);
        self.filled = 0;
    }

    /// The bytes `at..at + n` (fewer at the end of the file; none at or past it).
    /// `n` must not exceed the buffer unless the file ends first.
    pub fn bytes(&mut self, at: u64, n: usize) -> io::Result<&[u8]> {
        if at >= self.len {
            return Ok(&[]);
        }
        let end = at.saturating_add(n as u64).min(self.len);
        let cached_end = self.start + self.filled as u64;
        if !(at >= self.start && end <= cached_end) {
            let want = ((self.len - at) as usize).min(self.buf.len());
            self.file.read_exact_at(&mut self.buf[..want], at)?;
            self.start = at;
            self.filled = want;
        }
        let from = (at - self.start) as usize;
        let to = ((end - self.start) as usize).min(self.filled);
        Ok(&self.buf[from..to])
    }

    /// Checks record `index` at `at` (header, then the payload streamed through the
    /// buffer); `Ok(Ok(len))` for a whole valid record, `Ok(Err(reason))` for a bad one.
    pub fn check_record(
        &mut self,
        at: u64,
        index: u64,
        max: u32,
    ) -> io::Result<Result<u32, String>> {
        let header = self.bytes(at, RECORD_HEADER_LEN)?;
        let len = match format::check_record_header(header, index, max) {
            Ok(len) => len,
            Err(reason) => return Ok(Err(reason)),
        };
        let stored = format::le_u32(header, 4);
        let payload_at = at + RECORD_HEADER_BYTES;
        let end = payload_at + u64::from(len);
        if end > self.len {
            return Ok(Err(format!(
                "record {index}: incomplete payload ({} of {len} bytes)",
                self.len.saturating_sub(payload_at)
            )));
        }
        let mut crc = crc32fast::Hasher::new();
        let mut pos = payload_at;
        while pos < end {
            let n = ((end - pos) as usize).min(self.buf.len());
            let piece = self.bytes(pos, n)?;
            if piece.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("no bytes at offset {pos} below length {}", self.len),
                ));
            }
            crc.update(piece);
            pos += piece.len() as u64;
        }
        let want = format::mask(crc.finalize());
        if stored != want {
            return Ok(Err(format!(
                "record {index}: payload checksum {stored:#010x}, want {want:#010x}"
            )));
        }
        Ok(Ok(len))
    }

    /// One past the last non-zero byte at or after `from`; `from` if there is none.
    pub fn written_end(&mut self, from: u64) -> io::Result<u64> {
        let mut end = from;
        let mut pos = from;
        let step = self.buf.len().max(1);
        while pos < self.len {
            let piece = self.bytes(pos, step)?;
            if let Some(p) = piece.iter().rposition(|&b| b != 0) {
                end = pos + p as u64 + 1;
            }
            pos += piece.len().max(1) as u64;
        }
        Ok(end)
    }

    /// True when every byte at or after `from` is zero (or there are none).
    pub fn zeros_from(&mut self, from: u64) -> io::Result<bool> {
        let mut pos = from;
        let step = self.buf.len().max(1);
        while pos < self.len {
            let piece = self.bytes(pos, step)?;
            if piece.iter().any(|&b| b != 0) {
                return Ok(false);
            }
            pos += piece.len().max(1) as u64;
        }
        Ok(true)
    }

    /// Writes bytes `0..end` again over themselves in `w`, a buffer at a time.
    pub fn rewrite_prefix(&mut self, end: u64, w: &mut dyn FileWrite) -> io::Result<()> {
        let mut pos = 0;
        let step = self.buf.len().max(1);
        while pos < end.min(self.len) {
            let n = ((end - pos) as usize).min(step);
            let piece = self.bytes(pos, n)?;
            w.rewrite(pos, piece)?;
            pos += piece.len().max(1) as u64;
        }
        Ok(())
    }
}
