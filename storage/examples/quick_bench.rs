//! A quick in-crate sanity bench for developing the engine (the full benchmark is
//! `db_bench`): times the WAL alone, then the engine's put path, gets and a scan, on
//! the real disk, with db_bench's key layout (16-byte keys, 100-byte values).
//!
//! `cargo run --release -p storage --example quick_bench -- [DIR] [NUM]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ops::Bound;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use storage::{Db, Options, WriteOptions};

fn key(i: u64) -> [u8; 16] {
    let mut k = [b'0'; 16];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k
}

fn shuffle(n: u64) -> impl Iterator<Item = u64> {
    // A full-period LCG walk over 0..n (n a power of two after rounding up).
    let m = n.next_power_of_two();
    let mut x = 12345u64 % m;
    (0..m)
        .map(move |_| {
            x = (x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407))
                & (m - 1);
            x
        })
        .filter(move |&x| x < n)
}

fn report(name: &str, n: u64, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<14} {:>10.0} ops/s  ({:.3} us/op)",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/tmp/storage-quick-bench".into()),
    );
    let n: u64 = args.next().map_or(1_000_000, |s| s.parse().unwrap());
    let _ = std::fs::remove_dir_all(&dir);
    let fs = vfs::RealFs::shared();
    let value = [7u8; 100];

    {
        let wal = wal::Wal::open(
            Arc::clone(&fs),
            &dir.join("walonly"),
            wal::Options::default(),
        )
        .unwrap();
        let rec = [1u8; 140];
        let t = Instant::now();
        for _ in 0..n {
            wal.append(&rec, wal::SyncMode::Buffered).unwrap();
        }
        report("wal append", n, t);
    }

    for (name, random) in [("fillseq", false), ("fillrandom", true)] {
        let path = dir.join(name);
        let db = Db::open(Arc::clone(&fs), &path, Options::default()).unwrap();
        if random {
            // Overwrite: a second random pass over a full database (flushes, compactions).
            for i in shuffle(n) {
                db.put(&key(i), &value, WriteOptions::default()).unwrap();
            }
            let t = Instant::now();
            for i in shuffle(n).map(|i| (i * 7 + 3) % n) {
                db.put(&key(i), &value, WriteOptions::default()).unwrap();
            }
            report("overwrite", n, t);
            let (stalls, micros) = db.stall_stats();
            println!(
                "  writer stalls: {stalls} ({:.1} ms), levels {:?}",
                micros as f64 / 1000.0,
                db.level_table_counts()
            );
            drop(db);
            let _ = std::fs::remove_dir_all(&path);
        }
        let path = dir.join(name);
        let db = Db::open(Arc::clone(&fs), &path, Options::default()).unwrap();
        let t = Instant::now();
        let keys: Box<dyn Iterator<Item = u64>> = if random {
            Box::new(shuffle(n))
        } else {
            Box::new(0..n)
        };
        for i in keys {
            db.put(&key(i), &value, WriteOptions::default()).unwrap();
        }
        report(name, n, t);
        let (stalls, micros) = db.stall_stats();
        println!(
            "  writer stalls: {stalls} ({:.1} ms)",
            micros as f64 / 1000.0
        );
        if random {
            let t = Instant::now();
            let mut found = 0;
            for i in shuffle(n) {
                found += usize::from(db.get(&key(i)).unwrap().is_some());
            }
            report("readrandom", n, t);
            assert_eq!(found as u64, n);
            let t = Instant::now();
            let mut it = db.iter(Bound::Unbounded, Bound::Unbounded).unwrap();
            let mut seen = 0u64;
            while it.valid() {
                seen += it.value().len() as u64 / 100;
                it.next().unwrap();
            }
            report("readseq", seen, t);
            db.compact_all().unwrap();
            let t = Instant::now();
            let mut it = db.iter(Bound::Unbounded, Bound::Unbounded).unwrap();
            let mut seen = 0u64;
            while it.valid() {
                seen += 1;
                it.next().unwrap();
            }
            report("readseq (1 lvl)", seen, t);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
