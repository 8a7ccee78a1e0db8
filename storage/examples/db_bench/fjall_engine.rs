//! fjall v2 behind [`BenchEngine`]: one keyspace with one partition, no compression;
//! a synced write is an insert followed by `Keyspace::persist(PersistMode::SyncAll)`.

use crate::engine::{recreate_dir, BenchEngine, EngineResult};
use fjall::{
    CompressionType, Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode,
};
use std::path::{Path, PathBuf};

const PARTITION: &str = "bench";

pub struct FjallEngine {
    dir: PathBuf,
    open: Option<(Keyspace, PartitionHandle)>,
}

fn err(context: &str, e: fjall::Error) -> String {
    format!("fjall {context}: {e:?}")
}

fn open(dir: &Path) -> EngineResult<(Keyspace, PartitionHandle)> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let keyspace = Config::new(dir).open().map_err(|e| err("open", e))?;
    let partition = keyspace
        .open_partition(
            PARTITION,
            PartitionCreateOptions::default().compression(CompressionType::None),
        )
        .map_err(|e| err("open_partition", e))?;
    Ok((keyspace, partition))
}

impl FjallEngine {
    pub fn open(dir: &Path) -> EngineResult<FjallEngine> {
        Ok(FjallEngine {
            dir: dir.to_path_buf(),
            open: Some(open(dir)?),
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

    fn reopen_fresh(&mut self) -> EngineResult<()> {
        self.close();
        recreate_dir(&self.dir)?;
        self.open = Some(open(&self.dir)?);
        Ok(())
    }

    fn close(&mut self) {
        // Dropping the last Keyspace handle stops and joins fjall's background threads.
        self.open = None;
    }
}
