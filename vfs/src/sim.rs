//! [`SimFs`]: an in-memory [`Fs`] that models a power loss.
//!
//! Each file is an inode with its current bytes and the bytes it had at its last
//! successful `sync_data`. Each directory has its current entries (name -> inode) and
//! the entries it had at its last `sync_dir`. [`SimFs::crash`] keeps only the durable
//! side of both: files whose creation or rename was never made durable vanish or
//! revert, and unsynced bytes are dropped or, with [`CrashMode::TearUnsynced`], cut
//! at a random point. Handles opened before a crash fail afterwards.
//!
//! Faults on demand, with the errors Linux gives:
//! - [`SimFs::fail_sync_after`] makes the n-th next sync fail with `EIO`. As on Linux
//!   (since 4.13), a failed `fsync` drops the dirty pages it could not write: the
//!   file's unsynced bytes stay readable until a crash but are lost for good (a later
//!   sync that succeeds does not persist them; a crash leaves zeros in their place if
//!   later bytes were synced). So code that retries an fsync "as if it had worked"
//!   loses data here as it would on a real disk.
//! - [`SimFs::fail_writes_after`] is a disk that fills up: writes go on for a number of
//!   bytes, the write that crosses it keeps what fits and fails with `ENOSPC` (a short
//!   write: half a record on disk), every later write fails. [`SimFs::fail_writes`] is
//!   the same with no room left at all.
//! - [`SimFs::fail_reads`] makes reads fail with `EIO`, like unreadable sectors.
//!
//! Invariant: `durable` of an inode is only ever replaced by a copy of `data` taken
//! at a successful sync, with the `lost` ranges zeroed; directories are not modelled
//! (they exist once created).

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
    /// Byte ranges whose pages a failed sync dropped: never durable (zeros on disk).
    lost: Vec<(usize, usize)>,
}

/// Linux's `EIO`: what a failed `fsync` or an unreadable sector returns.
const EIO: i32 = 5;
/// Linux's `ENOSPC`: no space left on the device.
const ENOSPC: i32 = 28;

#[derive(Debug, Default, Clone)]
struct State {
    generation: u64,
    next_inode: u64,
    inodes: HashMap<u64, Inode>,
    dirs: BTreeSet<PathBuf>,
    entries: BTreeMap<PathBuf, BTreeMap<String, u64>>,
    durable_entries: BTreeMap<PathBuf, BTreeMap<String, u64>>,
    /// When `Some(n)`: the n-th next sync (0 = the very next) fails.
    fail_sync_in: Option<u64>,
    /// When `Some(n)`: writes may add `n` more bytes, then fail with ENOSPC.
    write_room: Option<u64>,
    /// When set, reads (`read_at`, `map`) fail like a disk that cannot read a sector.
    fail_reads: bool,
    syncs: u64,
    /// Bytes handed to `FileWrite::write_back`, every file together.
    written_back: u64,
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
    io::Error::from_raw_os_error(EIO)
}

