//! db_bench's command line: RocksDB's gflags syntax (`--flag=value`, `-flag=value`,
//! a bare `--flag` meaning true for booleans), parsed by hand into checked [`Flags`].
//!
//! Invariant: a `Flags` value is valid: sizes are positive, the benchmark names are
//! known, compression is `none`, and an unknown flag is an error rather than ignored.

use std::path::PathBuf;

/// Which engine runs the workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// This repository's LSM engine (`storage::Db`).
    Concierge,
    /// fjall v2, the peer we compare against.
    Fjall,
}

impl EngineKind {
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Concierge => "concierge",
            EngineKind::Fjall => "fjall",
        }
    }
}

/// The benchmarks this tool knows (RocksDB names and meanings; fillsyncwhilewriting is
/// this tool's own).
pub const BENCHMARKS_KNOWN: &[&str] = &[
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readseq",
    "fillsync",
    "seekrandom",
    "readwhilewriting",
    "deleterandom",
    "readmissing",
    "fillsyncwhilewriting",
    "waitforcompaction",
];

/// `--cache_size` when not given: RocksDB db_bench's default (8 MiB in 7.x), given to
/// every engine. (Concierge's own default memory budget leaves its cache 32 MiB: in a
/// run without the flag its peak RSS was 144-145 MB against 118-120 with this, and its
/// reads no slower, the file's pages being in the page cache either way.)
pub const CACHE_SIZE_DEFAULT: u64 = 8 << 20;

/// The benchmarks run when `--benchmarks` is not given (RocksDB's default list, less
/// the ones this tool does not have): the first six known ones.
pub const BENCHMARKS_DEFAULT: &[&str] = BENCHMARKS_KNOWN.split_at(6).0;

/// Checked command-line settings.
#[derive(Debug, Clone)]
pub struct Flags {
    pub db: PathBuf,
    pub benchmarks: Vec<String>,
    /// Size of the key space (RocksDB `--num`).
    pub num: u64,
    /// Reads per read benchmark; `None` = `num` (RocksDB `--reads=-1`).
    pub reads: Option<u64>,
    /// Writes per write benchmark; `None` = `num` (RocksDB `--writes=-1`).
    pub writes: Option<u64>,
    pub key_size: usize,
    pub value_size: usize,
    pub engine: EngineKind,
    /// Base seed of the key generators (`--seed`); 0 picks one (see [`Flags::seed_base`]).
    pub seed: u64,
    pub use_existing_db: bool,
    pub histogram: bool,
    /// Threads running each benchmark at once, each doing the whole count
    /// (RocksDB `--threads`); the report is over all of them.
    pub threads: usize,
    /// Every write waits for the disk (RocksDB `--sync`); fillsync always does.
    pub sync: bool,
    /// Block cache bytes (RocksDB `--cache_size`); by default RocksDB db_bench's own
    /// default, [`CACHE_SIZE_DEFAULT`], for every engine, so that a run without the
    /// flag compares engines holding the same cache.
    pub cache_size: u64,
    /// Memtable bytes before a flush (RocksDB `--write_buffer_size`); `None` = default.
    pub write_buffer_size: Option<u64>,
    /// Entries stepped over after each seek of seekrandom (RocksDB `--seek_nexts`).
    pub seek_nexts: u64,
    /// Table bytes between writebacks (RocksDB `--bytes_per_sync`); `None` = default.
    pub bytes_per_sync: Option<u64>,
    /// Background write rate limit (RocksDB `--rate_limiter_bytes_per_sec`).
    pub rate_limiter_bytes_per_sec: Option<u64>,
    /// How concierge tables read data blocks (`--table_reads=cached|mapped`, this
    /// tool's own): `Some(true)` = mapped; `None` = the engine's default.
    pub table_reads_mapped: Option<bool>,
}

