//! Times opening a log whose last segment holds a ~60 MiB tail (recovery's scan and
//! checks of every record, then its rewrite and sync of the last segment), on the real
//! disk, median of a few rounds. Also prints recovery's largest read buffer.
//!
//! `cargo run --release -p wal --example open_bench -- [tail_mib] [rounds] [dir]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Instant;
use vfs::RealFs;
use wal::{Options, SyncMode, Wal};

const RECORD_BYTES: usize = 4000;

fn arg(k: usize, default: usize) -> usize {
    std::env::args()
        .nth(k)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let tail_mib = arg(1, 60);
    let rounds = arg(2, 5).max(1);
    let dir = std::env::args()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("wal-open-bench-{}", std::process::id()))
        });
    let _ = std::fs::remove_dir_all(&dir);
    let opts = Options {
        segment_bytes_max: 128 << 20, // the whole tail in one (last) segment
        ..Options::default()
    };
    let records = (tail_mib << 20) / RECORD_BYTES;
    {
        let log = Wal::open(RealFs::shared(), &dir, opts).unwrap();
        let record: Vec<u8> = (0..RECORD_BYTES).map(|i| (i * 7) as u8).collect();
        for _ in 0..records {
            log.append(&record, SyncMode::Buffered).unwrap();
        }
        log.sync().unwrap();
        assert_eq!(log.segment_count(), 1);
    }
    let mut secs = Vec::new();
    let mut largest = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let log = Wal::open(RealFs::shared(), &dir, opts).unwrap();
        secs.push(t.elapsed().as_secs_f64());
        assert_eq!(log.next_index(), records as u64 + 1);
        largest = log.stats().recovery_buffer_bytes_max;
    }
    secs.sort_by(|a, b| a.total_cmp(b));
    println!(
        "open with a {tail_mib} MiB tail ({records} records of {RECORD_BYTES} B): median {:.3} s over {rounds} rounds (min {:.3}, max {:.3}); largest recovery buffer {largest} B",
        secs[secs.len() / 2],
        secs[0],
        secs[secs.len() - 1],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
