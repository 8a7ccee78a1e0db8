//! Engine-level sanity tests beside the code: open-write-reopen-read on `SimFs` and
//! the real disk, flush/compaction against a `BTreeMap` model, snapshots, batches
//! across power loss, latching after a failed fsync, damaged files. (The large
//! property, crash and power-loss suites live in `storage/tests/`.)

use crate::{Db, Error, Options, WriteBatch, WriteOptions};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vfs::{CrashMode, Fs, RealFs, SimFs};

const NOSYNC: WriteOptions = WriteOptions { sync: false };
const SYNC: WriteOptions = WriteOptions { sync: true };

fn small() -> Options {
    Options {
        write_buffer_bytes: 16 << 10,
        table_target_bytes: 8 << 10,
        level_base_bytes: 32 << 10,
        wal_segment_bytes: 32 << 10,
        block_bytes: 512,
        ..Options::default()
    }
}

fn dir() -> &'static Path {
    Path::new("/db")
}

fn all(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iter(Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn model_all(model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn open_write_reopen_read_on_simfs() {
    let fs = Arc::new(SimFs::new());
    {
        let db = Db::open(fs.clone(), dir(), Options::default()).unwrap();
        assert_eq!(db.put(b"a", b"1", NOSYNC).unwrap(), 1);
        assert_eq!(db.put(b"b", b"2", NOSYNC).unwrap(), 2);
        db.delete(b"a", NOSYNC).unwrap();
        assert_eq!(db.get(b"a").unwrap(), None);
        assert_eq!(db.get(b"b").unwrap(), Some(b"2".to_vec()));
    }
    let db = Db::open(fs.clone(), dir(), Options::default()).unwrap();
    assert_eq!(db.get(b"a").unwrap(), None);
    assert_eq!(db.get(b"b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.last_seqno(), 3);
    assert_eq!(db.put(b"c", b"3", NOSYNC).unwrap(), 4);
    db.flush().unwrap();
    drop(db);
    let db = Db::open(fs, dir(), Options::default()).unwrap();
    assert_eq!(
        all(&db),
        vec![
            (b"b".to_vec(), b"2".to_vec()),
            (b"c".to_vec(), b"3".to_vec())
        ]
    );
    // One table of the writes recovered at the second open (flushed right after it),
    // one of `c`.
    assert_eq!(db.level_table_counts()[0], 2);
}

#[test]
fn open_write_reopen_read_on_the_real_disk() {
    let path: PathBuf = std::env::temp_dir().join(format!("storage-unit-{}", std::process::id()));
    let fs = RealFs::shared();
    {
        let db = Db::open(Arc::clone(&fs), &path, small()).unwrap();
        for i in 0..2000u32 {
            db.put(format!("k{i:05}").as_bytes(), &i.to_le_bytes(), NOSYNC)
                .unwrap();
        }
        db.put(b"last", b"x", SYNC).unwrap();
        db.compact_all().unwrap();
    }
    let db = Db::open(Arc::clone(&fs), &path, small()).unwrap();
    assert_eq!(
        db.get(b"k01234").unwrap(),
        Some(1234u32.to_le_bytes().to_vec())
    );
    assert_eq!(db.get(b"last").unwrap(), Some(b"x".to_vec()));
    assert_eq!(all(&db).len(), 2001);
    drop(db);
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn flushes_and_compactions_match_a_model() {
    let fs = Arc::new(SimFs::new());
    let db = Db::open(fs.clone(), dir(), small()).unwrap();
    let mut model = BTreeMap::new();
    let mut rng = Rng(7);
    for i in 0..6000u64 {
        let k = format!("key{:04}", rng.next() % 1500).into_bytes();
        if rng.next().is_multiple_of(5) {
            db.delete(&k, NOSYNC).unwrap();
            model.remove(&k);
        } else {
            let v = format!("v{i}-{}", "x".repeat((rng.next() % 40) as usize)).into_bytes();
            db.put(&k, &v, NOSYNC).unwrap();
            model.insert(k, v);
        }
        if i % 1000 == 999 {
            assert_eq!(all(&db), model_all(&model), "after {i} ops");
        }
    }
    let counts = db.level_table_counts();
    assert!(
        counts.iter().sum::<usize>() > 1,
        "expected tables, got {counts:?}"
    );
    for k in 0..1500 {
        let k = format!("key{k:04}").into_bytes();
        assert_eq!(db.get(&k).unwrap(), model.get(&k).cloned());
    }
    db.compact_all().unwrap();
    let counts = db.level_table_counts();
    assert_eq!(
        counts.iter().filter(|&&n| n > 0).count(),
        1,
        "one level after compact_all: {counts:?}"
    );
    assert_eq!(all(&db), model_all(&model));
    drop(db);
    let db = Db::open(fs, dir(), small()).unwrap();
    assert_eq!(all(&db), model_all(&model));
    // Ranges and prefixes.
    let got: Vec<Vec<u8>> = db
        .prefix_iter(b"key01")
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    let want: Vec<Vec<u8>> = model
        .keys()
        .filter(|k| k.starts_with(b"key01"))
        .cloned()
        .collect();
    assert_eq!(got, want);
    let lo = b"key0500".to_vec();
    let hi = b"key0600".to_vec();
    let got: Vec<Vec<u8>> = db
        .iter(Bound::Excluded(&lo[..]), Bound::Included(&hi[..]))
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    let want: Vec<Vec<u8>> = model
        .range::<Vec<u8>, _>((Bound::Excluded(&lo), Bound::Included(&hi)))
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn snapshots_survive_flush_and_compaction() {
    let fs = Arc::new(SimFs::new());
    let db = Db::open(fs, dir(), small()).unwrap();
    for i in 0..500u32 {
        db.put(format!("k{i:03}").as_bytes(), b"old", NOSYNC)
            .unwrap();
    }
    let snap = db.snapshot();
    for i in 0..500u32 {
        if i.is_multiple_of(2) {
            db.delete(format!("k{i:03}").as_bytes(), NOSYNC).unwrap();
        } else {
            db.put(format!("k{i:03}").as_bytes(), b"new", NOSYNC)
                .unwrap();
        }
    }
    db.compact_all().unwrap();
    assert_eq!(snap.get(b"k000").unwrap(), Some(b"old".to_vec()));
    assert_eq!(db.get(b"k000").unwrap(), None);
    assert_eq!(db.get(b"k001").unwrap(), Some(b"new".to_vec()));
    let seen: Vec<(Vec<u8>, Vec<u8>)> = snap
        .iter(Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(seen.len(), 500);
    assert!(seen.iter().all(|(_, v)| v == b"old"));
    assert_eq!(all(&db).len(), 250);
    // A snapshot taken after compaction and one through a reopened iterator agree.
    let it = db.iter(Bound::Unbounded, Bound::Unbounded).unwrap();
    db.put(b"k001", b"newer", NOSYNC).unwrap();
    let first: Vec<(Vec<u8>, Vec<u8>)> = it.map(Result::unwrap).take(1).collect();
    assert_eq!(first, vec![(b"k001".to_vec(), b"new".to_vec())]);
    assert_eq!(db.snapshot_count(), 1);
    drop(snap);
    assert_eq!(db.snapshot_count(), 0);
}

#[test]
fn synced_batches_survive_power_loss_whole() {
    let fs = Arc::new(SimFs::new());
    {
        let db = Db::open(fs.clone(), dir(), small()).unwrap();
        for round in 0..50u32 {
            let mut b = WriteBatch::new();
            for k in 0..20u32 {
                b.put(
                    format!("k{k:02}").as_bytes(),
                    format!("r{round}").as_bytes(),
                );
            }
            db.write(&b, if round < 40 { SYNC } else { NOSYNC })
                .unwrap();
        }
    }
    fs.crash(CrashMode::TearUnsynced { seed: 3 });
    let db = Db::open(fs, dir(), small()).unwrap();
    let values: Vec<Vec<u8>> = all(&db).into_iter().map(|(_, v)| v).collect();
    assert_eq!(values.len(), 20);
    assert!(
        values.iter().all(|v| v == &values[0]),
        "a torn batch: {values:?}"
    );
    let round: u32 = String::from_utf8(values[0][1..].to_vec())
        .unwrap()
        .parse()
        .unwrap();
    assert!(round >= 39, "synced round lost: {round}");
}

#[test]
fn a_failed_fsync_latches_the_engine() {
    let fs = Arc::new(SimFs::new());
    let db = Db::open(fs.clone(), dir(), small()).unwrap();
    db.put(b"a", b"1", SYNC).unwrap();
    fs.fail_sync_after(0);
    assert!(db.put(b"b", b"2", SYNC).is_err());
    assert!(matches!(
        db.put(b"c", b"3", NOSYNC),
        Err(Error::Poisoned { .. })
    ));
    assert!(db.flush().is_err());
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
    drop(db);
    let db = Db::open(fs, dir(), small()).unwrap();
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
    db.put(b"d", b"4", SYNC).unwrap();
}

#[test]
fn a_damaged_table_is_an_error_not_a_panic() {
    let fs = Arc::new(SimFs::new());
    {
        let db = Db::open(fs.clone(), dir(), small()).unwrap();
        for i in 0..200u32 {
            db.put(format!("k{i:03}").as_bytes(), &[7u8; 50], NOSYNC)
                .unwrap();
        }
        db.flush().unwrap();
    }
    let table = fs
        .list_dir(dir())
        .unwrap()
        .into_iter()
        .find(|n| n.ends_with(".sst"))
        .unwrap();
    let path = dir().join(&table);
    let len = fs.read_all(&path).unwrap().len();
    // Damage the footer: open reads no table, so the first read that needs this
    // one fails with a typed error naming it.
    fs.flip_bit(&path, len - 3, 1).unwrap();
    {
        let db = Db::open(fs.clone(), dir(), small()).unwrap();
        match db.get(b"k100") {
            Err(e) => assert!(e.is_corruption() && e.to_string().contains(&table), "{e}"),
            Ok(v) => panic!("read a table with a damaged footer: {v:?}"),
        }
    }
    fs.flip_bit(&path, len - 3, 1).unwrap();
    // Damage a data block: open may succeed, reads fail.
    fs.flip_bit(&path, 10, 3).unwrap();
    if let Ok(db) = Db::open(fs, dir(), small()) {
        let errors = (0..200u32)
            .filter(|i| db.get(format!("k{i:03}").as_bytes()).is_err())
            .count();
        assert!(errors > 0);
        match db.iter(Bound::Unbounded, Bound::Unbounded) {
            Err(e) => assert!(e.is_corruption(), "{e}"),
            Ok(mut it) => assert!(it.any(|r| r.is_err())),
        }
    }
}

#[test]
fn a_damaged_manifest_is_an_error() {
    let fs = Arc::new(SimFs::new());
    drop(Db::open(fs.clone(), dir(), small()).unwrap());
    fs.write_atomic(&dir().join("CURRENT"), b"nonsense")
        .unwrap();
    assert!(matches!(
        Db::open(fs, dir(), small()),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn obsolete_files_are_removed_at_open() {
    let fs = Arc::new(SimFs::new());
    drop(Db::open(fs.clone(), dir(), small()).unwrap());
    fs.write_atomic(&dir().join("000999.sst"), b"junk").unwrap();
    fs.write_atomic(&dir().join("x.tmp"), b"junk").unwrap();
    drop(Db::open(fs.clone(), dir(), small()).unwrap());
    let names = fs.list_dir(dir()).unwrap();
    assert!(
        !names.iter().any(|n| n == "000999.sst" || n == "x.tmp"),
        "{names:?}"
    );
}

#[test]
fn oversized_batches_are_refused() {
    let fs = Arc::new(SimFs::new());
    let opts = Options {
        batch_bytes_max: 1024,
        ..small()
    };
    let db = Db::open(fs, dir(), opts).unwrap();
    assert!(matches!(
        db.put(b"k", &[0u8; 2000], NOSYNC),
        Err(Error::TooLarge { .. })
    ));
    db.put(b"k", &[0u8; 100], NOSYNC).unwrap();
}

#[test]
fn lowering_batch_bytes_max_keeps_a_larger_batch_already_logged() {
    // A batch written under a higher limit is the WAL's last record; reopening with a
    // lower limit must replay it, not cut it as a torn tail (acknowledged data lost).
    let fs = Arc::new(SimFs::new());
    {
        let db = Db::open(fs.clone(), dir(), small()).unwrap();
        db.put(b"a", b"small", SYNC).unwrap();
        db.put(b"big", &[9u8; 5000], SYNC).unwrap();
    }
    let lower = Options {
        batch_bytes_max: 1024,
        ..small()
    };
    let db = Db::open(fs, dir(), lower).unwrap();
    assert_eq!(db.get(b"a").unwrap(), Some(b"small".to_vec()));
    assert_eq!(db.get(b"big").unwrap(), Some(vec![9u8; 5000]));
    // The lower limit still holds for new writes.
    assert!(matches!(
        db.put(b"k", &[0u8; 2000], NOSYNC),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn concurrent_writers_and_readers_see_consistent_snapshots() {
    let fs = Arc::new(SimFs::new());
    let db = Db::open(fs, dir(), small()).unwrap();
    let writers: Vec<_> = (0..3u32)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..1500u32 {
                    // Each batch writes the same counter to two keys of this thread.
                    let mut b = WriteBatch::new();
                    let v = i.to_le_bytes();
                    b.put(format!("t{t}a").as_bytes(), &v);
                    b.put(format!("t{t}b").as_bytes(), &v);
                    db.write(
                        &b,
                        WriteOptions {
                            sync: i.is_multiple_of(100),
                        },
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for _ in 0..200 {
        let snap = db.snapshot();
        for t in 0..3 {
            let a = snap.get(format!("t{t}a").as_bytes()).unwrap();
            let b = snap.get(format!("t{t}b").as_bytes()).unwrap();
            assert_eq!(a, b, "batch seen half-applied");
        }
    }
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(
        db.get(b"t2a").unwrap(),
        Some(1499u32.to_le_bytes().to_vec())
    );
}

#[test]
fn manifest_and_wal_stay_bounded_across_many_flushes() {
    let fs = Arc::new(SimFs::new());
    let opts = Options {
        manifest_bytes_max: 300,
        wal_segment_bytes: 4 << 10,
        ..small()
    };
    let db = Db::open(fs.clone(), dir(), opts.clone()).unwrap();
    let mut model = BTreeMap::new();
    for round in 0..40u32 {
        for k in 0..50u32 {
            let key = format!("k{:03}", (k * 7 + round) % 300).into_bytes();
            let value = format!("r{round}k{k}").into_bytes();
            db.put(&key, &value, NOSYNC).unwrap();
            model.insert(key, value);
        }
        db.flush().unwrap();
    }
    // Compactions the flushes started run on in the background: count at rest.
    db.wait_for_compactions().unwrap();
    let manifest_files = fs.list_dir(&dir().join("manifest")).unwrap().len();
    let wal_files = fs.list_dir(&dir().join("wal")).unwrap().len();
    assert!(manifest_files <= 3, "manifest segments: {manifest_files}");
    assert!(wal_files <= 3, "wal segments: {wal_files}");
    let tables = fs
        .list_dir(dir())
        .unwrap()
        .iter()
        .filter(|n| n.ends_with(".sst"))
        .count();
    assert_eq!(
        tables,
        db.level_table_counts().iter().sum::<usize>(),
        "no garbage tables"
    );
    drop(db);
    fs.crash(CrashMode::DropUnsynced);
    let db = Db::open(fs, dir(), opts).unwrap();
    assert_eq!(all(&db), model_all(&model));
}

fn table_files(fs: &SimFs) -> usize {
    fs.list_dir(dir())
        .unwrap()
        .iter()
        .filter(|n| n.ends_with(".sst"))
        .count()
}

#[test]
fn compaction_deletes_its_inputs_before_it_reports_done() {
    let fs = Arc::new(SimFs::new());
    let db = Db::open(fs.clone(), dir(), small()).unwrap();
    for round in 0..3u32 {
        for k in 0..100u32 {
            db.put(format!("k{k:03}").as_bytes(), &round.to_le_bytes(), NOSYNC)
                .unwrap();
        }
        db.flush().unwrap();
    }
    // Hold the compaction thread at the moment it has reported the job done, and look.
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = parking_lot::Mutex::new(release_rx);
    *db.inner().after_compaction_reported.lock() = Some(Box::new(move || {
        let _ = release_rx.lock().recv();
    }));
    db.compact_all().unwrap();
    let on_disk = table_files(&fs);
    let live = db.level_table_counts().iter().sum::<usize>();
    drop(release_tx);
    assert_eq!(
        on_disk, live,
        "input tables still on disk when compact_all returned"
    );
}

#[test]
fn writes_stall_until_level_0_drains() {
    // With stop == trigger, every fourth flush waits for a compaction: the writer
    // must keep going (back-pressure, not deadlock) and the data must be intact.
    let fs = Arc::new(SimFs::new());
    let opts = Options {
        write_buffer_bytes: 4 << 10,
        l0_compaction_trigger: 2,
        l0_slowdown_writes: 2,
        l0_stop_writes: 3,
        ..small()
    };
    let db = Db::open(fs, dir(), opts).unwrap();
    for i in 0..4000u32 {
        db.put(
            format!("k{:05}", (i * 7919) % 4000).as_bytes(),
            &[1u8; 40],
            NOSYNC,
        )
        .unwrap();
        assert!(db.level_table_counts()[0] <= 3);
    }
    assert_eq!(all(&db).len(), 4000);
}

#[test]
fn sync_writers_that_arrive_during_an_fsync_share_the_next_one() {
    // Every WAL fsync takes 300 ms. Eight sync writers start together: the first one's
    // fsync is in flight while the other seven arrive, and they must all queue their
    // records and share the next fsync (group commit), not take one each. (A writer that
    // waited for the in-flight fsync while holding the write lock kept the others from
    // even queueing: eight fsyncs.) A count of fsyncs, not a timing; the bound leaves
    // room for a writer that a loaded machine starts late.
    let path = std::env::temp_dir().join(format!("storage-group-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let disk = vfs::SlowSyncFs::new(0);
    let db = Db::open(Arc::new(disk.clone()), &path, Options::default()).unwrap();
    db.put(b"warm", b"up", SYNC).unwrap();
    disk.delay_ms()
        .store(300, std::sync::atomic::Ordering::Relaxed);
    let before = db.wal_stats().data_syncs;
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|s| {
        for i in 0..8u8 {
            let (db, start) = (&db, &start);
            s.spawn(move || {
                start.wait();
                db.put(&[b'w', i], b"v", SYNC).unwrap();
            });
        }
    });
    let syncs = db.wal_stats().data_syncs - before;
    assert!(
        syncs <= 4,
        "{syncs} WAL fdatasyncs for 8 concurrent sync writes"
    );
    for i in 0..8u8 {
        assert_eq!(db.get(&[b'w', i]).unwrap(), Some(b"v".to_vec()));
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn a_writer_faster_than_the_flush_never_holds_two_full_write_buffers() {
    // Every fsync takes 50 ms, so each flush (which fsyncs its table) is far slower
    // than filling the next 64 KiB memtable. The active and the frozen memtable must
    // together stay under one and a half write buffers (plus two writes: each
    // memtable passes its mark by up to one), and the
    // writer must still switch (several flushes). Before the cap the active memtable
    // filled to a whole buffer beside the frozen one: twice the buffer.
    let path = std::env::temp_dir().join(format!("storage-memcap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    let disk = vfs::SlowSyncFs::new(0);
    let opts = Options {
        write_buffer_bytes: 64 << 10,
        ..Options::default()
    };
    let db = Db::open(Arc::new(disk.clone()), &path, opts).unwrap();
    disk.delay_ms()
        .store(50, std::sync::atomic::Ordering::Relaxed);
    let value = [7u8; 100];
    let one_write = 16 + 8 + value.len() + 32;
    let cap = (64 << 10) / 2 * 3 + 2 * one_write;
    let mut most = 0;
    for i in 0..2000u32 {
        db.put(&i.to_be_bytes(), &value, NOSYNC).unwrap();
        most = most.max(db.engine_stats().memtable_bytes as usize);
    }
    assert!(
        most <= cap,
        "memtables held {most} bytes, over 1.5 write buffers ({cap})"
    );
    assert!(
        db.level_table_counts().iter().sum::<usize>() > 0,
        "the writer went on switching memtables"
    );
    for i in (0..2000u32).step_by(97) {
        assert_eq!(db.get(&i.to_be_bytes()).unwrap(), Some(value.to_vec()));
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&path);
}

#[test]
fn a_sync_write_costs_exactly_one_wal_fdatasync() {
    let fs = Arc::new(SimFs::new());
    let db = Db::open(fs.clone(), dir(), Options::default()).unwrap();
    db.put(b"warm", b"up", SYNC).unwrap();
    let (wal_before, fs_before) = (db.wal_stats().data_syncs, fs.sync_count());
    for i in 0..100u32 {
        db.put(&i.to_be_bytes(), b"v", SYNC).unwrap();
    }
    assert_eq!(db.wal_stats().data_syncs - wal_before, 100);
    assert_eq!(
        fs.sync_count() - fs_before,
        100,
        "no other fsync on the sync write path"
    );
    let before = fs.sync_count();
    for i in 0..100u32 {
        db.put(&i.to_be_bytes(), b"w", NOSYNC).unwrap();
    }
    assert_eq!(fs.sync_count(), before, "unsynced writes never fsync");
}

#[test]
fn replay_that_fills_memtables_flushes_during_recovery() {
    let fs = Arc::new(SimFs::new());
    let mut model = BTreeMap::new();
    {
        let db = Db::open(fs.clone(), dir(), Options::default()).unwrap();
        for i in 0..3000u32 {
            let k = format!("k{:04}", (i * 31) % 2000).into_bytes();
            let v = format!("v{i}").into_bytes();
            db.put(&k, &v, NOSYNC).unwrap();
            model.insert(k, v);
        }
        db.sync_wal().unwrap();
        assert_eq!(db.level_table_counts().iter().sum::<usize>(), 0);
    }
    fs.crash(CrashMode::DropUnsynced);
    let db = Db::open(fs.clone(), dir(), small()).unwrap();
    // Recovery wrote level-0 tables; the compaction thread may already have moved
    // them down, so count every level.
    assert!(
        db.level_table_counts().iter().sum::<usize>() > 0,
        "recovery wrote tables"
    );
    assert_eq!(all(&db), model_all(&model));
    db.put(b"after", b"x", SYNC).unwrap();
    drop(db);
    fs.crash(CrashMode::DropUnsynced);
    let db = Db::open(fs, dir(), small()).unwrap();
    model.insert(b"after".to_vec(), b"x".to_vec());
    assert_eq!(all(&db), model_all(&model));
}

#[test]
fn a_recovered_memtable_is_handed_to_the_flush_thread() {
    // Replayed writes that do not fill a memtable are frozen at open for the flush
    // thread (as RocksDB flushes what it recovers), so a reopened, read-only engine
    // does not keep them in memory: the active memtable starts empty.
    let fs = Arc::new(SimFs::new());
    let mut model = BTreeMap::new();
    {
        let db = Db::open(fs.clone(), dir(), Options::default()).unwrap();
        for i in 0..500u32 {
            let (k, v) = (
                format!("k{i:04}").into_bytes(),
                format!("v{i}").into_bytes(),
            );
            db.put(&k, &v, NOSYNC).unwrap();
            model.insert(k, v);
        }
        db.sync_wal().unwrap();
    }
    let db = Db::open(fs.clone(), dir(), Options::default()).unwrap();
    assert!(
        db.inner().write.lock().mem.is_empty(),
        "the recovered writes stayed in the active memtable"
    );
    assert_eq!(all(&db), model_all(&model), "readable while frozen");
    db.flush().unwrap();
    let stats = db.engine_stats();
    assert_eq!(stats.memtable_bytes, 0, "flushed and released");
    assert!(stats.tables_per_level.iter().sum::<usize>() > 0);
    assert_eq!(all(&db), model_all(&model));
    drop(db);
    fs.crash(CrashMode::DropUnsynced);
    let db = Db::open(fs, dir(), Options::default()).unwrap();
    assert_eq!(
        all(&db),
        model_all(&model),
        "the flushed table survives a crash"
    );
    assert!(db.inner().write.lock().mem.is_empty());
}

#[test]
fn iterators_count_the_versions_they_step_over() {
    let fs = Arc::new(SimFs::new());
    let db = Db::open(fs, dir(), Options::default()).unwrap();
    for i in 0..10u8 {
        db.put(&[b'k', i], b"v", NOSYNC).unwrap();
    }
    for i in 0..5u8 {
        db.delete(&[b'k', i], NOSYNC).unwrap();
    }
    db.put(&[b'k', 9], b"w", NOSYNC).unwrap();
    assert_eq!(db.hidden_entries_stepped(), 0);
    let live = db.iter(Bound::Unbounded, Bound::Unbounded).unwrap().count();
    assert_eq!(live, 5);
    // Five tombstones with the puts under them, and k9's older version.
    assert_eq!(db.hidden_entries_stepped(), 11);
}

#[test]
fn engine_stats_account_for_memtables_tables_backlog_and_fsyncs() {
    let fs = Arc::new(SimFs::new());
    let opts = Options {
        // Keep level 0 as flushed, to see it counted.
        l0_compaction_trigger: 100,
        l0_slowdown_writes: 100,
        l0_stop_writes: 100,
        ..small()
    };
    let db = Db::open(fs, dir(), opts.clone()).unwrap();
    let empty = db.engine_stats();
    assert_eq!(empty.memtable_bytes, 0);
    assert_eq!(empty.tables_per_level.iter().sum::<usize>(), 0);
    db.put(b"k", &[7u8; 100], SYNC).unwrap();
    let one = db.engine_stats();
    assert!(one.memtable_bytes >= 100, "{one:?}");
    assert!(
        one.wal_sync_latency.count >= 1,
        "a sync write fsyncs: {one:?}"
    );
    for i in 0..3u32 {
        db.put(&i.to_be_bytes(), &[1u8; 100], NOSYNC).unwrap();
        db.flush().unwrap();
    }
    let flushed = db.engine_stats();
    assert_eq!(flushed.tables_per_level[0], 3, "{flushed:?}");
    assert!(flushed.bytes_per_level[0] > 300, "{flushed:?}");
    // A flush loads the new table's index and filter, and they are counted.
    assert!(
        flushed.index_bytes > 0 && flushed.filter_bytes > 0,
        "{flushed:?}"
    );
    assert_eq!(flushed.pending_compaction_bytes, 0, "under the trigger");
    // The same version with a trigger it has reached owes all of level 0.
    let owing = Options {
        l0_compaction_trigger: 3,
        ..opts
    };
    let v = db.inner().super_version();
    assert_eq!(
        crate::engine_stats::pending_compaction_bytes(&v.version, &owing),
        flushed.bytes_per_level[0]
    );
    drop(v);
    // A stats reader does not keep the engine open.
    let reader = db.stats_reader();
    assert_eq!(
        reader.get().map(|s| s.tables_per_level),
        Some(flushed.tables_per_level)
    );
    drop(db);
    assert!(reader.get().is_none());
}
