//! [`SlowSyncFs`]: the real file system with every `sync_data` stalled by a delay that
//! can be changed while it runs (a slow or saturated disk), for tests and benchmarks of
//! what waits on an fsync. Everything else goes straight to [`RealFs`].

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{FileLock, FileRead, FileWrite, Fs, Mapped, RealFs};

/// The real file system with slow fsyncs; clones share the delay.
#[derive(Debug, Clone, Default)]
pub struct SlowSyncFs {
    delay_ms: Arc<AtomicU64>,
}

impl SlowSyncFs {
    /// Every `sync_data` of a file opened through it first sleeps `delay_ms` (0: none).
    pub fn new(delay_ms: u64) -> SlowSyncFs {
        SlowSyncFs {
            delay_ms: Arc::new(AtomicU64::new(delay_ms)),
        }
    }

    /// The shared delay, to change it while files are open.
    pub fn delay_ms(&self) -> Arc<AtomicU64> {
        self.delay_ms.clone()
    }

    fn wrap(&self, inner: Box<dyn FileWrite>) -> Box<dyn FileWrite> {
        Box::new(SlowSyncFile {
            inner,
            delay_ms: self.delay_ms.clone(),
        })
    }
}

#[derive(Debug)]
struct SlowSyncFile {
    inner: Box<dyn FileWrite>,
    delay_ms: Arc<AtomicU64>,
}

impl FileWrite for SlowSyncFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        let ms = self.delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
        self.inner.sync_data()
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn rewrite(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.inner.rewrite(offset, buf)
    }
    fn preallocate(&mut self, bytes: u64) -> io::Result<()> {
        self.inner.preallocate(bytes)
    }
    fn write_back(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.write_back(offset, len)
    }
}

impl Fs for SlowSyncFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(self.wrap(RealFs.create(path)?))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(self.wrap(RealFs.open_append(path)?))
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FileRead>> {
        RealFs.open_read(path)
    }
    fn map(&self, path: &Path) -> io::Result<Mapped> {
        RealFs.map(path)
    }
    fn map_random(&self, path: &Path) -> io::Result<Mapped> {
        RealFs.map_random(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        RealFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        RealFs.remove_file(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        RealFs.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        RealFs.list_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        RealFs.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        RealFs.exists(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        RealFs.lock(path)
    }
}
