//! [`SimFs`]: an in-memory [`Fs`] that models a power loss.
//!
//! Each file is an inode with its current bytes and the bytes it had at its last
//! successful `sync_data`. Each directory has its current entries (name -> inode) and
//! the entries it had at its last `sync_dir`. [`SimFs::crash`] keeps only the durable
//! side of both: files whose creation or rename was never made durable vanish or
//! revert, and unsynced bytes are dropped or, with [`CrashMode::TearUnsynced`], cut
//! at a random point. Handles opened before a crash fail afterwards.
//!
//! Faults on demand: [`SimFs::fail_sync_after`] makes the n-th next sync fail (and
//! persist nothing); [`SimFs::fail_writes`] makes writes fail, like a full disk;
//! [`SimFs::fail_reads`] makes reads fail, like unreadable sectors.
//!
//! Invariant: `durable` of an inode is only ever replaced by a copy of `data` taken
//! at a successful sync; directories are not modelled (they exist once created).

use crate::{FileLock, FileRead, FileWrite, Fs, Mapped};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// What happens to unsynced bytes at a simulated crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every unsynced byte is lost.
    DropUnsynced,
    /// Each file keeps a pseudo-random prefix of its unsynced appended bytes, seeded.
    TearUnsynced { seed: u64 },
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    next_inode: u64,
    inodes: HashMap<u64, Inode>,
    dirs: BTreeSet<PathBuf>,
    entries: BTreeMap<PathBuf, BTreeMap<String, u64>>,
    durable_entries: BTreeMap<PathBuf, BTreeMap<String, u64>>,
    /// When `Some(n)`: the n-th next sync (0 = the very next) fails.
    fail_sync_in: Option<u64>,
    fail_writes: bool,
    /// When set, reads (`read_at`, `map`) fail like a disk that cannot read a sector.
    fail_reads: bool,
    syncs: u64,
    /// Held locks: path -> the id of the guard holding it. A crash releases them all.
    locks: HashMap<PathBuf, u64>,
    next_lock: u64,
}

/// An in-memory file system that loses what was not synced when told to crash.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad path {path:?}")))?;
    Ok((crate::parent_dir(path).to_path_buf(), name.to_string()))
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no such file {}", path.display()),
    )
}

fn read_failure() -> io::Error {
    io::Error::other("injected read failure")
}

fn stale() -> io::Error {
    io::Error::other("file handle from before a simulated crash")
}

