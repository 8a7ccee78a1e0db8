//! What a table stores: versioned entries `(user key, seqno, kind, value)`, and the
//! order they are kept in.
//!
//! Table order: user key ascending (bytewise), then seqno DESCENDING, so the newest
//! version of a key comes first and "the newest version visible at snapshot `s`" is
//! the first entry at or after `(key, s)`.

use std::cmp::Ordering;

/// Whether an entry sets a value or deletes the key (a tombstone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// A tombstone: the key has no value as of this seqno.
    Delete = 0,
    /// The key holds the entry's value as of this seqno.
    Put = 1,
}

impl Kind {
    /// The kind stored as `byte`, if it is one.
    #[inline]
    pub fn from_u8(byte: u8) -> Option<Kind> {
        match byte {
            0 => Some(Kind::Delete),
            1 => Some(Kind::Put),
            _ => None,
        }
    }
}

/// One version of a key as found in a block: borrowed from the block's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The version's sequence number.
    pub seqno: u64,
    /// Put or tombstone.
    pub kind: Kind,
    /// The value (empty for a tombstone); a slice of the block.
    pub value: &'a [u8],
}

/// One version of a key as returned by [`crate::Table::get`]: its value copied out
/// of the block (which may live in a cache the caller must not pin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The version's sequence number.
    pub seqno: u64,
    /// Put or tombstone.
    pub kind: Kind,
    /// The value (empty for a tombstone).
    pub value: Vec<u8>,
}

/// Compares `(key_a, seqno_a)` with `(key_b, seqno_b)` in table order.
#[inline]
pub fn compare(key_a: &[u8], seqno_a: u64, key_b: &[u8], seqno_b: u64) -> Ordering {
    key_a.cmp(key_b).then_with(|| seqno_b.cmp(&seqno_a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_sort_first() {
        assert_eq!(compare(b"a", 5, b"a", 3), Ordering::Less);
        assert_eq!(compare(b"a", 3, b"a", 5), Ordering::Greater);
        assert_eq!(compare(b"a", 1, b"b", 9), Ordering::Less);
        assert_eq!(compare(b"ab", 9, b"a", 1), Ordering::Greater);
        assert_eq!(compare(b"a", 4, b"a", 4), Ordering::Equal);
    }
}
