//! A sync write whose fsync failed is never visible: it returns an error, and neither
//! `get`, a new snapshot nor an iterator shows its value, then or later in the life of
//! the engine (it latched). Writes are published only once as durable as asked, in
//! seqno order, so with concurrent sync and non-sync writers a write is visible to
//! readers if and only if it returned `Ok` — checked by readers racing the failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Rng;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use storage::{Db, Error, Options, WriteOptions};
use vfs::SimFs;

const SYNC: WriteOptions = WriteOptions { sync: true };
const NO_SYNC: WriteOptions = WriteOptions { sync: false };

#[test]
fn a_write_whose_fsync_failed_stays_invisible() {
    let fs = SimFs::new();
    let db = Db::open(Arc::new(fs.clone()), Path::new("/db"), Options::default()).unwrap();
    db.put(b"a", b"1", SYNC).unwrap();
    let before = db.last_seqno();
    fs.fail_sync_after(0);
    let err = db.put(b"a", b"2", SYNC).unwrap_err();
    assert!(matches!(err, Error::Wal { .. }), "{err}");
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.snapshot().get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(common::scan(&db), vec![(b"a".to_vec(), b"1".to_vec())]);
    assert_eq!(
        db.last_seqno(),
        before,
        "the failed write's seqno was published"
    );
    // Latched: later writes fail and publish nothing either.
    assert!(matches!(
        db.put(b"b", b"3", NO_SYNC),
        Err(Error::Poisoned { .. })
    ));
    assert_eq!(db.get(b"b").unwrap(), None);
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
}

/// The value of writer `t`'s key after its `n`-th write.
fn value(n: u64) -> Vec<u8> {
    format!("{n:08}").into_bytes()
}

fn parse(v: &[u8]) -> u64 {
    std::str::from_utf8(v).unwrap().parse().unwrap()
}

#[test]
fn concurrent_writers_racing_a_failed_fsync_show_exactly_the_acknowledged_writes() {
    const WRITERS: u64 = 4;
    // Far more than run before the failure strikes: the writers stop at their first error.
    const WRITES_MAX: u64 = 10_000_000;
    for seed in 0..12u64 {
        let fs = SimFs::new();
        let db = Db::open(Arc::new(fs.clone()), Path::new("/db"), Options::default()).unwrap();
        let mut rng = Rng::new(seed);
        let fail_at = rng.below(40);
        let stop = Arc::new(AtomicBool::new(false));
        // Readers: a value they ever see must end up acknowledged.
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (db, stop) = (db.clone(), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut seen = vec![0u64; WRITERS as usize];
                    while !stop.load(Ordering::Acquire) {
                        let snap = db.snapshot();
                        for t in 0..WRITERS {
                            let key = format!("w{t}");
                            let got = snap.get(key.as_bytes()).unwrap().map_or(0, |v| parse(&v));
                            let latest = db.get(key.as_bytes()).unwrap().map_or(0, |v| parse(&v));
                            assert!(latest >= got, "a newer read went back in time");
                            let i = t as usize;
                            assert!(got >= seen[i], "reads went back in time");
                            seen[i] = latest;
                        }
                    }
                    seen
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|t| {
                let db = db.clone();
                std::thread::spawn(move || {
                    // Odd writers mix in non-sync writes, which may queue behind syncs.
                    let mut acked = 0u64;
                    for n in 1..=WRITES_MAX {
                        let opts = if t % 2 == 1 && n % 3 != 0 {
                            NO_SYNC
                        } else {
                            SYNC
                        };
                        match db.put(format!("w{t}").as_bytes(), &value(n), opts) {
                            Ok(_) => acked = n,
                            Err(_) => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        // Let some syncs succeed, then make one fail.
        while fs.sync_count() < fail_at {
            std::thread::yield_now();
        }
        fs.fail_sync_after(0);
        let acked: Vec<u64> = writers.into_iter().map(|h| h.join().unwrap()).collect();
        stop.store(true, Ordering::Release);
        let seen: Vec<Vec<u64>> = readers.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(
            acked.iter().all(|&a| a < WRITES_MAX),
            "seed {seed}: the fsync failure never reached the writers"
        );
        let snap = db.snapshot();
        for t in 0..WRITERS {
            let key = format!("w{t}");
            let got = db.get(key.as_bytes()).unwrap().map_or(0, |v| parse(&v));
            let snapped = snap.get(key.as_bytes()).unwrap().map_or(0, |v| parse(&v));
            let a = acked[t as usize];
            assert_eq!(
                got, a,
                "seed {seed}: writer {t} acknowledged {a} but get shows {got}"
            );
            assert_eq!(snapped, a, "seed {seed}: writer {t}: snapshot disagrees");
            for s in &seen {
                assert!(
                    s[t as usize] <= a,
                    "seed {seed}: a reader saw write {} of writer {t}, which failed (acked {a})",
                    s[t as usize]
                );
            }
        }
        assert!(
            db.put(b"x", b"y", NO_SYNC).is_err(),
            "seed {seed}: not latched"
        );
    }
}

#[test]
fn a_lone_writer_pays_one_fdatasync_per_sync_write_and_none_otherwise() {
    let fs = SimFs::new();
    let db = Db::open(Arc::new(fs.clone()), Path::new("/db"), Options::default()).unwrap();
    let before = db.wal_stats();
    for i in 0..50u32 {
        db.put(&i.to_be_bytes(), b"v", NO_SYNC).unwrap();
    }
    let mid = db.wal_stats();
    assert_eq!(mid.data_syncs, before.data_syncs, "a non-sync write synced");
    assert_eq!(
        mid.writes - before.writes,
        50,
        "one write(2) per non-sync write"
    );
    for i in 0..20u32 {
        db.put(&i.to_be_bytes(), b"w", SYNC).unwrap();
        // Visible on return, sync or not.
        assert_eq!(db.get(&i.to_be_bytes()).unwrap(), Some(b"w".to_vec()));
    }
    assert_eq!(db.wal_stats().data_syncs - mid.data_syncs, 20);
}
