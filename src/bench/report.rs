//! What a run measured: counts by outcome, errors by kind, and an HDR histogram of
//! latencies in microseconds; printed as text or as one JSON document.
//!
//! Invariant: `count == ok + conflicts + errors`, and every request counted has its
//! latency in the histogram (failed ones too: a timeout is a slow answer).

use super::schedule::Outcome;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The longest latency the histogram tells apart (one hour); longer ones count as it.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// One client's counts; merged into the run's at the end.
pub struct Tally {
    latency_us: Histogram<u64>,
    ok: u64,
    conflicts: u64,
    errors: BTreeMap<String, u64>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            latency_us: Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                // The bounds and precision are constants within hdrhistogram's range.
                .unwrap_or_else(|e| panic!("histogram bounds: {e}")),
            ok: 0,
            conflicts: 0,
            errors: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, outcome: &Outcome, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us
            .saturating_record(us.clamp(1, LATENCY_US_MAX));
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Conflict => self.conflicts += 1,
            Outcome::Error(kind) => *self.errors.entry(kind.clone()).or_default() += 1,
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        // Same bounds on both sides: adding cannot fail.
        if let Err(e) = self.latency_us.add(&other.latency_us) {
            panic!("merging histograms with equal bounds: {e}");
        }
        self.ok += other.ok;
        self.conflicts += other.conflicts;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
    }

    /// Requests that ended in an error.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Every latency recorded, microseconds.
    pub fn latencies(&self) -> &Histogram<u64> {
        &self.latency_us
    }
}

/// The run's settings, as the report repeats them.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub target: &'static str,
    pub workload: &'static str,
    pub endpoints: Vec<String>,
    pub clients: usize,
    /// Requests per second asked for (open loop), or None (closed loop).
    pub rate: Option<f64>,
    /// Keys written per request (the batch of a txn, else 1).
    pub keys_per_request: usize,
}

/// Latency percentiles, microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Percentiles {
    /// The percentiles of a histogram (all 0 when it is empty).
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }

    /// One line for people.
    fn text(&self) -> String {
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max),
            ms(self.mean as u64),
        )
    }
}

/// What the session phases found (the keepalive latencies are the report's own).
#[derive(Debug, Clone, Serialize)]
pub struct SessionStats {
    pub sessions: u64,
    pub ttl_ms: u64,
    pub created: u64,
    pub create_s: f64,
    /// Sessions that answered 404 to a keepalive or to their close: expired although
    /// kept alive. Must be 0.
    pub lost: u64,
    /// Of `lost`, those found only when closing.
    pub lost_at_close: u64,
    pub closed: u64,
    pub close_errors: u64,
}

/// What the watchers received.
#[derive(Debug, Clone, Serialize)]
pub struct WatchStats {
    pub watchers: u64,
    /// Watchers whose first stream was accepted before the writes began.
    pub watchers_connected_before_writes: u64,
    /// Streams reopened after a break or an end by the server.
    pub reopened: u64,
    /// Watch requests refused or failed, by kind.
    pub refusals_by_kind: BTreeMap<String, u64>,
    pub writes_acknowledged: u64,
    /// `writes_acknowledged * watchers`: what a lossless fan-out delivers.
    pub events_expected: u64,
    pub events_delivered: u64,
    /// Acknowledged writes some watcher never received (gaps). Must be 0.
    pub events_missed: u64,
    pub events_duplicate: u64,
    pub events_out_of_order: u64,
    /// Received revisions that no acknowledged write made (a write whose answer was
    /// lost, or another client writing the watched keys).
    pub events_unacknowledged: u64,
    /// Events whose value held no time stamp of this run (no latency for them).
    pub events_unstamped: u64,
    /// Watchers that missed at least one event.
    pub watchers_with_gaps: u64,
    /// From the first write to the last event received.
    pub delivery_s: f64,
    /// `events_delivered / delivery_s`, over all watchers.
    pub events_per_second: f64,
    /// Sent (by the writer) -> received (by a watcher), per event.
    pub delivery_latency_us: Percentiles,
}

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub info: RunInfo,
    pub count: u64,
    pub ok: u64,
    pub conflicts: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    /// Requests answered per second (whatever the answer).
    pub throughput: f64,
    pub latency_us: Percentiles,
    /// The `keepalive` workload's sessions (its requests are the keepalives).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionStats>,
    /// The `watch` workload's deliveries (its requests are the writes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchStats>,
}

