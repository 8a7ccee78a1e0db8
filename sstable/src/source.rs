//! Where a table's data blocks come from: the memory map, or positioned reads into
//! the shared [`BlockCache`]. [`ReadMode`] picks one when the table is opened.
//!
//! - `Mapped`: the file is mapped with `madvise(MADV_RANDOM)` (`Fs::map_random`), so
//!   a lookup faults in only the pages of its block, not a readahead window. A data
//!   block's crc is checked the first time any reader touches it and remembered in
//!   the loaded index's `verified` bits (one per block, `Relaxed`: the bytes are
//!   immutable, the bit only saves work; two threads may both verify).
//! - `Cached`: a block is looked up in the cache by (table id, offset); on a miss it
//!   is read with one `read_exact_at` of exactly its contents and trailer (the
//!   handle is advised `POSIX_FADV_RANDOM`, so the kernel adds no readahead), its crc
//!   checked, and inserted. Cached blocks were checked once, on load. An I/O error is
//!   an `Error::Io`, never a SIGBUS.
//!
//! Either way the source also reads the table's tail (`read_tail`) when the table
//! loads its index and filter (`loaded.rs`).
//!
//! Iterators that keep walking blocks in order read ahead instead (`read_run`): one
//! read of `ahead` bytes (starting at `READ_AHEAD_START_BYTES`, doubling with each
//! read up to `READ_AHEAD_BYTES`), each block checked when entered, and nothing
//! inserted, so a long scan does not push the point lookups' working set out of the
//! cache, and a seek followed by a few steps does not read 256 KiB it never uses.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use vfs::{FileRead, Mapped};

use crate::block_cache::BlockCache;
use crate::error::Error;
use crate::format::{BlockKind, Handle, BLOCK_TRAILER_LEN};
use crate::open::{check_trailer, checked_block, contents_range};
use crate::scan::READ_AHEAD_BYTES;
use crate::tail::{copy_tail, read_tail, Tail};

/// How a table reads its data blocks (index and filter are always in owned memory).
#[derive(Debug, Clone)]
pub enum ReadMode {
    /// Through a read-only memory map advised `MADV_RANDOM`.
    Mapped,
    /// With `pread` into this cache, shared by the tables of an engine.
    Cached(Arc<BlockCache>),
}

/// A table's data source (see the module doc).
#[derive(Debug)]
pub(crate) enum Source {
    Mapped {
        bytes: Mapped,
    },
    Cached {
        file: Arc<dyn FileRead>,
        cache: Arc<BlockCache>,
        /// This table's id in `cache`.
        id: u64,
    },
}

/// A data block's contents: `range` of the mapped file, or of a buffer shared with
/// the cache (or a read-ahead buffer).
#[derive(Debug, Clone)]
pub(crate) enum BlockBytes<'a> {
    Mapped { map: &'a [u8], range: Range<usize> },
    Shared { buf: Arc<[u8]>, range: Range<usize> },
}

impl BlockBytes<'_> {
    #[inline]
    pub(crate) fn contents(&self) -> &[u8] {
        match self {
            BlockBytes::Mapped { map, range } => map.get(range.clone()).unwrap_or_default(),
            BlockBytes::Shared { buf, range } => buf.get(range.clone()).unwrap_or_default(),
        }
    }
}

/// An iterator's first read-ahead, in bytes (then doubled per read).
pub(crate) const READ_AHEAD_START_BYTES: u64 = 16 << 10;

/// Bytes read ahead by an iterator: `buf` holds the file from `offset` on; the next
/// read ahead is `ahead` bytes.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) buf: Arc<[u8]>,
    pub(crate) offset: u64,
    pub(crate) ahead: u64,
}

/// A zeroed buffer of `len` bytes to read into (one allocation, no copy after).
fn buffer(len: usize) -> Arc<[u8]> {
    std::iter::repeat_n(0u8, len).collect()
}

fn read_into(file: &dyn FileRead, len: usize, offset: u64) -> Result<Arc<[u8]>, Error> {
    let mut buf = buffer(len);
    let Some(dst) = Arc::get_mut(&mut buf) else {
        unreachable!("a buffer just allocated has one owner");
    };
    file.read_exact_at(dst, offset).map_err(|e| {
        Error::io(
            format!("reading {len} bytes of table data at offset {offset}"),
            e,
        )
    })?;
    Ok(buf)
}

impl Source {
    /// The mapped file (empty for a cached table).
    pub(crate) fn mapped_bytes(&self) -> &[u8] {
        match self {
            Source::Mapped { bytes } => bytes,
            Source::Cached { .. } => &[],
        }
    }

