//! Write batches: many puts and deletes applied atomically, and their WAL record codec.
//!
//! A batch is written to the WAL as ONE record, so after a crash it is either wholly
//! replayed or not at all. Byte grammar of a record (integers little-endian):
//!
//! ```text
//! record  := first_seqno:u64 count:u32 op{count}
//! op      := 0x01 key_len:varint32 key value_len:varint32 value     (put)
//!          | 0x00 key_len:varint32 key                               (delete)
//! ```
//!
//! The i-th op (from 0) gets seqno `first_seqno + i`. Decoding checks every length
//! against the remaining bytes, the op count, the kind byte, that nothing trails,
//! that every seqno is in `1..SEQNO_MAX` and every key within `KEY_BYTES_MAX`.
//!
//! Invariant: `WriteBatch::ops` always holds exactly `count` well-formed ops, so the
//! engine encodes a record by writing the 12-byte header and copying `ops` once.

use crate::error::Error;
use crate::internal_key::SEQNO_MAX;
use sstable::Kind;

/// Bytes of the record header: first seqno (8) and op count (4).
pub const BATCH_HEADER_BYTES: usize = 12;
/// Longest key accepted (the table format's limit).
pub const KEY_BYTES_MAX: usize = 1 << 20;

const _: () = assert!(BATCH_HEADER_BYTES == 8 + 4);

/// Puts and deletes of many keys, applied all or nothing by [`crate::Db::write`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<u8>,
    count: u32,
    longest_key: usize,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Sets `key` to `value`. A later op on the same key in this batch wins.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.ops.reserve(1 + 10 + key.len() + value.len());
        self.longest_key = self.longest_key.max(key.len());
        self.ops.push(Kind::Put as u8);
        put_varint32(&mut self.ops, len_u32(key.len()));
        self.ops.extend_from_slice(key);
        put_varint32(&mut self.ops, len_u32(value.len()));
        self.ops.extend_from_slice(value);
        self.count += 1;
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.longest_key = self.longest_key.max(key.len());
        self.ops.push(Kind::Delete as u8);
        put_varint32(&mut self.ops, len_u32(key.len()));
        self.ops.extend_from_slice(key);
        self.count += 1;
    }

    /// Number of ops.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when the batch has no ops.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Makes room for about `bytes` more of encoded ops (no regrowth while it fills
    /// up to that).
    pub fn reserve(&mut self, bytes: usize) {
        self.ops.reserve(bytes);
    }

    /// Bytes of encoded ops the batch holds room for (its allocation).
    pub fn capacity_bytes(&self) -> usize {
        self.ops.capacity()
    }

    /// Removes every op, keeping the allocation.
    pub fn clear(&mut self) {
        self.ops.clear();
        self.count = 0;
        self.longest_key = 0;
    }

    /// Bytes of the encoded ops (the WAL record is this plus [`BATCH_HEADER_BYTES`]).
    pub fn encoded_bytes(&self) -> usize {
        self.ops.len()
    }

    /// The ops in order, as borrowed `(kind, key, value)`.
    pub fn iter(&self) -> OpIter<'_> {
        OpIter {
            rest: &self.ops,
            left: self.count,
        }
    }

    /// Length of the longest key in the batch (for the key length limit).
    pub fn longest_key(&self) -> usize {
        self.longest_key
    }

    /// Writes the WAL record for this batch, starting at `first_seqno`, into `out`.
    pub fn encode_record(&self, first_seqno: u64, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(BATCH_HEADER_BYTES + self.ops.len());
        out.extend_from_slice(&first_seqno.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.ops);
    }
}

/// Writes the WAL record of a one-op batch (same bytes as a `WriteBatch` holding
/// just that op would encode) into `out`.
pub(crate) fn encode_single(
    kind: Kind,
    key: &[u8],
    value: &[u8],
    first_seqno: u64,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.reserve(BATCH_HEADER_BYTES + 11 + key.len() + value.len());
    out.extend_from_slice(&first_seqno.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.push(kind as u8);
    put_varint32(out, len_u32(key.len()));
    out.extend_from_slice(key);
    if kind == Kind::Put {
        put_varint32(out, len_u32(value.len()));
        out.extend_from_slice(value);
    }
}

/// One op of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op<'a> {
    /// Put or Delete.
    pub kind: Kind,
    /// The user key.
    pub key: &'a [u8],
    /// The value (empty for a delete).
    pub value: &'a [u8],
}

