//! Tables read with `pread` into a `BlockCache` (`ReadMode::Cached`): the same answers
//! as through the map, at every cache size; a damaged data block is an error for
//! lookups and iterators (never a panic, never the damaged bytes), and an I/O error
//! is an error; a scan does not fill the cache, lookups do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{build, model_get, model_of, model_seek, sample_entries, scan, Entry};
use sstable::{BlockCache, BuildOptions, Error, ReadMode, Table};
use std::path::Path;
use std::sync::Arc;
use vfs::SimFs;

const PATH: &str = "/t/table.sst";

fn small_blocks() -> BuildOptions {
    BuildOptions {
        block_bytes: 512,
        ..BuildOptions::default()
    }
}

fn open_cached(fs: &SimFs, cache: &Arc<BlockCache>) -> Table {
    Table::open_with(fs, Path::new(PATH), &ReadMode::Cached(Arc::clone(cache))).unwrap()
}

#[test]
fn lookups_seeks_and_scans_agree_with_the_model_at_every_cache_size() {
    let entries = sample_entries(3000, 3, 40);
    let model = model_of(&entries);
    let (fs, _) = build(&entries, small_blocks());
    let mapped = Table::open(&fs, Path::new(PATH)).unwrap();
    assert!(
        mapped.data_blocks().unwrap() > 200,
        "{} blocks",
        mapped.data_blocks().unwrap()
    );
    // No cache, a cache of a few blocks (constant eviction), one that holds it all.
    for capacity in [0u64, 4 << 10, 64 << 20] {
        let cache = Arc::new(BlockCache::new(capacity));
        let table = open_cached(&fs, &cache);
        // The table's index and filter are charged to the cache while it is open: the
        // blocks get `capacity` on top of them.
        let charged = cache.charged_bytes();
        assert!(charged > 0);
        if capacity > 0 {
            cache.set_capacity(capacity + charged);
        }
        assert_eq!(scan(&table).unwrap(), entries, "capacity {capacity}");
        for round in 0..2 {
            for (i, (key, seqno, _, _)) in entries.iter().enumerate().step_by(7) {
                for snap in [*seqno, seqno - 1, u64::MAX] {
                    let got = table.get(key, snap).unwrap();
                    let got = got.as_ref().map(|e| (e.seqno, e.kind, e.value.as_slice()));
                    assert_eq!(got, model_get(&model, key, snap), "capacity {capacity}");
                }
                if i % 5 == 0 {
                    let mut it = table.iter();
                    it.seek_version(key, *seqno).unwrap();
                    let at = it.valid().then(|| {
                        (
                            it.key().to_vec(),
                            it.seqno(),
                            it.kind(),
                            it.value().to_vec(),
                        )
                    });
                    assert_eq!(at, model_seek(&model, key, *seqno), "round {round}");
                }
            }
        }
        let stats = cache.stats();
        assert!(stats.used_bytes <= capacity, "{stats:?}");
        if capacity == 64 << 20 {
            assert!(
                stats.hits > stats.misses,
                "a cache that holds it all hits: {stats:?}"
            );
        } else {
            assert_eq!(stats.hits == 0, capacity == 0, "{stats:?}");
        }
    }
}

#[test]
fn a_scan_reads_ahead_without_filling_the_cache_and_lookups_fill_it() {
    let entries = sample_entries(3000, 1, 40);
    let (fs, _) = build(&entries, small_blocks());
    let cache = Arc::new(BlockCache::new(64 << 20));
    let table = open_cached(&fs, &cache);
    assert!(table.data_blocks().unwrap() > 200);
    assert_eq!(scan(&table).unwrap(), entries);
    // The first two blocks are read as lookups read them; the rest ahead, uncached.
    assert_eq!(cache.stats().blocks, 2, "{:?}", cache.stats());
    let (key, ..) = &entries[1500];
    assert!(table.get(key, u64::MAX).unwrap().is_some());
    assert_eq!(cache.stats().blocks, 3, "{:?}", cache.stats());
    // A seek reads its block as a lookup does.
    let mut it = table.iter();
    it.seek(&entries[100].0).unwrap();
    assert_eq!(cache.stats().blocks, 4, "{:?}", cache.stats());
}

/// A table whose data block holding entry `victim` has one bit flipped on disk.
fn damaged(entries: &[Entry], victim: usize) -> SimFs {
    let (fs, _) = build(entries, small_blocks());
    let bytes = vfs::Fs::read_all(&fs, Path::new(PATH)).unwrap();
    let value = &entries[victim].3;
    let at = bytes
        .windows(value.len())
        .position(|w| w == value.as_slice())
        .unwrap();
    fs.flip_bit(Path::new(PATH), at + 1, 3).unwrap();
    fs
}

#[test]
fn a_damaged_block_read_with_pread_is_a_checksum_error_for_lookups_and_iterators() {
    let mut entries = sample_entries(2000, 1, 40);
    // A value found nowhere else in the file, so the damage lands where we mean it.
    let victim = 1234;
    entries[victim].3 = b"the-one-value-that-gets-damaged-on-disk".to_vec();
    let fs = damaged(&entries, victim);
    for capacity in [0u64, 64 << 20] {
        let cache = Arc::new(BlockCache::new(capacity));
        let table = open_cached(&fs, &cache); // tail intact: opens
        let key = &entries[victim].0;
        for _ in 0..2 {
            match table.get(key, u64::MAX) {
                Err(Error::ChecksumMismatch { .. }) => {}
                other => panic!("capacity {capacity}: damaged block served: {other:?}"),
            }
        }
        let err = scan(&table).expect_err("a scan over the damaged block");
        assert!(err.is_corruption(), "{err}");
        let mut it = table.iter();
        match it.seek(key) {
            Err(e) => assert!(e.is_corruption(), "{e}"),
            Ok(()) => panic!("seek into the damaged block succeeded"),
        }
        // The blocks around it still answer.
        let (other, ..) = &entries[10];
        assert!(table.get(other, u64::MAX).unwrap().is_some());
        // Good blocks were cached (a zero-capacity cache holds none); the damaged one
        // never is: the second lookup above read and checked it again.
        assert_eq!(
            cache.stats().blocks > 0,
            capacity > 0,
            "{:?}",
            cache.stats()
        );
    }
}

#[test]
fn a_failing_disk_is_an_io_error_not_a_panic() {
    let entries = sample_entries(500, 1, 40);
    let (fs, _) = build(&entries, small_blocks());
    let cache = Arc::new(BlockCache::new(0));
    let table = open_cached(&fs, &cache);
    fs.fail_reads(true);
    match table.get(&entries[7].0, u64::MAX) {
        Err(Error::Io { .. }) => {}
        other => panic!("read from a failing disk: {other:?}"),
    }
    assert!(matches!(scan(&table), Err(Error::Io { .. })));
    let reopened = Table::open_with(&fs, Path::new(PATH), &ReadMode::Cached(cache));
    assert!(matches!(reopened, Err(Error::Io { .. })), "{reopened:?}");
    fs.fail_reads(false);
    assert!(table.get(&entries[7].0, u64::MAX).unwrap().is_some());
}
