//! The memtable: recent writes, ordered in engine order (user key asc, seqno desc).
//!
//! A `BTreeMap` of 16-byte keys behind a `RwLock`, over an [`Arena`] holding the
//! entries' bytes (see `arena.rs`): the single writer (writes are serialized by the
//! engine's write lock) takes the write lock once per batch, copies each version into
//! the arena and inserts its address; readers take the read lock for one lookup or to
//! copy a run of entries. Once frozen (waiting for flush) nobody writes it any more.
//!
//! Map keys carry the first 8 key bytes as a number, so most comparisons during a
//! search never leave the (small, cache-friendly) map node.
//!
//! Iteration ([`MemIter`]) does not hold the lock between steps: it copies a run of
//! entries into a reusable buffer under the read lock and re-seeks after the last
//! copied entry when the run is used up. Entries inserted meanwhile carry seqnos above
//! the iterator's snapshot, so copying them is harmless (the reader skips them).
//!
//! Invariants: (key, seqno) pairs are unique (seqnos are); every `MemKey` in the map
//! points into this memtable's arena and never leaves the memtable;
//! `approximate_bytes` only grows.

use crate::arena::{Arena, EntryPtr, Probe};
use crate::batch::OpIter;
use crate::error::Error;
use crate::internal_key::{compare, SEQNO_MAX};
use parking_lot::RwLock;
use sstable::Kind;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;

/// Bookkeeping bytes counted per entry on top of its arena bytes (map slot, slack).
const ENTRY_OVERHEAD_BYTES: usize = 32;
/// Entries [`MemIter`] copies per refill, at first and at most.
const RUN_ENTRIES_MIN: usize = 16;
const RUN_ENTRIES_MAX: usize = 512;

/// One version in the memtable: its address in the arena, and its key's prefix.
///
/// `prefix` is the key's first 8 bytes, zero-padded, big-endian: when two prefixes
/// differ they order the keys the same way the whole keys do (a zero pad only ever
/// stands where the shorter key has ended), so most comparisons never read the entry.
#[derive(Clone, Copy)]
pub(crate) struct MemKey {
    prefix: u64,
    entry: EntryPtr,
}

const _: () = assert!(std::mem::size_of::<MemKey>() == 16);

impl MemKey {
    fn new(entry: EntryPtr) -> MemKey {
        MemKey {
            prefix: key_prefix(entry.key()),
            entry,
        }
    }

    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        self.entry.key()
    }

    #[inline]
    pub(crate) fn value(&self) -> &[u8] {
        self.entry.value()
    }

    #[inline]
    pub(crate) fn seqno(&self) -> u64 {
        self.entry.seqno()
    }

    #[inline]
    pub(crate) fn kind(&self) -> Kind {
        self.entry.kind()
    }
}

/// The first 8 bytes of `key`, zero-padded, as a big-endian number.
#[inline]
fn key_prefix(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for MemKey {}
impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MemKey {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        match self.prefix.cmp(&other.prefix) {
            Ordering::Equal => compare(self.key(), self.seqno(), other.key(), other.seqno()),
            unequal => unequal,
        }
    }
}

/// What a memtable knows about a key at a snapshot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MemGet {
    /// The newest visible version is a put of this value.
    Value(Vec<u8>),
    /// The newest visible version is a tombstone.
    Deleted,
    /// No visible version here; look further down.
    Absent,
}

/// The map and the arena its keys point into, under one lock.
#[derive(Default)]
struct Tree {
    // Declared before `arena`: dropped first (MemKeys have no drop glue anyway).
    set: BTreeSet<MemKey>,
    arena: Arena,
}

/// A memtable (see the module doc).
#[derive(Default)]
pub struct Memtable {
    tree: RwLock<Tree>,
    approximate_bytes: AtomicUsize,
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Memtable {
        Memtable::default()
    }

