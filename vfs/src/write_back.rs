//! A file whose unsynced bytes go to the disk in steady steps, not in one burst.
//!
//! Bytes appended without a sync pile up as dirty pages; the kernel writes them when
//! its writeback decides or at the next `sync_data`, and that sync then has megabytes
//! to write while a durable write's fdatasync on the same disk waits behind it. So a
//! [`WriteBack`] asks the kernel to start writing back the range appended since the
//! last sync or hint (`FileWrite::write_back`, which does not wait) every
//! `bytes_per_sync` bytes, as RocksDB's `bytes_per_sync` does. The WAL's active
//! segment and the storage engine's table files are both written through one.
//!
//! Invariant: pacing changes when bytes reach the disk, never which bytes or in what
//! order; durability still comes only from `sync_data`.

use crate::FileWrite;
use std::io;

/// A file written back every `bytes_per_sync` unsynced bytes (0: never).
#[derive(Debug)]
pub struct WriteBack {
    inner: Box<dyn FileWrite>,
    bytes_per_sync: u64,
    /// Bytes below this offset were synced or handed to `write_back`.
    written_back: u64,
    /// Bytes handed to `write_back` since the last [`WriteBack::take_written_back`].
    handed: u64,
}

impl WriteBack {
    /// Wraps `inner`; bytes already in it count as written back.
    pub fn new(inner: Box<dyn FileWrite>, bytes_per_sync: u64) -> WriteBack {
        WriteBack {
            written_back: inner.len(),
            inner,
            bytes_per_sync,
            handed: 0,
        }
    }

    /// How many bytes were handed to the kernel's write-back since the last call.
    pub fn take_written_back(&mut self) -> u64 {
        std::mem::take(&mut self.handed)
    }
}

impl FileWrite for WriteBack {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        let len = self.inner.len();
        let from = self.written_back.min(len);
        if self.bytes_per_sync > 0 && len - from >= self.bytes_per_sync {
            self.inner.write_back(from, len - from).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("write back {} bytes at {from}: {e}", len - from),
                )
            })?;
            self.handed += len - from;
            self.written_back = len;
        }
        Ok(())
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.inner.sync_data()?;
        self.written_back = self.inner.len();
        Ok(())
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.written_back = self.written_back.min(len);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    /// Records the `write_back` calls it gets.
    #[derive(Debug, Default)]
    struct Recorder {
        len: u64,
        write_backs: Arc<Mutex<Vec<(u64, u64)>>>,
        synced: Arc<AtomicU64>,
    }

    impl FileWrite for Recorder {
        fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
            self.len += buf.len() as u64;
            Ok(())
        }
        fn sync_data(&mut self) -> io::Result<()> {
            self.synced.store(self.len, Ordering::Relaxed);
            Ok(())
        }
        fn len(&self) -> u64 {
            self.len
        }
        fn set_len(&mut self, len: u64) -> io::Result<()> {
            self.len = len;
            Ok(())
        }
        fn rewrite(&mut self, _: u64, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
        fn write_back(&mut self, offset: u64, len: u64) -> io::Result<()> {
            self.write_backs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((offset, len));
            Ok(())
        }
    }

    fn calls(rec: &Arc<Mutex<Vec<(u64, u64)>>>) -> Vec<(u64, u64)> {
        rec.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    #[test]
    fn writes_back_every_bytes_per_sync_and_syncs_only_when_asked() {
        let rec = Recorder::default();
        let (backs, synced) = (rec.write_backs.clone(), rec.synced.clone());
        let mut w = WriteBack::new(Box::new(rec), 1000);
        for _ in 0..8 {
            w.write_all(&[0u8; 300]).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(calls(&backs), [(0, 1200), (1200, 1200)]);
        assert_eq!(w.take_written_back(), 2400);
        assert_eq!(w.take_written_back(), 0, "taking resets the count");
        assert_eq!(
            synced.load(Ordering::Relaxed),
            0,
            "write_back is not a sync"
        );
        w.sync_data().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(synced.load(Ordering::Relaxed), 2400);
    }

    #[test]
    fn a_sync_restarts_the_step() {
        let rec = Recorder::default();
        let backs = rec.write_backs.clone();
        let mut w = WriteBack::new(Box::new(rec), 1000);
        w.write_all(&[0u8; 900]).unwrap_or_else(|e| panic!("{e}"));
        w.sync_data().unwrap_or_else(|e| panic!("{e}"));
        w.write_all(&[0u8; 900]).unwrap_or_else(|e| panic!("{e}"));
        assert!(calls(&backs).is_empty(), "900 unsynced bytes: no hint yet");
        w.write_all(&[0u8; 100]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(calls(&backs), [(900, 1000)]);
    }

    #[test]
    fn a_cut_below_the_written_back_offset_is_never_hinted_past_the_end() {
        let rec = Recorder::default();
        let backs = rec.write_backs.clone();
        let mut w = WriteBack::new(Box::new(rec), 1000);
        w.write_all(&[0u8; 1500]).unwrap_or_else(|e| panic!("{e}"));
        w.set_len(200).unwrap_or_else(|e| panic!("{e}"));
        w.write_all(&[0u8; 1000]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(calls(&backs), [(0, 1500), (200, 1000)]);
    }

    #[test]
    fn zero_never_writes_back() {
        let rec = Recorder::default();
        let backs = rec.write_backs.clone();
        let mut w = WriteBack::new(Box::new(rec), 0);
        w.write_all(&[0u8; 1 << 20])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(calls(&backs).is_empty());
    }
}
