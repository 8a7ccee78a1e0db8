//! Reads one block (grammar in `block_builder.rs`): decoding entries, binary search
//! over the restart array, and a cursor that rebuilds prefix-compressed keys.
//!
//! Every offset and length read from the block is checked against the block's
//! bounds before it is used; a bad one is `Error::Corrupt` naming the file offset.
//! A block does not check that its entries are in order: the checksum vouches for the
//! bytes, and out-of-order entries could only give wrong answers, never a panic.

use std::cmp::Ordering;

use crate::entry::{compare, EntryRef, Kind};
use crate::error::Error;
use crate::format::{
    get_varint32, read_u32, read_u64, ENTRY_TAG_LEN, RESTART_COUNT_LEN, RESTART_LEN,
};

/// A block's contents, split into its entries and its restart array.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Block<'a> {
    /// The entries region.
    data: &'a [u8],
    /// `num_restarts` little-endian `u32` offsets into `data`.
    restarts: &'a [u8],
    num_restarts: u32,
    /// File offset of `data`, for error reports.
    file_offset: u64,
}

/// One entry as stored: the key delta and value are slices of the block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawEntry<'a> {
    pub(crate) shared: usize,
    pub(crate) delta: &'a [u8],
    pub(crate) seqno: u64,
    pub(crate) kind: Kind,
    pub(crate) value: &'a [u8],
    /// Offset of the value in the entries region.
    pub(crate) value_at: usize,
    /// Offset of the next entry in the entries region.
    pub(crate) next: usize,
}

/// What a point lookup found in one block.
pub(crate) enum Found<'a> {
    /// The newest visible version of the key.
    Entry(EntryRef<'a>),
    /// The first entry at or after the target has another key: the key is absent.
    Absent,
    /// Every entry of the block is before the target: look in the next block.
    End,
}

