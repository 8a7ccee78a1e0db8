//! A power loss (`SimFs::crash`, unsynced bytes dropped or torn at random points)
//! keeps every batch acknowledged as durable, and what it keeps is exactly the state
//! after some prefix of the batches: no torn batch, nothing half-written. Batches are
//! a random mix of durable and buffered writes, with flushes, compactions and
//! `sync_wal` in between (a returned `flush` or `sync_wal` makes everything before it
//! durable); each seed crashes, recovers and goes on twice. Concurrent durable writers
//! (group commit) lose nothing acknowledged either.
//!
//! And a failed fsync or a full disk is not papered over: the write that needed it
//! returns an error, the engine refuses every later write, and after a crash it
//! recovers a consistent prefix that contains every write acknowledged before the
//! failure; a sync failing (or a crash) in the middle of `Db::open` loses nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{model_entries, scan, small_options, Model, Rng};
use std::path::Path;
use std::sync::Arc;
use storage::{Db, WriteBatch, WriteOptions};
use vfs::{CrashMode, SimFs};

const SEEDS: u64 = 300;
const KEYS: u64 = 40;

fn open(fs: &SimFs) -> Db {
    Db::open(Arc::new(fs.clone()), Path::new("/db"), small_options()).unwrap()
}

fn random_batch(rng: &mut Rng, id: u64, model: &mut Model) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for _ in 0..1 + rng.below(5) {
        let k = format!("key{:03}", rng.below(KEYS)).into_bytes();
        if rng.one_in(5) {
            batch.delete(&k);
            model.remove(&k);
        } else {
            let v = format!("{id}:{}", "p".repeat(rng.below(120) as usize)).into_bytes();
            batch.put(&k, &v);
            model.insert(k, v);
        }
    }
    batch
}

/// Which prefix (index into `models`, within `lo..=hi`) equals the recovered state.
fn matching_prefix(
    got: &[(Vec<u8>, Vec<u8>)],
    models: &[Model],
    lo: usize,
    hi: usize,
) -> Option<usize> {
    (lo..=hi).rev().find(|&n| model_entries(&models[n]) == got)
}

#[test]
fn power_loss_keeps_acknowledged_durable_batches_as_an_exact_prefix() {
    for seed in 0..SEEDS {
        let mut rng = Rng::new(seed);
        let fs = SimFs::new();
        let mut db = open(&fs);
        // models[n] = state after the first n batches of this epoch's history.
        let mut models = vec![Model::new()];
        let mut durable = 0usize;
        for epoch in 0..2 {
            let batches = 1 + rng.below(120) as usize;
            for _ in 0..batches {
                let mut model = models.last().unwrap().clone();
                let id = models.len() as u64;
                let batch = random_batch(&mut rng, id, &mut model);
                let sync = rng.one_in(3);
                db.write(&batch, WriteOptions { sync }).unwrap();
                models.push(model);
                if sync {
                    durable = models.len() - 1;
                }
                match rng.below(40) {
                    0 | 1 => {
                        // flush() makes the memtable a durable table: everything
                        // written so far survives, buffered writes included.
                        db.flush().unwrap();
                        durable = models.len() - 1;
                    }
                    2 => db.compact_all().unwrap(),
                    3 => {
                        db.sync_wal().unwrap();
                        durable = models.len() - 1;
                    }
                    _ => {}
                }
            }
            let mode = if rng.one_in(2) {
                CrashMode::TearUnsynced {
                    seed: rng.next_u64(),
                }
            } else {
                CrashMode::DropUnsynced
            };
            fs.crash(mode);
            drop(db);
            db = Db::open(Arc::new(fs.clone()), Path::new("/db"), small_options()).unwrap_or_else(
                |e| panic!("seed {seed} epoch {epoch}: reopen after {mode:?} failed: {e}"),
            );
            let got = scan(&db);
            let last = models.len() - 1;
            let n = matching_prefix(&got, &models, durable, last).unwrap_or_else(|| {
                let lost = matching_prefix(&got, &models, 0, last);
                panic!(
                    "seed {seed} epoch {epoch} ({mode:?}): recovered state is not the state after any batch in \
                     {durable}..={last} (durable ack at {durable}); it matches prefix {lost:?}; got {} keys",
                    got.len()
                )
            });
            // Point reads agree with the scan.
            for k in 0..KEYS {
                let k = format!("key{k:03}").into_bytes();
                assert_eq!(
                    db.get(&k).unwrap().as_ref(),
                    models[n].get(&k),
                    "seed {seed}: get after recovery"
                );
            }
            // History continues from the recovered prefix.
            models.truncate(n + 1);
            durable = n;
        }
        drop(db);
    }
}

