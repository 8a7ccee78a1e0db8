//! The memory budget (`Options::memory_budget_bytes`) shared out: two write buffers,
//! the open tables' indexes and filters, and the block cache, which gets what is left.
//!
//! Indexes and filters are held in memory for as long as their table is open and
//! grow with the data (about 2.5% of it at 16-byte keys, 100-byte values and 10 bloom
//! bits per key), so they are charged to the budget by shrinking the cache rather
//! than held beside it: the cache's capacity is `memory_budget_bytes - 2 *
//! write_buffer_bytes`, and each table's index and filter are charged to it
//! (`sstable::CacheCharge`) from the moment they load (at a flush or compaction that
//! writes the table, or at its first use after recovery opened it lazily) until the
//! table closes. The blocks get what is left, at least 0. A mapped engine has no
//! cache (capacity 0) and charges nothing.
//!
//! What the budget still does not bound: indexes and filters larger than the budget
//! leaves them (the cache is then empty, and memory exceeds the budget by the
//! difference), iterators' read-ahead buffers, and blocks a reader holds after the
//! cache let them go.

use std::sync::Arc;

use crate::options::{Options, TableReads};

/// The engine's block cache: the budget less two write buffers when tables read
/// through it, none (capacity 0) when they are mapped.
pub(crate) fn new_block_cache(opts: &Options) -> Arc<sstable::BlockCache> {
    Arc::new(sstable::BlockCache::new(match opts.table_reads {
        TableReads::Cached => opts.block_cache_bytes(),
        TableReads::Mapped => 0,
    }))
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
            // A compaction in flight holds its outputs' charges before they join the
            // version: wait, so the figures below describe one settled version.
            db.wait_for_compactions().unwrap();
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
        // Recovery opens tables without loading them (`Table::open_lazy`): nothing is
        // charged until a read loads one, and each is charged as it loads. (Waiting for
        // compactions keeps one from loading or closing tables between the figures.)
        let db = Db::open(fs, dir, opts).unwrap();
        db.wait_for_compactions().unwrap();
        let check = |db: &Db| {
            db.wait_for_compactions().unwrap();
            let s = db.engine_stats();
            let held = s.index_bytes + s.filter_bytes;
            assert_eq!(s.block_cache.charged_bytes, held, "{s:?}");
            let want = budget_cache - held;
            assert!(
                (want - 16..=want).contains(&s.block_cache.capacity_bytes),
                "{s:?}"
            );
            held
        };
        check(&db);
        for i in (0..20_000u32).step_by(97) {
            let key = format!("key{:08}", i.wrapping_mul(2_654_435_761)).into_bytes();
            assert!(db.get(&key).unwrap().is_some());
        }
        assert!(check(&db) > 0, "the reads loaded the tables");
        // A compaction closes the tables it replaces: their charges go with them.
        db.compact_all().unwrap();
        db.wait_for_compactions().unwrap();
        check(&db);
    }
}
