//! A db_bench for this repository's storage engine, speaking RocksDB db_bench's flags
//! and printing its report lines, so the same command line measures RocksDB, fjall and
//! Concierge's engine (`benches/vs-peers.sh` runs all three side by side).
//!
//! ```text
//! cargo run --release -p storage --example db_bench -- --db=/tmp/x \
//!     --benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq,fillsync \
//!     --num=1000000 --key_size=16 --value_size=100 --compression_type=none --engine=concierge
//! ```
//! Note RocksDB's fillsync semantics: the key space is `num / 1000` but the number of
//! writes is `--writes` (default `num`); pass `--writes=N` to bound it. `--threads=N`
//! runs each benchmark on N threads at once, each doing the whole count (RocksDB's
//! meaning), and reports them together: `fillsync --threads=16` measures how well
//! concurrent durable writers share fsyncs (group commit).
//! `--sync` makes every write durable, `--cache_size` and `--write_buffer_size` map to
//! the engine's block cache and memtable size (for the concierge engine `--cache_size`
//! sets its memory budget to two write buffers plus that, which the block cache shares
//! with the tables' indexes and filters; without the flag every engine gets RocksDB
//! db_bench's default, 8 MiB), `--table_reads=
//! cached|mapped` (this tool's own) picks how concierge tables read their data
//! blocks, and `--histogram` prints RocksDB's latency histogram.
//! `--seed=0` (the default) takes the base seed from the clock and prints it, as
//! RocksDB 7's db_bench does, so a readrandom run over an earlier process's
//! fillrandom finds ~63% of its keys on both (the fill repeats keys), not all of them.
//! `waitforcompaction` (RocksDB 7's) waits until the memtables are flushed and no
//! compaction runs or is due, so a later read measures the tree a fill settles into,
//! not one still compacting (fjall offers no wait: it polls until no compaction has
//! run for a second).
//! At the end it prints the database directory's disk usage and the peak RSS.

#[path = "db_bench/concierge_engine.rs"]
mod concierge_engine;
#[path = "db_bench/engine.rs"]
mod engine;
#[path = "db_bench/fjall_engine.rs"]
mod fjall_engine;
#[path = "db_bench/flags.rs"]
mod flags;
#[path = "db_bench/histogram.rs"]
mod histogram;
#[path = "db_bench/stats.rs"]
mod stats;
#[path = "db_bench/workloads.rs"]
mod workloads;

use engine::{BenchEngine, EngineResult, EngineSettings};
use flags::{EngineKind, Flags};
use workloads::{KeyOrder, ReadKind, Workload, WriteSpec};

fn open_engine(flags: &Flags) -> EngineResult<Box<dyn BenchEngine>> {
    let settings = EngineSettings {
        cache_size: Some(flags.cache_size),
        write_buffer_size: flags.write_buffer_size,
        bytes_per_sync: flags.bytes_per_sync,
        rate_limiter_bytes_per_sec: flags.rate_limiter_bytes_per_sec,
        table_reads_mapped: flags.table_reads_mapped,
    };
    Ok(match flags.engine {
        EngineKind::Concierge => Box::new(concierge_engine::ConciergeEngine::open(
            &flags.db, settings,
        )?),
        EngineKind::Fjall => Box::new(fjall_engine::FjallEngine::open(&flags.db, settings)?),
    })
}

fn print_header(flags: &Flags) {
    println!("Engine:     {}", flags.engine.name());
    println!("Keys:       {} bytes each", flags.key_size);
    println!("Values:     {} bytes each", flags.value_size);
    println!("Entries:    {}", flags.num);
    let raw = (flags.key_size + flags.value_size) as f64 * flags.num as f64 / 1_048_576.0;
    println!("RawSize:    {raw:.1} MB (estimated)");
    println!("Compression: NoCompression");
    println!("DB path: [{}]", flags.db.display());
    println!("------------------------------------------------");
}

/// Microseconds since the Unix epoch (a clock before 1970 gives 1: any nonzero seed).
fn clock_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
}