    /// The file's length in bytes (the map's length, or one `fstat`: no data read).
    pub(crate) fn file_len(&self) -> Result<u64, Error> {
        match self {
            Source::Mapped { bytes } => Ok(bytes.len() as u64),
            Source::Cached { file, .. } => file
                .len()
                .map_err(|e| Error::io("reading the table's length", e)),
        }
    }

    /// The file's tail (filter, meta and index blocks, footer) and its file offset.
    pub(crate) fn read_tail(&self) -> Result<(Vec<u8>, usize), Error> {
        match self {
            Source::Mapped { bytes } => Ok(copy_tail(bytes)),
            Source::Cached { file, .. } => read_tail(file.as_ref()),
        }
    }

    /// Data block `i` at `handle`, checked (see the module doc); `verified` holds a
    /// mapped table's verified bits.
    pub(crate) fn block(
        &self,
        i: usize,
        handle: Handle,
        verified: &[AtomicU64],
    ) -> Result<BlockBytes<'_>, Error> {
        match self {
            Source::Mapped { bytes } => {
                let (word, bit) = (i / 64, 1u64 << (i % 64));
                let flag = verified.get(word);
                let known_good = flag.is_some_and(|w| w.load(Ordering::Relaxed) & bit != 0);
                let map: &[u8] = bytes;
                let range = contents_range(map.len(), handle).ok_or_else(|| {
                    Error::corrupt(handle.offset, "data block handle past the end")
                })?;
                if !known_good {
                    checked_block(&Tail::whole(map), handle, BlockKind::Data)?;
                    if let Some(w) = flag {
                        w.fetch_or(bit, Ordering::Relaxed);
                    }
                }
                Ok(BlockBytes::Mapped { map, range })
            }
            Source::Cached { file, cache, id } => {
                let len = handle.len as usize;
                if let Some(buf) = cache.get(*id, handle.offset) {
                    return Ok(BlockBytes::Shared { buf, range: 0..len });
                }
                let buf = read_into(file.as_ref(), len + BLOCK_TRAILER_LEN, handle.offset)?;
                check_trailer(&buf, handle.offset, BlockKind::Data)?;
                cache.insert(*id, handle.offset, Arc::clone(&buf));
                Ok(BlockBytes::Shared { buf, range: 0..len })
            }
        }
    }

    /// Data block `handle` for an iterator walking blocks in order: from the cache if
    /// there, else from `run` (read ahead up to `data_end`, refilled when the block is
    /// not in it), checked, not inserted. `None` for a mapped table (it reads `block`).
    pub(crate) fn sequential_block(
        &self,
        handle: Handle,
        data_end: u64,
        run: &mut Option<Run>,
    ) -> Option<Result<BlockBytes<'static>, Error>> {
        let Source::Cached { file, cache, id } = self else {
            return None;
        };
        let len = handle.len as usize;
        if let Some(buf) = cache.get(*id, handle.offset) {
            return Some(Ok(BlockBytes::Shared { buf, range: 0..len }));
        }
        Some(read_run(file.as_ref(), handle, data_end, run))
    }
}

fn read_run(
    file: &dyn FileRead,
    handle: Handle,
    data_end: u64,
    run: &mut Option<Run>,
) -> Result<BlockBytes<'static>, Error> {
    let need = handle.len as usize + BLOCK_TRAILER_LEN;
    let held = run.as_ref().and_then(|r| {
        let at = usize::try_from(handle.offset.checked_sub(r.offset)?).ok()?;
        (at.checked_add(need)? <= r.buf.len()).then_some(at)
    });
    let at = match held {
        Some(at) => at,
        None => {
            let ahead = run.take().map_or(READ_AHEAD_START_BYTES, |r| {
                r.ahead.saturating_mul(2).min(READ_AHEAD_BYTES)
            });
            let next_ahead = ahead;
            let ahead = ahead.min(data_end.saturating_sub(handle.offset));
            let len = usize::try_from((need as u64).max(ahead))
                .map_err(|_| Error::corrupt(handle.offset, "data block larger than memory"))?;
            let buf = read_into(file, len, handle.offset)?;
            *run = Some(Run {
                buf,
                offset: handle.offset,
                ahead: next_ahead,
            });
            0
        }
    };
    let Some(r) = run.as_ref() else {
        unreachable!("the run was just filled or found");
    };
    let block = r.buf.get(at..at + need).unwrap_or_default();
    check_trailer(block, handle.offset, BlockKind::Data)?;
    Ok(BlockBytes::Shared {
        buf: Arc::clone(&r.buf),
        range: at..at + handle.len as usize,
    })
}
