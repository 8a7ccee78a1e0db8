//! A compaction may drop a tombstone only when no deeper level can hold an older
//! version of its key. The check must cover the key range of *every* input, not only
//! the first level's: a level-1 input table can reach far beyond the level-0 tables
//! that picked it, and a tombstone there may still shadow a put in level 2. Dropping it
//! brings a deleted key back (seen by the model test as a scan with an extra entry).
//!
//! The layout is built through the public API, waiting for the background compaction
//! thread to reach each shape (no timing assumptions: it waits for the level counts):
//! level 2 holds `x = old`; level 1 holds one table `[c, x]` with the tombstone of `x`;
//! then two level-0 tables inside `[c, x]` but not covering `x` compact into level 1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::{Db, Options, WriteOptions};
use vfs::{Fs, RealFs, SimFs};

fn options() -> Options {
    Options {
        l0_compaction_trigger: 2,
        level_base_bytes: 4 << 10,
        level_multiplier: 10,
        ..Options::default()
    }
}

/// Waits (bounded) until the background threads have brought the levels to `want`.
fn wait_for_levels(db: &Db, want: &[usize]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts = db.level_table_counts();
        if counts[..want.len()] == *want && counts[want.len()..].iter().all(|&n| n == 0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "levels never reached {want:?}: {counts:?}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn run(fs: Arc<dyn Fs>, dir: &Path) {
    let w = WriteOptions::default();
    let db = Db::open(fs, dir, options()).unwrap();

    // Level 2: x = old (big enough that level 1 overflows and moves it down).
    db.put(b"x", &vec![b'o'; 8 << 10], w).unwrap();
    db.compact_all().unwrap();
    wait_for_levels(&db, &[0, 0, 1]);

    // Level 1: one table [c, x] holding x's tombstone (kept: level 2 holds x).
    db.put(b"c", b"c", w).unwrap();
    db.delete(b"x", w).unwrap();
    db.flush().unwrap();
    db.put(b"d", b"d", w).unwrap();
    db.flush().unwrap();
    wait_for_levels(&db, &[0, 1, 1]);
    assert_eq!(
        db.get(b"x").unwrap(),
        None,
        "x deleted (tombstone in level 1)"
    );

    // Two level-0 tables within [c, x] but not covering x: they compact with the
    // level-1 table [c, x], whose tombstone still shadows level 2's x.
    db.put(b"e", b"e", w).unwrap();
    db.flush().unwrap();
    db.put(b"f", b"f", w).unwrap();
    db.flush().unwrap();
    wait_for_levels(&db, &[0, 1, 1]);

    let keys: Vec<Vec<u8>> = db
        .iter(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(
        keys,
        vec![b"c".to_vec(), b"d".to_vec(), b"e".to_vec(), b"f".to_vec()],
        "a deleted key came back after compaction"
    );
    assert_eq!(db.get(b"x").unwrap(), None, "x came back after compaction");
    drop(db);
}

#[test]
fn compaction_keeps_tombstones_that_shadow_deeper_levels_sim_fs() {
    let sim = SimFs::new();
    let dir = Path::new("/db");
    sim.create_dir_all(dir).unwrap();
    run(Arc::new(sim), dir);
}

#[test]
fn compaction_keeps_tombstones_that_shadow_deeper_levels_real_fs() {
    let tmp = common::tempdir();
    run(RealFs::shared(), &tmp.join("db"));
    let _ = std::fs::remove_dir_all(&tmp);
}
