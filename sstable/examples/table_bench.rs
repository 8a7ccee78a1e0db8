//! A tiny benchmark: builds a table of 1M entries (16-byte keys, 100-byte values) on
//! the real disk in a temporary directory, then times random point lookups (present
//! and absent keys) and a full scan.
//!
//! `cargo run --release -p sstable --example table_bench [entries] [restart_interval]`

use std::error::Error;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use sstable::{BuildOptions, Kind, Table, TableBuilder};
use vfs::{Fs, RealFs};

/// CPU time used by this process so far: on a shared, busy machine it says more
/// than wall time about the cost of an operation.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[allow(unsafe_code)]
    // SAFETY: clock_gettime only writes the timespec we pass, which outlives the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall and CPU time since the given starting points.
struct Timer {
    wall: Instant,
    cpu: Duration,
}

impl Timer {
    fn start() -> Timer {
        Timer {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    /// (wall, cpu) elapsed.
    fn stop(&self) -> (Duration, Duration) {
        (self.wall.elapsed(), cpu_time().saturating_sub(self.cpu))
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn key_of(rng: &mut u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    let (a, b) = k.split_at_mut(8);
    a.copy_from_slice(&splitmix(rng).to_be_bytes());
    b.copy_from_slice(&splitmix(rng).to_be_bytes());
    k
}

fn main() -> Result<(), Box<dyn Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let fs = RealFs;
    let dir = std::env::temp_dir().join(format!("sstable-bench-{}", std::process::id()));
    fs.create_dir_all(&dir)?;
    let path = dir.join("bench.sst");
    let restart_interval: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(16);
    let opts = BuildOptions {
        restart_interval,
        ..BuildOptions::default()
    };
    let result = run(&fs, &path, n, opts);
    let _ = fs.remove_file(&path);
    let _ = std::fs::remove_dir(&dir); // vfs has no remove_dir; this is cleanup only
    result
}

/// Prints one measured phase: wall and CPU time per operation and throughput.
fn report(what: &str, ops: usize, (wall, cpu): (Duration, Duration)) {
    println!(
        "{what}: {ops} in {wall:.2?} wall = {:.0} ns/op, {:.2} M ops/s; cpu {cpu:.2?} = {:.0} ns/op, {:.2} M ops/s",
        wall.as_nanos() as f64 / ops as f64,
        ops as f64 / wall.as_secs_f64() / 1e6,
        cpu.as_nanos() as f64 / ops as f64,
        ops as f64 / cpu.as_secs_f64().max(1e-9) / 1e6,
    );
}

fn run(fs: &RealFs, path: &Path, n: usize, opts: BuildOptions) -> Result<(), Box<dyn Error>> {
    println!("{n} entries, 16-byte keys, 100-byte values, {opts:?}");
    let mut rng = 42u64;
    let mut keys: Vec<[u8; 16]> = (0..n).map(|_| key_of(&mut rng)).collect();
    keys.sort_unstable();
    keys.dedup();
    let value = [0x5au8; 100];

    let t = Timer::start();
    let mut b = TableBuilder::new(fs.create(path)?, opts);
    for (i, k) in keys.iter().enumerate() {
        b.add(k, i as u64 + 1, Kind::Put, &value)?;
    }
    let info = b.finish()?;
    fs.sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    report("build (adds + finish + fsync)", keys.len(), t.stop());

    let t = Timer::start();
    let table = Table::open(fs, path)?;
    let (wall, _) = t.stop();
    println!(
        "table: {} entries, {} data blocks, {:.1} MiB; open (validates footer, index, filter, meta) {wall:.2?}",
        info.entries,
        table.data_blocks()?,
        info.file_bytes as f64 / (1 << 20) as f64,
    );

    let lookups = 1_000_000usize;
    let picks: Vec<usize> = (0..lookups)
        .map(|_| (splitmix(&mut rng) % keys.len() as u64) as usize)
        .collect();
    for pass in [
        "get present, 1st pass (verifies crcs)",
        "get present, 2nd pass",
    ] {
        let t = Timer::start();
        let mut found = 0usize;
        for &i in &picks {
            let k = keys.get(i).ok_or("pick out of range")?;
            if let Some(e) = table.get(k, u64::MAX)? {
                found += black_box(e.value).len().min(1);
            }
        }
        let times = t.stop();
        assert_eq!(found, lookups);
        report(pass, lookups, times);
    }

    let absent: Vec<[u8; 16]> = (0..lookups).map(|_| key_of(&mut rng)).collect();
    let t = Timer::start();
    let mut found = 0usize;
    for k in &absent {
        found += usize::from(table.get(k, u64::MAX)?.is_some());
    }
    report(&format!("get absent ({found} found)"), lookups, t.stop());

    let t = Timer::start();
    let mut it = table.iter();
    it.seek_to_first()?;
    let (mut count, mut bytes) = (0usize, 0usize);
    while it.valid() {
        bytes += it.key().len() + it.value().len();
        count += 1;
        it.next()?;
    }
    let times = t.stop();
    assert_eq!(count as u64, info.entries);
    report(&format!("full scan ({} MiB)", bytes >> 20), count, times);
    Ok(())
}
