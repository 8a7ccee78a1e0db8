//! Table files written at a pace the disk can absorb beside the WAL's fsyncs.
//!
//! A flush or compaction writes tens of megabytes. Left to the kernel, they pile up
//! as dirty pages and reach the disk in one burst, at the table's final fsync or when
//! the kernel's writeback decides, and a durable write's WAL fdatasync that lands in
//! that burst waits behind it. So a table file is wrapped in a [`PacedWrite`]:
//! - every `bytes_per_sync` bytes it asks the kernel to start writing back the range
//!   written since the last time (`FileWrite::write_back`, which does not wait), so the
//!   file's dirty pages go to the disk in steady small steps (RocksDB's
//!   `bytes_per_sync`);
//! - a compaction's files also take their bytes from a [`RateLimiter`] shared by every
//!   compaction of the engine, when `compaction_bytes_per_sec` is set. Flushes are never
//!   limited: a slow flush stalls writers, which is worse than a busy disk.
//!
//! Invariant: pacing changes when bytes reach the disk, never which bytes or in what
//! order; durability still comes only from `sync_data`.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vfs::FileWrite;

/// Shares a byte rate between writers: each write reserves its share of time after
/// the reservations before it and sleeps until its slot begins.
#[derive(Debug)]
pub struct RateLimiter {
    bytes_per_sec: u64,
    /// When the bytes reserved so far will have been allowed through.
    next_free: Mutex<Instant>,
}

/// The most a limiter lets writers bank while idle: a burst of this long at full rate.
const BURST: Duration = Duration::from_millis(100);

impl RateLimiter {
    /// A limiter letting `bytes_per_sec` bytes through per second (at least 1).
    pub fn new(bytes_per_sec: u64) -> RateLimiter {
        RateLimiter {
            bytes_per_sec: bytes_per_sec.max(1),
            next_free: Mutex::new(Instant::now()),
        }
    }

    /// How long a write of `bytes` must wait, reserving its share (does not sleep).
    pub fn reserve(&self, bytes: u64) -> Duration {
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_sec as f64);
        let now = Instant::now();
        let mut next = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
        let start = (*next).max(now.checked_sub(BURST).unwrap_or(now));
        *next = start + cost;
        next.saturating_duration_since(now + cost)
    }

    /// Waits until `bytes` may be written.
    pub fn acquire(&self, bytes: u64) {
        let wait = self.reserve(bytes);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// A table file paced as the module doc says.
#[derive(Debug)]
pub struct PacedWrite {
    inner: Box<dyn FileWrite>,
    bytes_per_sync: u64,
    /// Bytes below this were handed to `write_back`.
    written_back: u64,
    limiter: Option<Arc<RateLimiter>>,
}

impl PacedWrite {
    /// Paces `inner`: writeback every `bytes_per_sync` bytes (0: never), and its bytes
    /// through `limiter` when given.
    pub fn new(
        inner: Box<dyn FileWrite>,
        bytes_per_sync: u64,
        limiter: Option<Arc<RateLimiter>>,
    ) -> PacedWrite {
        PacedWrite {
            inner,
            bytes_per_sync,
            written_back: 0,
            limiter,
        }
    }
}

impl FileWrite for PacedWrite {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if let Some(limiter) = &self.limiter {
            limiter.acquire(buf.len() as u64);
        }
        self.inner.write_all(buf)?;
        let len = self.inner.len();
        let from = self.written_back.min(len);
        if self.bytes_per_sync > 0 && len - from >= self.bytes_per_sync {
            self.inner.write_back(from, len - from)?;
            self.written_back = len;
        }
        Ok(())
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.inner.sync_data()
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

    #[test]
    fn writes_back_every_bytes_per_sync_and_syncs_only_when_asked() {
        let rec = Recorder::default();
        let (calls, synced) = (rec.write_backs.clone(), rec.synced.clone());
        let mut w = PacedWrite::new(Box::new(rec), 1000, None);
        for _ in 0..8 {
            w.write_all(&[0u8; 300]).unwrap_or_else(|e| panic!("{e}"));
        }
        let got = calls.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(got, [(0, 1200), (1200, 1200)]);
        assert_eq!(
            synced.load(Ordering::Relaxed),
            0,
            "write_back is not a sync"
        );
        w.sync_data().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(synced.load(Ordering::Relaxed), 2400);
    }

    #[test]
    fn the_limiter_spaces_reservations_by_their_cost() {
        let limiter = RateLimiter::new(1_000_000); // 1 MB/s: 100 KB costs 100 ms
                                                   // The first 100 ms fall within the burst allowance.
        assert!(limiter.reserve(100_000) <= Duration::from_millis(1));
        let waits: Vec<Duration> = (0..3).map(|_| limiter.reserve(100_000)).collect();
        // Each later reservation starts after the previous one's share.
        for (i, w) in waits.iter().enumerate() {
            let want = Duration::from_millis(100 * (i as u64 + 1));
            assert!(
                w.abs_diff(want) < Duration::from_millis(20),
                "reservation {i}: waits {w:?}, want about {want:?}"
            );
        }
    }
}
