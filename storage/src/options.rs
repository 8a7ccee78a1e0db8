//! Tuning knobs of the engine, with RocksDB/LevelDB-like defaults, and their validation.
//!
//! Invariants checked by [`Options::validate`]: every size is non-zero, the level-0
//! thresholds are ordered `l0_compaction_trigger <= l0_slowdown_writes <= l0_stop_writes`,
//! `levels_max >= 2` (level 0 plus at least one sorted level), and the memory budget
//! holds the two write buffers (the active and the frozen memtable).
//!
//! Memory: `memory_budget_bytes` is split between the memtables (two write buffers are
//! reserved, though together they hold at most one and a half: `write.rs`), the open
//! tables' indexes and filters once loaded (about 2.5% of the data at
//! 16-byte keys, 100-byte values and 10 bloom bits per key; see
//! `EngineStats::index_bytes` and `filter_bytes`) and the block cache, which gets the
//! rest (`budget.rs`: a table is charged from the moment its index and filter load,
//! which after a restart is its first use, until it closes).

use crate::error::Error;

/// Options given to [`crate::Db::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Bytes of key/value data a memtable takes before it is frozen and flushed (64 MiB).
    pub write_buffer_bytes: usize,
    /// Level-0 table count that starts a level-0 -> level-1 compaction (4).
    pub l0_compaction_trigger: usize,
    /// Level-0 table count from which each write is delayed by about a millisecond (8).
    pub l0_slowdown_writes: usize,
    /// Level-0 table count at which writers wait until compaction catches up (12).
    pub l0_stop_writes: usize,
    /// Target total bytes of level 1 (256 MiB).
    pub level_base_bytes: u64,
    /// Each level below 1 targets this many times the bytes of the level above (10).
    pub level_multiplier: u64,
    /// Compaction cuts output tables at about this size (64 MiB).
    pub table_target_bytes: u64,
    /// Uncompressed data block size of tables (4096).
    pub block_bytes: usize,
    /// Bloom filter bits per key (10, about 1% false positives).
    pub bloom_bits_per_key: usize,
    /// Size at which the write-ahead log starts a new segment (64 MiB).
    pub wal_segment_bytes: u64,
    /// Largest encoded write batch (one WAL record) accepted (16 MiB).
    pub batch_bytes_max: u32,
    /// Number of levels, level 0 included (7).
    pub levels_max: usize,
    /// Bytes of edits appended to the manifest before it is rewritten as one snapshot (4 MiB).
    pub manifest_bytes_max: u64,
    /// A flush or compaction asks the kernel to write its table back every this many
    /// bytes, so dirty pages never pile up behind a WAL fsync; the WAL does the same
    /// with writes that did not ask for durability, so its next sync is short (256 KiB;
    /// 0: never). A durable write's fdatasync may queue behind one step, but never
    /// behind a whole table: beside a big fill (`benches/sync-under-fill.sh`, means of
    /// four runs) fillsync's P99/P99.9 were 0.31/5.45 ms unpaced, 0.80/3.62 ms at 1 MiB
    /// and 0.56/3.74 ms at 256 KiB, the fill's throughput the same at both steps.
    pub bytes_per_sync: u64,
    /// Compactions together write at most this many bytes per second (0: no limit,
    /// the default). Flushes are never limited.
    pub compaction_bytes_per_sec: u64,
    /// Bytes of memory for memtables, the tables' indexes and filters, and the block
    /// cache together (160 MiB): the block cache gets what two write buffers and the
    /// indexes and filters leave (at most 32 MiB by default). The cache is
    /// kept small because under a memory limit the OS page cache, which the limit also
    /// counts, holds the file's blocks a second time (measured: an 8 or 32 MiB cache
    /// reads as fast as 128 MiB with data 2x memory, and faster in memory).
    /// [`Options::with_memory_budget`] also scales the write buffer down for small budgets.
    pub memory_budget_bytes: u64,
    /// How tables read their data blocks (index and filter are held in memory once loaded).
    pub table_reads: TableReads,
}

/// How tables read their data blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableReads {
    /// `pread` of exactly one block into the engine's block cache (the default): what
    /// the engine holds is bounded by its memory budget, however large the data.
    Cached,
    /// Through a memory map advised `MADV_RANDOM`; the block cache stays empty and the
    /// OS page cache holds the data.
    Mapped,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            write_buffer_bytes: 64 << 20,
            l0_compaction_trigger: 4,
            l0_slowdown_writes: 8,
            l0_stop_writes: 12,
            level_base_bytes: 256 << 20,
            level_multiplier: 10,
            table_target_bytes: 64 << 20,
            block_bytes: 4096,
            bloom_bits_per_key: 10,
            wal_segment_bytes: 64 << 20,
            batch_bytes_max: 16 << 20,
            levels_max: 7,
            manifest_bytes_max: 4 << 20,
            bytes_per_sync: 256 << 10,
            compaction_bytes_per_sec: 0,
            memory_budget_bytes: 160 << 20,
            table_reads: TableReads::Cached,
        }
    }
}

