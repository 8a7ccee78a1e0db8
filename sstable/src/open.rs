//! Validates a table's bytes when it is opened: footer, magic, layout, and the
//! checksums and structure of the filter, meta and index blocks.
//!
//! Layout enforced (see `docs/format-sstable.md`): data blocks back to back from
//! offset 0, then the filter, meta and index blocks, then the footer, with nothing
//! between. Every index entry is checked here (handle contiguous and in bounds,
//! separators strictly increasing, count equal to the meta's `data_blocks`), so a
//! lookup can trust the index's shape; data blocks are checksummed on first use.
//!
//! Validation sees the file through a [`Tail`]: only the tail's bytes (filter block
//! to footer) need be held, so a table read with `pread` never holds its data here.

use std::cmp::Ordering;
use std::ops::Range;

use crate::block::{Block, RawEntry};
use crate::bloom::BloomParams;
use crate::entry::{compare, Kind};
use crate::error::Error;
use crate::format::{
    block_crc, read_u32, read_u64, BlockKind, Handle, BLOCK_TRAILER_LEN, FOOTER_LEN,
    FORMAT_VERSION, HANDLE_LEN, MAGIC, META_FIXED_LEN, RESTART_COUNT_LEN,
};
use crate::info::TableInfo;
use crate::tail::Tail;

/// False only in fuzzing builds (feature `fuzz-skip-checksums`), so a fuzzer can reach
/// the decoders behind the checksums. Never enable that feature anywhere else.
const CHECKSUMS_ON: bool = !cfg!(feature = "fuzz-skip-checksums");

/// What `validate` learned about a table.
#[derive(Debug)]
pub(crate) struct Layout {
    pub(crate) info: TableInfo,
    pub(crate) index: Handle,
    pub(crate) filter: Handle,
    pub(crate) meta: Handle,
    /// The filter's bit lines (probe byte excluded), as file offsets.
    pub(crate) filter_lines: Range<usize>,
    pub(crate) bloom: BloomParams,
    /// `key_prefix` of each index entry's separator: one per data block, in order.
    pub(crate) prefixes: Vec<u64>,
    /// Where each data block ends (trailer included), in order.
    pub(crate) block_ends: Vec<u64>,
}

/// Byte range of a block's contents, if the handle lies inside the file.
pub(crate) fn contents_range(bytes_len: usize, handle: Handle) -> Option<Range<usize>> {
    let start = usize::try_from(handle.offset).ok()?;
    let end = start.checked_add(handle.len as usize)?;
    (end.checked_add(BLOCK_TRAILER_LEN)? <= bytes_len).then_some(start..end)
}

/// Checks a block's trailer (kind and crc) and returns its contents.
pub(crate) fn checked_block<'a>(
    bytes: &Tail<'a>,
    handle: Handle,
    kind: BlockKind,
) -> Result<&'a [u8], Error> {
    let range = contents_range(bytes.file_len(), handle).ok_or_else(|| {
        Error::corrupt(
            handle.offset,
            format!("{kind:?} block handle past the end of the file"),
        )
    })?;
    let block = bytes
        .get(range.start..range.end + BLOCK_TRAILER_LEN)
        .ok_or_else(|| {
            Error::corrupt(
                handle.offset,
                format!("{kind:?} block outside the table's tail"),
            )
        })?;
    check_trailer(block, handle.offset, kind)
}

/// Checks `block` (one block's contents followed by its trailer, read from file
/// offset `offset`): the trailer's crc, then its kind. Returns the contents.
pub(crate) fn check_trailer(block: &[u8], offset: u64, kind: BlockKind) -> Result<&[u8], Error> {
    let Some(end) = block.len().checked_sub(BLOCK_TRAILER_LEN) else {
        return Err(Error::corrupt(offset, "block shorter than its trailer"));
    };
    let contents = block.get(..end).unwrap_or_default();
    let stored_kind = block.get(end).copied();
    let stored_crc = read_u32(block, end + 1);
    let (Some(stored_kind), Some(expected)) = (stored_kind, stored_crc) else {
        return Err(Error::corrupt(
            offset,
            "block trailer past the end of the file",
        ));
    };
    let actual = block_crc(contents, stored_kind);
    if actual != expected && CHECKSUMS_ON {
        return Err(Error::ChecksumMismatch {
            offset,
            expected,
            actual,
        });
    }
    if stored_kind != kind as u8 {
        return Err(Error::corrupt(
            offset,
            format!("expected a {kind:?} block, found block kind {stored_kind}"),
        ));
    }
    Ok(contents)
}

