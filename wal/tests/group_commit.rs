//! Many threads appending durably at once on the real disk: every record lands
//! exactly once, each thread's records in its own order, and one fdatasync serves
//! whole groups (never more syncs than groups). Readers run alongside. A `Queued`
//! append is written and made durable by the next sync.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use vfs::{RealFs, SimFs};
use wal::{Options, SyncMode, Wal};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hammer(
    log: &Arc<Wal>,
    threads: usize,
    per_thread: usize,
    mode_of: fn(usize) -> SyncMode,
) -> Vec<Vec<u64>> {
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (log, barrier) = (log.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                (0..per_thread)
                    .map(|k| {
                        log.append(format!("t{t}-{k}").as_bytes(), mode_of(k))
                            .unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn check_all_present(log: &Wal, indexes: &[Vec<u64>], per_thread: usize) {
    let total = (indexes.len() * per_thread) as u64;
    assert_eq!((log.first_index(), log.next_index()), (1, 1 + total));
    let mut seen = HashSet::new();
    for (t, mine) in indexes.iter().enumerate() {
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "thread {t}'s records out of order"
        );
        for (k, &i) in mine.iter().enumerate() {
            assert!(seen.insert(i), "index {i} handed out twice");
            assert_eq!(log.read(i).unwrap(), format!("t{t}-{k}").as_bytes());
        }
    }
    let all: Vec<_> = log.iter_from(1).unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len() as u64, total);
}

#[test]
fn concurrent_durable_appenders_on_real_disk() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("wal-group-commit-{}", std::process::id())));
    let opts = Options {
        segment_bytes_max: 16 << 10,
        ..Options::default()
    };
    let log = Arc::new(Wal::open(RealFs::shared(), &dir.0, opts).unwrap());
    let (threads, per_thread) = (8, 200);
    let indexes = hammer(&log, threads, per_thread, |_| SyncMode::Durable);
    let stats = log.stats();
    eprintln!(
        "{} durable appends, {} groups, {} fdatasyncs ({:.1} appends per sync), {} segments",
        stats.appends,
        stats.groups,
        stats.data_syncs,
        stats.appends as f64 / stats.data_syncs as f64,
        log.segment_count()
    );
    assert_eq!(stats.appends, (threads * per_thread) as u64);
    // Each group costs at most one sync of its own, plus one per segment rolled
    // (sealing the old one) and one per segment created (its header).
    assert!(stats.groups <= stats.appends);
    assert!(stats.data_syncs <= stats.groups + 2 * stats.segments_created + 1);
    assert!(stats.writes <= stats.groups + stats.segments_created);
    check_all_present(&log, &indexes, per_thread);
    drop(log);
    let log = Wal::open(RealFs::shared(), &dir.0, opts).unwrap();
    check_all_present(&log, &indexes, per_thread);
}

#[test]
fn mixed_modes_with_readers_on_simfs() {
    let fs = SimFs::new();
    let opts = Options {
        segment_bytes_max: 2048,
        ..Options::default()
    };
    let log =
        Arc::new(Wal::open(Arc::new(fs.clone()), std::path::Path::new("/wal"), opts).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (log, stop) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let first = log.first_index();
                for item in log.iter_from(first).unwrap() {
                    let (i, payload) = item.unwrap();
                    assert!(payload.starts_with(b"t"), "record {i} garbled");
                    reads += 1;
                }
            }
            reads
        })
    };
    let (threads, per_thread) = (6, 150);
    let indexes = hammer(&log, threads, per_thread, |k| {
        if k % 3 == 0 {
            SyncMode::Durable
        } else {
            SyncMode::Buffered
        }
    });
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    check_all_present(&log, &indexes, per_thread);
    let syncs_before = fs.sync_count();
    log.sync().unwrap();
    log.sync().unwrap();
    assert!(
        fs.sync_count() - syncs_before <= 1,
        "a sync with nothing new to sync is free"
    );
}

#[test]
fn truncations_race_appends_and_reads() {
    let fs = SimFs::new();
    let dir = std::path::Path::new("/wal");
    let opts = Options {
        segment_bytes_max: 1024,
        ..Options::default()
    };
    let log = Arc::new(Wal::open(Arc::new(fs.clone()), dir, opts).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let chores: Vec<_> = (0..3)
        .map(|role| {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                // At least a few rounds each, however the threads get scheduled.
                while rounds < 20 || !stop.load(Ordering::Relaxed) {
                    let next = log.next_index();
                    match role {
                        0 => log.truncate_prefix(next.saturating_sub(40)).unwrap(),
                        1 => {
                            // Drop the newest record, if it is still above the first.
                            match log.truncate_suffix(next.saturating_sub(1).max(1)) {
                                Ok(()) | Err(wal::Error::OutOfRange { .. }) => {}
                                Err(e) => panic!("{e}"),
                            }
                        }
                        _ => {
                            let first = log.first_index();
                            if let Ok(it) = log.iter_from(first) {
                                for item in it {
                                    match item {
                                        Ok((_, p)) => assert!(p.starts_with(b"t")),
                                        // A prefix truncation may remove what we were about to read.
                                        Err(wal::Error::OutOfRange { .. }) => break,
                                        Err(e) => panic!("{e}"),
                                    }
                                }
                            }
                        }
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    hammer(&log, 4, 300, |k| {
        if k % 2 == 0 {
            SyncMode::Durable
        } else {
            SyncMode::Buffered
        }
    });
    stop.store(true, Ordering::Relaxed);
    for c in chores {
        c.join().unwrap();
    }
    log.sync().unwrap();
    let before: Vec<_> = log
        .iter_from(log.first_index())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let first = log.first_index();
    drop(log);
    fs.crash(vfs::CrashMode::DropUnsynced);
    let log = Wal::open(Arc::new(fs), dir, opts).unwrap();
    assert_eq!(log.first_index(), first);
    let after: Vec<_> = log
        .iter_from(first)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        before, after,
        "a truncated and reopened log holds exactly what it showed"
    );
}

#[test]
fn a_queued_append_is_written_and_made_durable_by_the_next_sync() {
    let fs = SimFs::new();
    let log = Wal::open(
        Arc::new(fs.clone()),
        std::path::Path::new("/wal"),
        Options::default(),
    )
    .unwrap();
    let writes = log.stats().writes;
    let a = log.append(b"queued a", SyncMode::Queued).unwrap();
    let b = log.append(b"queued b", SyncMode::Queued).unwrap();
    assert_eq!((a, b), (1, 2), "indexes are given in order at once");
    assert_eq!(log.stats().writes, writes, "nothing written before a sync");
    let syncs = log.stats().data_syncs;
    log.sync().unwrap();
    assert_eq!(
        log.stats().data_syncs,
        syncs + 1,
        "one group, one fdatasync"
    );
    assert_eq!(log.read(2).unwrap(), b"queued b");
    drop(log);
    fs.crash(vfs::CrashMode::DropUnsynced);
    let log = Wal::open(
        Arc::new(fs.clone()),
        std::path::Path::new("/wal"),
        Options::default(),
    )
    .unwrap();
    assert_eq!(log.read(1).unwrap(), b"queued a");
    assert_eq!(log.read(2).unwrap(), b"queued b");
}
