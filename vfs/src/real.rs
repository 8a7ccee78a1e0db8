//! [`RealFs`]: the [`Fs`] trait on the operating system's file system.
//!
//! `sync_data` is `fdatasync(2)`; `write_back` is `sync_file_range(2)`; `sync_dir` opens the directory and fsyncs it;
//! `map` memory-maps the file read-only (only ever used on immutable, synced files);
//! `map_random` also advises `MADV_RANDOM` (no readahead around a faulted page), and
//! `FileRead::advise_random` is `posix_fadvise(POSIX_FADV_RANDOM)` on that handle.

use crate::{check_range, FileLock, FileRead, FileWrite, Fs, Mapped};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::Arc;

/// The real disk.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl RealFs {
    /// A handle on the real file system, shareable as `Arc<dyn Fs>`.
    pub fn shared() -> Arc<dyn Fs> {
        Arc::new(RealFs)
    }
}

/// A file written at an explicit position (`pwrite`), so that bytes reserved by
/// `preallocate` past the logical end are overwritten in place, not appended after.
///
/// Invariant: `len` is the logical length: every byte below it was written (or set by
/// `set_len`); the file on disk may be longer, by zeros, after `preallocate`.
#[derive(Debug)]
struct RealWrite {
    file: File,
    len: u64,
}

impl FileWrite for RealWrite {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all_at(buf, self.len)?;
        self.len += buf.len() as u64;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.len = len;
        Ok(())
    }

    fn rewrite(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        check_range("rewrite", offset, buf.len() as u64, self.len)?;
        self.file.write_all_at(buf, offset)
    }

    fn preallocate(&mut self, bytes: u64) -> io::Result<()> {
        if self.file.metadata()?.len() < bytes {
            self.file.set_len(bytes)?;
        }
        Ok(())
    }

    fn write_back(&mut self, offset: u64, len: u64) -> io::Result<()> {
        let past = || io::Error::new(io::ErrorKind::InvalidInput, "write_back past 2^63");
        let start = libc::off64_t::try_from(offset).map_err(|_| past())?;
        let nbytes = libc::off64_t::try_from(len).map_err(|_| past())?;
        if nbytes == 0 {
            return Ok(());
        }
        let flags = libc::SYNC_FILE_RANGE_WRITE;
        // SAFETY: `sync_file_range` only reads its integer arguments; the descriptor is
        // this file's own and open for as long as `self.file` lives.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::sync_file_range(self.file.as_raw_fd(), start, nbytes, flags) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[derive(Debug)]
struct RealRead {
    file: File,
}

impl FileRead for RealRead {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn advise_random(&self) -> io::Result<()> {
        // SAFETY: `posix_fadvise` only reads its integer arguments; the descriptor is
        // this file's own and open for as long as `self.file` lives.
        #[allow(unsafe_code)]
        let rc =
            unsafe { libc::posix_fadvise(self.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }
}

/// Holds an advisory `flock` on an open file; closing the file releases it.
#[derive(Debug)]
struct RealLock {
    _file: File,
}

impl FileLock for RealLock {}

fn with_path(err: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{what} {}: {err}", path.display()))
}

impl Fs for RealFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
            .map_err(|e| with_path(e, "create", path))?;
        Ok(Box::new(RealWrite { file, len: 0 }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| with_path(e, "open for append", path))?;
        let len = file.metadata()?.len();
        Ok(Box::new(RealWrite { file, len }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FileRead>> {
        let file = File::open(path).map_err(|e| with_path(e, "open", path))?;
        Ok(Arc::new(RealRead { file }))
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        Ok(mmap_file(path)?.map_or_else(|| Mapped::new(Vec::new()), Mapped::new))
    }

    fn map_random(&self, path: &Path) -> io::Result<Mapped> {
        let Some(mmap) = mmap_file(path)? else {
            return Ok(Mapped::new(Vec::new()));
        };
        mmap.advise(memmap2::Advice::Random)
            .map_err(|e| with_path(e, "madvise(MADV_RANDOM)", path))?;
        Ok(Mapped::new(mmap))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to).map_err(|e| with_path(e, "rename", from))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path).map_err(|e| with_path(e, "remove", path))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path).map_err(|e| with_path(e, "create dir", path))
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path).map_err(|e| with_path(e, "list", path))? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)
            .and_then(|d| d.sync_all())
            .map_err(|e| with_path(e, "fsync dir", path))
    }

    fn exists(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| with_path(e, "open lock file", path))?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(RealLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another process", path.display()),
            )),
            Err(fs::TryLockError::Error(e)) => Err(with_path(e, "lock", path)),
        }
    }
}

/// Maps the whole of `path` read-only; `None` for an empty file (which cannot be mapped).
fn mmap_file(path: &Path) -> io::Result<Option<memmap2::Mmap>> {
    let file = File::open(path).map_err(|e| with_path(e, "open", path))?;
    if file.metadata()?.len() == 0 {
        return Ok(None);
    }
    #[allow(unsafe_code)]
    // SAFETY: only immutable files that were fully written and fsynced before
    // publication are mapped (`Fs::map`, `Fs::map_random`); nothing in this process
    // truncates or writes them while mapped, which keeps the mapping's bytes stable.
    let mmap = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| with_path(e, "mmap", path))?;
    Ok(Some(mmap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_back_of_written_ranges_succeeds_and_refuses_impossible_offsets() {
        let dir = std::env::temp_dir().join(format!("vfs-writeback-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut f = RealFs.create(&path).unwrap();
        f.write_all(&[7u8; 1 << 16]).unwrap();
        f.write_back(0, 1 << 15).unwrap();
        f.write_back(1 << 15, 1 << 15).unwrap();
        f.write_back(0, 0).unwrap();
        assert!(f.write_back(u64::MAX, 1).is_err(), "offset past 2^63");
        f.sync_data().unwrap();
        assert_eq!(RealFs.read_all(&path).unwrap(), vec![7u8; 1 << 16]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_land_at_the_logical_end_inside_preallocated_room() {
        let dir = std::env::temp_dir().join(format!("vfs-prealloc-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut f = RealFs.create(&path).unwrap();
        f.write_all(b"head").unwrap();
        f.preallocate(4096).unwrap();
        assert_eq!(f.len(), 4);
        f.write_all(b"tail").unwrap();
        f.sync_data().unwrap();
        let bytes = RealFs.read_all(&path).unwrap();
        assert_eq!(bytes.len(), 4096, "the reserved room is on disk, as zeros");
        assert_eq!(&bytes[..8], b"headtail");
        assert!(bytes[8..].iter().all(|&b| b == 0));
        drop(f);
        let mut f = RealFs.open_append(&path).unwrap();
        f.set_len(8).unwrap();
        f.write_all(b"!").unwrap();
        assert_eq!(RealFs.read_all(&path).unwrap(), b"headtail!");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_lock_on_the_same_file_fails_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("vfs-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("LOCK");
        let held = RealFs.lock(&path).unwrap();
        let err = RealFs.lock(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        assert!(RealFs.lock(&path).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }
}
