//! The order of versioned entries everywhere in the engine (memtables, tables, merges):
//! user key ascending (bytewise), then seqno DESCENDING, so the newest version of a key
//! comes first and "the newest version visible at snapshot `s`" is the first entry at
//! or after `(key, s)`. Seqno 0 is never assigned; the first write gets seqno 1.

use std::cmp::Ordering;

/// A seqno above every real one: `(key, SEQNO_MAX)` sorts before every version of `key`.
pub const SEQNO_MAX: u64 = u64::MAX >> 8;

/// Compares `(key_a, seqno_a)` with `(key_b, seqno_b)` in engine order.
#[inline]
pub fn compare(key_a: &[u8], seqno_a: u64, key_b: &[u8], seqno_b: u64) -> Ordering {
    match key_a.cmp(key_b) {
        Ordering::Equal => seqno_b.cmp(&seqno_a),
        other => other,
    }
}

/// The smallest key greater than every key starting with `prefix`, or None when no
/// such key exists (the prefix is empty or all 0xff).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_sort_first_and_keys_bytewise() {
        assert_eq!(compare(b"a", 5, b"a", 3), Ordering::Less);
        assert_eq!(compare(b"a", 1, b"b", 9), Ordering::Less);
        assert_eq!(compare(b"ab", 9, b"a", 1), Ordering::Greater);
        assert_eq!(compare(b"a", SEQNO_MAX, b"a", 1), Ordering::Less);
    }

    #[test]
    fn prefix_successor_bounds_the_prefix() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
