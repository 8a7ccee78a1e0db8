//! Versions: immutable sets of live tables per level, shared through `Arc`.
//!
//! A [`Version`] never changes; applying an edit makes a new one. Readers, iterators and
//! snapshots hold an `Arc<Version>` (inside a `SuperVersion`), which holds
//! `Arc<TableHandle>`s. A table removed by an edit is marked obsolete; its file is
//! deleted when the last handle drops, i.e. when no version, snapshot or iterator can
//! reach it any more.
//!
//! Invariants:
//! - Level 0 is ordered newest first (by largest seqno): its tables may overlap in keys
//!   but a newer table's versions of a key are all newer than an older table's.
//! - Levels >= 1 are sorted by smallest key and their key ranges are disjoint; no user
//!   key's versions are split over two tables of one level.

use crate::edit::TableMeta;
use crate::error::Error;
use sstable::{Kind, ReadMode, Table, TableInfo};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use vfs::Fs;

/// The file name of table `number`.
pub fn table_file_name(number: u64) -> String {
    format!("{number:06}.sst")
}

/// Parses a table file name back to its number.
pub fn parse_table_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".sst")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// An open table and its metadata; deletes its file on drop once obsolete.
pub struct TableHandle {
    /// What the manifest says about it.
    pub meta: TableMeta,
    /// The opened table.
    pub table: Table,
    path: PathBuf,
    fs: Arc<dyn Fs>,
    obsolete: AtomicBool,
}

impl TableHandle {
    /// Opens table `meta.number` in `dir` to read its data blocks as `mode` says,
    /// reading none of it: its length is checked against the manifest's metadata
    /// now, its index, filter and properties when the first read loads them
    /// (`sstable::Table::open_lazy`), so an engine of many tables opens in time
    /// independent of their sizes.
    pub fn open(
        fs: &Arc<dyn Fs>,
        dir: &Path,
        meta: TableMeta,
        mode: &ReadMode,
    ) -> Result<TableHandle, Error> {
        let path = dir.join(table_file_name(meta.number));
        let expected = TableInfo {
            entries: meta.entries,
            file_bytes: meta.file_bytes,
            smallest_key: meta.smallest_key.clone(),
            largest_key: meta.largest_key.clone(),
            smallest_seqno: meta.smallest_seqno,
            largest_seqno: meta.largest_seqno,
        };
        let table = Table::open_lazy(fs.as_ref(), &path, mode, expected)
            .map_err(|e| Error::table(format!("opening table {}", path.display()), e))?;
        Ok(TableHandle {
            meta,
            table,
            path,
            fs: Arc::clone(fs),
            obsolete: AtomicBool::new(false),
        })
    }

    /// A checked, positioned-read scan of the table's file (compaction's reader).
    pub fn scan(&self) -> Result<sstable::TableScan, Error> {
        let file = self
            .fs
            .open_read(&self.path)
            .map_err(|e| Error::io(format!("opening {} for a scan", self.path.display()), e))?;
        Ok(sstable::TableScan::new(&self.table, file))
    }

    /// Marks the file for deletion once the last reference drops.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, AtomicOrdering::Release);
    }

    /// True when `key` is within the table's key range.
    #[inline]
    pub fn may_contain(&self, key: &[u8]) -> bool {
        key >= self.meta.smallest_key.as_slice() && key <= self.meta.largest_key.as_slice()
    }

    /// True when the table's key range meets `[lo, hi]`.
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        self.meta.largest_key.as_slice() >= lo && self.meta.smallest_key.as_slice() <= hi
    }
}

impl fmt::Debug for TableHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Table#{}", self.meta.number)
    }
}

impl Drop for TableHandle {
    fn drop(&mut self) {
        if self.obsolete.load(AtomicOrdering::Acquire) {
            if let Err(e) = self.fs.remove_file(&self.path) {
                // Left over files are removed at the next open.
                tracing::warn!(path = %self.path.display(), error = %e, "removing obsolete table");
            }
        }
    }
}

/// The result of looking a key up in tables.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// The newest visible version is a put of this value.
    Value(Vec<u8>),
    /// The newest visible version is a tombstone.
    Deleted,
}

/// The live tables, per level (see the module doc for the order invariants).
#[derive(Clone, Debug, Default)]
pub struct Version {
    /// `levels[0]` newest first; `levels[i >= 1]` sorted by key and disjoint.
    pub levels: Vec<Vec<Arc<TableHandle>>>,
}

