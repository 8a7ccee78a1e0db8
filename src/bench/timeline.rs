//! Latency over time, for `--plot`: one small HDR histogram per second of the run
//! (2 significant digits), keyed by the second in which each answer came.
//!
//! Each client keeps the histogram of its current second in a [`Recorder`] and adds it
//! to the shared [`Timeline`] (one lock) when its second changes or it is dropped, so
//! the lock is taken about once per client per second, and memory grows with the
//! run's seconds, not with its clients or requests.
//!
//! Invariant: every latency recorded through a recorder is in the timeline once the
//! recorder is dropped (or flushed), in the second of its `at`.

use hdrhistogram::Histogram;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The run's per-second histograms of latencies in microseconds.
#[derive(Debug, Default)]
pub struct Timeline {
    seconds: Mutex<Vec<Histogram<u64>>>,
}

/// A second's latency summary, microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Second {
    pub second: u64,
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

fn histogram() -> Histogram<u64> {
    // Auto-resizing: it grows to the largest latency recorded. Two digits are
    // constants within hdrhistogram's range.
    Histogram::new(2).unwrap_or_else(|e| panic!("histogram precision: {e}"))
}

impl Timeline {
    /// A recorder adding to this timeline.
    pub fn recorder(self: &Arc<Timeline>) -> Recorder {
        Recorder {
            timeline: Arc::clone(self),
            second: 0,
            current: histogram(),
        }
    }

    fn add(&self, second: u64, h: &Histogram<u64>) {
        let mut seconds = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        let index = usize::try_from(second).unwrap_or(usize::MAX);
        if seconds.len() <= index {
            seconds.resize_with(index + 1, histogram);
        }
        // Both auto-resize: adding cannot fail for want of range.
        if let Err(e) = seconds[index].add(h) {
            panic!("adding auto-resizing histograms: {e}");
        }
    }

    /// Every second up to the last one with an answer, empty seconds included.
    pub fn seconds(&self) -> Vec<Second> {
        let seconds = self.seconds.lock().unwrap_or_else(|p| p.into_inner());
        seconds
            .iter()
            .enumerate()
            .map(|(i, h)| Second {
                second: i as u64,
                count: h.len(),
                p50: h.value_at_quantile(0.50),
                p99: h.value_at_quantile(0.99),
                max: h.max(),
            })
            .collect()
    }
}

/// One client's view of the timeline: its current second.
#[derive(Debug)]
pub struct Recorder {
    timeline: Arc<Timeline>,
    second: u64,
    current: Histogram<u64>,
}

impl Recorder {
    /// Records a latency that ended `at` after the start of the run.
    pub fn record(&mut self, at: Duration, latency: Duration) {
        let second = at.as_secs();
        if second != self.second {
            self.flush();
            self.second = second;
        }
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        // `record` grows an auto-resizing histogram (`saturating_record` would clamp
        // to its current range instead); it fails only past hdrhistogram's range.
        if self.current.record(us).is_err() {
            self.current.saturating_record(us);
        }
    }

    /// Adds what this recorder holds to the timeline.
    pub fn flush(&mut self) {
        if !self.current.is_empty() {
            self.timeline.add(self.second, &self.current);
            self.current.reset();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_the_second_they_ended() {
        let timeline = Arc::new(Timeline::default());
        let mut a = timeline.recorder();
        let mut b = timeline.recorder();
        let ms = Duration::from_millis;
        a.record(ms(100), ms(1));
        a.record(ms(900), ms(3));
        b.record(ms(500), ms(2));
        a.record(ms(2500), ms(50));
        drop(a);
        // b still holds its second 0: not in the timeline yet.
        assert_eq!(timeline.seconds()[0].count, 2);
        drop(b);
        let s = timeline.seconds();
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].count, s[1].count, s[2].count), (3, 0, 1));
        assert!((1_990..=2_010).contains(&s[0].p50), "{:?}", s[0]);
        assert!((2_990..=3_010).contains(&s[0].max), "{:?}", s[0]);
        assert!((49_000..=51_000).contains(&s[2].p99), "{:?}", s[2]);
    }
}