/// A decoded WAL record: its first seqno and its ops.
#[derive(Clone, Copy, Debug)]
pub struct BatchRecord<'a> {
    /// Seqno of the first op.
    pub first_seqno: u64,
    /// Number of ops.
    pub count: u32,
    ops: &'a [u8],
}

impl<'a> BatchRecord<'a> {
    /// Parses a record header and checks every op; `Err(reason)` when malformed.
    pub fn decode(bytes: &'a [u8]) -> Result<BatchRecord<'a>, String> {
        if bytes.len() < BATCH_HEADER_BYTES {
            return Err(format!(
                "batch record of {} bytes is shorter than its header",
                bytes.len()
            ));
        }
        let (seq, rest) = bytes.split_at(8);
        let (count, ops) = rest.split_at(4);
        let first_seqno = u64::from_le_bytes(seq.try_into().map_err(|_| "header")?);
        let count = u32::from_le_bytes(count.try_into().map_err(|_| "header")?);
        if count == 0 {
            return Err("batch record with no ops".into());
        }
        // Seqnos run from 1 to SEQNO_MAX - 1 (SEQNO_MAX is the lookup sentinel, and
        // the memtable's entry tag holds 56 bits).
        let last = first_seqno.checked_add(u64::from(count) - 1);
        if first_seqno == 0 || last.is_none_or(|last| last >= SEQNO_MAX) {
            return Err(format!(
                "batch seqno range {first_seqno}+{count} is outside 1..{SEQNO_MAX}"
            ));
        }
        let record = BatchRecord {
            first_seqno,
            count,
            ops,
        };
        let mut seen = 0u32;
        for op in record.iter() {
            let op = op.map_err(|e| e.to_string())?;
            if op.key.len() > KEY_BYTES_MAX {
                return Err(format!(
                    "op {seen} has a key of {} bytes, above the limit of {KEY_BYTES_MAX}",
                    op.key.len()
                ));
            }
            seen += 1;
        }
        debug_assert_eq!(seen, count);
        Ok(record)
    }

    /// Seqno of the last op.
    pub fn last_seqno(&self) -> u64 {
        self.first_seqno + u64::from(self.count) - 1
    }

    /// The ops in order.
    pub fn iter(&self) -> OpIter<'a> {
        OpIter {
            rest: self.ops,
            left: self.count,
        }
    }
}

