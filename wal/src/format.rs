//! The byte grammar of a segment file, in code (the prose is `docs/format-wal.md`).
//!
//! ```text
//! segment        := segment_header record*
//! segment_header := magic[8] "CNCGWAL\x01" | first_index: u64 | version: u32 | header_crc: u32
//!                   header_crc = mask(crc32(magic | first_index | version))
//! record         := payload_len: u32 | payload_crc: u32 | header_crc: u32 | payload[payload_len]
//!                   payload_crc = mask(crc32(payload))
//!                   header_crc  = mask(crc32(index: u64 | payload_len: u32 | payload_crc: u32))
//! ```
//! All integers are little-endian and fixed-width. The record's index is not stored:
//! it is the segment's `first_index` plus the record's position, and it is folded into
//! `header_crc`, so a zero-filled or stale tail never passes as a record. The header
//! checksum is separate from the payload checksum so recovery can test "is there a
//! record here?" in constant time when it scans past a damaged record.
//!
//! Every size lives here, with compile-time checks that the pieces add up.

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"CNCGWAL\x01";
/// Version written into (and required of) every segment header.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the segment header: magic, first_index, version, header_crc.
pub const SEGMENT_HEADER_BYTES: u64 = 24;
/// Bytes of a record header: payload_len, payload_crc, header_crc.
pub const RECORD_HEADER_BYTES: u64 = 12;
/// Suffix of segment file names; the stem is the first index as 20 decimal digits.
pub const SEGMENT_SUFFIX: &str = ".wal";
/// Digits in a segment file name's stem (enough for any u64).
pub const SEGMENT_NAME_DIGITS: usize = 20;
/// Record indexes run from 1 up to, not including, this. Recovery refuses a segment
/// whose indexes leave that range, so a log opened from disk can take 2^63 more
/// appends before `u64` arithmetic on indexes could overflow.
pub const INDEX_LIMIT: u64 = 1 << 63;

/// No record payload is longer than this (1 GiB), whatever the options: the ceiling of
/// `Options::record_bytes_max`. Recovery believes a record up to this length whose
/// checksums are valid, even above the current `record_bytes_max`: it was written under
/// an older, higher limit and is data, not a torn tail.
pub const RECORD_BYTES_LIMIT: u32 = 1 << 30;

const _: () = assert!(SEGMENT_HEADER_BYTES == 8 + 8 + 4 + 4);
const _: () = assert!(RECORD_HEADER_BYTES == 4 + 4 + 4);
const _: () = assert!(SEGMENT_MAGIC.len() == 8);
const _: () = assert!(u64::MAX.ilog10() as usize + 1 == SEGMENT_NAME_DIGITS);

/// `RECORD_HEADER_BYTES` as a slice length.
pub const RECORD_HEADER_LEN: usize = RECORD_HEADER_BYTES as usize;
/// `SEGMENT_HEADER_BYTES` as a slice length.
pub const SEGMENT_HEADER_LEN: usize = SEGMENT_HEADER_BYTES as usize;

const MASK_DELTA: u32 = 0xa282_ead8;

/// LevelDB's CRC mask: a CRC stored next to the data it covers is rotated and offset,
/// so checksumming a buffer that itself holds CRCs does not degenerate.
pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// The file name of the segment whose first record has index `first_index`.
pub fn segment_file_name(first_index: u64) -> String {
    format!(
        "{first_index:0width$}{SEGMENT_SUFFIX}",
        width = SEGMENT_NAME_DIGITS
    )
}

/// The first index encoded in a segment file name, or `None` for any other file.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
    if stem.len() != SEGMENT_NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Little-endian u32 at `at`; the caller guarantees 4 bytes are there.
pub fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Little-endian u64 at `at`; the caller guarantees 8 bytes are there.
pub fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(a)
}

fn segment_header_crc(first_index: u64) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&SEGMENT_MAGIC);
    h.update(&first_index.to_le_bytes());
    h.update(&FORMAT_VERSION.to_le_bytes());
    mask(h.finalize())
}

/// The header that opens the segment starting at `first_index`.
pub fn encode_segment_header(first_index: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut out = [0u8; SEGMENT_HEADER_LEN];
    out[0..8].copy_from_slice(&SEGMENT_MAGIC);
    out[8..16].copy_from_slice(&first_index.to_le_bytes());
    out[16..20].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[20..24].copy_from_slice(&segment_header_crc(first_index).to_le_bytes());
    out
}

/// Checks a segment header and returns the first index it names.
pub fn decode_segment_header(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() < SEGMENT_HEADER_LEN {
        return Err(format!(
            "segment header is {} bytes, want {SEGMENT_HEADER_BYTES}",
            bytes.len()
        ));
    }
    if bytes[0..8] != SEGMENT_MAGIC {
        return Err("bad segment magic".to_string());
    }
    let first_index = le_u64(bytes, 8);
    let version = le_u32(bytes, 16);
    if version != FORMAT_VERSION {
        return Err(format!(
            "segment format version {version}, want {FORMAT_VERSION}"
        ));
    }
    let stored = le_u32(bytes, 20);
    let want = segment_header_crc(first_index);
    if stored != want {
        return Err(format!(
            "segment header checksum {stored:#010x}, want {want:#010x}"
        ));
    }
    Ok(first_index)
}

