//! The engine on a disk that fills up or fails an fsync, then restarted on the same
//! disk (what a fail-stop node does next), and then maybe a power loss.
//!
//! - A full disk (a short write, then ENOSPC) fails the write with an error that says
//!   so; reads go on; every later write is refused with that reason (the engine latched:
//!   the WAL may hold half a record, and nothing may be appended after it). A restart
//!   cuts the half record and takes writes again.
//! - A failed fsync (EIO) anywhere (WAL, table, manifest, directory) latches the engine
//!   the same way. The kernel dropped the pages it could not write, though they still
//!   read back; a restart without a power loss must not build on them as if they were
//!   durable, or the next power loss leaves a hole in the middle of the WAL and the
//!   database does not open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{model_entries, scan, small_options, Model};
use std::path::Path;
use std::sync::Arc;
use storage::{Db, Error, Options, WriteBatch, WriteOptions};
use vfs::{CrashMode, SimFs};

const SYNC: WriteOptions = WriteOptions { sync: true };

fn opts() -> Options {
    Options {
        write_buffer_bytes: 1 << 20,
        ..small_options()
    }
}

fn open(fs: &SimFs) -> Result<Db, Error> {
    Db::open(Arc::new(fs.clone()), Path::new("/db"), opts())
}

/// Batch `n`: three puts and a delete, recorded in `model`.
fn batch(n: u64, model: &mut Model) -> WriteBatch {
    let mut b = WriteBatch::new();
    for k in 0..3 {
        let key = format!("k{:03}", (n * 7 + k) % 50).into_bytes();
        let value = format!("v{n}-{k}-{}", "x".repeat(30)).into_bytes();
        b.put(&key, &value);
        model.insert(key, value);
    }
    let gone = format!("k{:03}", (n * 11) % 50).into_bytes();
    b.delete(&gone);
    model.remove(&gone);
    b
}

/// A database holding `n` acknowledged durable batches.
fn build(n: u64) -> (SimFs, Db, Model) {
    let fs = SimFs::new();
    let db = open(&fs).unwrap();
    let mut model = Model::new();
    for i in 0..n {
        db.write(&batch(i, &mut model), SYNC).unwrap();
    }
    (fs, db, model)
}

fn assert_reads(db: &Db, model: &Model, what: &str) {
    assert_eq!(scan(db), model_entries(model), "{what}: scan");
    for (k, v) in model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "{what}: get");
    }
    assert_eq!(
        common::scan_range(db, std::ops::Bound::Unbounded, std::ops::Bound::Unbounded).len(),
        model.len()
    );
}

fn assert_refuses_writes(db: &Db, says: &str, what: &str) {
    for r in [
        db.put(b"late", b"x", SYNC),
        db.put(b"late", b"x", WriteOptions::default()),
        db.delete(b"k001", SYNC),
    ] {
        match r {
            Err(e @ Error::Poisoned { .. }) => {
                assert!(e.to_string().contains(says), "{what}: {e}")
            }
            other => panic!("{what}: a write after the failure gave {other:?}"),
        }
    }
    assert!(db.flush().is_err(), "{what}: flush");
}

/// Restart (no power loss), check, write on, lose power, check again.
fn restart_and_power_loss(fs: &SimFs, model: &mut Model, may_hold: Option<&Model>, what: &str) {
    let db = open(fs).unwrap_or_else(|e| panic!("{what}: restart: {e}"));
    let got = scan(&db);
    // The failed write may have reached the page cache whole; then it is replayed.
    let matches_one =
        got == model_entries(model) || may_hold.is_some_and(|m| got == model_entries(m));
    assert!(matches_one, "{what}: state after the restart");
    if let Some(m) = may_hold.filter(|m| got == model_entries(m)) {
        *model = m.clone();
    }
    for i in 100..110 {
        db.write(&batch(i, model), SYNC).unwrap();
    }
    db.flush().unwrap();
    db.write(&batch(110, model), SYNC).unwrap();
    drop(db);
    fs.crash(CrashMode::DropUnsynced);
    let db = open(fs).unwrap_or_else(|e| panic!("{what}: open after the power loss: {e}"));
    assert_reads(&db, model, &format!("{what}, after the power loss"));
}

#[test]
fn a_full_disk_fails_the_write_and_reads_go_on() {
    // Cut the next WAL record at every point: before its header, inside it, inside
    // the payload, and at its very end.
    let mut probe = Model::new();
    let mut rec = Vec::new();
    batch(10, &mut probe).encode_record(1, &mut rec);
    let record_bytes = 12 + rec.len() as u64;
    for room in (0..=record_bytes).step_by(7).chain([record_bytes - 1]) {
        let what = format!("{room} of {record_bytes} bytes of room");
        let (fs, db, mut model) = build(10);
        fs.fail_writes_after(room);
        let mut failed = model.clone();
        match db.write(&batch(10, &mut failed), SYNC) {
            Err(e) => assert!(
                e.to_string().contains("No space left on device"),
                "{what}: unclear error: {e}"
            ),
            Ok(_) if room >= record_bytes => continue, // it fit
            Ok(_) => panic!("{what}: a write on a full disk returned Ok"),
        }
        assert_reads(&db, &model, &what);
        fs.fail_writes(false);
        assert_refuses_writes(&db, "No space left on device", &what);
        assert_reads(&db, &model, &what);
        drop(db);
        restart_and_power_loss(&fs, &mut model, Some(&failed), &what);
    }
}

#[test]
fn a_full_disk_during_a_flush_latches_and_reads_go_on() {
    for room in [0, 50, 500, 1500] {
        let what = format!("{room} bytes of room for the flush");
        let (fs, db, mut model) = build(40);
        fs.fail_writes_after(room);
        match db.flush() {
            Err(e) => assert!(
                e.to_string().contains("No space left on device"),
                "{what}: {e}"
            ),
            Ok(()) => panic!("{what}: flush on a full disk returned Ok"),
        }
        assert_reads(&db, &model, &what);
        fs.fail_writes(false);
        assert_refuses_writes(&db, "No space left on device", &what);
        drop(db);
        restart_and_power_loss(&fs, &mut model, None, &what);
    }
}

#[test]
fn a_failed_fsync_anywhere_latches_and_a_restart_does_not_trust_dropped_pages() {
    // Fail the n-th sync from here on: the sync write's WAL fsync, then (n >= 1) each
    // sync of a flush (table file, directory, manifest record, CURRENT).
    let mut failures = 0;
    for n in 0..12 {
        let what = format!("sync {n} fails");
        let (fs, db, mut model) = build(30);
        let mut failed = model.clone();
        fs.fail_sync_after(n);
        let mut wrote = false;
        let result = match db.write(&batch(30, &mut failed), SYNC) {
            Ok(_) => {
                wrote = true;
                db.flush()
            }
            Err(e) => Err(e),
        };
        match result {
            // The failing sync comes later than this flush: nothing failed.
            Ok(()) => continue,
            Err(e) => assert!(
                e.to_string().contains("Input/output error"),
                "{what}: unclear error: {e}"
            ),
        }
        failures += 1;
        if wrote {
            model = failed.clone(); // acknowledged before the flush failed
        }
        assert_reads(&db, &model, &what);
        assert_refuses_writes(&db, "Input/output error", &what);
        drop(db);
        restart_and_power_loss(&fs, &mut model, Some(&failed), &what);
    }
    assert!(failures >= 4, "only {failures} injected fsync failures hit");
}
