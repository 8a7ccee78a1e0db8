//! This repository's engine (`storage::Db` on the real file system) behind [`BenchEngine`].

use crate::engine::{recreate_dir, BenchEngine, EngineResult, EngineSettings};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use storage::{Db, Options, TableReads, WriteOptions};

pub struct ConciergeEngine {
    dir: PathBuf,
    options: Options,
    db: Option<Db>,
}

fn open(dir: &Path, options: &Options) -> EngineResult<Db> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Db::open(vfs::RealFs::shared(), dir, options.clone())
        .map_err(|e| format!("concierge open {}: {e:?}", dir.display()))
}

/// The engine's options for db_bench's settings. `--cache_size` is what the memory
/// budget holds beside two write buffers: the block cache and the tables' indexes and
/// filters together (the engine charges those to the cache, `storage::budget`).
fn options(settings: EngineSettings) -> EngineResult<Options> {
    let mut options = Options::default();
    if let Some(mapped) = settings.table_reads_mapped {
        options.table_reads = if mapped {
            TableReads::Mapped
        } else {
            TableReads::Cached
        };
    }
    if let Some(bytes) = settings.bytes_per_sync {
        options.bytes_per_sync = bytes;
    }
    if let Some(rate) = settings.rate_limiter_bytes_per_sec {
        options.compaction_bytes_per_sec = rate;
    }
    if let Some(bytes) = settings.write_buffer_size {
        options.write_buffer_bytes = usize::try_from(bytes)
            .map_err(|_| format!("--write_buffer_size={bytes} does not fit in memory"))?;
    }
    let buffers = 2 * options.write_buffer_bytes as u64;
    if let Some(cache) = settings.cache_size {
        options.memory_budget_bytes = buffers.saturating_add(cache);
    } else {
        options.memory_budget_bytes = options.memory_budget_bytes.max(buffers);
    }
    Ok(options)
}

impl ConciergeEngine {
    pub fn open(dir: &Path, settings: EngineSettings) -> EngineResult<ConciergeEngine> {
        let options = options(settings)?;
        Ok(ConciergeEngine {
            dir: dir.to_path_buf(),
            db: Some(open(dir, &options)?),
            options,
        })
    }

    fn db(&self) -> EngineResult<&Db> {
        self.db
            .as_ref()
            .ok_or_else(|| "concierge: engine is closed".to_string())
    }
}

impl BenchEngine for ConciergeEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.db()?
            .put(key, value, WriteOptions { sync: false })
            .map(|_| ())
            .map_err(|e| format!("concierge put: {e:?}"))
    }

    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.db()?
            .put(key, value, WriteOptions { sync: true })
            .map(|_| ())
            .map_err(|e| format!("concierge put (sync): {e:?}"))
    }

    fn delete(&self, key: &[u8], sync: bool) -> EngineResult<()> {
        self.db()?
            .delete(key, WriteOptions { sync })
            .map(|_| ())
            .map_err(|e| format!("concierge delete: {e:?}"))
    }

    fn seek(
        &self,
        key: &[u8],
        entries: u64,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> EngineResult<()> {
        let iter = self
            .db()?
            .iter(Bound::Included(key), Bound::Unbounded)
            .map_err(|e| format!("concierge iter: {e:?}"))?;
        for item in iter.take(usize::try_from(entries).unwrap_or(usize::MAX)) {
            let (k, v) = item.map_err(|e| format!("concierge iter next: {e:?}"))?;
            visit(&k, &v);
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<usize>> {
        Ok(self
            .db()?
            .get(key)
            .map_err(|e| format!("concierge get: {e:?}"))?
            .map(|v| v.len()))
    }

    fn wait_for_compaction(&self) -> EngineResult<()> {
        let db = self.db()?;
        db.flush()
            .and_then(|()| db.wait_for_compactions())
            .map_err(|e| format!("concierge wait for compactions: {e:?}"))
    }

    fn scan_all(&self, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> EngineResult<()> {
        let iter = self
            .db()?
            .iter(Bound::Unbounded, Bound::Unbounded)
            .map_err(|e| format!("concierge iter: {e:?}"))?;
        for item in iter {
            let (k, v) = item.map_err(|e| format!("concierge iter next: {e:?}"))?;
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn reopen_fresh(&mut self) -> EngineResult<()> {
        self.close();
        recreate_dir(&self.dir)?;
        self.db = Some(open(&self.dir, &self.options)?);
        Ok(())
    }

    fn describe(&self) -> Option<String> {
        let db = self.db.as_ref()?;
        let (stalls, micros) = db.stall_stats();
        let mut line = format!(
            "writer stalls {stalls} ({:.1} ms), tables per level {:?}",
            micros as f64 / 1000.0,
            db.level_table_counts()
        );
        {
            let s = db.engine_stats();
            let c = s.block_cache;
            let mib = |b: u64| b as f64 / 1_048_576.0;
            line += &format!(
                "\nblock cache {:.1} of {:.1} MiB, hits {}, misses {}, evictions {}; \
                 index {:.1} MiB, filters {:.1} MiB, memtables {:.1} MiB",
                mib(c.used_bytes),
                mib(c.capacity_bytes),
                c.hits,
                c.misses,
                c.evictions,
                mib(s.index_bytes),
                mib(s.filter_bytes),
                mib(s.memtable_bytes)
            );
        }
        Some(line)
    }

    fn close(&mut self) {
        self.db = None;
    }
}