/// Length of the longest common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
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
                Err(io::Error::from_raw_os_error(EIO))
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
        st.write_room = None;
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
            inode.lost.clear();
        }
        st.entries = durable_entries;
    }

    /// An independent copy of this file system as it is now (files, durable state,
    /// pending faults), holding no locks: later changes to either are not seen by the
    /// other. For fuzzing and tests that start many runs from one prepared state.
    /// Handles opened on `self` do not work on the copy.
    pub fn fork(&self) -> SimFs {
        let mut st = self.state().clone();
        st.locks.clear();
        st.generation += 1;
        SimFs {
            state: Arc::new(Mutex::new(st)),
        }
    }

    /// Makes the `n`-th next sync (file or directory; 0 = the very next) fail.
    pub fn fail_sync_after(&self, n: u64) {
        self.state().fail_sync_in = Some(n);
    }

    /// Makes every write (and file creation) fail with ENOSPC (true), or succeed again
    /// (false): a full disk.
    pub fn fail_writes(&self, on: bool) {
        self.state().write_room = on.then_some(0);
    }

    /// A disk with `bytes` of room left: writes succeed until they have added that
    /// many bytes; the one that crosses the limit writes the part that fits and fails
    /// with ENOSPC (a short write); later writes fail. `fail_writes(false)` frees it.
    pub fn fail_writes_after(&self, bytes: u64) {
        self.state().write_room = Some(bytes);
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

    /// How many bytes writers have handed to `FileWrite::write_back` so far (a hint the
    /// simulated disk takes no action on: only `sync_data` makes bytes durable).
    pub fn written_back_bytes(&self) -> u64 {
        self.state().written_back
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
            let room = st.write_room;
            let inode = st.inodes.get_mut(&id).ok_or_else(stale)?;
            match room {
                Some(room) if (buf.len() as u64) > room => {
                    let fits = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
                    inode.data.extend_from_slice(&buf[..fits]);
                    st.write_room = Some(0);
                    Err(io::Error::from_raw_os_error(ENOSPC))
                }
                Some(room) => {
                    inode.data.extend_from_slice(buf);
                    st.write_room = Some(room - buf.len() as u64);
                    Ok(())
                }
                None => {
                    inode.data.extend_from_slice(buf);
                    Ok(())
                }
            }
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.with(|st, id| {
            let fault = st.take_sync_fault();
            let inode = st.inodes.get_mut(&id).ok_or_else(stale)?;
            if let Err(e) = fault {
                // Linux marks the pages it failed to write clean: whatever was not
                // durable yet never will be, even if a later sync succeeds.
                let from = common_prefix(&inode.data, &inode.durable);
                if from < inode.data.len() {
                    inode.lost.push((from, inode.data.len()));
                }
                return Err(e);
            }
            if inode.data.starts_with(&inode.durable) {
                let from = inode.durable.len();
                let tail = inode.data[from..].to_vec();
                inode.durable.extend_from_slice(&tail);
            } else {
                inode.durable = inode.data.clone();
            }
            for &(start, end) in &inode.lost {
                let end = end.min(inode.durable.len());
                if start < end {
                    inode.durable[start..end].fill(0);
                }
            }
            Ok(())
        })
    }

    fn len(&self) -> u64 {
        self.with(|st, id| Ok(st.inodes.get(&id).map_or(0, |i| i.data.len() as u64)))
            .unwrap_or(0)
    }

    fn rewrite(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.with(|st, id| {
            let inode = st.inodes.get_mut(&id).ok_or_else(stale)?;
            crate::check_range("rewrite", offset, buf.len() as u64, inode.data.len() as u64)?;
            let start =
                usize::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
            let end = start + buf.len();
            inode.data[start..end].copy_from_slice(buf);
            // The rewritten pages are dirty again: the next sync writes them.
            let mut kept = Vec::with_capacity(inode.lost.len() + 1);
            for &(a, b) in &inode.lost {
                if a < start {
                    kept.push((a, b.min(start)));
                }
                if b > end {
                    kept.push((a.max(end), b));
                }
            }
            inode.lost = kept;
            Ok(())
        })
    }

    fn write_back(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.with(|st, id| {
            let inode = st.inodes.get_mut(&id).ok_or_else(stale)?;
            crate::check_range("write_back", offset, len, inode.data.len() as u64)?;
            st.written_back += len;
            Ok(())
        })
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.with(|st, id| {
            let inode = st.inodes.get_mut(&id).ok_or_else(stale)?;
            let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
            inode.data.resize(len, 0);
            // Cut pages are gone; bytes written there later are new pages.
            inode.lost.retain(|&(start, _)| start < len);
            for range in &mut inode.lost {
                range.1 = range.1.min(len);
            }
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
        if st.write_room == Some(0) {
            return Err(io::Error::from_raw_os_error(ENOSPC));
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
    fn bytes_a_failed_sync_dropped_are_never_durable() {
        let (fs, d) = dir();
        let mut f = fs.create(&d.join("a")).unwrap();
        fs.sync_dir(&d).unwrap();
        f.write_all(b"good").unwrap();
        f.sync_data().unwrap();
        f.write_all(b"LOST").unwrap();
        fs.fail_sync_after(0);
        let err = f.sync_data().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(EIO));
        // Still readable (the page cache), and a retried sync "succeeds"...
        assert_eq!(fs.read_all(&d.join("a")).unwrap(), b"goodLOST");
        f.write_all(b"more").unwrap();
        f.sync_data().unwrap();
        // ...but the dropped bytes never reached the disk.
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.read_all(&d.join("a")).unwrap(), b"good\0\0\0\0more");
    }

    #[test]
    fn rewriting_dropped_bytes_makes_the_next_sync_persist_them() {
        let (fs, d) = dir();
        let mut f = fs.create(&d.join("a")).unwrap();
        fs.sync_dir(&d).unwrap();
        f.write_all(b"0123456789").unwrap();
        fs.fail_sync_after(0);
        assert!(f.sync_data().is_err());
        let seen = fs.read_all(&d.join("a")).unwrap();
        f.rewrite(2, &seen[2..5]).unwrap();
        f.sync_data().unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(
            fs.read_all(&d.join("a")).unwrap(),
            b"\x00\x00234\x00\x00\x00\x00\x00"
        );
        let mut f = fs.open_append(&d.join("a")).unwrap();
        assert!(f.rewrite(8, b"xyz").is_err(), "past the end");
    }

    #[test]
    fn a_full_disk_writes_what_fits_then_fails_with_enospc() {
        let (fs, d) = dir();
        let mut f = fs.create(&d.join("a")).unwrap();
        fs.fail_writes_after(6);
        f.write_all(b"abc").unwrap();
        let err = f.write_all(b"defgh").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(ENOSPC));
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(fs.read_all(&d.join("a")).unwrap(), b"abcdef");
        assert!(f.write_all(b"x").is_err());
        assert!(fs.create(&d.join("b")).is_err());
        fs.fail_writes(false);
        f.write_all(b"!").unwrap();
        assert_eq!(fs.read_all(&d.join("a")).unwrap(), b"abcdef!");
    }

    #[test]
    fn a_fork_is_independent() {
        let (fs, d) = dir();
        fs.write_atomic(&d.join("a"), b"one").unwrap();
        let _held = fs.lock(&d.join("LOCK")).unwrap();
        let copy = fs.fork();
        copy.write_atomic(&d.join("a"), b"two").unwrap();
        assert_eq!(fs.read_all(&d.join("a")).unwrap(), b"one");
        assert_eq!(copy.read_all(&d.join("a")).unwrap(), b"two");
        assert!(
            copy.lock(&d.join("LOCK")).is_ok(),
            "the copy holds no locks"
        );
        copy.crash(CrashMode::DropUnsynced);
        assert_eq!(copy.read_all(&d.join("a")).unwrap(), b"two");
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