fn run(flags: &Flags) -> EngineResult<()> {
    print_header(flags);
    if !flags.use_existing_db {
        engine::recreate_dir(&flags.db)?;
    }
    let opening = std::time::Instant::now();
    let mut engine = open_engine(flags)?;
    let what = if flags.use_existing_db {
        "existing"
    } else {
        "new"
    };
    println!(
        "open         : {:.1} ms ({what} database)",
        opening.elapsed().as_secs_f64() * 1e3
    );
    let seed_base = flags.seed_base(clock_micros());
    if flags.seed == 0 {
        println!("Set seed to {seed_base} because --seed was 0");
    }
    for (index, name) in flags.benchmarks.iter().enumerate() {
        let num = flags.num;
        let writes = flags.writes.unwrap_or(num);
        let reads = flags.reads.unwrap_or(num);
        // Each benchmark gets its own seed, as RocksDB gives each run new threads.
        let seed = seed_base.wrapping_add(index as u64);
        let write = |order, key_space, sync| WriteSpec {
            order,
            key_space,
            ops: writes,
            sync: sync || flags.sync,
        };
        if name == "waitforcompaction" {
            let started = std::time::Instant::now();
            engine.wait_for_compaction()?;
            println!(
                "{name:<12} : {:.1} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
            if let Some(facts) = engine.describe() {
                println!("  engine: {facts}");
            }
            continue;
        }
        let (fresh, spec) = match name.as_str() {
            "fillseq" => (true, Some(write(KeyOrder::Sequential, num, false))),
            "fillrandom" => (true, Some(write(KeyOrder::Random, num, false))),
            "overwrite" => (false, Some(write(KeyOrder::Random, num, false))),
            "fillsync" => (
                true,
                Some(write(KeyOrder::Random, (num / 1000).max(1), true)),
            ),
            "readrandom"
            | "readseq"
            | "readmissing"
            | "seekrandom"
            | "deleterandom"
            | "readwhilewriting"
            | "fillsyncwhilewriting" => (false, None),
            other => return Err(format!("unknown benchmark {other:?}")),
        };
        if fresh {
            if flags.use_existing_db {
                println!("{name:<12} : skipped (--use_existing_db is true)");
                continue;
            }
            engine.reopen_fresh()?;
        }
        let work = Workload {
            engine: engine.as_ref(),
            key_size: flags.key_size,
            value_size: flags.value_size,
            histogram: flags.histogram,
            threads: flags.threads,
        };
        let (mut stats, op_kind) = match (spec, name.as_str()) {
            (Some(spec), _) => (work.write(&spec, seed, num)?, "write"),
            (None, "readrandom") => (
                work.read_random(ReadKind::Existing, reads, num, seed)?,
                "read",
            ),
            (None, "readmissing") => (
                work.read_random(ReadKind::Missing, reads, num, seed)?,
                "read",
            ),
            (None, "seekrandom") => {
                let kind = ReadKind::Seek {
                    nexts: flags.seek_nexts,
                };
                (work.read_random(kind, reads, num, seed)?, "seek")
            }
            (None, "deleterandom") => (work.delete_random(num, num, flags.sync, seed)?, "delete"),
            (None, "readwhilewriting") => (
                work.while_writing(num, flags.sync, seed, || {
                    work.read_random(ReadKind::Existing, reads, num, seed)
                })?,
                "read",
            ),
            (None, "fillsyncwhilewriting") => {
                let spec = write(KeyOrder::Random, (num / 1000).max(1), true);
                let stats =
                    work.while_writing(num, flags.sync, seed, || work.write(&spec, seed, num))?;
                (stats, "write")
            }
            (None, _) => (work.read_seq(reads)?, "read"),
        };
        stats.report(name, op_kind);
        if let Some(facts) = engine.describe() {
            println!("  engine: {facts}");
        }
    }
    engine.close();
    drop(engine);
    match stats::disk_usage(&flags.db) {
        Ok((allocated, apparent)) => println!(
            "disk usage of {}: {} bytes ({:.1} MB; apparent {:.1} MB)",
            flags.db.display(),
            allocated,
            allocated as f64 / 1_048_576.0,
            apparent as f64 / 1_048_576.0
        ),
        Err(e) => println!("disk usage of {}: unavailable ({e})", flags.db.display()),
    }
    match stats::peak_rss_kib() {
        Some(kib) => println!("peak RSS (VmHWM): {kib} kB ({:.1} MB)", kib as f64 / 1024.0),
        None => println!("peak RSS (VmHWM): unavailable"),
    }
    Ok(())
}

fn main() {
    let flags = match Flags::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("db_bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&flags) {
        eprintln!("db_bench: {e}");
        std::process::exit(1);
    }
}
