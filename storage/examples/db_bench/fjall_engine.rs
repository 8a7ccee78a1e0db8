//! fjall v2 behind [`BenchEngine`]: one keyspace with one partition, no compression;
//! a synced write is an insert followed by `Keyspace::persist(PersistMode::SyncAll)`.

use crate::engine::{recreate_dir, BenchEngine, EngineResult, EngineSettings};
use fjall::{
    CompressionType, Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PARTITION: &str = "bench";

pub struct FjallEngine {
    dir: PathBuf,
    settings: EngineSettings,
    open: Option<(Keyspace, PartitionHandle)>,
}

fn err(context: &str, e: fjall::Error) -> String {
    format!("fjall {context}: {e:?}")
}

/// Opens the keyspace: `--cache_size` is fjall's block cache, `--write_buffer_size`
/// the partition's memtable size.
fn open(dir: &Path, settings: EngineSettings) -> EngineResult<(Keyspace, PartitionHandle)> {
    if settings.bytes_per_sync.is_some() || settings.rate_limiter_bytes_per_sec.is_some() {
        return Err("--bytes_per_sync and --rate_limiter_bytes_per_sec: fjall has neither".into());
    }
    if settings.table_reads_mapped.is_some() {
        return Err("--table_reads: a concierge engine setting".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut config = Config::new(dir);
    if let Some(bytes) = settings.cache_size {
        config = config.cache_size(bytes);
    }
    let keyspace = config.open().map_err(|e| err("open", e))?;
    let mut create = PartitionCreateOptions::default().compression(CompressionType::None);
    if let Some(bytes) = settings.write_buffer_size {
        let bytes = u32::try_from(bytes)
            .map_err(|_| format!("--write_buffer_size={bytes}: fjall takes at most 4 GiB"))?;
        create = create.max_memtable_size(bytes);
    }
    let partition = keyspace
        .open_partition(PARTITION, create)
        .map_err(|e| err("open_partition", e))?;
    Ok((keyspace, partition))
}

impl FjallEngine {
    pub fn open(dir: &Path, settings: EngineSettings) -> EngineResult<FjallEngine> {
        Ok(FjallEngine {
            dir: dir.to_path_buf(),
            settings,
            open: Some(open(dir, settings)?),
        })
    }

    fn parts(&self) -> EngineResult<&(Keyspace, PartitionHandle)> {
        self.open
            .as_ref()
            .ok_or_else(|| "fjall: engine is closed".to_string())
    }
}

impl BenchEngine for FjallEngine {
    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        self.parts()?
            .1
            .insert(key, value)
            .map_err(|e| err("insert", e))
    }

    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()> {
        let (keyspace, partition) = self.parts()?;
        partition.insert(key, value).map_err(|e| err("insert", e))?;
        keyspace
            .persist(PersistMode::SyncAll)
            .map_err(|e| err("persist", e))
    }

    fn delete(&self, key: &[u8], sync: bool) -> EngineResult<()> {
        let (keyspace, partition) = self.parts()?;
        partition.remove(key).map_err(|e| err("remove", e))?;
        if sync {
            keyspace
                .persist(PersistMode::SyncAll)
                .map_err(|e| err("persist", e))?;
        }
        Ok(())
    }

    fn seek(
        &self,
        key: &[u8],
        entries: u64,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> EngineResult<()> {
        let range = self.parts()?.1.range(key..);
        for item in range.take(usize::try_from(entries).unwrap_or(usize::MAX)) {
            let (k, v) = item.map_err(|e| err("range", e))?;
            visit(&k, &v);
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> EngineResult<Option<usize>> {
        Ok(self
            .parts()?
            .1
            .get(key)
            .map_err(|e| err("get", e))?
            .map(|v| v.len()))
    }

    fn scan_all(&self, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> EngineResult<()> {
        for item in self.parts()?.1.iter() {
            let (k, v) = item.map_err(|e| err("iter", e))?;
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn wait_for_compaction(&self) -> EngineResult<()> {
        // fjall 2 offers no wait: flush, then poll until no compaction has run for
        // QUIET (fjall starts one within milliseconds of a flush that needs it).
        const QUIET: Duration = Duration::from_secs(1);
        const POLL: Duration = Duration::from_millis(20);
        let (keyspace, partition) = self.parts()?;
        partition
            .rotate_memtable_and_wait()
            .map_err(|e| err("rotate_memtable_and_wait", e))?;
        let mut quiet_since = Instant::now();
        let mut completed = keyspace.compactions_completed();
        while quiet_since.elapsed() < QUIET {
            std::thread::sleep(POLL);
            let now = keyspace.compactions_completed();
            if keyspace.active_compactions() > 0 || now != completed {
                completed = now;
                quiet_since = Instant::now();
            }
        }
        Ok(())
    }

    fn reopen_fresh(&mut self) -> EngineResult<()> {
        self.close();
        recreate_dir(&self.dir)?;
        self.open = Some(open(&self.dir, self.settings)?);
        Ok(())
    }

    fn close(&mut self) {
        // Dropping the last Keyspace handle stops and joins fjall's background threads.
        self.open = None;
    }
}