/// One step of SplitMix64 (Steele, Lea, Flood: "Fast splittable PRNGs"): a tiny seeded
/// generator. Picks tear points here; the tests' seeded generators are built on it.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl State {
    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        self.entries
            .get(&dir)
            .and_then(|d| d.get(&name))
            .copied()
            .ok_or_else(|| not_found(path))
    }

    fn ensure_dir(&self, dir: &Path) -> io::Result<()> {
        if self.dirs.contains(dir) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such directory {}", dir.display()),
            ))
        }
    }

    fn take_sync_fault(&mut self) -> io::Result<()> {
        self.syncs += 1;
        match self.fail_sync_in {
            Some(0) => {
                self.fail_sync_in = None;
                Err(io::Error::other("injected fsync failure"))
            }
            Some(n) => {
                self.fail_sync_in = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl SimFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock is a bug in a test; keep going with the data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulates a power loss: afterwards the file system holds only what was durable
    /// (see the module doc). Handles opened before fail from now on.
    pub fn crash(&self, mode: CrashMode) {
        let mut st = self.state();
        st.generation += 1;
        st.locks.clear();
        st.fail_sync_in = None;
        st.fail_writes = false;
        st.fail_reads = false;
        let mut rng = match mode {
            CrashMode::DropUnsynced => 0,
            CrashMode::TearUnsynced { seed } => seed,
        };
        let durable_entries = st.durable_entries.clone();
        let live: BTreeSet<u64> = durable_entries
            .values()
            .flat_map(|d| d.values().copied())
            .collect();
        st.inodes.retain(|id, _| live.contains(id));
        let mut ids: Vec<u64> = st.inodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(inode) = st.inodes.get_mut(&id) else {
                continue;
            };
            let mut data = inode.durable.clone();
            if let CrashMode::TearUnsynced { .. } = mode {
                // Keep a random prefix of bytes appended after the durable ones.
                if inode.data.len() > data.len() && inode.data.starts_with(&data) {
                    let pending = inode.data.len() - data.len();
                    let keep = (splitmix64(&mut rng) % (pending as u64 + 1)) as usize;
                    data.extend_from_slice(
                        &inode.data[inode.durable.len()..inode.durable.len() + keep],
                    );
                }
            }
            inode.data = data.clone();
            inode.durable = data;
        }
        st.entries = durable_entries;
    }

    /// Makes the `n`-th next sync (file or directory; 0 = the very next) fail.
    pub fn fail_sync_after(&self, n: u64) {
        self.state().fail_sync_in = Some(n);
    }

    /// Makes every write fail (true) or succeed again (false).
    pub fn fail_writes(&self, on: bool) {
        self.state().fail_writes = on;
    }

    /// Makes every read (`read_at` and `map`) fail with an I/O error (true), or
    /// succeed again (false): a disk with unreadable sectors.
    pub fn fail_reads(&self, on: bool) {
        self.state().fail_reads = on;
    }

    /// How many syncs (file and directory) have been asked for so far.
    pub fn sync_count(&self) -> u64 {
        self.state().syncs
    }

    /// Flips one bit of a file's current and durable content (for corruption tests).
    pub fn flip_bit(&self, path: &Path, byte: usize, bit: u8) -> io::Result<()> {
        let mut st = self.state();
        let id = st.lookup(path)?;
        let inode = st.inodes.get_mut(&id).ok_or_else(|| not_found(path))?;
        for buf in [&mut inode.data, &mut inode.durable] {
            if let Some(b) = buf.get_mut(byte) {
                *b ^= 1 << (bit % 8);
            }
        }
        Ok(())
    }

    /// Cuts a file (current and durable content) to `len` bytes.
    pub fn truncate_durable(&self, path: &Path, len: usize) -> io::Result<()> {
        let mut st = self.state();
        let id = st.lookup(path)?;
        let inode = st.inodes.get_mut(&id).ok_or_else(|| not_found(path))?;
        inode.data.truncate(len);
        inode.durable.truncate(len);
        Ok(())
    }
}

#[derive(Debug)]
struct SimWrite {
    fs: SimFs,
    inode: u64,
    generation: u64,
}

impl SimWrite {
    fn with<R>(&self, f: impl FnOnce(&mut State, u64) -> io::Result<R>) -> io::Result<R> {
        let mut st = self.fs.state();
        if st.generation != self.generation {
            return Err(stale());
        }
        f(&mut st, self.inode)
    }
}

impl FileWrite for SimWrite {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.with(|st, id| {
            if st.fail_writes {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "injected write failure",
                ));
            }
            let inode = st.inodes.get_mut(&id).ok_or_else(stale)?;
            inode.data.extend_from_slice(buf);
            Ok(())
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.with(|st, id| {
            st.take_sync_fault()?;
            let inode = st.inodes.get_mut(&id).ok_or_else(stale)?;
            if inode.data.starts_with(&inode.durable) {
                let from = inode.durable.len();
                let tail = inode.data[from..].to_vec();
                inode.durable.extend_from_slice(&tail);
            } else {
                inode.durable = inode.data.clone();
            }
            Ok(())
        })
    }

    fn len(&self) -> u64 {
        self.with(|st, id| Ok(st.inodes.get(&id).map_or(0, |i| i.data.len() as u64)))
            .unwrap_or(0)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.with(|st, id| {
            let inode = st.inodes.get_mut(&id).ok_or_else(stale)?;
            let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
            inode.data.resize(len, 0);
            Ok(())
        })
    }
}

#[derive(Debug)]
struct SimRead {
    fs: SimFs,
    inode: u64,
    generation: u64,
}

impl FileRead for SimRead {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let st = self.fs.state();
        if st.generation != self.generation {
            return Err(stale());
        }
        if st.fail_reads {
            return Err(read_failure());
        }
        let inode = st.inodes.get(&self.inode).ok_or_else(stale)?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(inode.data.len());
        let n = buf.len().min(inode.data.len() - start);
        buf[..n].copy_from_slice(&inode.data[start..start + n]);
        Ok(n)
    }

    fn len(&self) -> io::Result<u64> {
        let st = self.fs.state();
        if st.generation != self.generation {
            return Err(stale());
        }
        Ok(st.inodes.get(&self.inode).ok_or_else(stale)?.data.len() as u64)
    }
}

