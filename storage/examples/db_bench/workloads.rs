//! The benchmarks, with RocksDB db_bench's semantics (`db_bench_tool.cc`, `DoWrite`,
//! `ReadRandom`, `ReadSequential`):
//! - writes do `writes` operations (default `num`) on keys from a key space of `num_`
//!   (`num`, or `num / 1000` for fillsync, which also syncs every write);
//!   fillseq writes keys 0, 1, 2, ...; the others pick `rand % num_`;
//! - readrandom does `reads` gets of `rand % num` and reports how many were found;
//! - readseq iterates from the first key, at most `reads` entries.
//!
//! Keys follow RocksDB's `GenerateKeyFromInt`: the number in big-endian order in the
//! first min(key_size, 8) bytes, then '0' padding. Values come from a 1 MiB block of
//! pseudo-random bytes, read with a sliding window as RocksDB's `RandomGenerator` does.

use crate::engine::{BenchEngine, EngineResult};
use crate::stats::Stats;

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

pub struct Workload<'a> {
    pub engine: &'a mut dyn BenchEngine,
    pub key_size: usize,
    pub value_size: usize,
    pub histogram: bool,
}

impl Workload<'_> {
    pub fn write(
        &mut self,
        spec: &WriteSpec,
        rng: &mut Rng,
        stats_num: u64,
    ) -> EngineResult<Stats> {
        let mut stats = Stats::start(self.histogram, spec.ops);
        if spec.key_space != stats_num {
            stats.add_message(&format!("({} ops)", spec.key_space));
        }
        let mut values = ValueGen::new(self.value_size);
        let mut key = vec![0u8; self.key_size];
        for i in 0..spec.ops {
            let k = match spec.order {
                KeyOrder::Sequential => i,
                KeyOrder::Random => rng.next_u64() % spec.key_space,
            };
            key_from_int(k, &mut key);
            let value = values.generate(self.value_size);
            if spec.sync {
                self.engine.put_sync(&key, value)?;
            } else {
                self.engine.put(&key, value)?;
            }
            stats.finished_op(self.key_size + self.value_size);
        }
        Ok(stats)
    }

    pub fn read_random(
        &mut self,
        reads: u64,
        key_space: u64,
        rng: &mut Rng,
    ) -> EngineResult<Stats> {
        let mut stats = Stats::start(self.histogram, reads);
        let mut key = vec![0u8; self.key_size];
        let mut found = 0u64;
        for _ in 0..reads {
            key_from_int(rng.next_u64() % key_space, &mut key);
            let bytes = match self.engine.get(&key)? {
                Some(len) => {
                    found += 1;
                    self.key_size + len
                }
                None => 0,
            };
            stats.finished_op(bytes);
        }
        stats.add_message(&format!("({found} of {reads} found)"));
        Ok(stats)
    }

    pub fn read_seq(&mut self, reads: u64) -> EngineResult<Stats> {
        let mut stats = Stats::start(self.histogram, reads);
        let mut seen = 0u64;
        if reads > 0 {
            self.engine.scan_all(&mut |k, v| {
                stats.finished_op(k.len() + v.len());
                seen += 1;
                seen < reads
            })?;
        }
        Ok(stats)
    }
}
