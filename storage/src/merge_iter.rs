//! Merging many sorted sources of versions into one stream in engine order.
//!
//! Sources: a memtable cursor, one table's cursor, or a whole sorted level (a
//! concatenating cursor that opens one table at a time), all reading tables through
//! their memory map; or, for compaction, a [`ScanCursor`] that reads tables with
//! checked positioned reads. [`MergeIter`] keeps the valid
//! sources in a binary min-heap of indexes; a step advances the top source and sifts
//! it down: about `2 log2(n)` key comparisons, no allocation.
//!
//! Invariant: after every public call, `heap` holds exactly the indexes of the valid
//! sources, ordered so `heap[0]` is the smallest `(key, seqno)` (ties by index, which
//! never happen for distinct versions). After an error the merge is invalid until the
//! next seek.

use crate::error::Error;
use crate::internal_key::compare;
use crate::memtable::MemIter;
use crate::scan_cursor::ScanCursor;
use crate::version::{table_file_name, TableHandle};
use sstable::{Kind, TableIter};
use std::cmp::Ordering;
use std::sync::Arc;

fn table_err(number: u64, e: sstable::Error) -> Error {
    Error::table(format!("iterating table {}", table_file_name(number)), e)
}

/// A cursor over one table, remembering its number for error context.
pub struct TableCursor {
    iter: TableIter,
    number: u64,
}

impl TableCursor {
    /// An unpositioned cursor over `t`.
    pub fn new(t: &TableHandle) -> TableCursor {
        TableCursor {
            iter: t.table.iter(),
            number: t.meta.number,
        }
    }
}

/// A cursor over the tables of one sorted level (disjoint, ordered by key).
pub struct LevelIter {
    tables: Vec<Arc<TableHandle>>,
    /// Index of the table `iter` walks; `tables.len()` when exhausted.
    at: usize,
    iter: Option<TableIter>,
}

impl LevelIter {
    /// An unpositioned cursor over `tables` (sorted by key, disjoint).
    pub fn new(tables: Vec<Arc<TableHandle>>) -> LevelIter {
        LevelIter {
            tables,
            at: 0,
            iter: None,
        }
    }

    fn open(&mut self, at: usize) -> Option<&mut TableIter> {
        self.at = at;
        self.iter = self.tables.get(at).map(|t| t.table.iter());
        self.iter.as_mut()
    }

    fn number(&self) -> u64 {
        self.tables.get(self.at).map_or(0, |t| t.meta.number)
    }

    fn seek_to_first(&mut self) -> Result<(), Error> {
        if let Some(it) = self.open(0) {
            let r = it.seek_to_first();
            r.map_err(|e| table_err(self.number(), e))?;
        }
        self.skip_exhausted()
    }

    fn seek(&mut self, key: &[u8]) -> Result<(), Error> {
        let at = self
            .tables
            .partition_point(|t| t.meta.largest_key.as_slice() < key);
        if let Some(it) = self.open(at) {
            let r = it.seek(key);
            r.map_err(|e| table_err(self.number(), e))?;
        }
        self.skip_exhausted()
    }

    /// Moves on to the next tables while the current one is exhausted.
    fn skip_exhausted(&mut self) -> Result<(), Error> {
        while let Some(it) = &self.iter {
            if it.valid() {
                return Ok(());
            }
            let next = self.at + 1;
            if let Some(it) = self.open(next) {
                let r = it.seek_to_first();
                r.map_err(|e| table_err(self.number(), e))?;
            }
        }
        Ok(())
    }

    #[inline]
    fn valid(&self) -> bool {
        self.iter.as_ref().is_some_and(TableIter::valid)
    }

    #[inline]
    fn cur(&self) -> &TableIter {
        match &self.iter {
            Some(it) => it,
            None => panic!("LevelIter used while invalid"),
        }
    }

    #[inline]
    fn next(&mut self) -> Result<(), Error> {
        let number = self.number();
        if let Some(it) = &mut self.iter {
            it.next().map_err(|e| table_err(number, e))?;
            if !it.valid() {
                return self.skip_exhausted();
            }
        }
        Ok(())
    }
}

