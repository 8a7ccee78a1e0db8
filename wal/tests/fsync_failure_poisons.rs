//! After a failed fsync or write the log latches: the failing call returns the I/O
//! error, every later write returns `Poisoned`, reads still work, and a reopen after
//! a crash recovers what was durable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Barrier};
use vfs::{CrashMode, SimFs};
use wal::{Error, Options, SyncMode, Wal};

fn open(fs: &SimFs) -> Wal {
    Wal::open(Arc::new(fs.clone()), Path::new("/wal"), Options::default()).unwrap()
}

fn assert_refuses_writes(log: &Wal) {
    assert!(log.is_poisoned());
    assert!(matches!(
        log.append(b"x", SyncMode::Buffered),
        Err(Error::Poisoned)
    ));
    assert!(matches!(
        log.append(b"x", SyncMode::Durable),
        Err(Error::Poisoned)
    ));
    assert!(matches!(
        log.append_many([b"x".as_slice()], SyncMode::Durable),
        Err(Error::Poisoned)
    ));
    assert!(matches!(log.sync(), Err(Error::Poisoned)));
    assert!(matches!(log.truncate_suffix(1), Err(Error::Poisoned)));
}

#[test]
fn failed_fsync_of_a_durable_append_poisons() {
    let fs = SimFs::new();
    let log = open(&fs);
    assert_eq!(log.append(b"kept", SyncMode::Durable).unwrap(), 1);
    fs.fail_sync_after(0);
    assert!(matches!(
        log.append(b"lost", SyncMode::Durable),
        Err(Error::Io { .. })
    ));
    assert_refuses_writes(&log);
    // Reads still work.
    assert_eq!(log.read(1).unwrap(), b"kept");
    drop(log);
    fs.crash(CrashMode::DropUnsynced);
    let log = open(&fs);
    assert_eq!(
        log.next_index(),
        2,
        "the unsynced record is gone, the durable one kept"
    );
    assert_eq!(log.read(1).unwrap(), b"kept");
    assert_eq!(log.append(b"again", SyncMode::Durable).unwrap(), 2);
}

#[test]
fn failed_explicit_sync_poisons() {
    let fs = SimFs::new();
    let log = open(&fs);
    log.append(b"a", SyncMode::Buffered).unwrap();
    fs.fail_sync_after(0);
    assert!(matches!(log.sync(), Err(Error::Io { .. })));
    assert_refuses_writes(&log);
}

#[test]
fn failed_write_poisons() {
    let fs = SimFs::new();
    let log = open(&fs);
    fs.fail_writes(true);
    assert!(matches!(
        log.append(b"a", SyncMode::Buffered),
        Err(Error::Io { .. })
    ));
    fs.fail_writes(false);
    assert_refuses_writes(&log);
}

#[test]
fn failed_sync_while_rolling_a_segment_poisons() {
    let fs = SimFs::new();
    let opts = Options {
        segment_bytes_max: 100,
        record_bytes_max: 1000,
        ..Options::default()
    };
    let log = Wal::open(Arc::new(fs.clone()), Path::new("/wal"), opts).unwrap();
    log.append(&[1u8; 60], SyncMode::Durable).unwrap();
    // The next record does not fit: the roll syncs the old segment, then creates,
    // syncs and publishes (sync_dir) the new one. Fail each of those in turn.
    fs.fail_sync_after(1);
    assert!(log.append(&[2u8; 60], SyncMode::Buffered).is_err());
    assert_refuses_writes(&log);
}

#[test]
fn concurrent_appenders_all_fail_or_succeed_honestly() {
    let fs = SimFs::new();
    let log = Arc::new(open(&fs));
    log.append(b"first", SyncMode::Durable).unwrap();
    fs.fail_sync_after(2);
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (log, barrier) = (log.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut acked = Vec::new();
                for k in 0..50u32 {
                    match log.append(format!("{t}-{k}").as_bytes(), SyncMode::Durable) {
                        Ok(i) => acked.push((i, format!("{t}-{k}"))),
                        Err(Error::Io { .. } | Error::Poisoned) => break,
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                acked
            })
        })
        .collect();
    let acked: Vec<(u64, String)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_refuses_writes(&log);
    drop(log);
    fs.crash(CrashMode::TearUnsynced { seed: 5 });
    let log = open(&fs);
    for (i, payload) in acked {
        assert_eq!(
            log.read(i).unwrap(),
            payload.as_bytes(),
            "acknowledged record {i} lost"
        );
    }
}
