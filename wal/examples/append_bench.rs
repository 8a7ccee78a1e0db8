//! Times appends on the real disk: buffered (`fillrandom`'s path), durable one at a
//! time (`fillsync`'s path: one write + one fdatasync each), and durable from many
//! threads (group commit).
//!
//! `cargo run --release -p wal --example append_bench -- [buffered_n] [durable_n] [threads] [dir]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use vfs::RealFs;
use wal::{Options, SyncMode, Wal};

const RECORD_BYTES: usize = 130;

fn arg(k: usize, default: usize) -> usize {
    std::env::args()
        .nth(k)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn fresh(dir: &PathBuf) -> Wal {
    let _ = std::fs::remove_dir_all(dir);
    Wal::open(RealFs::shared(), dir, Options::default()).unwrap()
}

fn report(what: &str, n: usize, secs: f64, log: &Wal) {
    let s = log.stats();
    println!(
        "{what:<28} {n:>8} appends in {secs:>7.3} s = {:>10.0} appends/s  (writes {}, fdatasyncs {}, dir syncs {})",
        n as f64 / secs,
        s.writes,
        s.data_syncs,
        s.dir_syncs
    );
}

fn main() {
    let buffered_n = arg(1, 500_000);
    let durable_n = arg(2, 2_000);
    let threads = arg(3, 8);
    let dir = std::env::args()
        .nth(4)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("wal-append-bench-{}", std::process::id()))
        });
    let record = vec![0xabu8; RECORD_BYTES];

    let log = fresh(&dir);
    let t = Instant::now();
    for _ in 0..buffered_n {
        log.append(&record, SyncMode::Buffered).unwrap();
    }
    report(
        "buffered, 1 thread",
        buffered_n,
        t.elapsed().as_secs_f64(),
        &log,
    );
    drop(log);

    let log = fresh(&dir);
    let t = Instant::now();
    for _ in 0..durable_n {
        log.append(&record, SyncMode::Durable).unwrap();
    }
    report(
        "durable, 1 thread",
        durable_n,
        t.elapsed().as_secs_f64(),
        &log,
    );
    drop(log);

    let log = Arc::new(fresh(&dir));
    let per_thread = durable_n / threads.max(1);
    let t = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (log, record) = (log.clone(), record.clone());
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    log.append(&record, SyncMode::Durable).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    report(
        &format!("durable, {threads} threads"),
        per_thread * threads,
        t.elapsed().as_secs_f64(),
        &log,
    );
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}
