//! Appends without durability are handed to the kernel's write-back every
//! `bytes_per_sync` bytes, so a later sync never finds more than about one step of
//! dirty bytes; handing bytes to write-back makes none of them durable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use vfs::{CrashMode, SimFs};
use wal::{Options, SyncMode, Wal};

const RECORD: usize = 1000;

fn fill(log: &Wal, records: usize) {
    let record = vec![7u8; RECORD];
    for _ in 0..records {
        log.append(&record, SyncMode::Buffered).unwrap();
    }
}

#[test]
fn unsynced_appends_are_written_back_every_step() {
    let fs = Arc::new(SimFs::new());
    let opts = Options::default();
    let step = opts.bytes_per_sync;
    let log = Wal::open(fs.clone(), Path::new("/wal"), opts).unwrap();
    // About 5 MiB without a sync: at least 4 steps handed to write-back, and what is
    // left for the sync is less than one step.
    fill(&log, 5 * (1 << 20) / RECORD);
    let written = log.stats().bytes_written;
    let handed = fs.written_back_bytes();
    assert!(
        handed >= written - step && handed <= written,
        "{handed} of {written} bytes written back (step {step})"
    );
    assert_eq!(log.stats().written_back_bytes, handed);
    // A sync covers the rest; the next step starts after it.
    log.sync().unwrap();
    fill(&log, (step as usize / RECORD) / 2);
    assert_eq!(
        fs.written_back_bytes(),
        handed,
        "half a step is not handed over"
    );
}

#[test]
fn written_back_bytes_are_not_durable() {
    let fs = Arc::new(SimFs::new());
    let log = Wal::open(fs.clone(), Path::new("/wal"), Options::default()).unwrap();
    log.append(b"synced", SyncMode::Durable).unwrap();
    fill(&log, 3 * (1 << 20) / RECORD);
    assert!(fs.written_back_bytes() > 0);
    drop(log);
    fs.crash(CrashMode::DropUnsynced);
    let log = Wal::open(fs.clone(), Path::new("/wal"), Options::default()).unwrap();
    assert_eq!(log.next_index(), 2, "only the durable record survives");
}

#[test]
fn a_zero_step_never_writes_back() {
    let fs = Arc::new(SimFs::new());
    let opts = Options {
        bytes_per_sync: 0,
        ..Options::default()
    };
    let log = Wal::open(fs.clone(), Path::new("/wal"), opts).unwrap();
    fill(&log, 3 * (1 << 20) / RECORD);
    assert_eq!(fs.written_back_bytes(), 0);
}
