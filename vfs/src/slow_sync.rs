//! [`SlowSyncFs`]: the real file system with every `sync_data` stalled by a delay that
//! can be changed while it runs (a slow or saturated disk), for tests and benchmarks of
//! what waits on an fsync. Everything else goes straight to [`RealFs`].

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{FileLock, FileRead, FileWrite, Fs, Layer, Layered, Mapped, RealFs};

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
        let layer = SlowSync {
            delay_ms: self.delay_ms.clone(),
        };
        Box::new(Layered::new(inner, layer))
    }
}

/// The layer that sleeps before every sync.
#[derive(Debug)]
struct SlowSync {
    delay_ms: Arc<AtomicU64>,
}

impl Layer for SlowSync {
    fn sync_data(&mut self, file: &mut dyn FileWrite) -> io::Result<()> {
        let ms = self.delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
        file.sync_data()
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
