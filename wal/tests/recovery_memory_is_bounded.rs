//! Opening a log reads its segments through one bounded buffer: the memory recovery
//! uses does not grow with the size of a segment (it used to read each segment whole).
//! Measured with `Stats::recovery_buffer_bytes_max`, the largest buffer recovery
//! allocated, not with timing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use vfs::{CrashMode, Fs, SimFs};
use wal::{Options, SyncMode, Wal, RECOVERY_BUFFER_BYTES};

const DIR: &str = "/wal";

fn opts() -> Options {
    Options {
        segment_bytes_max: 8 << 20,
        record_bytes_max: 1 << 20,
        ..Options::default()
    }
}

/// A log of `lens` records (payload k filled with k) in segments of 8 MiB.
fn write(fs: &SimFs, lens: &[usize]) {
    fs.create_dir_all(Path::new(DIR)).unwrap();
    let log = Wal::open(Arc::new(fs.clone()), Path::new(DIR), opts()).unwrap();
    for (k, len) in lens.iter().enumerate() {
        log.append(&vec![k as u8; *len], SyncMode::Buffered)
            .unwrap();
    }
    log.sync().unwrap();
}

fn reopen_and_check(fs: &SimFs, lens: &[usize]) -> Wal {
    let log = Wal::open(Arc::new(fs.clone()), Path::new(DIR), opts()).unwrap();
    assert_eq!(log.next_index(), lens.len() as u64 + 1);
    for (k, len) in lens.iter().enumerate() {
        assert_eq!(log.read(k as u64 + 1).unwrap(), vec![k as u8; *len]);
    }
    log
}

#[test]
fn open_reads_a_big_segment_through_a_bounded_buffer() {
    // ~12 MiB over two segments (one sealed, the last one 4 MiB), records of every size
    // from 0 to 1 MiB (so some span many buffer fills).
    let fs = SimFs::new();
    let mut lens: Vec<usize> = (0..300).map(|k| (k * 7919) % 20_000).collect();
    lens.extend([1 << 20, 0, (1 << 20) - 1, 3, RECOVERY_BUFFER_BYTES + 1]);
    lens.extend((0..200).map(|k| (k * 104_729) % 60_000));
    write(&fs, &lens);
    let log = reopen_and_check(&fs, &lens);
    assert!(log.segment_count() >= 2);
    let largest = log.stats().recovery_buffer_bytes_max;
    assert!(
        largest > 0 && largest <= RECOVERY_BUFFER_BYTES as u64,
        "recovery allocated {largest} bytes at once, bound {RECOVERY_BUFFER_BYTES}"
    );
}

#[test]
fn a_torn_big_tail_is_cut_with_a_bounded_buffer() {
    let fs = SimFs::new();
    let lens: Vec<usize> = (0..40).map(|k| 100_000 + k).collect();
    write(&fs, &lens);
    // Unsynced half of a big record at the end: a torn tail.
    {
        let log = Wal::open(Arc::new(fs.clone()), Path::new(DIR), opts()).unwrap();
        log.append(&vec![7u8; 900_000], SyncMode::Buffered).unwrap();
    }
    fs.crash(CrashMode::TearUnsynced { seed: 7 });
    let log = Wal::open(Arc::new(fs.clone()), Path::new(DIR), opts()).unwrap();
    assert!(log.next_index() == 41 || log.next_index() == 42);
    for (k, len) in lens.iter().enumerate() {
        assert_eq!(log.read(k as u64 + 1).unwrap(), vec![k as u8; *len]);
    }
    assert!(log.stats().recovery_buffer_bytes_max <= RECOVERY_BUFFER_BYTES as u64);
}
