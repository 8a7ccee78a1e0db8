//! Version edits: the records of the manifest, and their byte codec.
//!
//! An edit carries the engine's scalar state in full (WAL replay point, next file
//! number, last seqno, flushed seqno) plus table deltas (added with their metadata,
//! removed by number). A *snapshot* edit lists every live table and replaces all
//! earlier state; the manifest starts with one.
//!
//! Byte grammar (integers little-endian, keys length-prefixed with a varint32):
//!
//! ```text
//! edit    := kind:u8 (1 = snapshot, 2 = delta) log_index:u64 next_file:u64
//!            last_seqno:u64 flushed_seqno:u64 n_added:u32 added{n_added}
//!            n_removed:u32 removed{n_removed}
//! added   := level:u8 number:u64 file_bytes:u64 entries:u64 smallest_seqno:u64
//!            largest_seqno:u64 smallest_key:bytes largest_key:bytes
//! removed := level:u8 number:u64
//! bytes   := len:varint32 byte{len}
//! ```
//!
//! Decoding checks every length, the kind, level bounds, key order of each table
//! (smallest <= largest), that nothing trails, and the seqnos: `flushed_seqno <=
//! last_seqno < SEQNO_MAX`, and every table's seqnos are at most `flushed_seqno`;
//! `next_file < FILE_NUMBER_LIMIT`.

use crate::batch::{get_varint32, put_varint32};
use crate::error::Error;
use crate::internal_key::SEQNO_MAX;

/// Level numbers stored in edits are below this.
pub const LEVELS_LIMIT: u8 = 16;
/// File numbers (and `next_file`) stay below this, so handing out file numbers never
/// wraps (it would take 2^63 tables to get there from a valid manifest).
pub const FILE_NUMBER_LIMIT: u64 = 1 << 63;

/// What the manifest knows about one table file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMeta {
    /// File number: the table lives in `<number>.sst`.
    pub number: u64,
    /// Size of the file.
    pub file_bytes: u64,
    /// Number of entries (versions) in it.
    pub entries: u64,
    /// Smallest and largest seqno in it.
    pub smallest_seqno: u64,
    /// Largest seqno in it.
    pub largest_seqno: u64,
    /// Smallest user key.
    pub smallest_key: Vec<u8>,
    /// Largest user key.
    pub largest_key: Vec<u8>,
}

/// Whether an edit replaces all state or changes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditKind {
    /// Lists every table; replaces everything before it.
    Snapshot = 1,
    /// Adds and removes tables relative to the state before it.
    Delta = 2,
}

/// One manifest record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionEdit {
    /// Snapshot or delta.
    pub kind: EditKind,
    /// WAL records below this index are all in tables (the "log number").
    pub log_index: u64,
    /// The next file number to hand out.
    pub next_file: u64,
    /// The largest seqno ever assigned (at the time of the edit).
    pub last_seqno: u64,
    /// Every write with seqno <= this is in a table; WAL replay skips them.
    pub flushed_seqno: u64,
    /// Tables added: (level, metadata).
    pub added: Vec<(u8, TableMeta)>,
    /// Tables removed: (level, number).
    pub removed: Vec<(u8, u64)>,
}

