//! The engine behaves like a `BTreeMap`: random sequences of puts, deletes, atomic
//! multi-key batches, gets, range and prefix scans, snapshots read later, reopens,
//! crashes after `sync_wal`, flushes and compactions give the same answers as the
//! model. Small write buffers and tables make flushes and compactions really happen.
//! Runs on `SimFs` (many cases) and on the real disk in a temp dir (a few).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    model_entries, model_range, prefix_end, scan, scan_range, small_options, tempdir, Model,
};
use proptest::prelude::*;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use storage::{Db, Snapshot, WriteBatch, WriteOptions};
use vfs::{CrashMode, Fs, RealFs, SimFs};

/// Key groups; `ff ff` has no prefix successor, and one key is empty.
const PREFIXES: [&[u8]; 6] = [b"a", b"ab", b"b", b"ba", b"c", b"\xff\xff"];
const KEYS: u8 = 120;

fn key(idx: u8) -> Vec<u8> {
    let idx = idx % KEYS;
    if idx == KEYS - 1 {
        return Vec::new();
    }
    let group = usize::from(idx) % PREFIXES.len();
    let mut k = PREFIXES[group].to_vec();
    k.extend_from_slice(format!("{:02}", usize::from(idx) / PREFIXES.len()).as_bytes());
    k
}

/// A value that says which op wrote it, padded to `len` bytes; `len == 0` is empty.
fn value(op: usize, len: u16, fill: u8) -> Vec<u8> {
    if len == 0 {
        return Vec::new();
    }
    let mut v = format!("{op}:").into_bytes();
    v.resize(usize::from(len).max(v.len()), fill);
    v
}

#[derive(Debug, Clone)]
enum Op {
    Put {
        k: u8,
        len: u16,
        fill: u8,
        sync: bool,
    },
    Delete {
        k: u8,
    },
    Batch {
        items: Vec<(u8, Option<(u16, u8)>)>,
        sync: bool,
    },
    Get {
        k: u8,
    },
    Range {
        lo: Option<(u8, bool)>,
        hi: Option<(u8, bool)>,
    },
    Prefix {
        group: u8,
    },
    Seek {
        lo: Option<(u8, bool)>,
        hi: Option<(u8, bool)>,
        from: u8,
        steps: u8,
    },
    TakeSnapshot,
    ReadSnapshot {
        which: usize,
        k: u8,
    },
    DropSnapshot {
        which: usize,
    },
    Reopen,
    CrashAfterSync,
    Flush,
    CompactAll,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let bound = proptest::option::of((0..KEYS, any::<bool>()));
    prop_oneof![
        30 => (0..KEYS, 0u16..700, any::<u8>(), proptest::bool::weighted(0.1))
            .prop_map(|(k, len, fill, sync)| Op::Put { k, len, fill, sync }),
        8 => (0..KEYS).prop_map(|k| Op::Delete { k }),
        10 => (proptest::collection::vec((0..KEYS, proptest::option::weighted(0.7, (0u16..300, any::<u8>()))), 0..24),
               proptest::bool::weighted(0.2))
            .prop_map(|(items, sync)| Op::Batch { items, sync }),
        12 => (0..KEYS).prop_map(|k| Op::Get { k }),
        5 => (bound.clone(), bound.clone()).prop_map(|(lo, hi)| Op::Range { lo, hi }),
        4 => (0..PREFIXES.len() as u8).prop_map(|group| Op::Prefix { group }),
        4 => (bound.clone(), bound.clone(), 0..KEYS, 0u8..12)
            .prop_map(|(lo, hi, from, steps)| Op::Seek { lo, hi, from, steps }),
        3 => Just(Op::TakeSnapshot),
        5 => (any::<usize>(), 0..KEYS).prop_map(|(which, k)| Op::ReadSnapshot { which, k }),
        1 => any::<usize>().prop_map(|which| Op::DropSnapshot { which }),
        1 => Just(Op::Reopen),
        1 => Just(Op::CrashAfterSync),
        2 => Just(Op::Flush),
        1 => Just(Op::CompactAll),
    ]
}

