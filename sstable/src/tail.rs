//! A table's tail (filter, meta and index blocks, then the footer) read into memory
//! the table owns, and `Tail`, a view that addresses those bytes by file offset.
//!
//! Every table keeps its tail in its own heap memory once loaded (at open, or on
//! first use for a lazily opened table: `table.rs`), whatever its data blocks are
//! read through: the index is searched and the filter probed on every lookup, so
//! they must not compete with data for the page cache (under a memory limit the
//! kernel would evict them with the data and every lookup would fault them back).
//!
//! Reading: the footer first (`FOOTER_LEN` bytes at the end), checked (magic, crc,
//! version) before its filter handle is trusted to say where the tail starts, then
//! the tail in one read. Layout checks follow in `open::validate`.
//!
//! Invariant: a `Tail` holds the file's bytes `[base, file_len)`; `get` answers
//! `None` for ranges outside them rather than panicking.

use std::ops::Range;

use vfs::FileRead;

use crate::error::Error;
use crate::format::FOOTER_LEN;
use crate::open::footer_handles;

/// File bytes `[base, file_len)`, addressed by file offset.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tail<'a> {
    bytes: &'a [u8],
    base: usize,
}

impl<'a> Tail<'a> {
    /// A whole file's bytes.
    pub(crate) fn whole(bytes: &'a [u8]) -> Tail<'a> {
        Tail { bytes, base: 0 }
    }

    /// The bytes of a file from offset `base` to its end.
    pub(crate) fn from(bytes: &'a [u8], base: usize) -> Tail<'a> {
        Tail { bytes, base }
    }

    /// Length of the whole file.
    pub(crate) fn file_len(&self) -> usize {
        self.base + self.bytes.len()
    }

    /// The file bytes in `range`, if all of them are held.
    #[inline]
    pub(crate) fn get(&self, range: Range<usize>) -> Option<&'a [u8]> {
        let start = range.start.checked_sub(self.base)?;
        let end = range.end.checked_sub(self.base)?;
        self.bytes.get(start..end)
    }
}

/// Where the tail of a file of `file_len` bytes whose footer is `footer` starts: the
/// filter block, if the footer checks out and points inside the file; otherwise the
/// footer itself (validation then reports what is wrong with it).
fn tail_start(footer: &[u8], footer_at: usize) -> usize {
    match footer_handles(footer, footer_at) {
        Ok((_, filter, _)) => usize::try_from(filter.offset)
            .ok()
            .filter(|&start| start <= footer_at)
            .unwrap_or(footer_at),
        Err(_) => footer_at,
    }
}

/// Copies the tail of a file held whole in memory (a mapping).
pub(crate) fn copy_tail(bytes: &[u8]) -> (Vec<u8>, usize) {
    let Some(footer_at) = bytes.len().checked_sub(FOOTER_LEN) else {
        return (bytes.to_vec(), 0);
    };
    let start = tail_start(bytes.get(footer_at..).unwrap_or_default(), footer_at);
    (bytes.get(start..).unwrap_or_default().to_vec(), start)
}

/// Reads the tail of `file` with positioned reads: its bytes and their file offset.
pub(crate) fn read_tail(file: &dyn FileRead) -> Result<(Vec<u8>, usize), Error> {
    let len = file
        .len()
        .map_err(|e| Error::io("reading the table's length", e))?;
    let len = usize::try_from(len).map_err(|_| Error::corrupt(0, "table larger than memory"))?;
    let read = |start: usize| -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; len - start];
        file.read_exact_at(&mut buf, start as u64)
            .map_err(|e| Error::io(format!("reading the table's tail at offset {start}"), e))?;
        Ok(buf)
    };
    let Some(footer_at) = len.checked_sub(FOOTER_LEN) else {
        return Ok((read(0)?, 0));
    };
    let footer = read(footer_at)?;
    let start = tail_start(&footer, footer_at);
    if start == footer_at {
        return Ok((footer, footer_at));
    }
    Ok((read(start)?, start))
}
