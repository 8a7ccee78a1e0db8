//! Every size, tag and limit of the on-disk table format, in one place.
//!
//! The byte grammar is `docs/format-sstable.md`; this file is its numbers, plus the
//! small fixed-width little-endian and varint codecs every other module uses. All
//! integers on disk are fixed-width (`u8`, `u32`, `u64`) or LEB128 varints of a `u32`;
//! never `usize`. Readers get bytes through `get()` and return `None` on a short
//! slice, so a corrupt length can never index out of bounds.

/// The last 8 bytes of every table: `b"CNCGSST1"` read as a little-endian `u64`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"CNCGSST1");
/// The only format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A block handle on disk: `offset: u64 | len: u32` (len excludes the trailer).
pub const HANDLE_LEN: usize = 8 + 4;
/// After each block's contents: `kind: u8 | crc32: u32` (crc over contents and kind).
pub const BLOCK_TRAILER_LEN: usize = 1 + 4;
/// Footer: index, filter and meta handles, version, footer crc, magic.
pub const FOOTER_LEN: usize = 3 * HANDLE_LEN + 4 + 4 + 8;
/// Per entry after the key delta: `seqno: u64 | kind: u8`.
pub const ENTRY_TAG_LEN: usize = 8 + 1;
/// The restart count closing every block.
pub const RESTART_COUNT_LEN: usize = 4;
/// One restart offset.
pub const RESTART_LEN: usize = 4;
/// Fixed part of the meta block: entries, data_blocks, smallest_seqno, largest_seqno.
pub const META_FIXED_LEN: usize = 4 * 8;
/// A bloom filter cache line: every probe of one key lands in the same 64 bytes.
pub const BLOOM_LINE_BYTES: usize = 64;
/// Bits per bloom line.
pub const BLOOM_LINE_BITS: u32 = (BLOOM_LINE_BYTES * 8) as u32;
/// The longest varint of a `u32`.
pub const VARINT32_LEN_MAX: usize = 5;

const _: () = assert!(HANDLE_LEN == 12);
const _: () = assert!(BLOCK_TRAILER_LEN == 5);
const _: () = assert!(FOOTER_LEN == 52);
const _: () = assert!(ENTRY_TAG_LEN == 9);
const _: () = assert!(META_FIXED_LEN == 32);
const _: () = assert!(BLOOM_LINE_BITS == 512);

/// Longest user key a table accepts.
pub const KEY_BYTES_MAX: usize = 1 << 20;
/// Longest value a table accepts. Together with the key limit, one entry always fits
/// a block whose length is a `u32`.
pub const VALUE_BYTES_MAX: usize = 1 << 30;
/// Largest `BuildOptions::block_bytes`.
pub const BLOCK_BYTES_MAX: usize = 1 << 26;
/// Largest index block the builder writes (one entry per data block).
pub const INDEX_BYTES_MAX: usize = 1 << 31;
/// Largest `BuildOptions::restart_interval`.
pub const RESTART_INTERVAL_MAX: usize = 1 << 10;
/// Largest `BuildOptions::bloom_bits_per_key`.
pub const BLOOM_BITS_PER_KEY_MAX: usize = 64;
/// Most probes a filter may ask for (more is a corrupt filter).
pub const BLOOM_PROBES_MAX: u8 = 30;

// A full block (block_bytes_max plus one maximal entry, its header and restarts)
// must have a length that fits the u32 of a handle.
const _: () = assert!(
    BLOCK_BYTES_MAX
        + KEY_BYTES_MAX
        + VALUE_BYTES_MAX
        + 3 * VARINT32_LEN_MAX
        + ENTRY_TAG_LEN
        + (BLOCK_BYTES_MAX + RESTART_COUNT_LEN) * RESTART_LEN
        < u32::MAX as usize
);

/// What a block holds; the trailer names it so a handle to the wrong block fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BlockKind {
    /// Table entries.
    Data = 1,
    /// One entry per data block: separator key and handle.
    Index = 2,
    /// The bloom filter over user keys.
    Filter = 3,
    /// Table properties.
    Meta = 4,
}

/// Where a block's contents sit in the file (the trailer follows them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle {
    /// File offset of the first content byte.
    pub offset: u64,
    /// Content length, trailer excluded.
    pub len: u32,
}

impl Handle {
    /// Appends `offset: u64 | len: u32`.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
    }

    /// The handle's `HANDLE_LEN` bytes.
    pub fn to_bytes(&self) -> [u8; HANDLE_LEN] {
        let mut bytes = [0u8; HANDLE_LEN];
        let (offset, len) = bytes.split_at_mut(8);
        offset.copy_from_slice(&self.offset.to_le_bytes());
        len.copy_from_slice(&self.len.to_le_bytes());
        bytes
    }

    /// Reads a handle from the first `HANDLE_LEN` bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Option<Handle> {
        Some(Handle {
            offset: read_u64(bytes, 0)?,
            len: read_u32(bytes, 8)?,
        })
    }

    /// File offset one past the trailer; `None` if that overflows.
    pub fn end_with_trailer(&self) -> Option<u64> {
        self.offset
            .checked_add(u64::from(self.len) + BLOCK_TRAILER_LEN as u64)
    }
}

/// The checksum of a block: crc32 over its contents followed by its kind byte.
pub fn block_crc(contents: &[u8], kind: u8) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(contents);
    h.update(&[kind]);
    h.finalize()
}

/// Little-endian `u32` at `at`, if the bytes are there.
#[inline]
pub fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Little-endian `u64` at `at`, if the bytes are there.
#[inline]
pub fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// Appends `v` as a LEB128 varint (1 to 5 bytes).
#[inline]
pub fn put_varint32(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes a varint `u32` at `at`: `(value, bytes used)`. `None` if it runs past the
/// end, is longer than 5 bytes, or overflows 32 bits.
#[inline]
pub fn get_varint32(bytes: &[u8], at: usize) -> Option<(u32, usize)> {
    let first = *bytes.get(at)?;
    if first < 0x80 {
        return Some((u32::from(first), 1));
    }
    let mut value = u32::from(first & 0x7f);
    for i in 1..VARINT32_LEN_MAX {
        let b = *bytes.get(at.checked_add(i)?)?;
        let shift = 7 * i as u32;
        if i == VARINT32_LEN_MAX - 1 && b > 0x0f {
            return None; // more than 32 bits
        }
        value |= u32::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_at_the_edges() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            1 << 21,
            (1 << 28) - 1,
            1 << 28,
            u32::MAX,
        ] {
            let mut buf = Vec::new();
            put_varint32(&mut buf, v);
            assert_eq!(get_varint32(&buf, 0), Some((v, buf.len())), "value {v}");
            assert_eq!(
                get_varint32(&buf[..buf.len() - 1], 0),
                None,
                "truncated {v}"
            );
        }
    }

    #[test]
    fn varint_rejects_overflow_and_overlong() {
        assert_eq!(get_varint32(&[0xff, 0xff, 0xff, 0xff, 0x10], 0), None);
        assert_eq!(get_varint32(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 0), None);
        assert_eq!(
            get_varint32(&[0xff, 0xff, 0xff, 0xff, 0x0f], 0),
            Some((u32::MAX, 5))
        );
    }

    #[test]
    fn fixed_reads_are_bounds_checked() {
        assert_eq!(read_u32(&[1, 0, 0], 0), None);
        assert_eq!(read_u32(&[1, 0, 0, 0], 0), Some(1));
        assert_eq!(read_u64(&[0; 8], usize::MAX), None);
    }
}
