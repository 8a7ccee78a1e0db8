//! The benchmarks, with RocksDB db_bench's semantics (`db_bench_tool.cc`, `DoWrite`,
//! `ReadRandom`, `ReadSequential`):
//! - writes do `writes` operations (default `num`) on keys from a key space of `num_`
//!   (`num`, or `num / 1000` for fillsync, which also syncs every write);
//!   fillseq writes keys 0, 1, 2, ...; the others pick `rand % num_`;
//! - readrandom does `reads` gets of `rand % num` and reports how many were found;
//! - readseq iterates from the first key, at most `reads` entries;
//! - readmissing does `reads` gets of keys that cannot exist (a generated key with a
//!   `.` appended, as LevelDB's db_bench does);
//! - seekrandom does `reads` seeks to `rand % num`, each followed by `seek_nexts`
//!   steps, and counts a seek as found when it lands on the key itself;
//! - deleterandom deletes `num` keys drawn as `rand % num`;
//! - readwhilewriting runs readrandom on `threads` threads while one more thread
//!   overwrites random keys until they finish; only the reads are reported;
//! - fillsyncwhilewriting (not RocksDB's) runs fillsync on `threads` threads while one
//!   more thread fills random keys of `num` without syncing, as fast as it can: the
//!   latency of durable writes while flushes and compactions write tables. Only the
//!   synced writes are reported.
//!
//! Keys follow RocksDB's `GenerateKeyFromInt`: the number in big-endian order in the
//! first min(key_size, 8) bytes, then '0' padding. Values come from a 1 MiB block of
//! pseudo-random bytes, read with a sliding window as RocksDB's `RandomGenerator` does.

use crate::engine::{BenchEngine, EngineResult};
use crate::stats::Stats;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// SplitMix64: seeded, fast, and good enough to pick keys.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Writes RocksDB's key layout for `v` into `key` (whose length is the key size).
#[inline]
pub fn key_from_int(v: u64, key: &mut [u8]) {
    let fill = key.len().min(8);
    for (i, b) in key[..fill].iter_mut().enumerate() {
        *b = (v >> ((fill - i - 1) * 8)) as u8;
    }
    for b in &mut key[fill..] {
        *b = b'0';
    }
}

/// Hands out value slices from a fixed block of random bytes.
pub struct ValueGen {
    data: Vec<u8>,
    pos: usize,
}

impl ValueGen {
    pub fn new(value_size: usize) -> ValueGen {
        let mut rng = Rng::new(301);
        let len = value_size.max(1 << 20);
        let data = (0..len).map(|_| rng.next_u64() as u8).collect();
        ValueGen { data, pos: 0 }
    }

    #[inline]
    pub fn generate(&mut self, len: usize) -> &[u8] {
        if self.pos + len > self.data.len() {
            self.pos = 0;
        }
        self.pos += len;
        &self.data[self.pos - len..self.pos]
    }
}

/// How a write benchmark picks its keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    Sequential,
    Random,
}

/// One write benchmark's parameters.
pub struct WriteSpec {
    pub order: KeyOrder,
    /// Size of the key space the keys come from.
    pub key_space: u64,
    /// How many writes to do.
    pub ops: u64,
    pub sync: bool,
}

/// What a random read looks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    /// `get` of a key from the key space (readrandom).
    Existing,
    /// `get` of a key that cannot exist (readmissing).
    Missing,
    /// `seek` to a key, then this many more entries (seekrandom).
    Seek { nexts: u64 },
}

pub struct Workload<'a> {
    pub engine: &'a dyn BenchEngine,
    pub key_size: usize,
    pub value_size: usize,
    pub histogram: bool,
    /// Threads running the benchmark at once, each doing the whole count.
    pub threads: usize,
}

/// The seed of thread `t` of a benchmark whose seed is `seed` (thread 0 keeps it, so
/// one thread draws what it always drew).
fn thread_seed(seed: u64, t: usize) -> u64 {
    seed.wrapping_add(1_000_000 * t as u64)
}