/// Checksum of a record's payload as stored.
pub fn payload_crc(payload: &[u8]) -> u32 {
    mask(crc32fast::hash(payload))
}

/// Checksum of a record header as stored: covers the record's index, length and payload CRC.
pub fn header_crc(index: u64, payload_len: u32, payload_crc: u32) -> u32 {
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&index.to_le_bytes());
    b[8..12].copy_from_slice(&payload_len.to_le_bytes());
    b[12..16].copy_from_slice(&payload_crc.to_le_bytes());
    mask(crc32fast::hash(&b))
}

/// Appends record `index` (header and payload) to `buf`. `pcrc` is `payload_crc(payload)`,
/// passed in so callers can compute it outside a lock. The caller checked the length.
pub fn encode_record(buf: &mut Vec<u8>, index: u64, payload: &[u8], pcrc: u32) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    assert_eq!(
        len as usize,
        payload.len(),
        "record length checked by the caller"
    );
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&pcrc.to_le_bytes());
    buf.extend_from_slice(&header_crc(index, len, pcrc).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Checks the record header at the start of `bytes` for record `index`; returns its
/// payload length. Checks the header checksum, then the length against
/// `record_bytes_max` (before anyone allocates for it). Does not look at the payload.
pub fn check_record_header(bytes: &[u8], index: u64, record_bytes_max: u32) -> Result<u32, String> {
    if bytes.len() < RECORD_HEADER_LEN {
        return Err(format!(
            "incomplete record header ({} of {RECORD_HEADER_BYTES} bytes)",
            bytes.len()
        ));
    }
    let len = le_u32(bytes, 0);
    let pcrc = le_u32(bytes, 4);
    let stored = le_u32(bytes, 8);
    let want = header_crc(index, len, pcrc);
    if stored != want {
        return Err(format!(
            "record {index}: header checksum {stored:#010x}, want {want:#010x}"
        ));
    }
    if len > record_bytes_max {
        return Err(format!(
            "record {index}: length {len} above record_bytes_max {record_bytes_max}"
        ));
    }
    Ok(len)
}

/// Checks the whole record `index` at the start of `bytes` (header, then payload);
/// returns its payload length.
pub fn check_record(bytes: &[u8], index: u64, record_bytes_max: u32) -> Result<u32, String> {
    let len = check_record_header(bytes, index, record_bytes_max)?;
    let end = RECORD_HEADER_LEN + len as usize;
    let Some(payload) = bytes.get(RECORD_HEADER_LEN..end) else {
        return Err(format!(
            "record {index}: incomplete payload ({} of {len} bytes)",
            bytes.len() - RECORD_HEADER_LEN
        ));
    };
    let stored = le_u32(bytes, 4);
    let want = payload_crc(payload);
    if stored != want {
        return Err(format!(
            "record {index}: payload checksum {stored:#010x}, want {want:#010x}"
        ));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_index() {
        assert_eq!(segment_file_name(1), "00000000000000000001.wal");
        assert_eq!(
            parse_segment_file_name(&segment_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_segment_file_name("1.wal"), None);
        assert_eq!(parse_segment_file_name("0000000000000000000x.wal"), None);
        assert_eq!(parse_segment_file_name("00000000000000000001.tmp"), None);
        assert!(segment_file_name(9) < segment_file_name(10));
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let h = encode_segment_header(42);
        assert_eq!(decode_segment_header(&h), Ok(42));
        for byte in 0..SEGMENT_HEADER_LEN {
            let mut bad = h;
            bad[byte] ^= 0x10;
            assert!(
                decode_segment_header(&bad).is_err(),
                "flip in byte {byte} accepted"
            );
        }
        assert!(decode_segment_header(&h[..10]).is_err());
    }

    #[test]
    fn record_round_trips_and_every_bit_flip_is_caught() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, b"hello", payload_crc(b"hello"));
        assert_eq!(buf.len(), RECORD_HEADER_LEN + 5);
        assert_eq!(check_record(&buf, 7, 100), Ok(5));
        assert!(
            check_record(&buf, 8, 100).is_err(),
            "index is part of the checksum"
        );
        assert!(check_record(&buf, 7, 4).is_err(), "length above the limit");
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                check_record(&bad, 7, 100).is_err(),
                "bit {bit} flip accepted"
            );
        }
        assert!(check_record(&buf[..buf.len() - 1], 7, 100).is_err());
        assert!(
            check_record(&[0u8; 12], 1, 100).is_err(),
            "zeros are not a record"
        );
    }
}
