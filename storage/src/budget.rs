//! The memory budget (`Options::memory_budget_bytes`) shared out: two write buffers,
//! the open tables' indexes and filters, and the block cache, which gets what is left.
//!
//! Indexes and filters are held in memory for as long as their table is open and
//! grow with the data (about 2.5% of it at 16-byte keys, 100-byte values and 10 bloom
//! bits per key), so they are charged to the budget by shrinking the cache rather
//! than held beside it: after recovery and after every install of a new version, the
//! cache's capacity is `memory_budget_bytes - 2 * write_buffer_bytes - (index and
//! filter bytes of the version's tables)`, at least 0. A mapped engine has no cache
//! (capacity 0) and is left alone.
//!
//! Tables opened by recovery load their index and filter on first use: they are
//! charged at the first install after they loaded, not before.
//!
//! What the budget still does not bound: indexes and filters larger than the budget
//! leaves them (the cache is then empty, and memory exceeds the budget by the
//! difference), iterators' read-ahead buffers, and blocks a reader holds after the
//! cache let them go.

use crate::inner::Inner;
use crate::options::{Options, TableReads};
use crate::version::Version;

/// Heap bytes the tables of `version` hold for their indexes and filters.
pub(crate) fn table_memory_bytes(version: &Version) -> u64 {
    version
        .levels
        .iter()
        .flatten()
        .map(|t| (t.table.index_memory_bytes() + t.table.filter_bytes()) as u64)
        .sum()
}

/// The block cache's share of the budget when the tables hold `table_bytes`.
pub(crate) fn cache_share(opts: &Options, table_bytes: u64) -> u64 {
    opts.block_cache_bytes().saturating_sub(table_bytes)
}

/// Gives the block cache what the budget leaves beside `version`'s tables.
pub(crate) fn fit_block_cache(inner: &Inner, version: &Version) {
    if inner.opts.table_reads == TableReads::Cached {
        let share = cache_share(&inner.opts, table_memory_bytes(version));
        if share != inner.block_cache.capacity_bytes() {
            inner.block_cache.set_capacity(share);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Db, Options, WriteOptions};
    use std::path::Path;
    use std::sync::Arc;
    use vfs::SimFs;

    #[test]
    fn the_block_cache_gives_up_what_indexes_and_filters_take() {
        let opts = Options {
            write_buffer_bytes: 64 << 10,
            memory_budget_bytes: 4 << 20,
            ..Options::default()
        };
        let budget_cache = opts.block_cache_bytes();
        let fs = Arc::new(SimFs::new());
        let dir = Path::new("/db");
        {
            let db = Db::open(fs.clone(), dir, opts.clone()).unwrap();
            for i in 0..20_000u32 {
                let key = format!("key{:08}", i.wrapping_mul(2_654_435_761)).into_bytes();
                db.put(&key, &[7u8; 100], WriteOptions::default()).unwrap();
            }
            db.flush().unwrap();
            let s = db.engine_stats();
            let held = s.index_bytes + s.filter_bytes;
            assert!(held > 0);
            // The cache rounds its capacity down to whole shards (a byte or so).
            let want = budget_cache - held;
            assert!(
                (want - 16..=want).contains(&s.block_cache.capacity_bytes),
                "{s:?}"
            );
            assert!(s.block_cache.used_bytes <= s.block_cache.capacity_bytes);
        }
        // Recovery opens tables without loading them (`Table::open_lazy`), so it
        // charges nothing; a table loaded by a read or a compaction is charged at the
        // next install. Either way the cache never exceeds the budget's share, and once
        // charged it leaves what the loaded tables hold.
        let db = Db::open(fs, dir, opts).unwrap();
        let s = db.engine_stats();
        let charged = budget_cache - (s.index_bytes + s.filter_bytes);
        assert!(
            (charged - 16..=budget_cache).contains(&s.block_cache.capacity_bytes),
            "{s:?}"
        );
        // Indexes and filters larger than the budget leaves: no cache at all.
        assert_eq!(super::cache_share(&Options::default(), u64::MAX), 0);
    }
}
