//! `TableScan` (compaction's reader) reads with positioned reads and checks every
//! block each time it reads it: it yields exactly what `TableIter` yields on a good
//! file, across read-ahead boundaries and blocks larger than the read-ahead; and a
//! byte that changes on disk after the `Table` was opened and read is a
//! `ChecksumMismatch` for the scan, never returned as data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{build, open, sample_entries, scan, Entry};
use sstable::{BuildOptions, Error, Kind, Table, TableScan, READ_AHEAD_BYTES};
use std::path::Path;
use vfs::{Fs, SimFs};

const PATH: &str = "/t/table.sst";

fn scan_from_disk(fs: &SimFs, table: &Table) -> Result<Vec<Entry>, Error> {
    let mut s = TableScan::new(table, fs.open_read(Path::new(PATH)).unwrap());
    let mut out = Vec::new();
    s.seek_to_first()?;
    while s.valid() {
        out.push((s.key().to_vec(), s.seqno(), s.kind(), s.value().to_vec()));
        s.next()?;
    }
    Ok(out)
}

#[test]
fn a_scan_yields_what_the_iterator_yields() {
    let small = BuildOptions {
        block_bytes: 512,
        ..BuildOptions::default()
    };
    // Many small blocks (several read-ahead windows), and values larger than the
    // read-ahead (blocks read alone).
    let big_value = (READ_AHEAD_BYTES + 1000) as usize;
    let mut big: Vec<Entry> = (0..3u64)
        .map(|i| {
            (
                format!("big{i}").into_bytes(),
                10,
                Kind::Put,
                vec![i as u8; big_value],
            )
        })
        .collect();
    big.insert(1, (b"big0x".to_vec(), 3, Kind::Delete, Vec::new()));
    for (entries, opts) in [
        (sample_entries(5_000, 3, 100), small),
        (big, BuildOptions::default()),
        (Vec::new(), BuildOptions::default()),
    ] {
        let (fs, _) = build(&entries, opts);
        let table = open(&fs);
        assert_eq!(scan_from_disk(&fs, &table).unwrap(), entries);
        assert_eq!(scan(&table).unwrap(), entries);
    }
}

#[test]
fn a_byte_changed_after_open_and_reads_is_a_checksum_mismatch() {
    let entries = sample_entries(2_000, 2, 50);
    let opts = BuildOptions {
        block_bytes: 1024,
        ..BuildOptions::default()
    };
    let (fs, _) = build(&entries, opts);
    let table = open(&fs);
    assert_eq!(scan(&table).unwrap(), entries); // every block checked once
    let data_blocks = table.data_blocks().unwrap();
    let blocks = table.blocks().unwrap();
    for pick in [0, data_blocks / 2, data_blocks - 1] {
        let (_, handle) = blocks[pick];
        let byte = handle.offset as usize + handle.len as usize / 2;
        fs.flip_bit(Path::new(PATH), byte, 2).unwrap();
        match scan_from_disk(&fs, &table) {
            Err(Error::ChecksumMismatch { offset, .. }) => assert_eq!(offset, handle.offset),
            other => panic!("block {pick} damaged on disk, scan gave {other:?}"),
        }
        fs.flip_bit(Path::new(PATH), byte, 2).unwrap();
        assert_eq!(scan_from_disk(&fs, &table).unwrap(), entries);
    }
}

#[test]
fn a_file_cut_short_is_an_error() {
    let entries = sample_entries(2_000, 1, 50);
    let (fs, _) = build(&entries, BuildOptions::default());
    let table = open(&fs);
    fs.truncate_durable(Path::new(PATH), 1000).unwrap();
    assert!(matches!(scan_from_disk(&fs, &table), Err(Error::Io { .. })));
}