/// Index entry `i`: its separator (`delta` is the whole key) and its block handle.
pub(crate) fn index_entry<'a>(index: &Block<'a>, i: u32) -> Result<(RawEntry<'a>, Handle), Error> {
    let e = index.restart_entry(i)?;
    let handle = match (e.kind, e.value.len()) {
        (Kind::Put, HANDLE_LEN) => Handle::decode(e.value),
        _ => None,
    };
    let handle =
        handle.ok_or_else(|| index.corrupt_at(e.value_at, "index entry is not a block handle"))?;
    Ok((e, handle))
}

/// Checks the footer (`FOOTER_LEN` bytes read at file offset `footer_at`): magic,
/// crc and version. Returns the index, filter and meta handles, not yet checked
/// against the file.
pub(crate) fn footer_handles(
    footer: &[u8],
    footer_at: usize,
) -> Result<(Handle, Handle, Handle), Error> {
    let bad_footer = |reason: &str| Error::corrupt(footer_at as u64, reason);
    if read_u64(footer, FOOTER_LEN - 8) != Some(MAGIC) {
        return Err(bad_footer("bad magic number: not a table, or truncated"));
    }
    let expected = read_u32(footer, FOOTER_LEN - 12).ok_or_else(|| bad_footer("no footer crc"))?;
    let actual = crc32fast::hash(footer.get(..FOOTER_LEN - 12).unwrap_or_default());
    if expected != actual && CHECKSUMS_ON {
        return Err(Error::ChecksumMismatch {
            offset: footer_at as u64,
            expected,
            actual,
        });
    }
    let version = read_u32(footer, 3 * HANDLE_LEN).ok_or_else(|| bad_footer("no version"))?;
    if version != FORMAT_VERSION {
        return Err(bad_footer(&format!("unknown format version {version}")));
    }
    let handle = |i: usize| {
        footer
            .get(i * HANDLE_LEN..)
            .and_then(Handle::decode)
            .ok_or_else(|| bad_footer("no handle"))
    };
    Ok((handle(0)?, handle(1)?, handle(2)?))
}

/// Validates everything but the data blocks' contents.
pub(crate) fn validate(bytes: &Tail<'_>) -> Result<Layout, Error> {
    let file_len = bytes.file_len();
    let footer_at = file_len.checked_sub(FOOTER_LEN).ok_or_else(|| {
        Error::corrupt(
            0,
            format!("file of {file_len} bytes is shorter than a footer"),
        )
    })?;
    let footer = bytes
        .get(footer_at..file_len)
        .ok_or_else(|| Error::corrupt(footer_at as u64, "footer not read"))?;
    let bad_footer = |reason: &str| Error::corrupt(footer_at as u64, reason);
    let (index, filter, meta) = footer_handles(footer, footer_at)?;
    if Some(meta.offset) != filter.end_with_trailer()
        || Some(index.offset) != meta.end_with_trailer()
        || Some(footer_at as u64) != index.end_with_trailer()
    {
        return Err(bad_footer(
            "filter, meta and index blocks are not back to back before the footer",
        ));
    }

    let filter_contents = checked_block(bytes, filter, BlockKind::Filter)?;
    let bloom =
        BloomParams::parse(filter_contents).map_err(|r| Error::corrupt(filter.offset, r))?;
    let filter_start = filter.offset as usize;
    let filter_lines = filter_start..filter_start + filter_contents.len().saturating_sub(1);

    let meta_contents = checked_block(bytes, meta, BlockKind::Meta)?;
    let (info, data_blocks) = parse_meta(meta_contents, meta.offset, file_len as u64)?;

    let index_contents = checked_block(bytes, index, BlockKind::Index)?;
    let index_block = Block::parse(index_contents, index.offset)?;
    let (prefixes, block_ends) = check_index(
        &index_block,
        index.offset,
        filter.offset,
        &info,
        data_blocks,
    )?;
    Ok(Layout {
        info,
        index,
        filter,
        meta,
        filter_lines,
        bloom,
        prefixes,
        block_ends,
    })
}