fn to_bound(b: Option<(u8, bool)>) -> Bound<Vec<u8>> {
    match b {
        None => Bound::Unbounded,
        Some((k, true)) => Bound::Included(key(k)),
        Some((k, false)) => Bound::Excluded(key(k)),
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn snapshot_scan(s: &Snapshot, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.iter(lo, hi).unwrap().map(|r| r.unwrap()).collect()
}

struct Harness {
    fs: Arc<dyn Fs>,
    sim: Option<SimFs>,
    dir: std::path::PathBuf,
    db: Option<Db>,
    model: Model,
    snapshots: Vec<(Snapshot, Model)>,
}

impl Harness {
    fn open(&mut self) {
        self.db = Some(Db::open(self.fs.clone(), &self.dir, small_options()).unwrap());
    }

    fn db(&self) -> &Db {
        self.db.as_ref().unwrap()
    }

    fn apply(&mut self, n: usize, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Put { k, len, fill, sync } => {
                let v = value(n, *len, *fill);
                self.db()
                    .put(&key(*k), &v, WriteOptions { sync: *sync })
                    .unwrap();
                self.model.insert(key(*k), v);
            }
            Op::Delete { k } => {
                self.db().delete(&key(*k), WriteOptions::default()).unwrap();
                self.model.remove(&key(*k));
            }
            Op::Batch { items, sync } => {
                let mut batch = WriteBatch::new();
                let mut after = self.model.clone();
                for (i, (k, v)) in items.iter().enumerate() {
                    match v {
                        Some((len, fill)) => {
                            let v = value(n * 100 + i, *len, *fill);
                            batch.put(&key(*k), &v);
                            after.insert(key(*k), v);
                        }
                        None => {
                            batch.delete(&key(*k));
                            after.remove(&key(*k));
                        }
                    }
                }
                prop_assert_eq!(batch.len(), items.len());
                self.db()
                    .write(&batch, WriteOptions { sync: *sync })
                    .unwrap();
                self.model = after;
            }
            Op::Get { k } => {
                let got = self.db().get(&key(*k)).unwrap();
                prop_assert_eq!(
                    got.as_ref(),
                    self.model.get(&key(*k)),
                    "get {:?}",
                    String::from_utf8_lossy(&key(*k))
                );
            }
            Op::Range { lo, hi } => {
                let (lo, hi) = (to_bound(*lo), to_bound(*hi));
                let got = scan_range(self.db(), as_ref(&lo), as_ref(&hi));
                prop_assert_eq!(
                    got,
                    model_range(&self.model, as_ref(&lo), as_ref(&hi)),
                    "range {:?}..{:?}",
                    lo,
                    hi
                );
            }
            Op::Prefix { group } => {
                let prefix = PREFIXES[usize::from(*group) % PREFIXES.len()].to_vec();
                let end = prefix_end(&prefix);
                let hi = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                let got = scan_range(self.db(), Bound::Included(&prefix), hi);
                prop_assert!(got.iter().all(|(k, _)| k.starts_with(&prefix)));
                let want = model_range(&self.model, Bound::Included(&prefix), hi);
                let via_prefix_iter: Vec<_> = self
                    .db()
                    .prefix_iter(&prefix)
                    .unwrap()
                    .map(|r| r.unwrap())
                    .collect();
                prop_assert_eq!(&got, &want);
                prop_assert_eq!(via_prefix_iter, want, "prefix_iter");
            }
            Op::Seek {
                lo,
                hi,
                from,
                steps,
            } => {
                // The cursor API on a bounded iterator: seek, then valid/key/value/next.
                let (lo, hi) = (to_bound(*lo), to_bound(*hi));
                let mut it = self.db().iter(as_ref(&lo), as_ref(&hi)).unwrap();
                it.seek(&key(*from)).unwrap();
                let mut got = Vec::new();
                while it.valid() && got.len() < usize::from(*steps) {
                    got.push((it.key().to_vec(), it.value().to_vec()));
                    it.next().unwrap();
                }
                let want: Vec<_> = model_range(&self.model, as_ref(&lo), as_ref(&hi))
                    .into_iter()
                    .filter(|(k, _)| *k >= key(*from))
                    .take(usize::from(*steps))
                    .collect();
                prop_assert_eq!(got, want, "seek to {:?} in {:?}..{:?}", key(*from), lo, hi);
            }
            Op::TakeSnapshot => {
                let s = self.db().snapshot();
                self.snapshots.push((s, self.model.clone()));
            }
            Op::ReadSnapshot { which, k } => {
                if !self.snapshots.is_empty() {
                    let (s, m) = &self.snapshots[which % self.snapshots.len()];
                    let all = snapshot_scan(s, Bound::Unbounded, Bound::Unbounded);
                    prop_assert_eq!(all, model_entries(m), "snapshot at seqno {}", s.seqno());
                    prop_assert_eq!(s.get(&key(*k)).unwrap(), m.get(&key(*k)).cloned());
                    let lo = key(*k);
                    let part = snapshot_scan(s, Bound::Included(&lo), Bound::Unbounded);
                    prop_assert_eq!(part, model_range(m, Bound::Included(&lo), Bound::Unbounded));
                }
            }
            Op::DropSnapshot { which } => {
                if !self.snapshots.is_empty() {
                    let i = which % self.snapshots.len();
                    self.snapshots.swap_remove(i);
                }
            }
            Op::Reopen => {
                self.snapshots.clear();
                self.db = None;
                self.open();
                prop_assert_eq!(scan(self.db()), model_entries(&self.model), "after reopen");
            }
            Op::CrashAfterSync => {
                self.db().sync_wal().unwrap();
                self.snapshots.clear();
                self.db = None;
                if let Some(sim) = &self.sim {
                    sim.crash(CrashMode::DropUnsynced);
                }
                self.open();
                prop_assert_eq!(
                    scan(self.db()),
                    model_entries(&self.model),
                    "after sync_wal + crash"
                );
            }
            Op::Flush => self.db().flush().unwrap(),
            Op::CompactAll => self.db().compact_all().unwrap(),
        }
        Ok(())
    }
}

fn run(fs: Arc<dyn Fs>, sim: Option<SimFs>, dir: &Path, ops: &[Op]) -> Result<(), TestCaseError> {
    fs.create_dir_all(dir).unwrap();
    let mut h = Harness {
        fs,
        sim,
        dir: dir.to_path_buf(),
        db: None,
        model: Model::new(),
        snapshots: Vec::new(),
    };
    h.open();
    for (n, op) in ops.iter().enumerate() {
        h.apply(n, op)?;
    }
    prop_assert_eq!(scan(h.db()), model_entries(&h.model), "final scan");
    for (s, m) in &h.snapshots {
        prop_assert_eq!(
            snapshot_scan(s, Bound::Unbounded, Bound::Unbounded),
            model_entries(m),
            "final snapshot check"
        );
    }
    h.snapshots.clear();
    h.db = None;
    h.open();
    prop_assert_eq!(scan(h.db()), model_entries(&h.model), "final reopen");
    for k in 0..KEYS {
        prop_assert_eq!(h.db().get(&key(k)).unwrap(), h.model.get(&key(k)).cloned());
    }
    Ok(())
}

/// Case count: the given default, or `PROPTEST_CASES` for a longer hunt.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]
    #[test]
    fn sim_fs_model_matches_btreemap(ops in proptest::collection::vec(op_strategy(), 1..300)) {
        let sim = SimFs::new();
        run(Arc::new(sim.clone()), Some(sim), Path::new("/db"), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: (cases(64) / 8).max(1), ..ProptestConfig::default() })]
    #[test]
    fn real_fs_model_matches_btreemap(ops in proptest::collection::vec(op_strategy(), 1..200)) {
        let tmp = tempdir();
        let result = run(RealFs::shared(), None, &tmp.join("db"), &ops);
        let _ = std::fs::remove_dir_all(&tmp);
        result?;
    }
}
