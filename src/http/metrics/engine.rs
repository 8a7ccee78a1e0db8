//! The storage engine families of `/metrics`, from [`storage::EngineStats`].

use storage::EngineStats;
use telemetry::prometheus as prom;

pub fn render(out: &mut String, s: &EngineStats) {
    prom::gauge(
        out,
        "concierge_storage_memtable_bytes",
        "Approximate bytes of the active and the frozen memtable.",
        s.memtable_bytes,
    );
    prom::gauge(
        out,
        "concierge_storage_index_bytes",
        "Heap bytes of the open tables' indexes.",
        s.index_bytes,
    );
    prom::gauge(
        out,
        "concierge_storage_filter_bytes",
        "Heap bytes of the open tables' bloom filters.",
        s.filter_bytes,
    );
    let cache = &s.block_cache;
    prom::gauge(
        out,
        "concierge_storage_block_cache_bytes",
        "Bytes of data blocks held in the block cache (bookkeeping included).",
        cache.used_bytes,
    );
    prom::gauge(
        out,
        "concierge_storage_block_cache_capacity_bytes",
        "Capacity of the block cache: the memory budget less two write buffers.",
        cache.capacity_bytes,
    );
    prom::counter(
        out,
        "concierge_storage_block_cache_hits_total",
        "Data block reads answered by the block cache.",
        cache.hits,
    );
    prom::counter(
        out,
        "concierge_storage_block_cache_misses_total",
        "Data block reads the block cache did not hold (read from the table file).",
        cache.misses,
    );
    prom::counter(
        out,
        "concierge_storage_block_cache_evictions_total",
        "Data blocks dropped from the block cache to make room.",
        cache.evictions,
    );
    for (name, help, values) in [
        (
            "concierge_storage_level_tables",
            "Tables per LSM level.",
            s.tables_per_level
                .iter()
                .map(|&n| n as u64)
                .collect::<Vec<_>>(),
        ),
        (
            "concierge_storage_level_bytes",
            "File bytes per LSM level.",
            s.bytes_per_level.clone(),
        ),
    ] {
        prom::family(out, name, "gauge", help);
        for (level, value) in values.iter().enumerate() {
            prom::sample(out, name, &[("level", &level.to_string())], value);
        }
    }
    prom::gauge(
        out,
        "concierge_storage_compaction_pending_bytes",
        "Estimated bytes compaction must still rewrite (level 0 past its trigger, and \
         every level's bytes above its target).",
        s.pending_compaction_bytes,
    );
    prom::counter(
        out,
        "concierge_storage_write_stalls_total",
        "Writes delayed or stopped until flush or compaction caught up.",
        s.stalls,
    );
    prom::family(
        out,
        "concierge_storage_write_stall_seconds_total",
        "counter",
        "Time writes spent delayed or stopped for flush or compaction.",
    );
    prom::sample(
        out,
        "concierge_storage_write_stall_seconds_total",
        &[],
        s.stall_micros as f64 / 1e6,
    );
    prom::histogram_family(
        out,
        "concierge_disk_wal_fsync_duration_seconds",
        "Each fdatasync of the storage engine's write-ahead log.",
        &s.wal_sync_latency,
        prom::NANOS_PER_SECOND,
    );
}
