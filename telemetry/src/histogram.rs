//! A histogram with fixed bucket bounds and atomic counters.
//!
//! Invariants: `bounds` ascend strictly; bucket `i` counts the values `v` with
//! `bounds[i-1] < v <= bounds[i]` (Prometheus' `le`), and one more bucket counts the
//! values above the last bound (`+Inf`). Recording is three relaxed atomic adds, so a
//! snapshot taken while others record may see a count a few values ahead of the sum:
//! Prometheus tolerates that, and nothing here reasons across the fields.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Latency bucket bounds in nanoseconds: 10 µs to 10 s, about 2.5x apart (the
/// Prometheus client defaults, extended down to the tens of microseconds a local
/// fsync or an in-memory request takes).
pub const LATENCY_BOUNDS_NANOS: &[u64] = &[
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Bucket bounds for counts (commands per batch, entries per step): powers of two.
pub const BATCH_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/// A histogram many threads record into at once.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// One per bound, plus the `+Inf` bucket; not cumulative.
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
    count: AtomicU64,
}

/// What a histogram held at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub bounds: &'static [u64],
    /// Per bucket (not cumulative), the last one for values above every bound.
    pub counts: Vec<u64>,
    pub sum: u64,
    pub count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds`, which must ascend strictly.
    pub fn new(bounds: &'static [u64]) -> Histogram {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds must ascend");
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// An empty latency histogram (nanoseconds, [`LATENCY_BOUNDS_NANOS`]).
    pub fn latency() -> Histogram {
        Histogram::new(LATENCY_BOUNDS_NANOS)
    }

    /// Records one value.
    pub fn observe(&self, value: u64) {
        let bucket = self.bounds.partition_point(|&b| b < value);
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    /// Records one duration, in nanoseconds (saturating at u64::MAX, 584 years).
    pub fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// The counts so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum: self.sum.load(Relaxed),
            count: self.count.load(Relaxed),
        }
    }
}

impl HistogramSnapshot {
    /// The smallest bound at or below which at least `q` (0..=1) of the values lie;
    /// `None` when empty, `u64::MAX` when that is the `+Inf` bucket.
    pub fn quantile_bound(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let want = (q.clamp(0.0, 1.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return Some(self.bounds.get(i).copied().unwrap_or(u64::MAX));
            }
        }
        Some(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_bucket_whose_bound_is_at_or_above_them() {
        let h = Histogram::new(&[1, 2, 4]);
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.counts, vec![2, 1, 2, 2]); // <=1: 0,1; <=2: 2; <=4: 3,4; +Inf: 5,100
        assert_eq!(s.count, 7);
        assert_eq!(s.sum, 115);
        assert_eq!(s.quantile_bound(0.5), Some(4));
        assert_eq!(s.quantile_bound(1.0), Some(u64::MAX));
        assert_eq!(Histogram::new(&[1]).snapshot().quantile_bound(0.5), None);
    }

    #[test]
    fn threads_lose_no_observation() {
        let h = Histogram::latency();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let h = &h;
                s.spawn(move || {
                    for i in 0..10_000u64 {
                        h.observe(i * 1000 + t);
                    }
                });
            }
        });
        let s = h.snapshot();
        assert_eq!(s.count, 40_000);
        assert_eq!(s.counts.iter().sum::<u64>(), 40_000);
    }
}
