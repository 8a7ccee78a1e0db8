//! The same workload gives the same answers whatever the tables read through: the
//! memory map, or `pread` into a block cache of 0 bytes (every read from the file),
//! a few blocks (constant eviction, blocks of many tables sharing one cache), or
//! room for everything; and the cache never holds more than its capacity.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{model_entries, scan, small_options, Model, Rng};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use storage::{Db, Options, TableReads, WriteOptions};
use vfs::{Fs, SimFs};

fn key(i: u64) -> Vec<u8> {
    format!("key{:05}", i).into_bytes()
}

/// Options with tables read as `reads` and a block cache of `cache` bytes.
fn options(reads: TableReads, cache: u64) -> Options {
    let o = small_options();
    Options {
        memory_budget_bytes: 2 * o.write_buffer_bytes as u64 + cache,
        table_reads: reads,
        ..o
    }
}

fn check(db: &Db, model: &Model, rng: &mut Rng, what: &str) {
    for _ in 0..300 {
        let k = key(rng.below(1200));
        assert_eq!(
            db.get(&k).unwrap(),
            model.get(&k).cloned(),
            "{what}: get {k:?}"
        );
    }
    assert_eq!(scan(db), model_entries(model), "{what}: full scan");
    let lo = key(rng.below(1200));
    let got: Vec<_> = db
        .iter(Bound::Included(&lo[..]), Bound::Unbounded)
        .unwrap()
        .take(50)
        .map(Result::unwrap)
        .collect();
    let want: Vec<_> = model
        .range(lo.clone()..)
        .take(50)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(got, want, "{what}: 50 from {lo:?}");
}

fn run(reads: TableReads, cache: u64) {
    let what = format!("{reads:?} with a {cache}-byte cache");
    let fs: Arc<dyn Fs> = Arc::new(SimFs::new());
    let dir = Path::new("/db");
    let mut db = Db::open(Arc::clone(&fs), dir, options(reads, cache)).unwrap();
    let mut model = Model::new();
    let mut rng = Rng::new(42);
    for op in 0..6000u64 {
        let k = key(rng.below(1200));
        if rng.one_in(5) {
            db.delete(&k, WriteOptions::default()).unwrap();
            model.remove(&k);
        } else {
            let v = format!("{op}:{}", "v".repeat(rng.below(60) as usize)).into_bytes();
            db.put(&k, &v, WriteOptions::default()).unwrap();
            model.insert(k, v);
        }
        if op % 1500 == 1499 {
            check(&db, &model, &mut rng, &what);
        }
    }
    db.flush().unwrap();
    check(&db, &model, &mut rng, &what);
    db.compact_all().unwrap();
    check(&db, &model, &mut rng, &what);
    let stats = db.engine_stats().block_cache;
    assert!(
        stats.used_bytes <= stats.capacity_bytes,
        "{what}: {stats:?}"
    );
    assert!(stats.capacity_bytes <= cache, "{what}: {stats:?}");
    drop(db);
    db = Db::open(Arc::clone(&fs), dir, options(reads, cache)).unwrap();
    check(&db, &model, &mut rng, &format!("{what}, reopened"));
    let stats = db.engine_stats().block_cache;
    assert!(
        stats.used_bytes <= stats.capacity_bytes,
        "{what}: {stats:?}"
    );
    if reads == TableReads::Cached && cache >= 1 << 20 {
        assert!(stats.hits > 0 && stats.blocks > 0, "{what}: {stats:?}");
    }
}

#[test]
fn mapped_reads_agree_with_the_model() {
    run(TableReads::Mapped, 0);
}

#[test]
fn cached_reads_with_no_cache_agree_with_the_model() {
    run(TableReads::Cached, 0);
}

#[test]
fn cached_reads_with_a_few_blocks_of_cache_agree_with_the_model() {
    run(TableReads::Cached, 3 << 10);
}

#[test]
fn cached_reads_with_room_for_everything_agree_with_the_model() {
    run(TableReads::Cached, 64 << 20);
}