impl<'a> Block<'a> {
    /// Splits a block's contents; `file_offset` is where `contents` starts in the file.
    pub(crate) fn parse(contents: &'a [u8], file_offset: u64) -> Result<Block<'a>, Error> {
        let corrupt = |reason: &str| Error::corrupt(file_offset, reason);
        let count_at = contents
            .len()
            .checked_sub(RESTART_COUNT_LEN)
            .ok_or_else(|| corrupt("block shorter than its restart count"))?;
        let num_restarts =
            read_u32(contents, count_at).ok_or_else(|| corrupt("no restart count"))?;
        let data_end = (num_restarts as usize)
            .checked_mul(RESTART_LEN)
            .and_then(|len| count_at.checked_sub(len))
            .ok_or_else(|| corrupt("restart array larger than the block"))?;
        let (data, rest) = contents
            .split_at_checked(data_end)
            .ok_or_else(|| corrupt("bad block split"))?;
        let restarts = rest
            .get(..count_at - data_end)
            .ok_or_else(|| corrupt("bad restart array"))?;
        if num_restarts == 0 && !data.is_empty() {
            return Err(corrupt("entries without a restart array"));
        }
        if num_restarts > 0 && read_u32(restarts, 0) != Some(0) {
            return Err(corrupt("first restart is not at offset 0"));
        }
        Ok(Block {
            data,
            restarts,
            num_restarts,
            file_offset,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(crate) fn num_restarts(&self) -> u32 {
        self.num_restarts
    }

    /// Length of the entries region.
    pub(crate) fn data_len(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn corrupt_at(&self, at: usize, reason: &str) -> Error {
        Error::corrupt(self.file_offset.saturating_add(at as u64), reason)
    }

    /// Offset of restart `i` (< num_restarts).
    pub(crate) fn restart_offset(&self, i: u32) -> Result<usize, Error> {
        let at = (i as usize)
            .checked_mul(RESTART_LEN)
            .ok_or_else(|| self.corrupt_at(self.data.len(), "restart index overflow"))?;
        let off = read_u32(self.restarts, at)
            .ok_or_else(|| self.corrupt_at(self.data.len(), "restart index past the array"))?;
        let off = off as usize;
        if off >= self.data.len() {
            return Err(self.corrupt_at(self.data.len(), "restart offset past the entries"));
        }
        Ok(off)
    }

    /// Decodes the entry starting at `at` in the entries region.
    #[inline]
    pub(crate) fn decode(&self, at: usize) -> Result<RawEntry<'a>, Error> {
        let data = self.data;
        let bad = |reason| Error::corrupt(self.file_offset.saturating_add(at as u64), reason);
        // Fast path: all three lengths below 128, one byte each (almost every entry).
        let (shared, unshared, value_at_len) = match data.get(at..at + 2) {
            // Fast path: shared and unshared below 128, one byte each.
            Some(&[a, b]) if (a | b) < 0x80 => (u32::from(a), u32::from(b), at + 2),
            _ => {
                let (shared, n1) =
                    get_varint32(data, at).ok_or_else(|| bad("bad shared length"))?;
                let p = at + n1;
                let (unshared, n2) =
                    get_varint32(data, p).ok_or_else(|| bad("bad key delta length"))?;
                (shared, unshared, p + n2)
            }
        };
        let (value_len, n3) =
            get_varint32(data, value_at_len).ok_or_else(|| bad("bad value length"))?;
        let key_at = value_at_len + n3;
        let tag_at = key_at
            .checked_add(unshared as usize)
            .ok_or_else(|| bad("key delta length overflow"))?;
        let delta = data
            .get(key_at..tag_at)
            .ok_or_else(|| bad("key delta past the block"))?;
        let value_at = tag_at + ENTRY_TAG_LEN;
        let seqno = read_u64(data, tag_at).ok_or_else(|| bad("seqno past the block"))?;
        let kind_byte = *data
            .get(tag_at + 8)
            .ok_or_else(|| bad("kind past the block"))?;
        let kind = Kind::from_u8(kind_byte).ok_or_else(|| bad("unknown entry kind"))?;
        let next = value_at
            .checked_add(value_len as usize)
            .ok_or_else(|| bad("value length overflow"))?;
        let value = data
            .get(value_at..next)
            .ok_or_else(|| bad("value past the block"))?;
        Ok(RawEntry {
            shared: shared as usize,
            delta,
            seqno,
            kind,
            value,
            value_at,
            next,
        })
    }

    /// The entry at restart `i`: its key is stored whole.
    pub(crate) fn restart_entry(&self, i: u32) -> Result<RawEntry<'a>, Error> {
        let at = self.restart_offset(i)?;
        let e = self.decode(at)?;
        if e.shared != 0 {
            return Err(self.corrupt_at(at, "restart entry shares a key prefix"));
        }
        Ok(e)
    }

    /// The last restart whose entry is before `(key, seqno)`, or 0 if none is.
    /// Scanning from it finds the first entry at or after the target.
    fn seek_restart(&self, key: &[u8], seqno: u64) -> Result<u32, Error> {
        let (mut lo, mut hi) = (0u32, self.num_restarts.saturating_sub(1));
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let e = self.restart_entry(mid)?;
            if compare(e.delta, e.seqno, key, seqno) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }

    /// The first entry at or after `(key, snapshot)`, judged without rebuilding keys:
    /// `common` tracks the longest common prefix of the current key and `key`, and
    /// `ord` their order. An entry sharing more than `common` bytes with its
    /// predecessor differs from `key` exactly where the predecessor did.
    pub(crate) fn find(&self, key: &[u8], snapshot: u64) -> Result<Found<'a>, Error> {
        if self.data.is_empty() {
            return Ok(Found::End);
        }
        let mut at = self.restart_offset(self.seek_restart(key, snapshot)?)?;
        let mut cur_len = 0usize;
        let mut common = 0usize;
        let mut ord = Ordering::Equal;
        let mut first = true;
        while at < self.data.len() {
            let e = self.decode(at)?;
            if e.shared > cur_len {
                return Err(self.corrupt_at(at, "shared prefix longer than the previous key"));
            }
            if first || e.shared <= common {
                let rest = key.get(e.shared..).unwrap_or_default();
                let l = e.delta.iter().zip(rest).take_while(|(a, b)| a == b).count();
                common = e.shared + l;
                ord = match (e.delta.get(l), rest.get(l)) {
                    (Some(a), Some(b)) => a.cmp(b),
                    _ => e.delta.len().cmp(&rest.len()),
                };
                first = false;
            }
            cur_len = e.shared + e.delta.len();
            if ord == Ordering::Greater || (ord == Ordering::Equal && e.seqno <= snapshot) {
                return Ok(if ord == Ordering::Equal {
                    Found::Entry(EntryRef {
                        seqno: e.seqno,
                        kind: e.kind,
                        value: e.value,
                    })
                } else {
                    Found::Absent
                });
            }
            at = e.next;
        }
        Ok(Found::End)
    }
}

/// A position in a block with its key rebuilt into a reused buffer.
///
/// Invariant: when `valid`, `key`/`seqno`/`kind`/`value` describe the entry that
/// ends at `next`; the value is `value_at..value_at + value_len` of the entries region.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub(crate) key: Vec<u8>,
    pub(crate) seqno: u64,
    pub(crate) kind: Kind,
    pub(crate) value_at: usize,
    pub(crate) value_len: usize,
    next: usize,
    pub(crate) valid: bool,
}

impl Cursor {
    pub(crate) fn new() -> Cursor {
        Cursor {
            key: Vec::new(),
            seqno: 0,
            kind: Kind::Put,
            value_at: 0,
            value_len: 0,
            next: 0,
            valid: false,
        }
    }

    /// Moves to the block's first entry (invalid if the block is empty).
    pub(crate) fn seek_to_first(&mut self, block: &Block<'_>) -> Result<(), Error> {
        self.key.clear();
        self.next = 0;
        self.step(block)
    }

    /// Moves to the first entry at or after `(key, seqno)`; invalid if there is none
    /// in this block.
    pub(crate) fn seek(&mut self, block: &Block<'_>, key: &[u8], seqno: u64) -> Result<(), Error> {
        if block.is_empty() {
            self.valid = false;
            return Ok(());
        }
        let restart = block.seek_restart(key, seqno)?;
        self.key.clear();
        self.next = block.restart_offset(restart)?;
        self.step(block)?;
        while self.valid && compare(&self.key, self.seqno, key, seqno) == Ordering::Less {
            self.step(block)?;
        }
        Ok(())
    }

    /// Moves to the next entry; invalid past the last one.
    #[inline]
    pub(crate) fn step(&mut self, block: &Block<'_>) -> Result<(), Error> {
        if self.next >= block.data_len() {
            self.valid = false;
            return Ok(());
        }
        let at = self.next;
        let e = match block.decode(at) {
            Ok(e) => e,
            Err(err) => {
                self.valid = false;
                return Err(err);
            }
        };
        if e.shared > self.key.len() {
            self.valid = false;
            return Err(block.corrupt_at(at, "shared prefix longer than the previous key"));
        }
        self.key.truncate(e.shared);
        self.key.extend_from_slice(e.delta);
        self.seqno = e.seqno;
        self.kind = e.kind;
        self.value_at = e.value_at;
        self.value_len = e.value.len();
        self.next = e.next;
        self.valid = true;
        Ok(())
    }
}
