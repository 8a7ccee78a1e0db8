//! Compaction writes held to a byte rate, so they leave the disk to the WAL's fsyncs.
//!
//! A compaction writes tens of megabytes as fast as it can merge; a durable write's
//! fdatasync that meets that stream waits behind it. When `compaction_bytes_per_sec`
//! is set, every compaction's table files take their bytes from one [`RateLimiter`]
//! shared by the engine, through a [`RateLimited`] layer. Flushes are never limited: a
//! slow flush stalls writers, which is worse than a busy disk. (Every table file is
//! also written back in steady steps: `vfs::WriteBack`, in `table_file.rs`.)
//!
//! Invariant: the limiter changes when bytes are written, never which bytes or in what
//! order.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vfs::{FileWrite, Layer};

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

/// The layer that holds a file's appends to a [`RateLimiter`]'s rate.
#[derive(Debug)]
pub struct RateLimited(pub Arc<RateLimiter>);

impl Layer for RateLimited {
    fn write_all(&mut self, file: &mut dyn FileWrite, buf: &[u8]) -> io::Result<()> {
        self.0.acquire(buf.len() as u64);
        file.write_all(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_spaces_reservations_by_their_cost() {
        // 1 MB/s: 100 KB costs 100 ms. The first 100 ms fall within the burst allowance.
        let limiter = RateLimiter::new(1_000_000);
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