#[test]
fn failed_fsync_fails_the_write_and_latches_the_engine() {
    for seed in 0..40 {
        let mut rng = Rng::new(1000 + seed);
        let fs = SimFs::new();
        let db = Db::open(
            Arc::new(fs.clone()),
            Path::new("/db"),
            storage::Options {
                write_buffer_bytes: 1 << 20,
                ..small_options()
            },
        )
        .unwrap();
        let mut models = vec![Model::new()];
        for _ in 0..rng.below(30) {
            let mut model = models.last().unwrap().clone();
            let batch = random_batch(&mut rng, models.len() as u64, &mut model);
            db.write(&batch, WriteOptions { sync: true }).unwrap();
            models.push(model);
        }
        if rng.one_in(2) {
            db.flush().unwrap();
        }
        let acked = models.len() - 1;
        // Nothing runs in the background now (the buffer is far from full), so the next
        // sync is the one of this durable write.
        fs.fail_sync_after(0);
        let mut model = models.last().unwrap().clone();
        let batch = random_batch(&mut rng, models.len() as u64, &mut model);
        let r = db.write(&batch, WriteOptions { sync: true });
        assert!(
            r.is_err(),
            "seed {seed}: a durable write whose fsync failed returned Ok"
        );
        models.push(model);
        // Every later write is refused, durable or not, batch or single.
        for i in 0..5u64 {
            let mut model = models.last().unwrap().clone();
            let batch = random_batch(&mut rng, models.len() as u64, &mut model);
            let r = db.write(&batch, WriteOptions { sync: i % 2 == 0 });
            assert!(
                r.is_err(),
                "seed {seed}: write {i} after a failed fsync was accepted"
            );
        }
        assert!(
            db.put(b"after", b"x", WriteOptions { sync: true }).is_err(),
            "seed {seed}: put accepted"
        );
        assert!(
            db.delete(b"key000", WriteOptions::default()).is_err(),
            "seed {seed}: delete accepted"
        );

        let mode = if rng.one_in(2) {
            CrashMode::TearUnsynced { seed }
        } else {
            CrashMode::DropUnsynced
        };
        fs.crash(mode);
        drop(db);
        let db = open(&fs);
        let got = scan(&db);
        // The failed batch may or may not be there (its bytes may survive a torn crash),
        // but nothing after it, and nothing acknowledged before it may be missing.
        assert!(
            matching_prefix(&got, &models, acked, acked + 1).is_some(),
            "seed {seed} ({mode:?}): after a failed fsync and a crash the state is not a prefix in {acked}..={}",
            acked + 1
        );
        // The reopened engine takes writes again.
        db.put(b"after", b"x", WriteOptions { sync: true }).unwrap();
        assert_eq!(db.get(b"after").unwrap().as_deref(), Some(&b"x"[..]));
    }
}

