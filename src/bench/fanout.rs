//! The `watch` workload: fan-out. `--watchers` SSE streams, spread over the endpoints,
//! follow one key (or `--watch-prefix`: every key under `--prefix`), and `--clients`
//! writers put to it at `--rate` (open loop) or as fast as they can. Every value
//! starts with the time it was sent, so each watcher measures each event's delivery
//! latency (sent -> received) into one HDR histogram.
//!
//! Every watch asks for `from_revision` = the cluster's revision before any watcher
//! starts, plus one, so a watcher connecting late still gets every write (late).
//! Writes start once every watcher's stream was accepted (or after `--timeout`).
//! When the writers are done, the watchers drain to the highest acknowledged
//! revision, for at most `--timeout`; then each watcher's revisions are checked against
//! the acknowledged writes ([`Seen::check`]): missed, duplicate and out-of-order events
//! are reported, not hidden.
//!
//! Cost: one task per watcher on the bench's one runtime, one reqwest client (pool)
//! per endpoint, latencies batched into a few locked histograms (`SINKS`).

use super::phase::{self, Observers};
use super::progress::{Goal, Progress};
use super::report::{Percentiles, Tally, WatchStats};
use super::rest::{base_url, exchange, http_client, json_u64};
use super::schedule::{Clock, Outcome, Plan, Sender, TokioClock};
use super::seen::Seen;
use super::target::KEY_IN_PATH;
use super::timeline::Timeline;
use super::watcher::{stamp, Phase, Shared, Sink, Watcher, WatcherResult};
use super::workload::KeyNames;
use crate::endpoints::Access;
use hdrhistogram::Histogram;
use percent_encoding::utf8_percent_encode;
use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Histograms the watchers' latencies go to (watcher `i` uses sink `i % SINKS`).
const SINKS: usize = 16;

/// A `watch` run's settings, checked.
pub struct FanoutSpec {
    pub endpoints: Vec<String>,
    pub watchers: usize,
    /// Watch every key under the prefix instead of one key.
    pub prefix: bool,
    pub names: KeyNames,
    pub prefix_text: String,
    pub keys: u64,
    pub writers: usize,
    pub value_bytes: usize,
    pub timeout: Duration,
    pub seed: u64,
    pub progress_visible: bool,
    /// The CA to trust and the client certificate.
    pub access: Access,
}

/// The writers' tally (the requests of the report), what the watchers received, and
/// the delivery latencies (for `--plot`).
pub struct FanoutResult {
    pub writes: Tally,
    pub elapsed: Duration,
    pub stats: WatchStats,
    pub delivery: Histogram<u64>,
}

/// One writer connection: puts stamped values.
struct Writer {
    base: String,
    http: reqwest::Client,
    names: KeyNames,
    keys: u64,
    prefix: bool,
    value_bytes: usize,
    rng: fastrand::Rng,
    clock: Arc<TokioClock>,
    acknowledged: Arc<Mutex<Vec<u64>>>,
}

impl Sender for Writer {
    fn send(&mut self, _n: u64) -> impl Future<Output = Outcome> + Send {
        let key = if self.prefix {
            self.rng.u64(0..self.keys)
        } else {
            0
        };
        let url = format!(
            "{}/v1/keys/{}",
            self.base,
            utf8_percent_encode(&self.names.name(key), KEY_IN_PATH)
        );
        let value = stamp(self.clock.now(), self.value_bytes);
        let request = self.http.put(url).body(value);
        let acknowledged = Arc::clone(&self.acknowledged);
        async move {
            match exchange(request).await {
                Ok((StatusCode::OK | StatusCode::CREATED, body)) => {
                    match json_u64(&body, "mod_revision") {
                        Some(r) => {
                            acknowledged
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .push(r);
                            Outcome::Ok
                        }
                        None => Outcome::Error("bad answer".into()),
                    }
                }
                Ok((status, _)) => Outcome::Error(format!("http {}", status.as_u16())),
                Err(kind) => Outcome::Error(kind),
            }
        }
    }
}