impl VersionEdit {
    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind as u8);
        for v in [
            self.log_index,
            self.next_file,
            self.last_seqno,
            self.flushed_seqno,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(self.added.len() as u32).to_le_bytes());
        for (level, t) in &self.added {
            out.push(*level);
            for v in [
                t.number,
                t.file_bytes,
                t.entries,
                t.smallest_seqno,
                t.largest_seqno,
            ] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for key in [&t.smallest_key, &t.largest_key] {
                put_varint32(out, key.len() as u32);
                out.extend_from_slice(key);
            }
        }
        out.extend_from_slice(&(self.removed.len() as u32).to_le_bytes());
        for (level, number) in &self.removed {
            out.push(*level);
            out.extend_from_slice(&number.to_le_bytes());
        }
    }

    /// Parses one record; `Err(reason)` when malformed.
    pub fn decode(bytes: &[u8]) -> Result<VersionEdit, String> {
        let mut r = Reader { bytes, at: 0 };
        let kind = match r.u8()? {
            1 => EditKind::Snapshot,
            2 => EditKind::Delta,
            k => return Err(format!("unknown edit kind {k}")),
        };
        let log_index = r.u64()?;
        let next_file = r.u64()?;
        let last_seqno = r.u64()?;
        let flushed_seqno = r.u64()?;
        if flushed_seqno > last_seqno {
            return Err(format!(
                "flushed seqno {flushed_seqno} above last seqno {last_seqno}"
            ));
        }
        if next_file >= FILE_NUMBER_LIMIT {
            return Err(format!(
                "next file number {next_file} is not below {FILE_NUMBER_LIMIT}"
            ));
        }
        if last_seqno >= SEQNO_MAX {
            return Err(format!(
                "last seqno {last_seqno} is not below the largest possible {SEQNO_MAX}"
            ));
        }
        let n_added = r.u32()? as usize;
        // Each added table takes at least 43 bytes: bound the allocation by the input.
        let mut added = Vec::with_capacity(n_added.min(bytes.len() / 43));
        for _ in 0..n_added {
            let level = r.level()?;
            let number = r.u64()?;
            let file_bytes = r.u64()?;
            let entries = r.u64()?;
            let smallest_seqno = r.u64()?;
            let largest_seqno = r.u64()?;
            let smallest_key = r.bytes()?.to_vec();
            let largest_key = r.bytes()?.to_vec();
            if smallest_key > largest_key || smallest_seqno > largest_seqno {
                return Err(format!("table {number} has inverted key or seqno bounds"));
            }
            if largest_seqno > flushed_seqno {
                // Tables hold flushed writes only; a later seqno could be handed out
                // again to a new write (two versions with one seqno).
                return Err(format!(
                    "table {number} holds seqno {largest_seqno}, above the flushed seqno \
                     {flushed_seqno}"
                ));
            }
            if number >= next_file {
                return Err(format!(
                    "table {number} is not below next file number {next_file}"
                ));
            }
            let meta = TableMeta {
                number,
                file_bytes,
                entries,
                smallest_seqno,
                largest_seqno,
                smallest_key,
                largest_key,
            };
            added.push((level, meta));
        }
        let n_removed = r.u32()? as usize;
        let mut removed = Vec::with_capacity(n_removed.min(bytes.len() / 9));
        for _ in 0..n_removed {
            let level = r.level()?;
            removed.push((level, r.u64()?));
        }
        if r.at != bytes.len() {
            return Err(format!("{} bytes trail the edit", bytes.len() - r.at));
        }
        Ok(VersionEdit {
            kind,
            log_index,
            next_file,
            last_seqno,
            flushed_seqno,
            added,
            removed,
        })
    }

    /// Decodes, wrapping a failure as `Corrupt` naming `context`.
    pub fn decode_in(bytes: &[u8], context: &str) -> Result<VersionEdit, Error> {
        VersionEdit::decode(bytes).map_err(|reason| Error::corrupt(context, reason))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => Err(format!(
                "edit truncated at byte {} (wanted {n} more)",
                self.at
            )),
        }
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn level(&mut self) -> Result<u8, String> {
        let level = self.u8()?;
        if level >= LEVELS_LIMIT {
            return Err(format!("level {level} out of range"));
        }
        Ok(level)
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let (len, used) = get_varint32(&self.bytes[self.at..])
            .ok_or_else(|| format!("bad key length at byte {}", self.at))?;
        self.at += used;
        self.take(len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn meta(number: u64, lo: &[u8], hi: &[u8]) -> TableMeta {
        TableMeta {
            number,
            file_bytes: 1000 + number,
            entries: 10,
            smallest_seqno: 1,
            largest_seqno: 9,
            smallest_key: lo.to_vec(),
            largest_key: hi.to_vec(),
        }
    }

    fn sample() -> VersionEdit {
        VersionEdit {
            kind: EditKind::Delta,
            log_index: 7,
            next_file: 20,
            last_seqno: 99,
            flushed_seqno: 90,
            added: vec![(0, meta(12, b"a", b"m")), (3, meta(13, b"", b"\xff"))],
            removed: vec![(1, 4), (2, 5)],
        }
    }

    #[test]
    fn round_trips() {
        let mut buf = Vec::new();
        sample().encode(&mut buf);
        assert_eq!(VersionEdit::decode(&buf).unwrap(), sample());
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let mut buf = Vec::new();
        sample().encode(&mut buf);
        for cut in 0..buf.len() {
            assert!(VersionEdit::decode(&buf[..cut]).is_err(), "cut {cut}");
        }
        buf.push(0);
        assert!(VersionEdit::decode(&buf).is_err());
    }

    #[test]
    fn bad_fields_are_rejected() {
        let mut e = sample();
        e.added[0].1.number = 25;
        let mut buf = Vec::new();
        e.encode(&mut buf);
        assert!(VersionEdit::decode(&buf).is_err());
        let mut buf = Vec::new();
        sample().encode(&mut buf);
        buf[0] = 9;
        assert!(VersionEdit::decode(&buf).is_err());
        let mut e = sample();
        e.flushed_seqno = 100;
        let mut buf = Vec::new();
        e.encode(&mut buf);
        assert!(VersionEdit::decode(&buf).is_err());
    }

    #[test]
    fn seqnos_out_of_range_are_rejected() {
        let encode = |e: &VersionEdit| {
            let mut buf = Vec::new();
            e.encode(&mut buf);
            buf
        };
        let mut e = sample();
        e.last_seqno = SEQNO_MAX - 1;
        assert!(VersionEdit::decode(&encode(&e)).is_ok());
        for last in [SEQNO_MAX, u64::MAX] {
            e.last_seqno = last;
            assert!(
                VersionEdit::decode(&encode(&e)).is_err(),
                "last seqno {last}"
            );
        }
        // A table may hold only flushed seqnos.
        let mut e = sample();
        e.added[1].1.largest_seqno = e.flushed_seqno + 1;
        assert!(VersionEdit::decode(&encode(&e)).is_err());
    }

    #[test]
    fn huge_counts_do_not_allocate_or_panic() {
        let mut buf = vec![2u8];
        buf.extend_from_slice(&[0u8; 32]);
        buf.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(VersionEdit::decode(&buf).is_err());
    }
}
