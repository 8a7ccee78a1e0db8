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

use crate::{FileWrite, Layer, Layered};
use std::io;

/// The layer that writes a file back every `bytes_per_sync` unsynced bytes (0: never).
#[derive(Debug)]
pub struct WriteBack {
    bytes_per_sync: u64,
    /// Bytes below this offset were synced or handed to `write_back`.
    written_back: u64,
    /// Bytes handed to `write_back` since the last [`WriteBack::take_written_back`].
    handed: u64,
}

impl WriteBack {
    /// `file` written back every `bytes_per_sync` bytes; bytes already in it count as
    /// written back.
    pub fn wrap(file: Box<dyn FileWrite>, bytes_per_sync: u64) -> Layered<WriteBack> {
        let layer = WriteBack {
            written_back: file.len(),
            bytes_per_sync,
            handed: 0,
        };
        Layered::new(file, layer)
    }

    /// How many bytes were handed to the kernel's write-back since the last call.
    pub fn take_written_back(&mut self) -> u64 {
        std::mem::take(&mut self.handed)
    }
}

impl Layer for WriteBack {
    fn write_all(&mut self, file: &mut dyn FileWrite, buf: &[u8]) -> io::Result<()> {
        file.write_all(buf)?;
        let len = file.len();
        let from = self.written_back.min(len);
        if self.bytes_per_sync > 0 && len - from >= self.bytes_per_sync {
            file.write_back(from, len - from).map_err(|e| {
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
    fn sync_data(&mut self, file: &mut dyn FileWrite) -> io::Result<()> {
        file.sync_data()?;
        self.written_back = file.len();
        Ok(())
    }
    fn set_len(&mut self, file: &mut dyn FileWrite, len: u64) -> io::Result<()> {
        self.written_back = self.written_back.min(len);
        file.set_len(len)
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

    /// What a test watches: the file's `write_back` calls and its synced length.
    struct Watch {
        write_backs: Arc<Mutex<Vec<(u64, u64)>>>,
        synced: Arc<AtomicU64>,
    }

    impl Watch {
        fn calls(&self) -> Vec<(u64, u64)> {
            self.write_backs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        }
    }

    /// An empty recorded file written back every `step` bytes.
    fn recorded(step: u64) -> (Layered<WriteBack>, Watch) {
        let rec = Recorder::default();
        let watch = Watch {
            write_backs: rec.write_backs.clone(),
            synced: rec.synced.clone(),
        };
        (WriteBack::wrap(Box::new(rec), step), watch)
    }

    fn ok<T>(r: io::Result<T>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn writes_back_every_bytes_per_sync_and_syncs_only_when_asked() {
        let (mut w, watch) = recorded(1000);
        for _ in 0..8 {
            ok(w.write_all(&[0u8; 300]));
        }
        assert_eq!(watch.calls(), [(0, 1200), (1200, 1200)]);
        assert_eq!(w.layer_mut().take_written_back(), 2400);
        assert_eq!(
            w.layer_mut().take_written_back(),
            0,
            "taking resets the count"
        );
        assert_eq!(
            watch.synced.load(Ordering::Relaxed),
            0,
            "write_back is not a sync"
        );
        ok(w.sync_data());
        assert_eq!(watch.synced.load(Ordering::Relaxed), 2400);
    }

    #[test]
    fn a_sync_restarts_the_step() {
        let (mut w, watch) = recorded(1000);
        ok(w.write_all(&[0u8; 900]));
        ok(w.sync_data());
        ok(w.write_all(&[0u8; 900]));
        assert!(watch.calls().is_empty(), "900 unsynced bytes: no hint yet");
        ok(w.write_all(&[0u8; 100]));
        assert_eq!(watch.calls(), [(900, 1000)]);
    }

    #[test]
    fn a_cut_below_the_written_back_offset_is_never_hinted_past_the_end() {
        let (mut w, watch) = recorded(1000);
        ok(w.write_all(&[0u8; 1500]));
        ok(w.set_len(200));
        ok(w.write_all(&[0u8; 1000]));
        assert_eq!(watch.calls(), [(0, 1500), (200, 1000)]);
    }

    #[test]
    fn zero_never_writes_back() {
        let (mut w, watch) = recorded(0);
        ok(w.write_all(&[0u8; 1 << 20]));
        assert!(watch.calls().is_empty());
    }

    #[test]
    fn the_layered_file_forwards_what_the_layer_leaves_alone() {
        let (mut w, watch) = recorded(1000);
        ok(w.write_all(&[0u8; 10]));
        ok(w.write_back(3, 4));
        ok(w.preallocate(1 << 20));
        assert_eq!(w.len(), 10, "preallocating does not change the length");
        assert_eq!(
            watch.calls(),
            [(3, 4)],
            "an explicit write_back goes straight through"
        );
    }
}