impl Version {
    /// An empty version with `levels` levels.
    pub fn empty(levels: usize) -> Version {
        Version {
            levels: vec![Vec::new(); levels],
        }
    }

    /// The newest version of `key` with seqno <= `snapshot` in the tables.
    pub fn get(&self, key: &[u8], snapshot: u64) -> Result<Option<Found>, Error> {
        for t in &self.levels[0] {
            if t.may_contain(key) && t.meta.smallest_seqno <= snapshot {
                if let Some(found) = table_get(t, key, snapshot)? {
                    return Ok(Some(found));
                }
            }
        }
        for level in &self.levels[1..] {
            if let Some(t) = find_table(level, key) {
                if let Some(found) = table_get(t, key, snapshot)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// Total file bytes in `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|t| t.meta.file_bytes).sum()
    }

    /// Tables of `level` whose key range meets `[lo, hi]`.
    pub fn overlapping(&self, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Arc<TableHandle>> {
        self.levels[level]
            .iter()
            .filter(|t| t.overlaps(lo, hi))
            .cloned()
            .collect()
    }

    /// Number of tables in all levels.
    pub fn table_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// A new version: this one without `removed` and with `added`. Errors (as corruption
    /// of the manifest) when a removed table is missing, an added one already exists, or
    /// a level >= 1 would overlap.
    pub fn apply(
        &self,
        removed: &[(u8, u64)],
        added: Vec<(u8, Arc<TableHandle>)>,
    ) -> Result<Version, Error> {
        let mut levels = self.levels.clone();
        let bad = |reason: String| Err(Error::corrupt("version edit", reason));
        for &(level, number) in removed {
            let Some(tables) = levels.get_mut(level as usize) else {
                return bad(format!("removal from level {level} which does not exist"));
            };
            let before = tables.len();
            tables.retain(|t| t.meta.number != number);
            if tables.len() == before {
                return bad(format!("removal of table {number} not in level {level}"));
            }
        }
        for (level, t) in added {
            if levels
                .iter()
                .flatten()
                .any(|x| x.meta.number == t.meta.number)
            {
                return bad(format!("table {} added twice", t.meta.number));
            }
            let Some(tables) = levels.get_mut(level as usize) else {
                return bad(format!(
                    "table {} added to level {level} which does not exist",
                    t.meta.number
                ));
            };
            tables.push(t);
        }
        levels[0].sort_by(|a, b| {
            b.meta
                .largest_seqno
                .cmp(&a.meta.largest_seqno)
                .then(b.meta.number.cmp(&a.meta.number))
        });
        for (i, tables) in levels.iter_mut().enumerate().skip(1) {
            tables.sort_by(|a, b| a.meta.smallest_key.cmp(&b.meta.smallest_key));
            for w in tables.windows(2) {
                if w[0].meta.largest_key >= w[1].meta.smallest_key {
                    return bad(format!(
                        "tables {} and {} overlap in level {i}",
                        w[0].meta.number, w[1].meta.number
                    ));
                }
            }
        }
        Ok(Version { levels })
    }
}

/// The table of a sorted level whose range may hold `key` (binary search).
pub fn find_table<'a>(level: &'a [Arc<TableHandle>], key: &[u8]) -> Option<&'a Arc<TableHandle>> {
    let i = level.partition_point(|t| t.meta.largest_key.as_slice() < key);
    level
        .get(i)
        .filter(|t| t.meta.smallest_key.as_slice() <= key)
}

fn table_get(t: &TableHandle, key: &[u8], snapshot: u64) -> Result<Option<Found>, Error> {
    let entry = t.table.get(key, snapshot).map_err(|e| {
        Error::table(
            format!("reading table {}", table_file_name(t.meta.number)),
            e,
        )
    })?;
    Ok(entry.map(|e| match e.kind {
        Kind::Put => Found::Value(e.value.to_vec()),
        Kind::Delete => Found::Deleted,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_round_trip() {
        assert_eq!(table_file_name(7), "000007.sst");
        assert_eq!(parse_table_file_name("000007.sst"), Some(7));
        assert_eq!(parse_table_file_name("12345678.sst"), Some(12345678));
        assert_eq!(parse_table_file_name("x.sst"), None);
        assert_eq!(parse_table_file_name("000007.sst.tmp"), None);
    }
}

/// Helpers for tests that need real tables.
#[cfg(test)]
pub(crate) mod test_tables {
    use super::*;
    use crate::options::Options;
    use crate::table_file::{finish_tables, TableWriter};
    use vfs::SimFs;

    /// A file system and directory for test tables.
    pub fn fs() -> (Arc<dyn Fs>, PathBuf) {
        let fs: Arc<dyn Fs> = Arc::new(SimFs::new());
        let dir = PathBuf::from("/t");
        fs.create_dir_all(&dir).unwrap();
        (fs, dir)
    }

    /// Table `number` holding `keys` (sorted) at seqnos `seqno..`, values `pad` bytes.
    pub fn table(
        fs: &Arc<dyn Fs>,
        dir: &Path,
        number: u64,
        keys: &[&str],
        seqno: u64,
        pad: usize,
    ) -> Arc<TableHandle> {
        let mut w = TableWriter::create(fs, dir, number, &Options::default(), None).unwrap();
        for (i, k) in keys.iter().enumerate() {
            w.add(k.as_bytes(), seqno + i as u64, Kind::Put, &vec![b'v'; pad])
                .unwrap();
        }
        let meta = w.finish().unwrap();
        finish_tables(fs, dir, vec![meta], &ReadMode::Mapped)
            .unwrap()
            .remove(0)
    }
}

#[cfg(test)]
mod version_tests {
    use super::test_tables::{fs, table};
    use super::*;

    #[test]
    fn apply_orders_levels_and_rejects_overlap_and_bad_removals() {
        let (fs, dir) = fs();
        let a = table(&fs, &dir, 1, &["a", "c"], 1, 1);
        let b = table(&fs, &dir, 2, &["d", "f"], 10, 1);
        let c = table(&fs, &dir, 3, &["b", "e"], 20, 1);
        let v = Version::empty(3)
            .apply(
                &[],
                vec![
                    (1, Arc::clone(&b)),
                    (1, Arc::clone(&a)),
                    (0, Arc::clone(&c)),
                ],
            )
            .unwrap();
        let l1: Vec<u64> = v.levels[1].iter().map(|t| t.meta.number).collect();
        assert_eq!(l1, vec![1, 2]);
        assert!(
            v.apply(&[], vec![(1, Arc::clone(&c))]).is_err(),
            "c overlaps a and b in level 1"
        );
        assert!(v.apply(&[(1, 9)], vec![]).is_err());
        assert!(
            v.apply(&[], vec![(2, Arc::clone(&a))]).is_err(),
            "added twice"
        );
        let d = table(&fs, &dir, 4, &["x"], 30, 1);
        let v2 = v.apply(&[], vec![(0, d)]).unwrap();
        let l0: Vec<u64> = v2.levels[0].iter().map(|t| t.meta.number).collect();
        assert_eq!(l0, vec![4, 3], "level 0 newest first");
        assert_eq!(
            find_table(&v.levels[1], b"b").map(|t| t.meta.number),
            Some(1)
        );
        assert_eq!(find_table(&v.levels[1], b"cc").map(|t| t.meta.number), None);
        assert_eq!(
            find_table(&v.levels[1], b"f").map(|t| t.meta.number),
            Some(2)
        );
        assert_eq!(find_table(&v.levels[1], b"g").map(|t| t.meta.number), None);
    }

    #[test]
    fn get_prefers_level_0_newest_then_levels() {
        let (fs, dir) = fs();
        let old = table(&fs, &dir, 1, &["k"], 1, 3);
        let new = table(&fs, &dir, 2, &["k"], 5, 7);
        let deep = table(&fs, &dir, 3, &["a", "z"], 1, 2);
        let v = Version::empty(3)
            .apply(&[], vec![(0, old), (0, new), (2, deep)])
            .unwrap();
        assert_eq!(v.get(b"k", 10).unwrap(), Some(Found::Value(vec![b'v'; 7])));
        assert_eq!(v.get(b"k", 4).unwrap(), Some(Found::Value(vec![b'v'; 3])));
        assert_eq!(v.get(b"z", 10).unwrap(), Some(Found::Value(vec![b'v'; 2])));
        assert_eq!(v.get(b"m", 10).unwrap(), None);
    }

    #[test]
    fn obsolete_tables_are_deleted_when_the_last_reference_drops() {
        let (fs, dir) = fs();
        let t = table(&fs, &dir, 7, &["a"], 1, 1);
        let path = dir.join(table_file_name(7));
        let pinned = Arc::clone(&t);
        t.mark_obsolete();
        drop(t);
        assert!(fs.exists(&path), "still pinned");
        drop(pinned);
        assert!(!fs.exists(&path));
    }
}