pub const USAGE: &str = "usage: db_bench --db=DIR \
--benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq,fillsync,seekrandom,readwhilewriting,deleterandom,readmissing,fillsyncwhilewriting,waitforcompaction \
--num=N [--reads=N] [--writes=N] [--key_size=16] [--value_size=100] [--compression_type=none] \
[--engine=concierge|fjall] [--seed=N] [--use_existing_db=false] [--histogram=false] [--threads=1] \
[--sync=false] [--cache_size=BYTES] [--write_buffer_size=BYTES] [--seek_nexts=0] \
[--bytes_per_sync=BYTES] [--rate_limiter_bytes_per_sec=BYTES] [--table_reads=cached|mapped]";

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(format!("--{name}: expected true or false, got {value:?}")),
    }
}

fn parse_u64(name: &str, value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .map_err(|e| format!("--{name}: expected a whole number, got {value:?} ({e})"))
}

/// `-1` means "same as --num" in RocksDB; any other negative value is an error.
fn parse_count_or_default(name: &str, value: &str) -> Result<Option<u64>, String> {
    if value == "-1" {
        Ok(None)
    } else {
        parse_u64(name, value).map(Some)
    }
}

fn parse_size(name: &str, value: &str) -> Result<usize, String> {
    let n = value
        .parse::<usize>()
        .map_err(|e| format!("--{name}: expected a positive size, got {value:?} ({e})"))?;
    if n == 0 {
        return Err(format!("--{name} must be at least 1"));
    }
    Ok(n)
}

