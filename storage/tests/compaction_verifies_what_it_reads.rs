//! Compaction checks every block it reads, every time, and reads with `pread`.
//!
//! Readers check a data block's checksum the first time they touch it and then trust
//! it for the life of the process. Compaction used to read through the same memory
//! map, so a block that went bad on disk after that first check was rewritten into a
//! new table under a fresh, valid checksum: the damage laundered for good. And an
//! I/O error on a mapped page is a SIGBUS, not an error. Now compaction reads its
//! inputs with positioned reads into its own buffer and verifies each block as it
//! reads it: damage fails the compaction with a corruption error, no output table is
//! left, the engine latches (writes refused, the error reported) and reads go on;
//! readers re-check the damaged block from then on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{small_options, tempdir};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::{Db, Error, Options, WriteOptions};
use vfs::{Fs, RealFs, SimFs};

const SYNC: WriteOptions = WriteOptions { sync: true };

/// Flushes and compactions only when asked.
fn opts() -> Options {
    Options {
        write_buffer_bytes: 1 << 20,
        l0_compaction_trigger: 64,
        l0_slowdown_writes: 64,
        l0_stop_writes: 64,
        ..small_options()
    }
}

fn value(key: &str) -> Vec<u8> {
    format!("value-of-{key}-{}", "x".repeat(40)).into_bytes()
}

/// Two level-0 tables: keys a000..a199, then b000..b199.
fn fill(db: &Db) {
    for prefix in ["a", "b"] {
        for i in 0..200 {
            let key = format!("{prefix}{i:03}");
            db.put(key.as_bytes(), &value(&key), SYNC).unwrap();
        }
        db.flush().unwrap();
    }
    assert_eq!(db.level_table_counts()[0], 2);
}

fn read_everything(db: &Db) {
    for prefix in ["a", "b"] {
        for i in 0..200 {
            let key = format!("{prefix}{i:03}");
            assert_eq!(db.get(key.as_bytes()).unwrap(), Some(value(&key)));
        }
    }
}

fn tables(fs: &dyn Fs, dir: &Path) -> Vec<String> {
    let mut names = fs.list_dir(dir).unwrap();
    names.retain(|n| n.ends_with(".sst"));
    names
}

/// The table file holding `needle`, and the needle's offset in it.
fn find(dir: &Path, names: &[String], needle: &[u8]) -> (PathBuf, u64) {
    for name in names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            return (path, at as u64);
        }
    }
    panic!("no table holds {:?}", String::from_utf8_lossy(needle));
}

#[test]
fn a_block_damaged_after_its_first_check_fails_the_compaction() {
    let dir = tempdir();
    let fs = RealFs::shared();
    let db = Db::open(Arc::clone(&fs), &dir, opts()).unwrap();
    fill(&db);
    read_everything(&db); // every data block is now checked and trusted by readers
    let before = tables(fs.as_ref(), &dir);

    // The disk changes a byte of a050's value under the running engine.
    let (path, at) = find(&dir, &before, &value("a050"));
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(b"X", at + 3).unwrap();
    file.sync_all().unwrap();
    drop(file);

    match db.compact_all() {
        Err(e) => {
            assert!(e.is_corruption(), "not reported as corruption: {e}");
            assert!(e.to_string().contains("checksum"), "{e}");
        }
        Ok(()) => panic!(
            "compaction rewrote a damaged block: a050 now reads {:?}",
            db.get(b"a050")
                .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
        ),
    }
    // No output table was left behind, the inputs are where they were.
    assert_eq!(tables(fs.as_ref(), &dir), before);
    assert_eq!(db.level_table_counts()[0], 2);
    // Reads go on: the undamaged table answers, and the damaged block is checked
    // again (an error, never the changed bytes).
    assert_eq!(db.get(b"b100").unwrap(), Some(value("b100")));
    match db.get(b"a050") {
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok(v) => panic!("a damaged block was served: {v:?}"),
    }
    // The engine latched: writes are refused with the reason.
    match db.put(b"c", b"1", SYNC) {
        Err(e @ Error::Poisoned { .. }) => assert!(e.to_string().contains("checksum"), "{e}"),
        other => panic!("write after a failed compaction: {other:?}"),
    }
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_read_error_fails_the_compaction_as_an_error() {
    let sim = SimFs::new();
    let fs: Arc<dyn Fs> = Arc::new(sim.clone());
    let dir = Path::new("/db");
    let db = Db::open(Arc::clone(&fs), dir, opts()).unwrap();
    fill(&db);
    let before = tables(fs.as_ref(), dir);
    sim.fail_reads(true);
    match db.compact_all() {
        Err(e) => assert!(e.to_string().contains("Input/output error"), "{e}"),
        Ok(()) => panic!("compaction succeeded without reading its inputs from the disk"),
    }
    sim.fail_reads(false);
    assert_eq!(tables(fs.as_ref(), dir), before);
    read_everything(&db);
}
