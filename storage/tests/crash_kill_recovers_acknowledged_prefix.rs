//! A process killed with SIGKILL at a random moment loses no acknowledged write and
//! tears no batch: after reopening, the database is exactly the state after some
//! prefix of its batches, at least up to the last acknowledged one and at most up to
//! the last one started.
//!
//! The test re-executes its own binary as the child (selected by an environment
//! variable). The child opens the database on the real disk with small write buffers
//! (so flushes and compactions run while it is killed), resumes after the last batch
//! found there, and writes numbered batches: batch i puts five keys `k..` = "i:...",
//! deletes one, and sets `last` = i. It prints `start i` before and `ack i` after each
//! write (flushed to the pipe). Most batches are `sync: true`; every fourth is not,
//! which the engine documents as surviving a process crash too.
//! Set CRASH_KILL_SEED to replay a run's kill schedule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{model_entries, scan, small_options, tempdir, Model, Rng};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use storage::{Db, Options, WriteBatch, WriteOptions};
use vfs::RealFs;

const CHILD_DIR_ENV: &str = "STORAGE_CRASH_KILL_CHILD_DIR";
const TEST_NAME: &str = "crash_kill_recovers_acknowledged_prefix";
const ROUNDS: usize = 30;
const KEYS: u64 = 64;

fn options() -> Options {
    Options {
        write_buffer_bytes: 8 << 10,
        ..small_options()
    }
}

/// The ops of batch `i` (from 1): (key, Some(value)) puts, (key, None) deletes.
fn batch_ops(i: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let mut ops = Vec::new();
    let mut put_keys = Vec::new();
    for t in 0..5u64 {
        let j = (i * 7 + t * 13) % KEYS;
        put_keys.push(j);
        let value = format!("{i}:{}", "v".repeat(60 + (i % 40) as usize));
        ops.push((format!("k{j:02}").into_bytes(), Some(value.into_bytes())));
    }
    let d = (i * 11 + 3) % KEYS;
    if !put_keys.contains(&d) {
        ops.push((format!("k{d:02}").into_bytes(), None));
    }
    ops.push((b"last".to_vec(), Some(i.to_string().into_bytes())));
    ops
}

fn is_sync(i: u64) -> bool {
    !i.is_multiple_of(4)
}

/// The state after batches 1..=n.
fn model_after(n: u64) -> Model {
    let mut m = Model::new();
    for i in 1..=n {
        for (k, v) in batch_ops(i) {
            match v {
                Some(v) => m.insert(k, v),
                None => m.remove(&k),
            };
        }
    }
    m
}

fn last_batch(db: &Db) -> u64 {
    match db.get(b"last").unwrap() {
        None => 0,
        Some(v) => String::from_utf8(v).unwrap().parse().unwrap(),
    }
}

/// Child mode: write batches until killed.
fn child(dir: &Path) -> ! {
    let db = Db::open(RealFs::shared(), dir, options()).unwrap();
    let mut out = std::io::stdout().lock();
    let mut i = last_batch(&db) + 1;
    // libtest may have printed "test <name> ... " without a newline: end that line so
    // every protocol line starts at the beginning of a line.
    writeln!(out).unwrap();
    loop {
        let mut batch = WriteBatch::new();
        for (k, v) in batch_ops(i) {
            match v {
                Some(v) => batch.put(&k, &v),
                None => batch.delete(&k),
            }
        }
        writeln!(out, "start {i}").unwrap();
        out.flush().unwrap();
        db.write(&batch, WriteOptions { sync: is_sync(i) }).unwrap();
        writeln!(out, "ack {i}").unwrap();
        out.flush().unwrap();
        i += 1;
    }
}

#[test]
fn crash_kill_recovers_acknowledged_prefix() {
    if let Some(dir) = std::env::var_os(CHILD_DIR_ENV) {
        child(Path::new(&dir));
    }
    let seed = std::env::var("CRASH_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("CRASH_KILL_SEED={seed}");
    let mut rng = Rng::new(seed);
    let root = tempdir();
    let dir = root.join("db");
    let exe = std::env::current_exe().unwrap();
    let started_at = Instant::now();
    let mut recovered = 0u64;
    let mut total_acked = 0u64;

    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_ack_tx, first_ack_rx) = mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let (mut started, mut acked) = (None::<u64>, None::<u64>);
            let mut first_ack_tx = Some(first_ack_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("start ") {
                    started = Some(n.parse().unwrap());
                } else if let Some(n) = line.strip_prefix("ack ") {
                    acked = Some(n.parse().unwrap());
                    if let Some(tx) = first_ack_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
            (started, acked)
        });
        // A quarter of the kills land early (possibly inside open and recovery); the
        // rest after the child has written for a random while.
        if rng.one_in(4) {
            std::thread::sleep(Duration::from_millis(rng.below(60)));
        } else {
            let _ = first_ack_rx.recv_timeout(Duration::from_secs(20));
            std::thread::sleep(Duration::from_millis(10 + rng.below(300)));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        let (started, acked) = reader.join().unwrap();
        if started.is_none() {
            // The child died before writing: make sure it was our kill, not a crash.
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
            assert!(
                !err.contains("panicked"),
                "round {round}: child panicked before writing (seed {seed}): {err}"
            );
        }
        assert!(
            status.code().is_none(),
            "round {round}: child exited by itself ({status}); seed {seed}"
        );

        let db = Db::open(RealFs::shared(), &dir, options()).unwrap_or_else(|e| {
            panic!("round {round}: reopen after kill failed: {e} (seed {seed})")
        });
        let n = last_batch(&db);
        let floor = acked.unwrap_or(recovered);
        let ceiling = started.unwrap_or(recovered);
        assert!(
            n >= floor,
            "round {round}: acknowledged batch {floor} lost: recovered only through {n} (seed {seed}, batch {floor} sync={})",
            is_sync(floor)
        );
        assert!(
            n <= ceiling,
            "round {round}: recovered batch {n} that was never started (last started {ceiling})"
        );
        assert_eq!(
            scan(&db),
            model_entries(&model_after(n)),
            "round {round}: state is not exactly the state after batch {n}: torn batch or lost write (seed {seed})"
        );
        total_acked += acked.map_or(0, |a| a.saturating_sub(recovered));
        recovered = n;
        drop(db);
    }
    println!(
        "{ROUNDS} kills, {total_acked} acknowledged batches, {recovered} batches in the end, {:.1}s",
        started_at.elapsed().as_secs_f64()
    );
    assert!(
        recovered > 0,
        "no batch was ever written: the kills all came too early"
    );
    let _ = std::fs::remove_dir_all(&root);
}