/// Iterator over encoded ops; yields an error (then stops) on malformed bytes.
pub struct OpIter<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for OpIter<'a> {
    type Item = Result<Op<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            if self.rest.is_empty() {
                return None;
            }
            let trailing = self.rest.len();
            self.rest = &[];
            return Some(Err(bad(format!("{trailing} bytes after the last op"))));
        }
        match self.decode_one() {
            Ok(op) => {
                self.left -= 1;
                Some(Ok(op))
            }
            Err(e) => {
                self.left = 0;
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

impl<'a> OpIter<'a> {
    fn decode_one(&mut self) -> Result<Op<'a>, Error> {
        let (&kind, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| bad("op count exceeds the ops present"))?;
        let kind = Kind::from_u8(kind).ok_or_else(|| bad(format!("unknown op kind {kind}")))?;
        let (key, rest) = take_slice(rest)?;
        let (value, rest) = match kind {
            Kind::Put => take_slice(rest)?,
            Kind::Delete => (&rest[..0], rest),
        };
        self.rest = rest;
        Ok(Op { kind, key, value })
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::corrupt("write batch", reason)
}

fn take_slice(bytes: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let (len, used) = get_varint32(bytes).ok_or_else(|| bad("truncated or overlong length"))?;
    let rest = &bytes[used..];
    let len = len as usize;
    if len > rest.len() {
        return Err(bad(format!(
            "length {len} exceeds the {} bytes left",
            rest.len()
        )));
    }
    Ok(rest.split_at(len))
}

fn len_u32(len: usize) -> u32 {
    assert!(
        len <= u32::MAX as usize,
        "key or value of {len} bytes is over 4 GiB"
    );
    len as u32
}

/// Appends `v` as a LEB128 varint.
pub(crate) fn put_varint32(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint32: `(value, bytes used)`, or None when truncated or overlong.
pub(crate) fn get_varint32(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut v: u32 = 0;
    for (i, &b) in bytes.iter().take(5).enumerate() {
        let part = u32::from(b & 0x7f);
        if i == 4 && part > 0x0f {
            return None;
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_sized_for_its_ops_fills_without_regrowing() {
        let mut b = WriteBatch::new();
        b.reserve(3 * (16 + 2 + 300));
        let room = b.ops.as_ptr();
        for key in [b"k1", b"k2", b"k3"] {
            b.put(key, &[7u8; 300]);
        }
        assert_eq!(
            b.ops.as_ptr(),
            room,
            "the ops were moved to a bigger buffer"
        );
        assert_eq!(b.iter().count(), 3);
    }

    fn sample() -> WriteBatch {
        let mut b = WriteBatch::new();
        b.put(b"k1", b"v1");
        b.delete(b"k2");
        b.put(b"", &[7u8; 300]);
        b
    }

    #[test]
    fn round_trips_through_the_record_codec() {
        let b = sample();
        let mut rec = Vec::new();
        b.encode_record(42, &mut rec);
        let r = BatchRecord::decode(&rec).unwrap();
        assert_eq!(r.first_seqno, 42);
        assert_eq!(r.last_seqno(), 44);
        let ops: Vec<Op<'_>> = r.iter().map(|o| o.unwrap()).collect();
        assert_eq!(ops.len(), 3);
        assert_eq!(
            ops[0],
            Op {
                kind: Kind::Put,
                key: b"k1",
                value: b"v1"
            }
        );
        assert_eq!(
            ops[1],
            Op {
                kind: Kind::Delete,
                key: b"k2",
                value: b""
            }
        );
        assert_eq!(ops[2].value.len(), 300);
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn single_op_encoding_matches_a_batch() {
        for (kind, value) in [(Kind::Put, &b"value"[..]), (Kind::Delete, &b""[..])] {
            let mut b = WriteBatch::new();
            match kind {
                Kind::Put => b.put(b"key", value),
                Kind::Delete => b.delete(b"key"),
            }
            let (mut x, mut y) = (Vec::new(), Vec::new());
            b.encode_record(9, &mut x);
            encode_single(kind, b"key", value, 9, &mut y);
            assert_eq!(x, y);
        }
    }

    #[test]
    fn clear_empties_the_batch() {
        let mut b = sample();
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.iter().count(), 0);
    }

    #[test]
    fn every_truncation_is_rejected_not_a_panic() {
        let mut rec = Vec::new();
        sample().encode_record(1, &mut rec);
        for cut in 0..rec.len() {
            assert!(
                BatchRecord::decode(&rec[..cut]).is_err(),
                "cut at {cut} accepted"
            );
        }
    }

    #[test]
    fn trailing_bytes_bad_kind_and_zero_seqno_are_rejected() {
        let mut rec = Vec::new();
        sample().encode_record(1, &mut rec);
        let mut trailing = rec.clone();
        trailing.push(0);
        assert!(BatchRecord::decode(&trailing).is_err());
        let mut kind = rec.clone();
        kind[BATCH_HEADER_BYTES] = 9;
        assert!(BatchRecord::decode(&kind).is_err());
        let mut zero = rec.clone();
        zero[..8].copy_from_slice(&0u64.to_le_bytes());
        assert!(BatchRecord::decode(&zero).is_err());
        let mut empty = Vec::new();
        WriteBatch::new().encode_record(5, &mut empty);
        assert!(BatchRecord::decode(&empty).is_err());
    }

    #[test]
    fn seqnos_from_1_to_below_seqno_max_only() {
        let mut b = WriteBatch::new();
        b.put(b"a", b"1");
        b.delete(b"b");
        let mut rec = Vec::new();
        b.encode_record(SEQNO_MAX - 2, &mut rec);
        assert_eq!(
            BatchRecord::decode(&rec).unwrap().last_seqno(),
            SEQNO_MAX - 1
        );
        for first in [SEQNO_MAX - 1, SEQNO_MAX, 1 << 56, u64::MAX - 1, u64::MAX] {
            b.encode_record(first, &mut rec);
            assert!(BatchRecord::decode(&rec).is_err(), "first seqno {first}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let len = (x % 64) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            let _ = BatchRecord::decode(&buf);
        }
    }

    #[test]
    fn varints_round_trip_and_reject_overlong() {
        for v in [0u32, 1, 127, 128, 300, 1 << 21, u32::MAX] {
            let mut out = Vec::new();
            put_varint32(&mut out, v);
            assert_eq!(get_varint32(&out), Some((v, out.len())));
        }
        assert_eq!(get_varint32(&[0xff, 0xff, 0xff, 0xff, 0x7f]), None);
        assert_eq!(get_varint32(&[0x80]), None);
    }
}
