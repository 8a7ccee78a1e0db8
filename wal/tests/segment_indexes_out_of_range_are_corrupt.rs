//! Record indexes start at 1 and stay below `format::INDEX_LIMIT` (2^63). A segment
//! whose header and checksums are valid but whose indexes fall outside that range (a
//! log "starting" at 0, or so close to `u64::MAX` that the next index wraps) is
//! `Error::Corrupt` at open: before, index 0 opened as a log of its own and a first
//! index of `u64::MAX` wrapped `next_index` to 0 (a log whose records cannot be read,
//! and an overflow panic in debug builds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use vfs::{Fs, SimFs};
use wal::format::{
    encode_record, encode_segment_header, payload_crc, segment_file_name, INDEX_LIMIT,
};
use wal::{Error, Options, Wal};

const DIR: &str = "/wal";

/// A file system holding one segment file starting at `first` with `records` records.
fn log_at(first: u64, records: u64) -> SimFs {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    fs.create_dir_all(dir).unwrap();
    let mut bytes = encode_segment_header(first).to_vec();
    for k in 0..records {
        let payload = format!("record {k}").into_bytes();
        encode_record(
            &mut bytes,
            first.wrapping_add(k),
            &payload,
            payload_crc(&payload),
        );
    }
    fs.write_atomic(&dir.join(segment_file_name(first)), &bytes)
        .unwrap();
    fs
}

fn open(fs: &SimFs) -> Result<Wal, Error> {
    Wal::open(Arc::new(fs.clone()), Path::new(DIR), Options::default())
}

#[test]
fn in_range_logs_open() {
    let log = open(&log_at(1, 3)).unwrap();
    assert_eq!((log.first_index(), log.next_index()), (1, 4));
    let log = open(&log_at(INDEX_LIMIT - 3, 3)).unwrap();
    assert_eq!(log.next_index(), INDEX_LIMIT);
    assert_eq!(log.read(INDEX_LIMIT - 1).unwrap(), b"record 2");
}

#[test]
fn out_of_range_indexes_are_corrupt() {
    for (first, records, what) in [
        (0, 0, "an empty log at index 0"),
        (0, 2, "records 0 and 1"),
        (INDEX_LIMIT, 0, "a segment at the limit"),
        (INDEX_LIMIT - 2, 3, "records running past the limit"),
        (u64::MAX, 1, "a record at u64::MAX"),
        (u64::MAX - 1, 3, "indexes that wrap past u64::MAX"),
    ] {
        match open(&log_at(first, records)) {
            Err(e @ Error::Corrupt { .. }) => {
                assert!(e.to_string().contains("index"), "{what}: {e}");
            }
            Err(e) => panic!("{what}: wrong error {e}"),
            Ok(log) => panic!(
                "{what}: opened as {}..{}",
                log.first_index(),
                log.next_index()
            ),
        }
    }
}
