//! How long opening an existing database takes, and its first reads after.
//!
//! `cargo run --release -p storage --example open_bench -- DIR [--flush] [--runs N]
//! [--probes N]`
//!
//! `--flush` first opens DIR once, flushes the memtable and waits for compactions, so
//! the timed opens replay an empty WAL and measure what opening the tables costs.
//! Each run then opens DIR with the default options (on the real disk), prints the
//! open time, the bytes the open read (`rchar` of `/proc/self/io`: every `read` and
//! `pread`, page cache hits included; not what a map faults in), the table count, the index and filter bytes held right after open, and
//! the time of `--probes` lookups of keys read from the database itself (the first
//! lookups load the tables' indexes and filters if opening did not), then closes.

use std::path::PathBuf;
use std::time::Instant;

use storage::{Db, Options};

type Result<T> = std::result::Result<T, String>;

struct Args {
    dir: PathBuf,
    flush: bool,
    runs: usize,
    probes: usize,
}

fn parse() -> Result<Args> {
    let mut args = Args {
        dir: PathBuf::new(),
        flush: false,
        runs: 3,
        probes: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> Result<usize> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse().map_err(|e| format!("{name} {v:?}: {e}"))
        };
        match a.as_str() {
            "--flush" => args.flush = true,
            "--runs" => args.runs = number("--runs")?,
            "--probes" => args.probes = number("--probes")?,
            other if other.starts_with("--") => return Err(format!("unknown flag {other}")),
            dir => args.dir = PathBuf::from(dir),
        }
    }
    if args.dir.as_os_str().is_empty() {
        return Err("usage: open_bench DIR [--flush] [--runs N] [--probes N]".into());
    }
    Ok(args)
}

fn open(args: &Args) -> Result<Db> {
    Db::open(vfs::RealFs::shared(), &args.dir, Options::default())
        .map_err(|e| format!("opening {}: {e}", args.dir.display()))
}

/// Every `step`-th key of the database, up to `n` of them (read before timing).
fn probe_keys(db: &Db, n: usize) -> Result<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    let iter = db
        .iter(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .map_err(|e| format!("iterating: {e}"))?;
    for (i, item) in iter.enumerate() {
        let (key, _) = item.map_err(|e| format!("iterating: {e}"))?;
        if i % 9973 == 0 {
            keys.push(key);
            if keys.len() == n {
                break;
            }
        }
    }
    Ok(keys)
}

/// Bytes this process has read with read-like system calls so far (Linux; 0 elsewhere).
fn bytes_read() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn run(args: &Args) -> Result<()> {
    let keys = {
        let db = open(args)?;
        if args.flush {
            db.flush().map_err(|e| format!("flushing: {e}"))?;
            db.wait_for_compactions()
                .map_err(|e| format!("compacting: {e}"))?;
        }
        probe_keys(&db, args.probes)?
    };
    for run in 1..=args.runs {
        let (start, read_before) = (Instant::now(), bytes_read());
        let db = open(args)?;
        let open_ms = start.elapsed().as_secs_f64() * 1e3;
        let open_mib = (bytes_read() - read_before) as f64 / (1 << 20) as f64;
        let stats = db.engine_stats();
        let tables: usize = stats.tables_per_level.iter().sum();
        let start = Instant::now();
        for key in &keys {
            db.get(key)
                .map_err(|e| format!("reading: {e}"))?
                .ok_or("a probed key is missing")?;
        }
        let probe_ms = start.elapsed().as_secs_f64() * 1e3;
        println!(
            "run {run}: open {open_ms:.1} ms, read {open_mib:.1} MiB ({tables} tables; index {} KiB, filters {} KiB \
             held after open); first {} lookups {probe_ms:.1} ms",
            stats.index_bytes >> 10,
            stats.filter_bytes >> 10,
            keys.len(),
        );
    }
    Ok(())
}

fn main() {
    let result = parse().and_then(|args| run(&args));
    if let Err(e) = result {
        eprintln!("open_bench: {e}");
        std::process::exit(2);
    }
}