/// The cluster's revision as the first endpoint reports it.
async fn current_revision(
    endpoint: &str,
    timeout: Duration,
    access: &Access,
) -> Result<u64, String> {
    let http = http_client(timeout, access)?;
    let url = format!("{}/v1/cluster", base_url(endpoint));
    match exchange(http.get(url)).await {
        Ok((StatusCode::OK, body)) => json_u64(&body, "revision")
            .ok_or_else(|| format!("{endpoint}: /v1/cluster has no revision")),
        Ok((status, _)) => Err(format!("{endpoint}: /v1/cluster answered {status}")),
        Err(kind) => Err(format!("{endpoint}: /v1/cluster: {kind}")),
    }
}

/// Runs the fan-out: watchers, then the writers' `plan`, then the drain.
pub async fn run(
    spec: &FanoutSpec,
    plan: Plan,
    timeline: Option<Arc<Timeline>>,
) -> Result<FanoutResult, String> {
    let first = spec
        .endpoints
        .first()
        .ok_or_else(|| "no endpoint".to_string())?;
    let from = current_revision(first, spec.timeout, &spec.access).await? + 1;
    let clock = Arc::new(TokioClock::start());
    let goal = match plan.limit {
        super::schedule::Limit::Requests(n) => Goal::Count(n.saturating_mul(spec.watchers as u64)),
        super::schedule::Limit::Duration(d) => Goal::Time(d),
    };
    let progress = Arc::new(Progress::new("watch", goal, spec.progress_visible));
    let shared = Arc::new(Shared {
        clock: Arc::clone(&clock),
        progress: Arc::clone(&progress),
        connected: Default::default(),
    });
    let sinks: Vec<Arc<Mutex<Sink>>> = (0..SINKS)
        .map(|_| {
            Arc::new(Mutex::new(Sink {
                latency_us: latency_histogram(),
                timeline: timeline.as_ref().map(Timeline::recorder),
            }))
        })
        .collect();
    let query = if spec.prefix {
        format!(
            "prefix={}",
            utf8_percent_encode(&spec.prefix_text, KEY_IN_PATH)
        )
    } else {
        format!(
            "key={}",
            utf8_percent_encode(&spec.names.name(0), KEY_IN_PATH)
        )
    };
    // Streams have no total timeout; only connecting is bounded.
    let clients = spec
        .endpoints
        .iter()
        .map(|_| {
            spec.access
                .apply(reqwest::Client::builder().connect_timeout(spec.timeout))?
                .build()
                .map_err(|e| format!("building the HTTP client: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (phase_tx, phase_rx) = watch::channel(Phase::Run);
    let mut tasks = Vec::with_capacity(spec.watchers);
    for i in 0..spec.watchers {
        let e = i % spec.endpoints.len();
        let watcher = Watcher {
            http: clients[e].clone(),
            url: format!("{}/v1/watch?{query}", base_url(&spec.endpoints[e])),
            from,
            sink: Arc::clone(&sinks[i % SINKS]),
            shared: Arc::clone(&shared),
        };
        tasks.push(tokio::spawn(watcher.run(phase_rx.clone())));
    }
    let ticker = {
        let progress = Arc::clone(&progress);
        tokio::spawn(async move { progress.tick("events").await })
    };
    // Writes begin once every stream is open (or the wait ran out).
    let connect_deadline = tokio::time::Instant::now() + spec.timeout;
    while shared.connected.load(Ordering::Relaxed) < spec.watchers as u64
        && tokio::time::Instant::now() < connect_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected_before = shared.connected.load(Ordering::Relaxed);
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writers = (0..spec.writers)
        .map(|i| {
            Ok(Writer {
                base: base_url(&spec.endpoints[i % spec.endpoints.len()]),
                http: http_client(spec.timeout, &spec.access)?,
                names: spec.names.clone(),
                keys: spec.keys,
                prefix: spec.prefix,
                value_bytes: spec.value_bytes,
                rng: fastrand::Rng::with_seed(spec.seed.wrapping_add(i as u64)),
                clock: Arc::clone(&clock),
                acknowledged: Arc::clone(&acknowledged),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    // The writers' clock starts now: their latencies are from their own due times.
    let writes_started = clock.now();
    let writer_clock = Arc::new(TokioClock::start());
    let writes = phase::run(
        writers,
        plan,
        Arc::clone(&writer_clock),
        Observers::default(),
    )
    .await;
    let elapsed = writer_clock.now();
    let mut acked = std::mem::take(&mut *acknowledged.lock().unwrap_or_else(|p| p.into_inner()));
    acked.sort_unstable();
    acked.dedup();
    // Drain: every watcher to the last acknowledged revision, for at most --timeout.
    let _ = phase_tx.send(Phase::Drain(acked.last().copied().unwrap_or(0)));
    let drain_deadline = tokio::time::Instant::now() + spec.timeout;
    while !tasks.iter().all(|t| t.is_finished()) && tokio::time::Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = phase_tx.send(Phase::Stop);
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.map_err(|e| format!("a watcher stopped: {e}"))?);
    }
    ticker.abort();
    progress.finish();
    let writes = writes?;
    let mut delivery = latency_histogram();
    for sink in &sinks {
        let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = sink.timeline.as_mut() {
            r.flush();
        }
        // Same bounds on both sides: adding cannot fail.
        if let Err(e) = delivery.add(&sink.latency_us) {
            panic!("merging histograms with equal bounds: {e}");
        }
    }
    let stats = summarize(
        &results,
        &acked,
        connected_before,
        writes_started,
        &delivery,
    );
    Ok(FanoutResult {
        writes,
        elapsed,
        stats,
        delivery,
    })
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, super::report::LATENCY_US_MAX, 3)
        // The bounds and precision are constants within hdrhistogram's range.
        .unwrap_or_else(|e| panic!("histogram bounds: {e}"))
}

fn summarize(
    results: &[WatcherResult],
    acked: &[u64],
    connected_before: u64,
    writes_started: Duration,
    delivery: &Histogram<u64>,
) -> WatchStats {
    let mut s = WatchStats {
        watchers: results.len() as u64,
        watchers_connected_before_writes: connected_before,
        reopened: 0,
        refusals_by_kind: BTreeMap::new(),
        writes_acknowledged: acked.len() as u64,
        events_expected: acked.len() as u64 * results.len() as u64,
        events_delivered: 0,
        events_missed: 0,
        events_duplicate: 0,
        events_out_of_order: 0,
        events_unacknowledged: 0,
        events_unstamped: 0,
        watchers_with_gaps: 0,
        delivery_s: 0.0,
        events_per_second: 0.0,
        delivery_latency_us: Percentiles::of(delivery),
    };
    let mut last = writes_started;
    for r in results {
        let seen: &Seen = &r.seen;
        let check = seen.check(acked);
        s.events_delivered += check.delivered;
        s.events_missed += check.missed;
        s.events_unacknowledged += check.unacknowledged + seen.untracked;
        s.events_duplicate += seen.duplicates;
        s.events_out_of_order += seen.out_of_order;
        s.events_unstamped += r.unstamped;
        s.watchers_with_gaps += u64::from(check.missed > 0);
        s.reopened += r.streams.saturating_sub(1);
        for (kind, n) in &r.refusals {
            *s.refusals_by_kind.entry(kind.clone()).or_default() += n;
        }
        last = last.max(r.last_event_at);
    }
    s.delivery_s = last.saturating_sub(writes_started).as_secs_f64();
    if s.delivery_s > 0.0 {
        s.events_per_second = s.events_delivered as f64 / s.delivery_s;
    }
    s
}
