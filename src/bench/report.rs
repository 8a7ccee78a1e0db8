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
const LATENCY_US_MAX: u64 = 3_600_000_000;

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
            latency_us: Percentiles {
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p99: h.value_at_quantile(0.99),
                p999: h.value_at_quantile(0.999),
                max: h.max(),
                mean: h.mean(),
            },
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
             latency   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})\n",
            self.ok,
            self.conflicts,
            self.errors,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            ms(l.mean as u64),
        );
        for (kind, n) in &self.errors_by_kind {
            out += &format!("error     {kind}: {n}\n");
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