/// One sorted source of versions.
pub enum Source {
    /// A memtable.
    Mem(MemIter),
    /// One table (level 0, or a compaction input).
    Table(TableCursor),
    /// A whole sorted level.
    Level(LevelIter),
    /// Compaction input: tables read with checked positioned reads (`scan_cursor.rs`).
    Scan(ScanCursor),
}

impl Source {
    /// Positions at the first version.
    pub fn seek_to_first(&mut self) -> Result<(), Error> {
        match self {
            Source::Mem(m) => {
                m.seek_to_first();
                Ok(())
            }
            Source::Table(t) => t.iter.seek_to_first().map_err(|e| table_err(t.number, e)),
            Source::Level(l) => l.seek_to_first(),
            Source::Scan(s) => s.seek_to_first(),
        }
    }

    /// Positions at the first version with user key >= `key`.
    pub fn seek(&mut self, key: &[u8]) -> Result<(), Error> {
        match self {
            Source::Mem(m) => {
                m.seek(key);
                Ok(())
            }
            Source::Table(t) => t.iter.seek(key).map_err(|e| table_err(t.number, e)),
            Source::Level(l) => l.seek(key),
            Source::Scan(s) => s.seek(key),
        }
    }

    /// True when positioned at a version.
    #[inline]
    pub fn valid(&self) -> bool {
        match self {
            Source::Mem(m) => m.valid(),
            Source::Table(t) => t.iter.valid(),
            Source::Level(l) => l.valid(),
            Source::Scan(s) => s.valid(),
        }
    }

    /// Current user key.
    #[inline]
    pub fn key(&self) -> &[u8] {
        match self {
            Source::Mem(m) => m.key(),
            Source::Table(t) => t.iter.key(),
            Source::Level(l) => l.cur().key(),
            Source::Scan(s) => s.key(),
        }
    }

    /// Current seqno.
    #[inline]
    pub fn seqno(&self) -> u64 {
        match self {
            Source::Mem(m) => m.seqno(),
            Source::Table(t) => t.iter.seqno(),
            Source::Level(l) => l.cur().seqno(),
            Source::Scan(s) => s.seqno(),
        }
    }

    /// Current kind.
    #[inline]
    pub fn kind(&self) -> Kind {
        match self {
            Source::Mem(m) => m.kind(),
            Source::Table(t) => t.iter.kind(),
            Source::Level(l) => l.cur().kind(),
            Source::Scan(s) => s.kind(),
        }
    }

    /// Current value.
    #[inline]
    pub fn value(&self) -> &[u8] {
        match self {
            Source::Mem(m) => m.value(),
            Source::Table(t) => t.iter.value(),
            Source::Level(l) => l.cur().value(),
            Source::Scan(s) => s.value(),
        }
    }

    /// Moves to the next version.
    #[inline]
    pub fn next(&mut self) -> Result<(), Error> {
        match self {
            Source::Mem(m) => {
                m.next();
                Ok(())
            }
            Source::Table(t) => t.iter.next().map_err(|e| table_err(t.number, e)),
            Source::Level(l) => l.next(),
            Source::Scan(s) => s.next(),
        }
    }
}

/// The merge of many sources (see the module doc).
pub struct MergeIter {
    sources: Vec<Source>,
    heap: Vec<usize>,
}

impl MergeIter {
    /// A merge over `sources` (unpositioned). Order of `sources` breaks ties only.
    pub fn new(sources: Vec<Source>) -> MergeIter {
        let heap = Vec::with_capacity(sources.len());
        MergeIter { sources, heap }
    }

    /// Positions every source at its first version.
    pub fn seek_to_first(&mut self) -> Result<(), Error> {
        self.heap.clear();
        for s in &mut self.sources {
            s.seek_to_first()?;
        }
        self.rebuild();
        Ok(())
    }

    /// Positions every source at the first version with user key >= `key`.
    pub fn seek(&mut self, key: &[u8]) -> Result<(), Error> {
        self.heap.clear();
        for s in &mut self.sources {
            s.seek(key)?;
        }
        self.rebuild();
        Ok(())
    }

