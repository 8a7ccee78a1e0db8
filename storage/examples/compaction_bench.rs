//! Times a full compaction on the real disk: each round writes `tables` level-0 tables
//! of random keys (16-byte keys, 100-byte values, one flush each; automatic compaction
//! held off), then `compact_all` merges them. Reports the input bytes (table files on
//! disk before) per second of `compact_all`, median over the rounds.
//!
//! `cargo run --release -p storage --example compaction_bench -- [mib_per_round] [rounds] [dir]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use std::time::Instant;
use storage::{Db, Options, WriteOptions};

const TABLES: usize = 8;
const VALUE_BYTES: usize = 100;

fn arg(k: usize, default: usize) -> usize {
    std::env::args()
        .nth(k)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn table_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".sst"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn main() {
    let mib = arg(1, 64);
    let rounds = arg(2, 3).max(1);
    let root = std::env::args()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("compaction-bench-{}", std::process::id()))
        });
    let opts = Options {
        // One flush per table; level 0 may fill up without a compaction starting.
        l0_compaction_trigger: TABLES + 1,
        l0_slowdown_writes: TABLES + 2,
        l0_stop_writes: TABLES + 3,
        ..Options::default()
    };
    let per_table = (mib << 20) / TABLES / (16 + VALUE_BYTES);
    let mut rates = Vec::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..rounds {
        let dir = root.join(format!("round-{round}"));
        let _ = std::fs::remove_dir_all(&dir);
        let db = Db::open(vfs::RealFs::shared(), &dir, opts.clone()).unwrap();
        let value = [7u8; VALUE_BYTES];
        for _ in 0..TABLES {
            for _ in 0..per_table {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut key = [0u8; 16];
                key[..8].copy_from_slice(&x.to_be_bytes());
                db.put(&key, &value, WriteOptions { sync: false }).unwrap();
            }
            db.flush().unwrap();
        }
        db.wait_for_compactions().unwrap();
        let input = table_bytes(&dir);
        let t = Instant::now();
        db.compact_all().unwrap();
        let secs = t.elapsed().as_secs_f64();
        let rate = input as f64 / (1 << 20) as f64 / secs;
        println!(
            "round {round}: {:.1} MiB in {} tables compacted in {secs:.3} s = {rate:.1} MiB/s (levels after: {:?})",
            input as f64 / (1 << 20) as f64,
            TABLES,
            db.level_table_counts()
        );
        rates.push(rate);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    println!(
        "compaction: median {:.1} MiB/s over {rounds} rounds",
        rates[rates.len() / 2]
    );
}