impl Report {
    pub fn new(info: RunInfo, tally: &Tally, elapsed: Duration) -> Report {
        let h = &tally.latency_us;
        let count = h.len();
        let elapsed_s = elapsed.as_secs_f64();
        let errors: u64 = tally.errors.values().sum();
        assert_eq!(
            count,
            tally.ok + tally.conflicts + errors,
            "a request uncounted"
        );
        Report {
            info,
            count,
            ok: tally.ok,
            conflicts: tally.conflicts,
            errors,
            errors_by_kind: tally.errors.clone(),
            elapsed_s,
            throughput: if elapsed_s > 0.0 {
                count as f64 / elapsed_s
            } else {
                0.0
            },
            latency_us: Percentiles::of(h),
            sessions: None,
            watch: None,
        }
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let i = &self.info;
        let mode = match i.rate {
            Some(r) => format!("open loop at {r}/s"),
            None => "closed loop".into(),
        };
        let l = &self.latency_us;
        let mut out = format!(
            "{} against {} ({}), {} clients, {mode}\n\
             requests  {} in {:.2} s: {:.1}/s",
            i.workload,
            i.target,
            i.endpoints.join(","),
            i.clients,
            self.count,
            self.elapsed_s,
            self.throughput,
        );
        if i.keys_per_request > 1 {
            out += &format!(
                " ({:.1} keys/s)",
                self.throughput * i.keys_per_request as f64
            );
        }
        out += &format!(
            "\noutcomes  ok {}, conflicts {}, errors {}\n\
             latency   {}\n",
            self.ok,
            self.conflicts,
            self.errors,
            l.text(),
        );
        for (kind, n) in &self.errors_by_kind {
            out += &format!("error     {kind}: {n}\n");
        }
        if let Some(s) = &self.sessions {
            out += &format!(
                "sessions  {} of {} created in {:.2} s (ttl {} ms), lost {} ({} found at close), \
                 closed {}, close errors {}\n",
                s.created,
                s.sessions,
                s.create_s,
                s.ttl_ms,
                s.lost,
                s.lost_at_close,
                s.closed,
                s.close_errors,
            );
        }
        if let Some(w) = &self.watch {
            out += &format!(
                "watchers  {} ({} streaming before the writes), reopened {}\n\
                 events    {} of {} delivered in {:.2} s: {:.1}/s; missed {} ({} watchers), \
                 duplicate {}, out of order {}, unacknowledged {}\n\
                 delivery  {}\n",
                w.watchers,
                w.watchers_connected_before_writes,
                w.reopened,
                w.events_delivered,
                w.events_expected,
                w.delivery_s,
                w.events_per_second,
                w.events_missed,
                w.watchers_with_gaps,
                w.events_duplicate,
                w.events_out_of_order,
                w.events_unacknowledged,
                w.delivery_latency_us.text(),
            );
            for (kind, n) in &w.refusals_by_kind {
                out += &format!("refused   {kind}: {n}\n");
            }
        }
        out
    }
}

/// Microseconds as milliseconds, for people.
fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_percentiles_are_ordered() {
        let mut a = Tally::new();
        let mut b = Tally::new();
        for ms in 1..=100u64 {
            a.record(&Outcome::Ok, Duration::from_millis(ms));
        }
        b.record(&Outcome::Conflict, Duration::from_millis(5));
        b.record(&Outcome::Error("http 503".into()), Duration::from_secs(2));
        a.merge(&b);
        let info = RunInfo {
            target: "concierge",
            workload: "put",
            endpoints: vec!["127.0.0.1:1".into()],
            clients: 1,
            rate: None,
            keys_per_request: 1,
        };
        let r = Report::new(info, &a, Duration::from_secs(1));
        assert_eq!((r.count, r.ok, r.conflicts, r.errors), (102, 100, 1, 1));
        assert_eq!(r.errors_by_kind["http 503"], 1);
        let l = &r.latency_us;
        assert!(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max);
        assert!((1_990_000..=2_010_000).contains(&l.max), "{}", l.max);
        assert!(r.text().contains("error     http 503: 1"));
    }
}