impl Flags {
    /// The base seed of this run: `--seed` if given, else (`--seed=0`, the default)
    /// `clock_micros`, as RocksDB 7's db_bench does. One process's benchmarks then
    /// draw other keys than another's, so a readrandom over a database filled by an
    /// earlier fillrandom process finds only the keys that fill happened to write
    /// (~63% with repeats), as RocksDB's does, instead of replaying the fill's keys.
    pub fn seed_base(&self, clock_micros: u64) -> u64 {
        if self.seed == 0 {
            clock_micros
        } else {
            self.seed
        }
    }

    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Flags, String> {
        let mut flags = Flags {
            db: std::env::temp_dir().join("db_bench_concierge"),
            benchmarks: BENCHMARKS_DEFAULT.iter().map(|s| s.to_string()).collect(),
            num: 1_000_000,
            reads: None,
            writes: None,
            key_size: 16,
            value_size: 100,
            engine: EngineKind::Concierge,
            seed: 0,
            use_existing_db: false,
            histogram: false,
            threads: 1,
            sync: false,
            cache_size: CACHE_SIZE_DEFAULT,
            write_buffer_size: None,
            seek_nexts: 0,
            bytes_per_sync: None,
            rate_limiter_bytes_per_sec: None,
            table_reads_mapped: None,
        };
        let mut db_given = false;
        for arg in args {
            let body = arg
                .strip_prefix("--")
                .or_else(|| arg.strip_prefix('-'))
                .ok_or_else(|| format!("unexpected argument {arg:?}\n{USAGE}"))?;
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, v),
                None => (body, "true"),
            };
            match name {
                "db" => {
                    if value.is_empty() {
                        return Err("--db must not be empty".into());
                    }
                    flags.db = PathBuf::from(value);
                    db_given = true;
                }
                "benchmarks" => {
                    let list: Vec<String> = value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect();
                    for b in &list {
                        if !BENCHMARKS_KNOWN.contains(&b.as_str()) {
                            return Err(format!(
                                "unknown benchmark {b:?}; known: {}",
                                BENCHMARKS_KNOWN.join(",")
                            ));
                        }
                    }
                    flags.benchmarks = list;
                }
                "num" => {
                    flags.num = parse_u64(name, value)?;
                    if flags.num == 0 {
                        return Err("--num must be at least 1".into());
                    }
                }
                "reads" => flags.reads = parse_count_or_default(name, value)?,
                "writes" => flags.writes = parse_count_or_default(name, value)?,
                "key_size" => flags.key_size = parse_size(name, value)?,
                "value_size" => flags.value_size = parse_size(name, value)?,
                "compression_type" => {
                    if value != "none" {
                        return Err(format!(
                            "--compression_type={value}: only none is supported (no engine here compresses)"
                        ));
                    }
                }
                "engine" => {
                    flags.engine = match value {
                        "concierge" => EngineKind::Concierge,
                        "fjall" => EngineKind::Fjall,
                        _ => {
                            return Err(format!(
                                "--engine: expected concierge or fjall, got {value:?}"
                            ))
                        }
                    }
                }
                "seed" => flags.seed = parse_u64(name, value)?,
                "use_existing_db" => flags.use_existing_db = parse_bool(name, value)?,
                "histogram" => flags.histogram = parse_bool(name, value)?,
                "threads" => flags.threads = parse_size(name, value)?,
                "sync" => flags.sync = parse_bool(name, value)?,
                // RocksDB's -1 for cache_size means "no block cache"; it is refused
                // here rather than guessed (parse_u64 rejects it); 0 is no cache.
                "cache_size" => flags.cache_size = parse_u64(name, value)?,
                "write_buffer_size" => {
                    let n = parse_u64(name, value)?;
                    if n < 64 << 10 {
                        return Err(format!("--write_buffer_size={n}: at least 65536 bytes"));
                    }
                    flags.write_buffer_size = Some(n);
                }
                "seek_nexts" => flags.seek_nexts = parse_u64(name, value)?,
                "bytes_per_sync" => flags.bytes_per_sync = Some(parse_u64(name, value)?),
                "rate_limiter_bytes_per_sec" => {
                    flags.rate_limiter_bytes_per_sec = Some(parse_u64(name, value)?)
                }
                "table_reads" => {
                    flags.table_reads_mapped = match value {
                        "mapped" => Some(true),
                        "cached" => Some(false),
                        _ => {
                            return Err(format!(
                                "--table_reads: expected cached or mapped, got {value:?}"
                            ))
                        }
                    }
                }
                "help" => return Err(USAGE.to_string()),
                _ => return Err(format!("unknown flag --{name}\n{USAGE}")),
            }
        }
        if !db_given {
            flags.db = std::env::temp_dir().join(format!("db_bench_{}", flags.engine.name()));
        }
        Ok(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, String> {
        Flags::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn rocksdb_flags_map_to_settings() {
        let flags = parse(&[
            "--benchmarks=seekrandom,readwhilewriting,deleterandom,readmissing",
            "--sync",
            "--cache_size=8388608",
            "--write_buffer_size=1048576",
            "-seek_nexts=10",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            flags.benchmarks,
            [
                "seekrandom",
                "readwhilewriting",
                "deleterandom",
                "readmissing"
            ]
        );
        assert!(flags.sync);
        assert_eq!(flags.cache_size, 8 << 20);
        assert_eq!(flags.write_buffer_size, Some(1 << 20));
        assert_eq!(flags.seek_nexts, 10);
    }

    #[test]
    fn without_the_flag_every_engine_gets_rocksdb_db_benchs_cache_size() {
        let flags = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(flags.cache_size, 8 << 20);
        let flags = parse(&["--engine=fjall"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(flags.cache_size, 8 << 20);
    }

    #[test]
    fn seed_zero_takes_the_clock_and_an_explicit_seed_is_kept() {
        let flags = parse(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            flags.seed_base(1_796_091_054_800_278),
            1_796_091_054_800_278
        );
        assert_ne!(
            flags.seed_base(5),
            flags.seed_base(6),
            "two processes, two seeds"
        );
        let flags = parse(&["--seed=42"]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(flags.seed_base(1_796_091_054_800_278), 42);
    }

    #[test]
    fn unknown_flags_and_benchmarks_are_named_in_the_error() {
        let err = parse(&["--bloom_bits=10"]).err().unwrap_or_default();
        assert!(err.starts_with("unknown flag --bloom_bits"), "{err}");
        let err = parse(&["--benchmarks=fillseq,mixgraph"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("unknown benchmark \"mixgraph\""), "{err}");
        let err = parse(&["--cache_size=-1"]).err().unwrap_or_default();
        assert!(err.contains("--cache_size"), "{err}");
        let err = parse(&["--write_buffer_size=100"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("at least 65536"), "{err}");
    }
}