    /// Inserts `ops` with consecutive seqnos from `first_seqno`.
    /// Callers serialize inserts (one writer at a time).
    pub(crate) fn insert_ops(&self, ops: OpIter<'_>, first_seqno: u64) -> Result<(), Error> {
        let mut tree = self.tree.write();
        let Tree { set, arena } = &mut *tree;
        let mut added = 0;
        for (seqno, op) in (first_seqno..).zip(ops) {
            let op = op?;
            let entry = arena.push(op.key, op.value, seqno, op.kind);
            set.insert(MemKey::new(entry));
            added += 1;
        }
        self.account(&tree, added);
        Ok(())
    }

    /// Inserts one version. Callers serialize inserts (one writer at a time).
    pub fn insert(&self, key: &[u8], seqno: u64, kind: Kind, value: &[u8]) {
        assert!(seqno > 0 && seqno < SEQNO_MAX, "seqno {seqno} out of range");
        let mut tree = self.tree.write();
        let entry = tree.arena.push(key, value, seqno, kind);
        tree.set.insert(MemKey::new(entry));
        self.account(&tree, 1);
    }

    fn account(&self, tree: &Tree, added: usize) {
        let bytes = tree.arena.entry_bytes() + tree.set.len() * ENTRY_OVERHEAD_BYTES;
        debug_assert!(added <= tree.set.len());
        self.approximate_bytes.store(bytes, AtomicOrdering::Relaxed);
    }

    /// The newest version of `key` with seqno <= `snapshot`.
    pub(crate) fn get(&self, key: &[u8], snapshot: u64) -> MemGet {
        let probe = Probe::new(key, snapshot);
        let probe_key = MemKey::new(probe.entry());
        let tree = self.tree.read();
        match tree
            .set
            .range((Bound::Included(&probe_key), Bound::Unbounded))
            .next()
        {
            Some(found) if found.key() == key => match found.kind() {
                Kind::Put => MemGet::Value(found.value().to_vec()),
                Kind::Delete => MemGet::Deleted,
            },
            _ => MemGet::Absent,
        }
    }

    /// Bytes of entries and bookkeeping inserted so far.
    pub fn approximate_bytes(&self) -> usize {
        self.approximate_bytes.load(AtomicOrdering::Relaxed)
    }

    /// True when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.tree.read().set.is_empty()
    }

    /// Calls `f` on every version in order under the read lock (for flushing a frozen
    /// memtable); stops at the first error.
    pub(crate) fn for_each<E>(&self, mut f: impl FnMut(&MemKey) -> Result<(), E>) -> Result<(), E> {
        // Entries sit in the arena in insertion order, so a walk in key order jumps
        // around: prefetch a few entries ahead to overlap the cache misses.
        const AHEAD: usize = 8;
        let tree = self.tree.read();
        let mut ahead = tree.set.iter();
        for k in ahead.by_ref().take(AHEAD) {
            k.entry.prefetch();
        }
        for key in &tree.set {
            if let Some(k) = ahead.next() {
                k.entry.prefetch();
            }
            f(key)?;
        }
        Ok(())
    }

    /// A cursor over this memtable (unpositioned).
    pub fn iter(self: &Arc<Self>) -> MemIter {
        MemIter {
            mem: Arc::clone(self),
            buf: Vec::new(),
            slots: Vec::new(),
            pos: 0,
            more: false,
            run_entries: RUN_ENTRIES_MIN,
        }
    }
}

#[derive(Clone, Copy)]
struct Slot {
    offset: u32,
    key_len: u32,
    value_len: u32,
    kind: Kind,
    seqno: u64,
}

/// A cursor over a memtable that copies runs of entries (see the module doc).
pub struct MemIter {
    mem: Arc<Memtable>,
    buf: Vec<u8>,
    slots: Vec<Slot>,
    pos: usize,
    /// True when entries may follow the copied run.
    more: bool,
    run_entries: usize,
}

impl MemIter {
    /// Positions at the first version.
    pub fn seek_to_first(&mut self) {
        self.run_entries = RUN_ENTRIES_MIN;
        self.fill(None);
    }

    /// Positions at the first version with user key >= `key`.
    pub fn seek(&mut self, key: &[u8]) {
        self.run_entries = RUN_ENTRIES_MIN;
        let probe = Probe::new(key, SEQNO_MAX);
        self.fill(Some((&probe, true)));
    }

