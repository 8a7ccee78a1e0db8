//! Puts and gets in the memtable alone, with keys shaped like the server's history
//! keys: an area and a kind byte, then a big-endian revision whose high bytes are zero,
//! so every key shares its first eight bytes and most of the next two.
//!
//! `cargo run --release -p storage --example shared_prefix_bench -- [N]` (N keys,
//! 300,000 by default; the write buffer is large enough that nothing is flushed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;
use storage::{Db, Options, WriteOptions};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(300_000, |s| s.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("shared-prefix-bench-{}", std::process::id()));
    let fs = vfs::RealFs::shared();
    let opts = Options {
        write_buffer_bytes: 512 << 20,
        memory_budget_bytes: 2048 << 20,
        ..Options::default()
    };
    let db = Db::open(Arc::clone(&fs), &dir, opts).unwrap();
    let value = [7u8; 64];
    // A permutation of 0..n, in a scattered order: 2,654,435,761 is prime, so for any n
    // below it i -> i * 2,654,435,761 mod n is one to one.
    let key = |i: u64| {
        let mut k = b"Ah".to_vec();
        k.extend_from_slice(&(i.wrapping_mul(2_654_435_761) % n).to_be_bytes());
        k
    };
    let t = Instant::now();
    for i in 0..n {
        db.put(&key(i), &value, WriteOptions::default()).unwrap();
    }
    let puts = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut found = 0u64;
    for round in 0..3 {
        for i in 0..n {
            found += u64::from(db.get(&key((i * 7 + round) % n)).unwrap().is_some());
        }
    }
    let gets = (3 * n) as f64 / t.elapsed().as_secs_f64();
    assert!(found > 0, "no key was found");
    println!("puts {puts:>10.0}/s   gets {gets:>10.0}/s   ({n} keys, {found} gets found)");
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
