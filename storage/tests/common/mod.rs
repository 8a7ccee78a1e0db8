//! Helpers shared by the storage integration tests: small engine options that make
//! flushes and compactions happen after a few KiB, a seeded generator, and readers that
//! turn the engine's iterators into plain vectors to compare with a `BTreeMap` model.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::ops::Bound;
use storage::{Db, Options};

/// Keys to values: what the database should hold.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Options under which a few KiB of writes flush, and a few flushes compact.
pub fn small_options() -> Options {
    Options {
        write_buffer_bytes: 4 << 10,
        l0_compaction_trigger: 2,
        l0_slowdown_writes: 6,
        l0_stop_writes: 10,
        level_base_bytes: 16 << 10,
        level_multiplier: 4,
        table_target_bytes: 4 << 10,
        block_bytes: 512,
        wal_segment_bytes: 16 << 10,
        manifest_bytes_max: 4 << 10,
        ..Options::default()
    }
}

/// SplitMix64: tiny, seeded, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_0FC0_FFEE)
    }
    pub fn next_u64(&mut self) -> u64 {
        vfs::splitmix64(&mut self.0)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

/// Every entry of the latest view, in order.
pub fn scan(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    scan_range(db, Bound::Unbounded, Bound::Unbounded)
}

/// The entries of the latest view between the bounds, in order.
pub fn scan_range(db: &Db, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iter(lo, hi).unwrap().map(|r| r.unwrap()).collect()
}

/// The model's entries between the bounds.
pub fn model_range(model: &Model, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let lo = lo.map(|b| b.to_vec());
    let hi = hi.map(|b| b.to_vec());
    // BTreeMap::range panics on inverted or equal-excluded bounds; the engine must return nothing.
    let empty = match (&lo, &hi) {
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b))
            if a > b =>
        {
            true
        }
        (Bound::Excluded(a), Bound::Excluded(b)) if a == b => true,
        _ => false,
    };
    if empty {
        return Vec::new();
    }
    model
        .range((lo, hi))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The model as a vector.
pub fn model_entries(model: &Model) -> Vec<(Vec<u8>, Vec<u8>)> {
    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The exclusive upper bound of all keys starting with `prefix` (None: no bound).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A fresh, empty directory under the system temp dir, unique per process and call.
pub fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "storage-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