    /// True when positioned at a version.
    #[inline]
    pub fn valid(&self) -> bool {
        self.pos < self.slots.len()
    }

    /// The current user key. Requires `valid()`.
    #[inline]
    pub fn key(&self) -> &[u8] {
        let s = &self.slots[self.pos];
        &self.buf[s.offset as usize..s.offset as usize + s.key_len as usize]
    }

    /// The current value. Requires `valid()`.
    #[inline]
    pub fn value(&self) -> &[u8] {
        let s = &self.slots[self.pos];
        let start = s.offset as usize + s.key_len as usize;
        &self.buf[start..start + s.value_len as usize]
    }

    /// The current seqno. Requires `valid()`.
    #[inline]
    pub fn seqno(&self) -> u64 {
        self.slots[self.pos].seqno
    }

    /// The current kind. Requires `valid()`.
    #[inline]
    pub fn kind(&self) -> Kind {
        self.slots[self.pos].kind
    }

    /// Moves to the next version. Requires `valid()`.
    #[inline]
    pub fn next(&mut self) {
        self.pos += 1;
        if self.pos == self.slots.len() && self.more {
            let last = self.slots[self.pos - 1];
            let start = last.offset as usize;
            let probe = Probe::new(&self.buf[start..start + last.key_len as usize], last.seqno);
            self.run_entries = (self.run_entries * 2).min(RUN_ENTRIES_MAX);
            self.fill(Some((&probe, false)));
        }
    }

