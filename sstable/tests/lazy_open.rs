//! `Table::open_lazy`: opening reads nothing of the file; the first call that needs
//! the index or filter loads and validates the tail, checked against the expected
//! properties; a failed load is an error of that call, kept nowhere (a later call
//! tries again); racing first readers all get whole answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::{Arc, Barrier};

use common::{build, entries_of, model_get, Entry, Model};
use sstable::format::BlockKind;
use sstable::{BlockCache, BuildOptions, Kind, ReadMode, Table, TableInfo};
use vfs::SimFs;

const PATH: &str = "/t/table.sst";

fn table(n: u64) -> (SimFs, TableInfo, Model) {
    let model: Model = (0..n)
        .map(|i| {
            let key = format!("key-{i:06}").into_bytes();
            ((key, std::cmp::Reverse(i + 1)), (Kind::Put, vec![b'v'; 40]))
        })
        .collect();
    let entries: Vec<Entry> = entries_of(&model);
    let opts = BuildOptions {
        block_bytes: 512,
        ..BuildOptions::default()
    };
    let (fs, info) = build(&entries, opts);
    (fs, info, model)
}

fn cached() -> ReadMode {
    ReadMode::Cached(Arc::new(BlockCache::new(1 << 20)))
}

fn lazy(fs: &SimFs, mode: &ReadMode, info: &TableInfo) -> Result<Table, sstable::Error> {
    Table::open_lazy(fs, Path::new(PATH), mode, info.clone())
}

fn check_all(table: &Table, model: &Model) {
    for ((key, _), (_, value)) in model.iter().step_by(17) {
        let got = table.get(key, u64::MAX).unwrap().unwrap();
        let (seqno, _, want) = model_get(model, key, u64::MAX).unwrap();
        assert_eq!((got.seqno, got.value.as_slice()), (seqno, want));
        assert_eq!(got.value, *value);
    }
}

#[test]
fn opening_reads_nothing_and_the_first_lookup_loads_the_tail() {
    let (fs, info, model) = table(2_000);
    for mode in [cached(), ReadMode::Mapped] {
        // A cached table is opened while every read fails: it cannot have read.
        let failing = matches!(mode, ReadMode::Cached(_));
        fs.fail_reads(failing);
        let t = lazy(&fs, &mode, &info).unwrap();
        fs.fail_reads(false);
        assert!(!t.is_loaded());
        assert_eq!((t.index_memory_bytes(), t.filter_bytes()), (0, 0));
        assert_eq!(t.info(), &info);
        // A key outside the range is answered from the expected properties alone.
        assert_eq!(t.get(b"zzz", u64::MAX).unwrap(), None);
        assert!(!t.is_loaded());
        check_all(&t, &model);
        assert!(t.is_loaded());
        assert!(t.index_memory_bytes() > 0 && t.filter_bytes() > 0);
        assert_eq!(common::scan(&t).unwrap(), entries_of(&model));
    }
}

#[test]
fn a_failed_load_is_an_error_of_that_call_and_a_later_call_retries() {
    let (fs, info, model) = table(500);
    let t = lazy(&fs, &cached(), &info).unwrap();
    fs.fail_reads(true);
    let err = t.get(b"key-000010", u64::MAX).unwrap_err();
    assert!(matches!(err, sstable::Error::Io { .. }), "{err}");
    assert!(!t.is_loaded());
    fs.fail_reads(false);
    check_all(&t, &model);
}

#[test]
fn a_damaged_tail_is_an_error_at_first_use_never_a_panic() {
    let (fs, info, _) = table(500);
    let blocks = Table::open(&fs, Path::new(PATH)).unwrap().blocks().unwrap();
    let offset_of = |kind: BlockKind| {
        let (_, handle) = blocks.iter().find(|(k, _)| *k == kind).unwrap();
        handle.offset as usize
    };
    // A bit in the filter, the meta block, the index block, the footer.
    let footer = info.file_bytes as usize - 3;
    let damaged = [
        offset_of(BlockKind::Filter) + 1,
        offset_of(BlockKind::Meta) + 2,
        offset_of(BlockKind::Index) + 5,
        footer,
    ];
    for at in damaged {
        for mode in [cached(), ReadMode::Mapped] {
            fs.flip_bit(Path::new(PATH), at, 4).unwrap();
            let t = lazy(&fs, &mode, &info).expect("opening reads no byte of the file");
            for _ in 0..2 {
                let err = t.get(b"key-000010", u64::MAX).unwrap_err();
                assert!(err.is_corruption(), "byte {at}: {err}");
                assert!(!t.is_loaded());
            }
            let mut it = t.iter();
            assert!(it.seek(b"key").unwrap_err().is_corruption());
            assert!(t.may_contain(b"key-000010").unwrap_err().is_corruption());
            fs.flip_bit(Path::new(PATH), at, 4).unwrap();
        }
    }
}

#[test]
fn a_tail_that_disagrees_with_the_expected_properties_is_corrupt() {
    let (fs, info, _) = table(500);
    let wrong_seqno = TableInfo {
        largest_seqno: info.largest_seqno + 1,
        ..info.clone()
    };
    let t = lazy(&fs, &cached(), &wrong_seqno).unwrap();
    let err = t.get(b"key-000010", u64::MAX).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(!t.is_loaded());

    // The length is checked at open (a stat, not a read).
    let wrong_len = TableInfo {
        file_bytes: info.file_bytes - 1,
        ..info
    };
    let err = lazy(&fs, &cached(), &wrong_len).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}

#[test]
fn racing_first_readers_each_see_a_whole_index() {
    let (fs, info, model) = table(5_000);
    for mode in [cached(), ReadMode::Mapped] {
        let t = lazy(&fs, &mode, &info).unwrap();
        let model = Arc::new(model.clone());
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|n| {
                let (t, model, start) = (t.clone(), Arc::clone(&model), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    for ((key, _), (_, value)) in model.iter().skip(n).step_by(97) {
                        let got = t.get(key, u64::MAX).unwrap().unwrap();
                        assert_eq!(&got.value, value);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert!(t.is_loaded());
    }
}

#[test]
fn an_eager_open_still_validates_at_open() {
    let (fs, info, _) = table(500);
    fs.flip_bit(Path::new(PATH), info.file_bytes as usize - 3, 4)
        .unwrap();
    let err = Table::open_with(&fs, Path::new(PATH), &cached()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
}