    fn rebuild(&mut self) {
        self.heap.clear();
        self.heap
            .extend((0..self.sources.len()).filter(|&i| self.sources[i].valid()));
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
    }

    /// True when positioned at a version.
    #[inline]
    pub fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    /// The source holding the current (smallest) version. Requires `valid()`.
    #[inline]
    pub fn current(&self) -> &Source {
        &self.sources[self.heap[0]]
    }

    /// Moves to the next version in engine order. Requires `valid()`.
    #[inline]
    pub fn next(&mut self) -> Result<(), Error> {
        let top = self.heap[0];
        if let Err(e) = self.sources[top].next() {
            self.heap.clear();
            return Err(e);
        }
        if !self.sources[top].valid() {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
        }
        if self.heap.len() > 1 {
            self.sift_down(0);
        }
        Ok(())
    }

    #[inline]
    fn less(&self, a: usize, b: usize) -> bool {
        let (x, y) = (&self.sources[a], &self.sources[b]);
        match compare(x.key(), x.seqno(), y.key(), y.seqno()) {
            Ordering::Less => true,
            Ordering::Greater => false,
            Ordering::Equal => a < b,
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * i + 1;
            if l >= n {
                return;
            }
            let r = l + 1;
            let child = if r < n && self.less(self.heap[r], self.heap[l]) {
                r
            } else {
                l
            };
            if self.less(self.heap[child], self.heap[i]) {
                self.heap.swap(child, i);
                i = child;
            } else {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memtable::Memtable;

    fn mem(entries: &[(&str, u64)]) -> Source {
        let m = Arc::new(Memtable::new());
        for (k, s) in entries {
            m.insert(k.as_bytes(), *s, Kind::Put, format!("{k}@{s}").as_bytes());
        }
        Source::Mem(m.iter())
    }

    fn drain(m: &mut MergeIter) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        while m.valid() {
            let c = m.current();
            out.push((String::from_utf8(c.key().to_vec()).unwrap(), c.seqno()));
            m.next().unwrap();
        }
        out
    }

    #[test]
    fn merges_in_key_then_newest_first_order() {
        let mut m = MergeIter::new(vec![
            mem(&[("b", 5), ("d", 6)]),
            mem(&[("a", 1), ("b", 2), ("e", 3)]),
            mem(&[]),
            mem(&[("b", 9), ("c", 4)]),
        ]);
        m.seek_to_first().unwrap();
        let got = drain(&mut m);
        let want: Vec<(String, u64)> = [
            ("a", 1),
            ("b", 9),
            ("b", 5),
            ("b", 2),
            ("c", 4),
            ("d", 6),
            ("e", 3),
        ]
        .iter()
        .map(|(k, s)| (k.to_string(), *s))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn seek_positions_every_source() {
        let mut m = MergeIter::new(vec![mem(&[("a", 1), ("c", 2)]), mem(&[("b", 3), ("d", 4)])]);
        m.seek(b"b").unwrap();
        assert_eq!(
            drain(&mut m),
            vec![("b".into(), 3), ("c".into(), 2), ("d".into(), 4)]
        );
        m.seek(b"z").unwrap();
        assert!(!m.valid());
    }

    #[test]
    fn many_sources_stay_sorted() {
        let mut sources = Vec::new();
        let mut seq = 1;
        for s in 0..9 {
            let mut entries = Vec::new();
            for k in 0..50 {
                if (k + s) % 3 == 0 {
                    entries.push((format!("k{k:03}"), seq));
                    seq += 1;
                }
            }
            let refs: Vec<(&str, u64)> = entries.iter().map(|(k, s)| (k.as_str(), *s)).collect();
            sources.push(mem(&refs));
        }
        let mut m = MergeIter::new(sources);
        m.seek_to_first().unwrap();
        let got = drain(&mut m);
        assert_eq!(got.len(), (seq - 1) as usize);
        for w in got.windows(2) {
            assert_eq!(
                compare(w[0].0.as_bytes(), w[0].1, w[1].0.as_bytes(), w[1].1),
                Ordering::Less
            );
        }
    }
}
