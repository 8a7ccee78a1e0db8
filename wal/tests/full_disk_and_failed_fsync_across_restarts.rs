//! A full disk and a failed fsync, followed by what a fail-stop node does next: stop,
//! restart on the same disk (no power loss), write on, and maybe lose power later.
//!
//! - A full disk cuts a record in half (a short write, then ENOSPC). The append fails
//!   and the log latches, so no later record is ever written after the half one:
//!   recovery would take a bad record followed by a good one for damage in the middle
//!   of the log and refuse to open. Reopened, the half record is a torn tail and is cut.
//! - A failed fsync drops the pages it could not write (Linux): they stay readable
//!   until the machine goes down but never reach the disk, and a later fsync that
//!   succeeds does not write them. A log reopened after that (a restart, not a power
//!   loss) must not take them for durable: open writes the last segment's records
//!   again before it syncs, so they really are on disk before anyone appends after
//!   them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use vfs::{CrashMode, SimFs};
use wal::format::RECORD_HEADER_BYTES;
use wal::{Error, Options, SyncMode, Wal};

fn open(fs: &SimFs) -> Result<Wal, Error> {
    Wal::open(Arc::new(fs.clone()), Path::new("/wal"), Options::default())
}

fn record(i: u64) -> Vec<u8> {
    format!("record {i:04} {}", "p".repeat(40)).into_bytes()
}

fn check_records(log: &Wal, through: u64, what: &str) {
    assert_eq!(log.next_index(), through + 1, "{what}");
    for i in 1..=through {
        assert_eq!(log.read(i).unwrap(), record(i), "{what}: record {i}");
    }
}

#[test]
fn a_record_cut_by_a_full_disk_is_never_written_after() {
    let len = RECORD_HEADER_BYTES + record(0).len() as u64;
    for room in 0..len {
        for mode in [SyncMode::Durable, SyncMode::Buffered] {
            let what = format!("{room} bytes of room, {mode:?}");
            let fs = SimFs::new();
            let log = open(&fs).unwrap();
            for i in 1..=5 {
                log.append(&record(i), SyncMode::Durable).unwrap();
            }
            fs.fail_writes_after(room);
            match log.append(&record(6), mode) {
                Err(Error::Io { source, .. }) => {
                    assert_eq!(source.raw_os_error(), Some(28), "{what}: {source}")
                }
                other => panic!("{what}: append on a full disk gave {other:?}"),
            }
            // Room again: still nothing is appended after the half record.
            fs.fail_writes(false);
            for mode in [SyncMode::Durable, SyncMode::Buffered] {
                assert!(
                    matches!(log.append(&record(6), mode), Err(Error::Poisoned)),
                    "{what}: a write after the half record"
                );
            }
            for i in 1..=5 {
                assert_eq!(log.read(i).unwrap(), record(i), "{what}: reads go on");
            }
            assert!(log.read(6).is_err(), "{what}: the failed record reads back");
            drop(log);

            // A restart: the half record is a torn tail, cut; the log takes writes.
            let log = open(&fs).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
            check_records(&log, 5, &what);
            log.append(&record(6), SyncMode::Durable).unwrap();
            drop(log);
            fs.crash(CrashMode::DropUnsynced);
            check_records(&open(&fs).unwrap(), 6, &format!("{what}, after power loss"));
        }
    }
}

#[test]
fn records_a_failed_fsync_dropped_are_written_again_on_restart() {
    for lost in 1..4u64 {
        let what = format!("{lost} records behind a failed fsync");
        let fs = SimFs::new();
        let log = open(&fs).unwrap();
        for i in 1..=5 {
            log.append(&record(i), SyncMode::Durable).unwrap();
        }
        for i in 6..5 + lost {
            log.append(&record(i), SyncMode::Buffered).unwrap();
        }
        fs.fail_sync_after(0);
        assert!(log.append(&record(5 + lost), SyncMode::Durable).is_err());
        drop(log);

        // The node stops and starts again on the same disk: the page cache still
        // holds the dropped records, so open reads them as part of the log.
        let log = open(&fs).unwrap();
        check_records(&log, 5 + lost, &what);
        for i in 6 + lost..=10 + lost {
            log.append(&record(i), SyncMode::Durable).unwrap();
        }
        drop(log);
        fs.crash(CrashMode::DropUnsynced);
        let log = open(&fs).unwrap_or_else(|e| panic!("{what}: after power loss: {e}"));
        check_records(&log, 10 + lost, &format!("{what}, after power loss"));
    }
}