    /// Copies a run starting at `from` (inclusive or not), or at the start.
    fn fill(&mut self, from: Option<(&Probe, bool)>) {
        self.buf.clear();
        self.slots.clear();
        self.pos = 0;
        let mem = Arc::clone(&self.mem);
        let tree = mem.tree.read();
        let bound_key = from.map(|(p, inclusive)| (MemKey::new(p.entry()), inclusive));
        let lower = match &bound_key {
            None => Bound::Unbounded,
            Some((k, true)) => Bound::Included(k),
            Some((k, false)) => Bound::Excluded(k),
        };
        let mut range = tree.set.range((lower, Bound::Unbounded));
        for entry in range.by_ref().take(self.run_entries) {
            let offset = self.buf.len();
            self.buf.extend_from_slice(entry.entry.key_and_value());
            let key_len = entry.key().len();
            self.slots.push(Slot {
                offset: offset as u32,
                key_len: key_len as u32,
                value_len: (self.buf.len() - offset - key_len) as u32,
                kind: entry.kind(),
                seqno: entry.seqno(),
            });
        }
        self.more = self.slots.len() == self.run_entries && range.next().is_some();
        // Offsets are u32: a run is at most RUN_ENTRIES_MAX entries of bounded batches.
        debug_assert!(self.buf.len() <= u32::MAX as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(it: &mut MemIter) -> Vec<(Vec<u8>, u64, Kind, Vec<u8>)> {
        let mut out = Vec::new();
        while it.valid() {
            out.push((
                it.key().to_vec(),
                it.seqno(),
                it.kind(),
                it.value().to_vec(),
            ));
            it.next();
        }
        out
    }

    #[test]
    fn orders_by_key_then_newest_first() {
        let m = Arc::new(Memtable::new());
        m.insert(b"b", 1, Kind::Put, b"b1");
        m.insert(b"a", 2, Kind::Put, b"a2");
        m.insert(b"b", 3, Kind::Delete, b"");
        m.insert(b"a", 4, Kind::Put, b"a4");
        m.insert(b"ab", 5, Kind::Put, b"x");
        let mut it = m.iter();
        it.seek_to_first();
        let got: Vec<(Vec<u8>, u64)> = collect(&mut it).into_iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), 4),
                (b"a".to_vec(), 2),
                (b"ab".to_vec(), 5),
                (b"b".to_vec(), 3),
                (b"b".to_vec(), 1)
            ]
        );
    }

    #[test]
    fn prefix_order_agrees_with_key_order() {
        let keys: [&[u8]; 9] = [
            b"",
            b"\0",
            b"a",
            b"a\0",
            b"a\0\0\0\0\0\0\0\0",
            b"ab",
            b"abcdefgh",
            b"abcdefghi",
            b"\xff",
        ];
        for a in keys {
            for b in keys {
                let (pa, pb) = (Probe::new(a, 1), Probe::new(b, 1));
                let (x, y) = (MemKey::new(pa.entry()), MemKey::new(pb.entry()));
                assert_eq!(x.cmp(&y), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn get_sees_the_newest_version_at_a_snapshot() {
        let m = Memtable::new();
        m.insert(b"k", 1, Kind::Put, b"v1");
        m.insert(b"k", 3, Kind::Delete, b"");
        m.insert(b"k", 5, Kind::Put, b"v5");
        assert_eq!(m.get(b"k", 0), MemGet::Absent);
        assert_eq!(m.get(b"k", 1), MemGet::Value(b"v1".to_vec()));
        assert_eq!(m.get(b"k", 2), MemGet::Value(b"v1".to_vec()));
        assert_eq!(m.get(b"k", 4), MemGet::Deleted);
        assert_eq!(m.get(b"k", 100), MemGet::Value(b"v5".to_vec()));
        assert_eq!(m.get(b"j", 100), MemGet::Absent);
        assert_eq!(m.get(b"kk", 100), MemGet::Absent);
    }

    #[test]
    fn iteration_crosses_many_runs_and_seeks() {
        let m = Arc::new(Memtable::new());
        for i in 0..3000u32 {
            m.insert(
                format!("key{i:05}").as_bytes(),
                u64::from(i) + 1,
                Kind::Put,
                &i.to_le_bytes(),
            );
        }
        let mut it = m.iter();
        it.seek_to_first();
        let all = collect(&mut it);
        assert_eq!(all.len(), 3000);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        it.seek(b"key02990");
        assert_eq!(collect(&mut it).len(), 10);
        it.seek(b"zzz");
        assert!(!it.valid());
    }

    #[test]
    fn iterator_sees_inserts_between_runs_without_breaking_order() {
        let m = Arc::new(Memtable::new());
        for i in 0..100u64 {
            m.insert(format!("k{i:03}").as_bytes(), i + 1, Kind::Put, b"v");
        }
        let mut it = m.iter();
        it.seek_to_first();
        let mut seen = Vec::new();
        let mut extra = 1000;
        while it.valid() {
            seen.push(it.key().to_vec());
            if extra < 1010 {
                m.insert(b"k050x", extra, Kind::Put, b"late");
                extra += 1;
            }
            it.next();
        }
        assert!(seen.windows(2).all(|w| w[0] <= w[1]));
        assert!(seen.len() >= 100);
    }
}

#[cfg(test)]
mod bench {
    use super::*;

    /// `cargo test --release -p storage --lib memtable::bench -- --ignored --nocapture`
    #[test]
    #[ignore = "timing, run by hand"]
    fn insert_speed() {
        let m = Memtable::new();
        let n = 500_000u64;
        let t = std::time::Instant::now();
        let mut x = 1u64;
        for i in 0..n {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let mut k = [b'0'; 16];
            k[..8].copy_from_slice(&(x >> 20).to_be_bytes());
            m.insert(&k, i + 1, Kind::Put, &[1u8; 100]);
        }
        let e = t.elapsed();
        println!("random insert: {:.0} ns/op", e.as_nanos() as f64 / n as f64);
        let mut b = std::collections::BTreeMap::new();
        let t = std::time::Instant::now();
        for i in 0..n {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            b.insert((x >> 20, !i), ());
        }
        let e = t.elapsed();
        println!(
            "baseline u64 btree insert: {:.0} ns/op",
            e.as_nanos() as f64 / n as f64
        );
        let t = std::time::Instant::now();
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(vec![1u8; 116].into_boxed_slice());
        }
        let e = t.elapsed();
        println!(
            "baseline malloc: {:.0} ns/op",
            e.as_nanos() as f64 / n as f64
        );
    }
}
