//! The file system as Concierge's storage engine sees it.
//!
//! Every byte the `wal`, `sstable` and `storage` crates put on disk goes through the
//! [`Fs`] trait, so the same engine code runs on the real disk ([`RealFs`]) and on
//! [`SimFs`], an in-memory twin that models what survives a power loss: only file
//! data that was `sync_data`-ed and only directory entries whose directory was
//! `sync_dir`-ed. `SimFs` can also tear the unsynced tail of a file and fail an
//! fsync on demand (LevelDB's `fault_injection_test.cc`, redb's `FuzzerBackend`).
//!
//! Contract the engine relies on (and `SimFs` enforces):
//! - A file's content is durable only up to its last successful `sync_data`.
//! - Creating, renaming or removing a file is durable only after `sync_dir` of the
//!   directory holding it. A rename is atomic.
//! - [`Fs::map`] is only for immutable files that were fully written and synced.

mod layer;
mod real;
mod sim;
mod slow_sync;
mod write_back;

pub use layer::{Layer, Layered};
pub use real::RealFs;
pub use sim::{splitmix64, CrashMode, SimFs};
pub use slow_sync::SlowSyncFs;
pub use write_back::WriteBack;

use std::fmt::Debug;
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

/// A file open for appending. Writes go to the end; `set_len` cuts it.
pub trait FileWrite: Send + Sync + Debug {
    /// Appends all of `buf` at the end of the file.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes every byte written so far durable (fdatasync).
    fn sync_data(&mut self) -> io::Result<()>;
    /// The file's length, including bytes not yet synced.
    fn len(&self) -> u64;
    /// True when the file holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Cuts (or extends with zeros) the file to `len` bytes; later writes append there.
    /// Durable after the next `sync_data`.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Writes `buf` again over bytes `offset..offset + buf.len()`, which must already be
    /// in the file (below `len()`); the length and the append position do not change.
    /// Durable after the next `sync_data`.
    ///
    /// For recovery: after a failed fsync the kernel may keep pages that read back fine
    /// but were never written to the disk, and that no later fsync will write (Linux
    /// marks them clean). Bytes read back from a file and about to be declared durable
    /// are rewritten first, so the sync that follows really writes them.
    fn rewrite(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Reserves room for the file to grow to `bytes` without changing `len()` or where
    /// the next write lands: on the real disk the file is extended sparsely, so later
    /// writes inside it do not change its size and an fdatasync has no size to journal.
    /// Whoever reads the file back must take a zero tail for unwritten space. The
    /// default (and `SimFs`) reserves nothing.
    fn preallocate(&mut self, bytes: u64) -> io::Result<()> {
        let _ = bytes;
        Ok(())
    }
    /// Starts writing bytes `offset..offset + len` to the disk and returns without
    /// waiting: a pacing hint that keeps the file's dirty pages few, so its final
    /// `sync_data` is short and the disk never sees a burst of many megabytes at once
    /// (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`, as RocksDB's `bytes_per_sync`).
    /// Not durability: only `sync_data` is. The default (and `SimFs`) does nothing.
    fn write_back(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
}

/// An exclusive lock on a file, released when dropped.
pub trait FileLock: Send + Sync + Debug {}

/// A file open for random-access reads.
pub trait FileRead: Send + Sync + Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// The file's current length.
    fn len(&self) -> io::Result<u64>;
    /// True when the file holds no bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Tells the OS this handle reads at random offsets, so a read brings in only the
    /// pages it asks for, no readahead (`posix_fadvise(POSIX_FADV_RANDOM)` on the real
    /// disk; nothing in memory).
    fn advise_random(&self) -> io::Result<()> {
        Ok(())
    }

    /// Fills `buf` from `offset`, or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.read_at(buf, offset)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("read past end of file at offset {offset}"),
                ));
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// The bytes of a whole immutable file: a memory map on the real disk, a copy in `SimFs`.
#[derive(Clone)]
pub struct Mapped(Arc<dyn AsRef<[u8]> + Send + Sync>);

impl Mapped {
    /// Wraps any owned byte container.
    pub fn new(bytes: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        Mapped(Arc::new(bytes))
    }
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl Debug for Mapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mapped({} bytes)", self.len())
    }
}

/// The file system operations the storage engine uses. Paths are used as given.
pub trait Fs: Send + Sync + Debug + 'static {
    /// Creates `path` empty (truncating any old file) and opens it for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>>;
    /// Opens an existing file for random-access reads.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FileRead>>;
    /// The whole content of an immutable, synced file.
    fn map(&self, path: &Path) -> io::Result<Mapped>;
    /// Like [`Fs::map`], for reads at random offsets: the real disk advises the kernel
    /// (`madvise(MADV_RANDOM)`) to fault in only the pages touched, not readahead
    /// windows around them. The default is `map` (nothing to advise in memory).
    fn map_random(&self, path: &Path) -> io::Result<Mapped> {
        self.map(path)
    }
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory and its parents (durable at once: directories are not modelled).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The names of the files in a directory, sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// True when a file exists at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Takes an exclusive lock on `path` (created if missing), held until the returned
    /// guard is dropped. Fails with `WouldBlock` while anyone else (another process,
    /// or another open in this one) holds it: one engine per directory.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;

    /// Reads a whole file.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open_read(path)?;
        let len = usize::try_from(file.len()?)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }

    /// Writes `bytes` to `path` so that it is durable and appears whole or not at all:
    /// write a temporary file, fsync it, rename it over `path`, fsync the directory.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let tmp = path.with_extension("tmp");
        let mut file = self.create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        drop(file);
        self.rename(&tmp, path)?;
        self.sync_dir(parent_dir(path))
    }
}

/// Checks that `offset..offset + len` lies inside a file of `file_len` bytes, for
/// `what` ([`FileWrite::rewrite`], [`FileWrite::write_back`]) to name in the error.
pub fn check_range(what: &str, offset: u64, len: u64, file_len: u64) -> io::Result<()> {
    let end = offset.checked_add(len);
    if end.is_none_or(|end| end > file_len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} of {len} bytes at {offset} past the end of a {file_len}-byte file"),
        ));
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