#[test]
fn failed_background_sync_is_never_silently_lost() {
    // The failing sync lands anywhere (WAL, table, manifest or directory sync). Whatever
    // happens, once any operation has failed, later writes must fail too, and after a
    // crash every write acknowledged as durable before the first failure is there.
    let mut seeds_that_failed = 0;
    for seed in 0..40 {
        let mut rng = Rng::new(2000 + seed);
        let fs = SimFs::new();
        let db = open(&fs);
        let mut models = vec![Model::new()];
        let mut durable = 0usize;
        fs.fail_sync_after(rng.below(40));
        let mut failed = false;
        for step in 0..150 {
            let mut model = models.last().unwrap().clone();
            let batch = random_batch(&mut rng, models.len() as u64, &mut model);
            let sync = rng.one_in(2);
            match rng.below(30) {
                0 => {
                    let _ = db.flush();
                }
                1 => {
                    let _ = db.compact_all();
                }
                _ => match db.write(&batch, WriteOptions { sync }) {
                    Ok(_) => {
                        assert!(!failed, "seed {seed} step {step}: a write was accepted after an earlier write failed");
                        models.push(model);
                        if sync {
                            durable = models.len() - 1;
                        }
                    }
                    Err(_) if !failed => {
                        // The first refused write may or may not have reached the disk;
                        // no later one may.
                        failed = true;
                        models.push(model);
                    }
                    Err(_) => {}
                },
            }
        }
        seeds_that_failed += usize::from(failed);
        fs.crash(if rng.one_in(2) {
            CrashMode::DropUnsynced
        } else {
            CrashMode::TearUnsynced { seed }
        });
        drop(db);
        let db = open(&fs);
        let got = scan(&db);
        let last = models.len() - 1;
        assert!(
            matching_prefix(&got, &models, durable, last).is_some(),
            "seed {seed}: after a failed sync and a crash the state is not a prefix in {durable}..={last}"
        );
    }
    assert!(
        seeds_that_failed > 0,
        "no injected sync failure ever surfaced as an error"
    );
}

