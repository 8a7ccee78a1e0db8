//! A batch is atomic for readers too: while writers commit batches that set a group
//! of keys to one generation (memtables switching, flushing and compacting under
//! them), every snapshot and every iterator shows each group wholly at one generation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{small_options, Rng};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use storage::{Db, WriteBatch, WriteOptions};
use vfs::SimFs;

const GROUPS: u64 = 8;
const KEYS_PER_GROUP: u64 = 12;

fn key(g: u64, k: u64) -> Vec<u8> {
    format!("g{g}/k{k:02}").into_bytes()
}

fn gen_of(v: &[u8]) -> u64 {
    std::str::from_utf8(v)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Checks that every group in `entries` is complete and at one generation.
fn check_groups(entries: &[(Vec<u8>, Vec<u8>)], what: &str) {
    assert_eq!(
        entries.len() as u64,
        GROUPS * KEYS_PER_GROUP,
        "{what}: keys missing or extra"
    );
    for (g, group) in entries.chunks(KEYS_PER_GROUP as usize).enumerate() {
        let gens: Vec<u64> = group.iter().map(|(_, v)| gen_of(v)).collect();
        assert!(
            gens.iter().all(|&x| x == gens[0]),
            "{what}: group {g} is half-written: generations {gens:?}"
        );
    }
}

#[test]
fn readers_never_see_half_a_batch() {
    let db = Db::open(Arc::new(SimFs::new()), Path::new("/db"), small_options()).unwrap();
    let mut batch = WriteBatch::new();
    for g in 0..GROUPS {
        for k in 0..KEYS_PER_GROUP {
            batch.put(&key(g, k), b"0:");
        }
    }
    db.write(&batch, WriteOptions::default()).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut rng = Rng::new(w);
                for generation in 1..=1500u64 {
                    let g = rng.below(GROUPS);
                    let mut batch = WriteBatch::new();
                    let value = format!(
                        "{}:{}",
                        generation * 2 + w,
                        "v".repeat(rng.below(80) as usize)
                    );
                    for k in 0..KEYS_PER_GROUP {
                        batch.put(&key(g, k), value.as_bytes());
                    }
                    db.write(&batch, WriteOptions::default()).unwrap();
                    if generation % 500 == 0 {
                        db.compact_all().unwrap();
                    }
                }
            })
        })
        .collect();
    let reader = {
        let db = db.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut rounds = 0u64;
            while !done.load(Ordering::Relaxed) || rounds < 10 {
                rounds += 1;
                let snap = db.snapshot();
                let via_snapshot: Vec<_> = snap
                    .iter(Bound::Unbounded, Bound::Unbounded)
                    .unwrap()
                    .map(|e| e.unwrap())
                    .collect();
                check_groups(&via_snapshot, &format!("snapshot round {rounds}"));
                let via_iter: Vec<_> = db
                    .iter(Bound::Unbounded, Bound::Unbounded)
                    .unwrap()
                    .map(|e| e.unwrap())
                    .collect();
                check_groups(&via_iter, &format!("iterator round {rounds}"));
                let g = rounds % GROUPS;
                let gets: Vec<_> = (0..KEYS_PER_GROUP)
                    .map(|k| (key(g, k), snap.get(&key(g, k)).unwrap().unwrap()))
                    .collect();
                assert_eq!(
                    gets,
                    via_snapshot
                        [(g * KEYS_PER_GROUP) as usize..((g + 1) * KEYS_PER_GROUP) as usize],
                    "snapshot gets disagree with the snapshot's iterator"
                );
            }
            rounds
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() >= 10);
}