impl Options {
    /// The defaults with a memory budget of `bytes`: each write buffer two fifths of it
    /// (at most the default 64 MiB), the block cache the rest. The default budget gives
    /// exactly the defaults (two 64 MiB buffers, a 32 MiB cache).
    pub fn with_memory_budget(bytes: u64) -> Options {
        let d = Options::default();
        let share = usize::try_from(bytes / 5 * 2).unwrap_or(usize::MAX);
        Options {
            memory_budget_bytes: bytes,
            write_buffer_bytes: d.write_buffer_bytes.min(share).max(1),
            ..d
        }
    }

    /// The block cache's capacity: the budget less two write buffers. The open tables'
    /// indexes and filters are charged to it, and the blocks get the rest (`budget.rs`).
    pub fn block_cache_bytes(&self) -> u64 {
        self.memory_budget_bytes
            .saturating_sub(2 * self.write_buffer_bytes as u64)
    }

    /// Checks the options for values the engine cannot work with.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |reason: &str| {
            Err(Error::InvalidOptions {
                reason: reason.to_string(),
            })
        };
        if self.write_buffer_bytes == 0 {
            return bad("write_buffer_bytes must be > 0");
        }
        if self.memory_budget_bytes < 2 * self.write_buffer_bytes as u64 {
            return bad("memory_budget_bytes must hold two write buffers (2 x write_buffer_bytes)");
        }
        if self.l0_compaction_trigger == 0 {
            return bad("l0_compaction_trigger must be > 0");
        }
        if !(self.l0_compaction_trigger <= self.l0_slowdown_writes
            && self.l0_slowdown_writes <= self.l0_stop_writes)
        {
            return bad("need l0_compaction_trigger <= l0_slowdown_writes <= l0_stop_writes");
        }
        if self.level_base_bytes == 0 || self.level_multiplier < 2 {
            return bad("level_base_bytes must be > 0 and level_multiplier >= 2");
        }
        if self.table_target_bytes == 0 || self.block_bytes == 0 {
            return bad("table_target_bytes and block_bytes must be > 0");
        }
        if self.wal_segment_bytes == 0 || self.batch_bytes_max < 64 {
            return bad("wal_segment_bytes must be > 0 and batch_bytes_max >= 64");
        }
        if !(2..=16).contains(&self.levels_max) {
            return bad("levels_max must be in 2..=16");
        }
        if self.manifest_bytes_max == 0 {
            return bad("manifest_bytes_max must be > 0");
        }
        if let Err(reason) = crate::table_file::build_options(self).validate() {
            return bad(&format!("table options: {reason}"));
        }
        Ok(())
    }

    /// Target bytes of `level` (>= 1).
    pub(crate) fn level_target_bytes(&self, level: usize) -> u64 {
        debug_assert!(level >= 1);
        let mut target = self.level_base_bytes;
        for _ in 1..level {
            target = target.saturating_mul(self.level_multiplier);
        }
        target
    }
}

/// Options of one write.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteOptions {
    /// Return only after the write is durable (a group-committed fdatasync of the WAL).
    /// With `false` the write is handed to the OS and survives a process crash but not
    /// necessarily a power loss.
    pub sync: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_rejected() {
        assert!(Options::default().validate().is_ok());
        let o = Options {
            l0_stop_writes: 2,
            ..Options::default()
        };
        assert!(matches!(o.validate(), Err(Error::InvalidOptions { .. })));
        let o = Options {
            write_buffer_bytes: 0,
            ..Options::default()
        };
        assert!(o.validate().is_err());
        let o = Options {
            bloom_bits_per_key: 1000,
            ..Options::default()
        };
        assert!(o.validate().is_err());
        let o = Options {
            memory_budget_bytes: 100 << 20,
            write_buffer_bytes: 64 << 20,
            ..Options::default()
        };
        assert!(o.validate().is_err(), "two 64 MiB write buffers do not fit");
    }

    #[test]
    fn the_memory_budget_splits_between_write_buffers_and_the_cache() {
        let d = Options::default();
        assert_eq!(d.block_cache_bytes(), 32 << 20);
        let small = Options::with_memory_budget(64 << 20);
        assert!(small.validate().is_ok());
        assert_eq!(small.write_buffer_bytes, (64 << 20) / 5 * 2);
        assert_eq!(small.block_cache_bytes(), (64 << 20) - (64 << 20) / 5 * 4);
        assert_eq!(Options::with_memory_budget(160 << 20), Options::default());
        let large = Options::with_memory_budget(1 << 30);
        assert_eq!(large.write_buffer_bytes, 64 << 20);
        assert_eq!(large.block_cache_bytes(), (1 << 30) - (128 << 20));
    }

    #[test]
    fn level_targets_grow_by_the_multiplier() {
        let o = Options::default();
        assert_eq!(o.level_target_bytes(1), 256 << 20);
        assert_eq!(o.level_target_bytes(2), 2560 << 20);
    }
}
