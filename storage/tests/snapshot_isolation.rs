//! A snapshot keeps its point-in-time view (gets and iteration) while later writes,
//! deletes, flushes and compactions go on, including from another thread at the same
//! time; newer snapshots see newer data, and dropping one does not disturb the others.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{model_entries, scan, small_options, Model, Rng};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use storage::{Db, Snapshot, WriteBatch, WriteOptions};
use vfs::SimFs;

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn snapshot_entries(s: &Snapshot) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.iter(Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

fn check(s: &Snapshot, m: &Model, keys: u64, what: &str) {
    assert_eq!(
        snapshot_entries(s),
        model_entries(m),
        "snapshot iteration {what}"
    );
    for i in 0..keys {
        assert_eq!(
            s.get(&key(i)).unwrap().as_ref(),
            m.get(&key(i)),
            "snapshot get key{i:05} {what}"
        );
    }
    // A bounded scan through the middle of the key space.
    let (lo, hi) = (key(keys / 4), key(keys / 2));
    let got: Vec<_> = s
        .iter(Bound::Included(&lo), Bound::Excluded(&hi))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let want: Vec<_> = m
        .range(lo..hi)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(got, want, "snapshot range scan {what}");
}

fn open() -> Db {
    let fs = SimFs::new();
    Db::open(Arc::new(fs), Path::new("/db"), small_options()).unwrap()
}

#[test]
fn snapshot_keeps_its_view_through_writes_flushes_and_compactions() {
    const KEYS: u64 = 400;
    let db = open();
    let mut model = Model::new();
    for i in 0..KEYS {
        let v = format!("v1-{i}-{}", "x".repeat(40)).into_bytes();
        db.put(&key(i), &v, WriteOptions::default()).unwrap();
        model.insert(key(i), v);
    }
    let s1 = db.snapshot();
    let m1 = model.clone();
    check(&s1, &m1, KEYS + 50, "right after taking it");

    // Overwrite half, delete a quarter, add new keys: in batches and single writes.
    let mut batch = WriteBatch::new();
    for i in (0..KEYS).step_by(2) {
        let v = format!("v2-{i}").into_bytes();
        batch.put(&key(i), &v);
        model.insert(key(i), v);
        if batch.len() == 25 {
            db.write(&batch, WriteOptions::default()).unwrap();
            batch.clear();
        }
    }
    db.write(&batch, WriteOptions::default()).unwrap();
    for i in (1..KEYS).step_by(4) {
        db.delete(&key(i), WriteOptions::default()).unwrap();
        model.remove(&key(i));
    }
    for i in KEYS..KEYS + 50 {
        let v = format!("v2-new-{i}").into_bytes();
        db.put(&key(i), &v, WriteOptions::default()).unwrap();
        model.insert(key(i), v);
    }
    check(&s1, &m1, KEYS + 50, "after overwrites in the memtable");

    let s2 = db.snapshot();
    let m2 = model.clone();
    db.flush().unwrap();
    check(&s1, &m1, KEYS + 50, "after flush");
    check(&s2, &m2, KEYS + 50, "after flush");

    // A third generation, then compact everything: old versions s1/s2 need must survive.
    for i in 0..KEYS + 50 {
        if i % 3 == 0 {
            db.delete(&key(i), WriteOptions::default()).unwrap();
            model.remove(&key(i));
        } else {
            let v = format!("v3-{i}").into_bytes();
            db.put(&key(i), &v, WriteOptions::default()).unwrap();
            model.insert(key(i), v);
        }
    }
    db.compact_all().unwrap();
    check(&s1, &m1, KEYS + 50, "after compact_all");
    check(&s2, &m2, KEYS + 50, "after compact_all");
    assert_eq!(
        scan(&db),
        model_entries(&model),
        "latest view after compact_all"
    );

    // Dropping the older snapshot must not disturb the newer one, even after compaction.
    drop(s1);
    db.compact_all().unwrap();
    check(
        &s2,
        &m2,
        KEYS + 50,
        "after dropping s1 and compacting again",
    );
    assert!(s2.seqno() > 0);
    drop(s2);
    db.compact_all().unwrap();
    assert_eq!(
        scan(&db),
        model_entries(&model),
        "latest view after all snapshots dropped"
    );
}

/// Reads half of an iterator, changes everything underneath (writes, flush,
/// compaction), then reads the rest: the iterator still shows its starting view.
fn iterator_keeps_its_view(use_snapshot: bool) {
    let db = open();
    let mut model = Model::new();
    for i in 0..200 {
        let v = format!("a{i}").into_bytes();
        db.put(&key(i), &v, WriteOptions::default()).unwrap();
        model.insert(key(i), v);
    }
    let snap = db.snapshot();
    let mut it = if use_snapshot {
        snap.iter(Bound::Unbounded, Bound::Unbounded).unwrap()
    } else {
        db.iter(Bound::Unbounded, Bound::Unbounded).unwrap()
    };
    let mut got = Vec::new();
    for _ in 0..100 {
        got.push(Iterator::next(&mut it).unwrap().unwrap());
    }
    for i in 0..300 {
        db.put(&key(i), format!("b{i}").as_bytes(), WriteOptions::default())
            .unwrap();
    }
    for i in (0..300).step_by(3) {
        db.delete(&key(i), WriteOptions::default()).unwrap();
    }
    db.flush().unwrap();
    db.compact_all().unwrap();
    for r in it {
        got.push(r.unwrap());
    }
    assert_eq!(got, model_entries(&model));
}

#[test]
fn snapshot_iterator_keeps_its_view_across_writes_flush_and_compaction() {
    iterator_keeps_its_view(true);
}

#[test]
fn latest_view_iterator_is_a_point_in_time_view() {
    iterator_keeps_its_view(false);
}

#[test]
fn snapshots_stay_fixed_while_another_thread_writes_and_compacts() {
    const KEYS: u64 = 300;
    let db = open();
    for i in 0..KEYS {
        db.put(&key(i), b"gen-0", WriteOptions::default()).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let db = db.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut rng = Rng::new(7);
            let mut generation = 1u64;
            while !stop.load(Ordering::Relaxed) && generation < 400 {
                // Each batch rewrites a whole stripe with one generation number.
                let mut batch = WriteBatch::new();
                for i in 0..KEYS {
                    if rng.one_in(3) {
                        batch.put(&key(i), format!("gen-{generation}").as_bytes());
                    }
                }
                db.write(&batch, WriteOptions::default()).unwrap();
                if generation.is_multiple_of(20) {
                    db.flush().unwrap();
                }
                if generation.is_multiple_of(60) {
                    db.compact_all().unwrap();
                }
                generation += 1;
            }
        })
    };
    for round in 0..40 {
        let snap = db.snapshot();
        let first = snapshot_entries(&snap);
        assert_eq!(first.len() as u64, KEYS, "round {round}: no key may vanish");
        for _ in 0..3 {
            std::thread::yield_now();
            assert_eq!(
                snapshot_entries(&snap),
                first,
                "round {round}: snapshot view changed"
            );
        }
        for (k, v) in first.iter().step_by(17) {
            assert_eq!(
                snap.get(k).unwrap().as_ref(),
                Some(v),
                "round {round}: snapshot get changed"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
}
