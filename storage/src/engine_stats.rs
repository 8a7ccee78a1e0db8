//! What the engine holds and how it is doing, in one snapshot for `/metrics`: memory by
//! kind (memtables, table indexes and filters, the block cache with its hits and
//! misses), tables and bytes per level,
//! the compaction backlog, writer stalls, and the WAL's fsync latencies.
//!
//! The compaction backlog is estimated as RocksDB's `estimate-pending-compaction-bytes`
//! is in spirit: every level-0 byte once level 0 reached its compaction trigger, plus
//! for each sorted level but the last the bytes above its target size.

use crate::inner::Inner;
use crate::options::Options;
use crate::version::Version;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// One snapshot of the engine's figures (see the module doc).
#[derive(Debug, Clone)]
pub struct EngineStats {
    /// Approximate bytes of the active and the frozen memtable.
    pub memtable_bytes: u64,
    /// Heap bytes of the open tables' indexes (decoded and raw).
    pub index_bytes: u64,
    /// Heap bytes of the tables' bloom filters.
    pub filter_bytes: u64,
    /// The block cache: bytes held, capacity, lookups that hit and missed, evictions.
    pub block_cache: sstable::CacheStats,
    /// Tables per level, level 0 first.
    pub tables_per_level: Vec<usize>,
    /// File bytes per level, level 0 first.
    pub bytes_per_level: Vec<u64>,
    /// Estimated bytes compaction must still rewrite to bring every level in shape.
    pub pending_compaction_bytes: u64,
    /// Writes delayed or stopped for back-pressure, and their total time.
    pub stalls: u64,
    pub stall_micros: u64,
    /// Latency of every WAL fdatasync since open, in nanoseconds.
    pub wal_sync_latency: telemetry::HistogramSnapshot,
}

/// Reads [`EngineStats`] of an open engine without keeping it open: once every `Db`
/// handle is gone (the engine closed), [`StatsReader::get`] answers `None`.
#[derive(Debug, Clone)]
pub struct StatsReader {
    inner: Weak<Inner>,
}

impl StatsReader {
    pub(crate) fn new(inner: &Arc<Inner>) -> StatsReader {
        StatsReader {
            inner: Arc::downgrade(inner),
        }
    }

    /// The engine's figures now, or `None` when it is closed.
    pub fn get(&self) -> Option<EngineStats> {
        self.inner.upgrade().map(|inner| EngineStats::of(&inner))
    }
}

/// The bytes compaction still owes `v` (see the module doc).
pub fn pending_compaction_bytes(v: &Version, opts: &Options) -> u64 {
    let mut pending = 0;
    if v.levels[0].len() >= opts.l0_compaction_trigger {
        pending += v.level_bytes(0);
    }
    for level in 1..v.levels.len().saturating_sub(1) {
        pending += v
            .level_bytes(level)
            .saturating_sub(opts.level_target_bytes(level));
    }
    pending
}

impl EngineStats {
    pub(crate) fn of(inner: &Inner) -> EngineStats {
        let sv = inner.super_version();
        let memtable_bytes = std::iter::once(&sv.mem)
            .chain(sv.imm.iter())
            .map(|m| m.approximate_bytes() as u64)
            .sum();
        let tables = sv.version.levels.iter().flatten();
        let index_bytes = tables
            .clone()
            .map(|t| t.table.index_memory_bytes() as u64)
            .sum();
        let filter_bytes = tables.map(|t| t.table.filter_bytes() as u64).sum();
        let v = &sv.version;
        EngineStats {
            memtable_bytes,
            index_bytes,
            filter_bytes,
            block_cache: inner.block_cache.stats(),
            tables_per_level: v.levels.iter().map(Vec::len).collect(),
            bytes_per_level: (0..v.levels.len()).map(|l| v.level_bytes(l)).collect(),
            pending_compaction_bytes: pending_compaction_bytes(v, &inner.opts),
            stalls: inner.stalls.load(Ordering::Relaxed),
            stall_micros: inner.stall_micros.load(Ordering::Relaxed),
            wal_sync_latency: inner.wal.sync_latency(),
        }
    }
}
