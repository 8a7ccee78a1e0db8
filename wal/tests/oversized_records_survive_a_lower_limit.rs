//! Lowering `record_bytes_max` between runs must not lose records already in the log.
//! A record longer than the current limit whose checksums are valid was written under
//! the older, higher limit: recovery reads it (it is data, not a torn tail). Before,
//! such a record at the end of the last segment was taken for a torn write and cut
//! (acknowledged data lost), and one in a sealed segment made open fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use vfs::{Fs, SimFs};
use wal::{Options, SyncMode, Wal};

const DIR: &str = "/wal";

fn open(fs: &SimFs, record_bytes_max: u32, segment_bytes_max: u64) -> Wal {
    let opts = Options {
        segment_bytes_max,
        record_bytes_max,
        ..Options::default()
    };
    Wal::open(Arc::new(fs.clone()), Path::new(DIR), opts).unwrap()
}

fn payload(k: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (k as usize * 31 + i) as u8).collect()
}

fn check_all(log: &Wal, lens: &[usize]) {
    assert_eq!(log.next_index(), lens.len() as u64 + 1, "records lost");
    for (k, len) in lens.iter().enumerate() {
        let index = k as u64 + 1;
        assert_eq!(
            log.read(index).unwrap(),
            payload(index, *len),
            "record {index}"
        );
    }
    let read: Vec<Vec<u8>> = log.iter_from(1).unwrap().map(|r| r.unwrap().1).collect();
    assert_eq!(read.len(), lens.len());
}

fn write(fs: &SimFs, lens: &[usize], segment_bytes_max: u64) {
    fs.create_dir_all(Path::new(DIR)).unwrap();
    let log = open(fs, 4096, segment_bytes_max);
    for (k, len) in lens.iter().enumerate() {
        log.append(&payload(k as u64 + 1, *len), SyncMode::Durable)
            .unwrap();
    }
}

#[test]
fn an_oversized_last_record_is_read_not_cut() {
    let fs = SimFs::new();
    let lens = [10, 20, 3000];
    write(&fs, &lens, 1 << 20);
    let log = open(&fs, 100, 1 << 20);
    assert_eq!(
        log.stats().recovered_tail_bytes,
        0,
        "a valid record was cut"
    );
    check_all(&log, &lens);
    // Appends still obey the current limit, and the old record stays readable.
    assert!(log.append(&[0u8; 101], SyncMode::Durable).is_err());
    log.append(&payload(4, 100), SyncMode::Durable).unwrap();
    drop(log);
    let log = open(&fs, 100, 1 << 20);
    check_all(&log, &[10, 20, 3000, 100]);
}

#[test]
fn an_oversized_record_in_a_sealed_segment_is_read() {
    let fs = SimFs::new();
    // 4 KiB segments: the 3000-byte record seals its segment.
    let lens = [10, 3000, 3000, 20];
    write(&fs, &lens, 4096);
    let log = open(&fs, 100, 4096);
    assert!(log.segment_count() > 1);
    check_all(&log, &lens);
}