impl Fs for SimFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        let (dir, name) = split(path)?;
        let mut st = self.state();
        st.ensure_dir(&dir)?;
        if st.fail_writes {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "injected write failure",
            ));
        }
        st.next_inode += 1;
        let id = st.next_inode;
        st.inodes.insert(id, Inode::default());
        st.entries.entry(dir).or_default().insert(name, id);
        Ok(Box::new(SimWrite {
            fs: self.clone(),
            inode: id,
            generation: st.generation,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        let st = self.state();
        let id = st.lookup(path)?;
        Ok(Box::new(SimWrite {
            fs: self.clone(),
            inode: id,
            generation: st.generation,
        }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FileRead>> {
        let st = self.state();
        let id = st.lookup(path)?;
        Ok(Arc::new(SimRead {
            fs: self.clone(),
            inode: id,
            generation: st.generation,
        }))
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        let st = self.state();
        let id = st.lookup(path)?;
        if st.fail_reads {
            return Err(read_failure());
        }
        let data = st
            .inodes
            .get(&id)
            .map(|i| i.data.clone())
            .unwrap_or_default();
        Ok(Mapped::new(data))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        let mut st = self.state();
        st.ensure_dir(&to_dir)?;
        let id = st
            .entries
            .get_mut(&from_dir)
            .and_then(|d| d.remove(&from_name))
            .ok_or_else(|| not_found(from))?;
        st.entries.entry(to_dir).or_default().insert(to_name, id);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let mut st = self.state();
        st.entries
            .get_mut(&dir)
            .and_then(|d| d.remove(&name))
            .map(|_| ())
            .ok_or_else(|| not_found(path))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state();
        for dir in path.ancestors() {
            if !dir.as_os_str().is_empty() {
                st.dirs.insert(dir.to_path_buf());
            }
        }
        st.dirs.insert(PathBuf::from("."));
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let st = self.state();
        st.ensure_dir(path)?;
        Ok(st
            .entries
            .get(path)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state();
        st.ensure_dir(path)?;
        st.take_sync_fault()?;
        let current = st.entries.get(path).cloned().unwrap_or_default();
        st.durable_entries.insert(path.to_path_buf(), current);
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        self.state().lookup(path).is_ok()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.state();
        if st.locks.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked", path.display()),
            ));
        }
        st.next_lock += 1;
        let id = st.next_lock;
        st.locks.insert(path.to_path_buf(), id);
        Ok(Box::new(SimLock {
            fs: self.clone(),
            path: path.to_path_buf(),
            id,
        }))
    }
}

/// A lock held in a [`SimFs`]; dropping it releases it unless a crash already did.
#[derive(Debug)]
struct SimLock {
    fs: SimFs,
    path: PathBuf,
    id: u64,
}

impl FileLock for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        let mut st = self.fs.state();
        if st.locks.get(&self.path) == Some(&self.id) {
            st.locks.remove(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (SimFs, PathBuf) {
        let fs = SimFs::new();
        let d = PathBuf::from("/db");
        fs.create_dir_all(&d).unwrap();
        (fs, d)
    }

    #[test]
    fn unsynced_bytes_and_entries_are_lost() {
        let (fs, d) = dir();
        let mut f = fs.create(&d.join("a")).unwrap();
        f.write_all(b"hello").unwrap();
        f.sync_data().unwrap();
        f.write_all(b" world").unwrap();
        // The directory entry was never synced: the file is gone after a crash.
        fs.crash(CrashMode::DropUnsynced);
        assert!(!fs.exists(&d.join("a")));
        assert!(f.write_all(b"x").is_err(), "stale handle must fail");

        let mut f = fs.create(&d.join("b")).unwrap();
        f.write_all(b"hello").unwrap();
        f.sync_data().unwrap();
        fs.sync_dir(&d).unwrap();
        f.write_all(b" world").unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.read_all(&d.join("b")).unwrap(), b"hello");
    }

    #[test]
    fn torn_tail_keeps_a_prefix_of_unsynced_bytes() {
        for seed in 0..50 {
            let (fs, d) = dir();
            let mut f = fs.create(&d.join("a")).unwrap();
            f.write_all(b"durable").unwrap();
            f.sync_data().unwrap();
            fs.sync_dir(&d).unwrap();
            f.write_all(b"-pending-bytes").unwrap();
            fs.crash(CrashMode::TearUnsynced { seed });
            let got = fs.read_all(&d.join("a")).unwrap();
            assert!(got.starts_with(b"durable"));
            assert!(b"durable-pending-bytes".starts_with(&got[..]));
        }
    }

    #[test]
    fn rename_is_durable_only_after_dir_sync() {
        let (fs, d) = dir();
        fs.write_atomic(&d.join("m"), b"v1").unwrap();
        let mut f = fs.create(&d.join("m.tmp")).unwrap();
        f.write_all(b"v2").unwrap();
        f.sync_data().unwrap();
        fs.rename(&d.join("m.tmp"), &d.join("m")).unwrap();
        assert_eq!(fs.read_all(&d.join("m")).unwrap(), b"v2");
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.read_all(&d.join("m")).unwrap(), b"v1");
    }

    #[test]
    fn a_lock_excludes_a_second_holder_until_dropped_or_crash() {
        let (fs, d) = dir();
        let held = fs.lock(&d.join("LOCK")).unwrap();
        assert!(fs.lock(&d.join("LOCK")).is_err());
        drop(held);
        let again = fs.lock(&d.join("LOCK")).unwrap();
        fs.crash(CrashMode::DropUnsynced);
        let after_crash = fs.lock(&d.join("LOCK")).unwrap();
        drop(again); // a pre-crash guard must not release the new holder's lock
        assert!(fs.lock(&d.join("LOCK")).is_err());
        drop(after_crash);
    }

    #[test]
    fn injected_sync_failure_persists_nothing() {
        let (fs, d) = dir();
        let mut f = fs.create(&d.join("a")).unwrap();
        fs.sync_dir(&d).unwrap();
        f.write_all(b"abc").unwrap();
        fs.fail_sync_after(0);
        assert!(f.sync_data().is_err());
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.read_all(&d.join("a")).unwrap(), b"");
    }
}