impl Workload<'_> {
    /// Runs `body(thread, stats)` on `threads` threads at once (inline for one) and
    /// merges their counts.
    fn on_threads(
        &self,
        ops: u64,
        body: impl Fn(usize, &mut Stats) -> EngineResult<()> + Sync,
    ) -> EngineResult<Stats> {
        let run = |t: usize| {
            let mut stats = Stats::start(self.histogram, ops);
            body(t, &mut stats).map(|()| stats)
        };
        if self.threads <= 1 {
            return run(0);
        }
        let results: Vec<EngineResult<Stats>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.threads)
                .map(|t| scope.spawn(move || run(t)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a benchmark thread panicked".into()))
                })
                .collect()
        });
        let mut merged: Option<Stats> = None;
        for r in results {
            let stats = r?;
            match &mut merged {
                Some(m) => m.merge(stats),
                None => merged = Some(stats),
            }
        }
        merged.ok_or_else(|| "no benchmark thread ran".to_string())
    }

    pub fn write(&self, spec: &WriteSpec, seed: u64, stats_num: u64) -> EngineResult<Stats> {
        let (engine, key_size, value_size) = (self.engine, self.key_size, self.value_size);
        let mut stats = self.on_threads(spec.ops, |t, stats| {
            let mut rng = Rng::new(thread_seed(seed, t));
            let mut values = ValueGen::new(value_size);
            let mut key = vec![0u8; key_size];
            for i in 0..spec.ops {
                let k = match spec.order {
                    KeyOrder::Sequential => i,
                    KeyOrder::Random => rng.next_u64() % spec.key_space,
                };
                key_from_int(k, &mut key);
                let value = values.generate(value_size);
                if spec.sync {
                    engine.put_sync(&key, value)?;
                } else {
                    engine.put(&key, value)?;
                }
                stats.finished_op(key_size + value_size);
            }
            Ok(())
        })?;
        if spec.key_space != stats_num {
            stats.add_message(&format!("({} ops)", spec.key_space));
        }
        Ok(stats)
    }

    /// readrandom, readmissing and seekrandom: `reads` lookups on each thread.
    pub fn read_random(
        &self,
        kind: ReadKind,
        reads: u64,
        key_space: u64,
        seed: u64,
    ) -> EngineResult<Stats> {
        let found = AtomicU64::new(0);
        let mut stats = self.on_threads(reads, |t, stats| {
            let hits =
                self.reads_on_one_thread(kind, reads, key_space, thread_seed(seed, t), stats)?;
            found.fetch_add(hits, Ordering::Relaxed);
            Ok(())
        })?;
        let total = reads * self.threads as u64;
        let found = found.into_inner();
        stats.add_message(&format!("({found} of {total} found)"));
        Ok(stats)
    }

    /// One thread's share of a random read benchmark; returns how many were found.
    fn reads_on_one_thread(
        &self,
        kind: ReadKind,
        reads: u64,
        key_space: u64,
        seed: u64,
        stats: &mut Stats,
    ) -> EngineResult<u64> {
        let (engine, key_size) = (self.engine, self.key_size);
        let mut rng = Rng::new(seed);
        let mut key = vec![0u8; key_size];
        let mut missing = vec![0u8; key_size + 1];
        let mut hits = 0u64;
        for _ in 0..reads {
            key_from_int(rng.next_u64() % key_space, &mut key);
            let bytes = match kind {
                ReadKind::Existing | ReadKind::Missing => {
                    let lookup: &[u8] = if kind == ReadKind::Missing {
                        missing[..key_size].copy_from_slice(&key);
                        missing[key_size] = b'.';
                        &missing
                    } else {
                        &key
                    };
                    match engine.get(lookup)? {
                        Some(len) => {
                            hits += 1;
                            lookup.len() + len
                        }
                        None => 0,
                    }
                }
                ReadKind::Seek { nexts } => {
                    let mut bytes = 0;
                    let mut first = true;
                    engine.seek(&key, nexts.saturating_add(1), &mut |k, v| {
                        if first && k == key.as_slice() {
                            hits += 1;
                        }
                        first = false;
                        bytes += k.len() + v.len();
                    })?;
                    bytes
                }
            };
            stats.finished_op(bytes);
        }
        Ok(hits)
    }

    /// deleterandom: `ops` deletes of keys drawn from `key_space` on each thread.
    pub fn delete_random(
        &self,
        ops: u64,
        key_space: u64,
        sync: bool,
        seed: u64,
    ) -> EngineResult<Stats> {
        let (engine, key_size) = (self.engine, self.key_size);
        self.on_threads(ops, |t, stats| {
            let mut rng = Rng::new(thread_seed(seed, t));
            let mut key = vec![0u8; key_size];
            for _ in 0..ops {
                key_from_int(rng.next_u64() % key_space, &mut key);
                engine.delete(&key, sync)?;
                stats.finished_op(key_size);
            }
            Ok(())
        })
    }

    /// Runs `foreground` while one more thread overwrites random keys of
    /// `key_space` (durably when `sync`) until it returns; reports the foreground's
    /// stats with the writer's count appended.
    pub fn while_writing(
        &self,
        key_space: u64,
        sync: bool,
        seed: u64,
        foreground: impl FnOnce() -> EngineResult<Stats>,
    ) -> EngineResult<Stats> {
        let (engine, key_size, value_size) = (self.engine, self.key_size, self.value_size);
        let done = AtomicBool::new(false);
        let writes = AtomicU64::new(0);
        let writer = || -> EngineResult<()> {
            // The writer's seed is one no foreground thread uses (they are 0..threads).
            let mut rng = Rng::new(thread_seed(seed, self.threads));
            let mut values = ValueGen::new(value_size);
            let mut key = vec![0u8; key_size];
            while !done.load(Ordering::Relaxed) {
                key_from_int(rng.next_u64() % key_space, &mut key);
                let value = values.generate(value_size);
                if sync {
                    engine.put_sync(&key, value)?;
                } else {
                    engine.put(&key, value)?;
                }
                writes.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        };
        let (result, write_result) = std::thread::scope(|scope| {
            let handle = scope.spawn(writer);
            let result = foreground();
            done.store(true, Ordering::Relaxed);
            let write_result = handle
                .join()
                .unwrap_or_else(|_| Err("the writer thread panicked".into()));
            (result, write_result)
        });
        write_result?;
        let mut stats = result?;
        stats.add_message(&format!("(writer: {} puts)", writes.into_inner()));
        Ok(stats)
    }

    pub fn read_seq(&self, reads: u64) -> EngineResult<Stats> {
        let engine = self.engine;
        self.on_threads(reads, |_, stats| {
            let mut seen = 0u64;
            if reads > 0 {
                engine.scan_all(&mut |k, v| {
                    stats.finished_op(k.len() + v.len());
                    seen += 1;
                    seen < reads
                })?;
            }
            Ok(())
        })
    }
}