#[test]
fn concurrent_durable_writers_lose_nothing_acknowledged() {
    // Four threads write their own numbered keys (two of three writes durable) while a
    // power loss strikes after a random number of fsyncs. Afterwards: each thread's keys
    // are a prefix of what it wrote (the WAL is a sequence), and every write with a
    // seqno below an acknowledged durable write is present (group commit covers all
    // that came before).
    use std::sync::mpsc;
    use std::time::Duration;
    const THREADS: u64 = 4;
    const WRITES: u64 = 150;
    let mut crashes_mid_write = 0;
    for seed in 0..16 {
        let mut rng = Rng::new(3000 + seed);
        let fs = SimFs::new();
        let db = open(&fs);
        let crash_at = fs.sync_count() + 5 + rng.below(200);
        let (done_tx, done_rx) = mpsc::channel();
        let mut writers = Vec::new();
        for t in 0..THREADS {
            let db = db.clone();
            let done_tx = done_tx.clone();
            writers.push(std::thread::spawn(move || {
                let mut acked = Vec::new(); // (i, seqno, sync)
                for i in 0..WRITES {
                    let sync = i % 3 != 2;
                    let k = format!("t{t}-{i:04}");
                    let v = format!("{t}:{i}:{}", "x".repeat(50));
                    match db.put(k.as_bytes(), v.as_bytes(), WriteOptions { sync }) {
                        Ok(seqno) => acked.push((i, seqno, sync)),
                        Err(_) => break,
                    }
                }
                let _ = done_tx.send(());
                acked
            }));
        }
        drop(done_tx);
        // Crash once enough syncs happened (or when every writer is done).
        let mut finished = 0;
        while finished < THREADS {
            if fs.sync_count() >= crash_at {
                break;
            }
            match done_rx.recv_timeout(Duration::from_micros(200)) {
                Ok(()) => finished += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        fs.crash(CrashMode::TearUnsynced {
            seed: rng.next_u64(),
        });
        // Writers must stop (fail) rather than hang once the disk is gone.
        for _ in finished..THREADS {
            done_rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("seed {seed}: a writer hung after the crash"));
        }
        let acked: Vec<Vec<(u64, u64, bool)>> =
            writers.into_iter().map(|w| w.join().unwrap()).collect();
        drop(db);
        let db = open(&fs);
        let mut present_by_seqno = Vec::new();
        for t in 0..THREADS {
            let mut prefix_ended = None;
            for i in 0..WRITES {
                let got = db.get(format!("t{t}-{i:04}").as_bytes()).unwrap();
                match &got {
                    Some(v) => {
                        assert_eq!(
                            *v,
                            format!("{t}:{i}:{}", "x".repeat(50)).into_bytes(),
                            "seed {seed}: wrong value"
                        );
                        assert!(
                            prefix_ended.is_none(),
                            "seed {seed}: thread {t} write {i} present after write {prefix_ended:?} was lost"
                        );
                    }
                    None => {
                        prefix_ended.get_or_insert(i);
                    }
                }
                if let Some(&(_, seqno, _)) = acked[t as usize].iter().find(|a| a.0 == i) {
                    present_by_seqno.push((seqno, got.is_some(), t, i));
                }
            }
        }
        crashes_mid_write += usize::from(acked.iter().any(|a| (a.len() as u64) < WRITES));
        let durable_floor = acked
            .iter()
            .flatten()
            .filter(|a| a.2)
            .map(|a| a.1)
            .max()
            .unwrap_or(0);
        for (seqno, present, t, i) in present_by_seqno {
            assert!(
                present || seqno > durable_floor,
                "seed {seed}: thread {t} write {i} (seqno {seqno}) lost although a durable write with seqno \
                 {durable_floor} was acknowledged"
            );
        }
    }
    assert!(
        crashes_mid_write > 0,
        "the crash never struck while writers were writing"
    );
}

#[test]
fn full_disk_fails_writes_instead_of_acknowledging_them() {
    for seed in 0..10 {
        let mut rng = Rng::new(4000 + seed);
        let fs = SimFs::new();
        let db = Db::open(
            Arc::new(fs.clone()),
            Path::new("/db"),
            storage::Options {
                write_buffer_bytes: 1 << 20,
                ..small_options()
            },
        )
        .unwrap();
        let mut models = vec![Model::new()];
        for _ in 0..1 + rng.below(20) {
            let mut model = models.last().unwrap().clone();
            let batch = random_batch(&mut rng, models.len() as u64, &mut model);
            db.write(&batch, WriteOptions { sync: true }).unwrap();
            models.push(model);
        }
        fs.fail_writes(true);
        for i in 0..4 {
            let mut model = models.last().unwrap().clone();
            let batch = random_batch(&mut rng, models.len() as u64, &mut model);
            let r = db.write(&batch, WriteOptions { sync: i % 2 == 0 });
            assert!(
                r.is_err(),
                "seed {seed}: write {i} on a full disk returned Ok"
            );
        }
        fs.fail_writes(false);
        fs.crash(CrashMode::DropUnsynced);
        drop(db);
        let db = open(&fs);
        assert_eq!(
            scan(&db),
            model_entries(models.last().unwrap()),
            "seed {seed}: state after a full disk and a crash"
        );
        db.put(b"after", b"x", WriteOptions { sync: true }).unwrap();
    }
}

#[test]
fn failed_sync_or_crash_during_open_never_loses_data() {
    // Open rewrites the manifest, publishes CURRENT, replays and trims the WAL and
    // removes garbage: make its n-th sync fail (or crash right there), then recover.
    let mut rng = Rng::new(5000);
    for n in 0..60u64 {
        let fs = SimFs::new();
        let db = open(&fs);
        let mut model = Model::new();
        for b in 0..40u64 {
            let batch = random_batch(&mut rng, b + 1, &mut model);
            db.write(&batch, WriteOptions { sync: b % 5 == 4 }).unwrap();
            if b % 13 == 12 {
                db.flush().unwrap();
            }
        }
        db.sync_wal().unwrap();
        drop(db);
        fs.fail_sync_after(n);
        let attempt = Db::open(Arc::new(fs.clone()), Path::new("/db"), small_options());
        if let Ok(db) = &attempt {
            // If open succeeded despite the failure (or before it), it must be right.
            assert_eq!(
                scan(db),
                model_entries(&model),
                "sync {n}: open succeeded with wrong data"
            );
        }
        drop(attempt);
        let mode = if n % 2 == 0 {
            CrashMode::DropUnsynced
        } else {
            CrashMode::TearUnsynced { seed: n }
        };
        fs.crash(mode);
        let db =
            Db::open(Arc::new(fs.clone()), Path::new("/db"), small_options()).unwrap_or_else(|e| {
                panic!("sync {n} failed during open, then {mode:?}: reopen failed: {e}")
            });
        assert_eq!(
            scan(&db),
            model_entries(&model),
            "sync {n} failed during open, then {mode:?}: data changed"
        );
    }
}
