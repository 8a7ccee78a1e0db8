//! A database directory that lost its `CURRENT` file is refused, not started afresh.
//!
//! Without `CURRENT` the engine used to take the directory for a new database: it
//! wrote an empty manifest snapshot and its cleanup then deleted every table as
//! "not named by the manifest" (and the WAL was replayed into an empty state). Now
//! open fails with `Error::MissingCurrent` naming the directory and what it found, and
//! touches nothing. A crash while a new database is being created (before its first
//! `CURRENT` exists) still opens as a new database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::small_options;
use std::path::Path;
use std::sync::Arc;
use storage::{Db, Error, WriteOptions};
use vfs::{CrashMode, Fs, SimFs};

const SYNC: WriteOptions = WriteOptions { sync: true };

fn tables(fs: &SimFs, dir: &Path) -> Vec<String> {
    let mut names = fs.list_dir(dir).unwrap();
    names.retain(|n| n.ends_with(".sst"));
    names
}

#[test]
fn a_directory_with_tables_but_no_current_is_refused_and_left_alone() {
    let fs = SimFs::new();
    let dir = Path::new("/db");
    {
        let db = Db::open(Arc::new(fs.clone()), dir, small_options()).unwrap();
        for i in 0..400u32 {
            db.put(format!("k{i:05}").as_bytes(), &[7u8; 40], SYNC)
                .unwrap();
        }
        db.flush().unwrap();
        db.put(b"in-the-wal", b"x", SYNC).unwrap();
    }
    let before = tables(&fs, dir);
    assert!(!before.is_empty(), "the test needs tables on disk");
    let table_bytes: Vec<Vec<u8>> = before
        .iter()
        .map(|n| fs.read_all(&dir.join(n)).unwrap())
        .collect();

    fs.remove_file(&dir.join("CURRENT")).unwrap();
    fs.sync_dir(dir).unwrap();
    match Db::open(Arc::new(fs.clone()), dir, small_options()) {
        Err(e @ Error::MissingCurrent { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("/db"), "names the directory: {msg}");
            assert!(msg.contains(".sst"), "names what it found: {msg}");
            assert!(e.is_corruption());
        }
        Err(e) => panic!("refused with the wrong error: {e}"),
        Ok(_) => panic!("opened a database without CURRENT as a new one"),
    }
    // Nothing was deleted or rewritten, and a second attempt is refused the same way.
    assert_eq!(tables(&fs, dir), before);
    for (name, bytes) in before.iter().zip(&table_bytes) {
        assert_eq!(&fs.read_all(&dir.join(name)).unwrap(), bytes, "{name}");
    }
    assert!(!fs.exists(&dir.join("CURRENT")));
    assert!(matches!(
        Db::open(Arc::new(fs.clone()), dir, small_options()),
        Err(Error::MissingCurrent { .. })
    ));
}

#[test]
fn a_directory_with_only_a_wal_but_no_current_is_refused() {
    let fs = SimFs::new();
    let dir = Path::new("/db");
    {
        let db = Db::open(Arc::new(fs.clone()), dir, small_options()).unwrap();
        db.put(b"a", b"1", SYNC).unwrap();
    }
    assert!(tables(&fs, dir).is_empty());
    fs.remove_file(&dir.join("CURRENT")).unwrap();
    match Db::open(Arc::new(fs.clone()), dir, small_options()) {
        Err(e @ Error::MissingCurrent { .. }) => {
            assert!(e.to_string().contains("wal"), "{e}");
        }
        Err(e) => panic!("refused with the wrong error: {e}"),
        Ok(_) => panic!("opened a database without CURRENT as a new one"),
    }
}

#[test]
fn a_crash_while_a_new_database_is_created_still_opens_as_new() {
    // Fail each sync of the very first open in turn, then lose power: whatever the
    // first open left behind (a manifest segment, perhaps its first snapshot record,
    // no CURRENT) must open as a fresh, working database.
    let mut failed_opens = 0;
    for n in 0..16 {
        let fs = SimFs::new();
        let dir = Path::new("/db");
        fs.fail_sync_after(n);
        if Db::open(Arc::new(fs.clone()), dir, small_options()).is_err() {
            failed_opens += 1;
        }
        fs.crash(CrashMode::DropUnsynced);
        let db = Db::open(Arc::new(fs.clone()), dir, small_options())
            .unwrap_or_else(|e| panic!("sync {n} failed in the first open, then: {e}"));
        db.put(b"k", b"v", SYNC).unwrap();
        drop(db);
        let db = Db::open(Arc::new(fs.clone()), dir, small_options()).unwrap();
        assert_eq!(db.get(b"k").unwrap(), Some(b"v".to_vec()));
    }
    assert!(failed_opens >= 4, "only {failed_opens} first opens failed");
}

#[test]
fn a_manifest_that_names_tables_is_refused_even_without_the_tables() {
    let fs = SimFs::new();
    let dir = Path::new("/db");
    {
        let db = Db::open(Arc::new(fs.clone()), dir, small_options()).unwrap();
        for i in 0..200u32 {
            db.put(format!("k{i:05}").as_bytes(), &[1u8; 40], SYNC)
                .unwrap();
        }
        db.flush().unwrap();
    }
    // Lose CURRENT, the WAL and the tables: the manifest alone still tells.
    fs.remove_file(&dir.join("CURRENT")).unwrap();
    for name in tables(&fs, dir) {
        fs.remove_file(&dir.join(name)).unwrap();
    }
    let wal_dir = dir.join("wal");
    for name in fs.list_dir(&wal_dir).unwrap() {
        fs.remove_file(&wal_dir.join(name)).unwrap();
    }
    match Db::open(Arc::new(fs.clone()), dir, small_options()) {
        Err(e @ Error::MissingCurrent { .. }) => assert!(e.to_string().contains("manifest"), "{e}"),
        Err(e) => panic!("refused with the wrong error: {e}"),
        Ok(_) => panic!("opened a database without CURRENT as a new one"),
    }
}