/// The meta block: the table's properties and its data block count.
fn parse_meta(m: &[u8], offset: u64, file_bytes: u64) -> Result<(TableInfo, u64), Error> {
    let bad = |reason: &str| Error::corrupt(offset, format!("meta block: {reason}"));
    let field = |i: usize| read_u64(m, 8 * i).ok_or_else(|| bad("too short"));
    let (entries, data_blocks, smallest_seqno, largest_seqno) =
        (field(0)?, field(1)?, field(2)?, field(3)?);
    let mut at = META_FIXED_LEN;
    let mut key = || -> Result<Vec<u8>, Error> {
        let len = read_u32(m, at).ok_or_else(|| bad("no key length"))? as usize;
        let start = at + 4;
        let end = start
            .checked_add(len)
            .ok_or_else(|| bad("key length overflow"))?;
        let k = m.get(start..end).ok_or_else(|| bad("key past the block"))?;
        at = end;
        Ok(k.to_vec())
    };
    let smallest_key = key()?;
    let largest_key = key()?;
    if at != m.len() {
        return Err(bad("trailing bytes"));
    }
    if (entries == 0) != (data_blocks == 0) || data_blocks > entries {
        return Err(bad("entry and block counts disagree"));
    }
    if entries > 0 && (smallest_key > largest_key || smallest_seqno > largest_seqno) {
        return Err(bad("smallest above largest"));
    }
    let info = TableInfo {
        entries,
        file_bytes,
        smallest_key,
        largest_key,
        smallest_seqno,
        largest_seqno,
    };
    Ok((info, data_blocks))
}

/// Checks every index entry and returns each separator's `key_prefix` and where each
/// data block ends.
fn check_index(
    index: &Block<'_>,
    offset: u64,
    data_end: u64,
    info: &TableInfo,
    data_blocks: u64,
) -> Result<(Vec<u64>, Vec<u64>), Error> {
    let bad = |reason: &str| Error::corrupt(offset, format!("index block: {reason}"));
    if u64::from(index.num_restarts()) != data_blocks {
        return Err(bad("entry count differs from the meta's data block count"));
    }
    let mut expected_at = 0usize;
    let mut expected_offset = 0u64;
    let mut prev: Option<RawEntry<'_>> = None;
    let mut prefixes = Vec::with_capacity(index.num_restarts() as usize);
    let mut ends = Vec::with_capacity(index.num_restarts() as usize);
    for i in 0..index.num_restarts() {
        if index.restart_offset(i)? != expected_at {
            return Err(bad("entries are not each a restart"));
        }
        let (e, handle) = index_entry(index, i)?;
        if handle.offset != expected_offset || (handle.len as usize) < RESTART_COUNT_LEN {
            return Err(bad("data block handles are not back to back from offset 0"));
        }
        expected_offset = handle
            .end_with_trailer()
            .ok_or_else(|| bad("handle overflow"))?;
        if expected_offset > data_end {
            return Err(bad("data block runs into the filter"));
        }
        if let Some(p) = prev {
            if compare(p.delta, p.seqno, e.delta, e.seqno) != Ordering::Less {
                return Err(bad("separators not increasing"));
            }
        }
        expected_at = e.next;
        prefixes.push(key_prefix(e.delta));
        ends.push(expected_offset);
        prev = Some(e);
    }
    if expected_at != index.data_len() || expected_offset != data_end {
        return Err(bad("does not cover every data block"));
    }
    if let Some(last) = prev {
        if last.delta != info.largest_key.as_slice() {
            return Err(bad("last separator is not the largest key"));
        }
    }
    Ok((prefixes, ends))
}

/// The first 8 bytes of `key` as a big-endian `u64`, zero-padded. If two keys'
/// prefixes differ, they order the keys; if equal, the keys must be compared.
#[inline]
pub(crate) fn key_prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (b, k) in bytes.iter_mut().zip(key) {
        *b = *k;
    }
    u64::from_be_bytes(bytes)
}
