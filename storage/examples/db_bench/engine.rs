//! The small surface every benchmarked engine offers, so that one workload code path
//! measures all of them the same way. Puts and gets take `&self`: `--threads` runs
//! them from several threads on one engine, as RocksDB's db_bench does.

/// An engine error, already rendered for the user.
pub type EngineResult<T> = Result<T, String>;

/// A key-value engine under test, opened on one directory.
pub trait BenchEngine: Sync {
    /// Writes one entry without waiting for the disk.
    fn put(&self, key: &[u8], value: &[u8]) -> EngineResult<()>;
    /// Writes one entry and returns only once it is durable (fsync).
    fn put_sync(&self, key: &[u8], value: &[u8]) -> EngineResult<()>;
    /// Deletes one key (a tombstone), waiting for the disk when `sync`.
    fn delete(&self, key: &[u8], sync: bool) -> EngineResult<()>;
    /// Looks a key up; returns the value's length when found.
    fn get(&self, key: &[u8]) -> EngineResult<Option<usize>>;
    /// Iterates from the first key in order, calling `visit(key, value)` until it
    /// returns false or the data ends.
    fn scan_all(&self, visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> EngineResult<()>;
    /// Positions at the first key at or after `key` and visits at most `entries`
    /// entries from there in order (RocksDB's `Seek` then `Next`s).
    fn seek(
        &self,
        key: &[u8],
        entries: u64,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> EngineResult<()>;
    /// Waits until the engine's background work is done: the memtables flushed and no
    /// compaction running or due (RocksDB's `waitforcompaction`).
    fn wait_for_compaction(&self) -> EngineResult<()>;
    /// Closes the engine, deletes its directory and opens it again empty.
    fn reopen_fresh(&mut self) -> EngineResult<()>;
    /// Closes the engine (background work stopped, files closed).
    fn close(&mut self);
    /// Engine-specific facts printed after each benchmark (stalls, table counts).
    fn describe(&self) -> Option<String> {
        None
    }
}

/// The engine settings db_bench's flags map to; `None` keeps the engine's default.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineSettings {
    /// Block cache bytes (`--cache_size`).
    pub cache_size: Option<u64>,
    /// Memtable bytes before a flush (`--write_buffer_size`).
    pub write_buffer_size: Option<u64>,
    /// Table bytes between writebacks (`--bytes_per_sync`).
    pub bytes_per_sync: Option<u64>,
    /// Background (compaction) write rate limit (`--rate_limiter_bytes_per_sec`).
    pub rate_limiter_bytes_per_sec: Option<u64>,
    /// Concierge tables read through a memory map (`--table_reads=mapped`); `None`
    /// keeps the engine's default.
    pub table_reads_mapped: Option<bool>,
}

/// Removes `dir` (if present) and creates it empty.
pub fn recreate_dir(dir: &std::path::Path) -> EngineResult<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("removing {}: {e}", dir.display())),
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}
