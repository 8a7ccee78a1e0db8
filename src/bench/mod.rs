//! `concierge bench`: a load generator for Concierge, and for etcd's JSON gateway so
//! that both are measured by the same client (docs/bench.md).
//!
//! Map: `workload` (what each request does, on which keys), `target` (one op as one
//! HTTP request to Concierge or etcd, and its outcome), `schedule` (open or closed
//! loop, and the loop each client runs), `phase` (one plan run by many clients),
//! `sessions` (the keepalive workload), `fanout`, `watcher` and `seen` (the watch
//! workload), `report` (counts, errors, HDR latencies), `timeline` and `plot`
//! (`--plot`), `progress` (the bar on stderr). This file checks the flags and runs the
//! phases of the workload asked for. Dependencies point down from here; the parts
//! never import this file.

mod fanout;
mod http1;
mod phase;
mod plot;
mod progress;
mod report;
mod rest;
mod schedule;
mod seen;
mod sessions;
mod target;
mod timeline;
mod watcher;
mod workload;

use crate::endpoints::{Access, Endpoints};
use clap::Args;
use phase::Observers;
use progress::{Goal, Progress};
use report::{Report, RunInfo, Tally};
use schedule::{Clock, Limit, Plan, TokioClock};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use target::{Conn, Consistency, Setup, TargetKind};
use timeline::Timeline;
use workload::{KeyNames, Workload, WorkloadKind};

/// `concierge bench WORKLOAD [flags]`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// What every request does.
    #[arg(value_enum)]
    pub workload: WorkloadKind,
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// The system measured.
    #[arg(long, value_enum, default_value = "concierge")]
    pub target: TargetKind,
    /// Concurrent clients, one connection each (watch: the writers).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Stop after this many requests (default 10000 unless --duration is given;
    /// keepalive and watch: 10 seconds).
    #[arg(long, conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Requests per second over all clients (open loop: latency counts from each
    /// request's scheduled time). Without it, closed loop: each client sends as soon
    /// as its last answer came. Keepalive: default every session every ttl/3.
    #[arg(long, value_name = "PER_SECOND")]
    pub rate: Option<f64>,
    /// How many distinct keys the requests draw from.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// The length of every key, prefix included.
    #[arg(long, default_value_t = 16)]
    pub key_bytes: usize,
    /// The length of every value written.
    #[arg(long, default_value_t = 64)]
    pub value_bytes: usize,
    /// What every key starts with.
    #[arg(long, default_value = "bench/")]
    pub prefix: String,
    /// How reads are served (get, mixed).
    #[arg(long, value_enum, default_value = "linearizable")]
    pub consistency: Consistency,
    /// The share of reads in the mixed workload.
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Puts per transaction (txn).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Do not write the keys before a get, mixed or cas run (they already exist).
    #[arg(long)]
    pub no_prefill: bool,
    /// Sessions kept alive (keepalive).
    #[arg(long, default_value_t = 1000)]
    pub sessions: u64,
    /// Each session's TTL (keepalive; 1 to 300 seconds).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub ttl: f64,
    /// Concurrent watches (watch), spread over the endpoints.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Watch every key under --prefix, written at random among --keys, instead of
    /// one key (watch).
    #[arg(long)]
    pub watch_prefix: bool,
    /// Count a request as failed ("timeout") after this many seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Seed of the key choices (client i uses seed + i).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Also draw the latency over time and its distribution to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// Why a bench did not run to its report.
#[derive(Debug)]
pub enum BenchError {
    /// The flags are wrong.
    Usage(String),
    /// The run could not start or finish (runtime, prefill).
    Failed(String),
}

/// The checked flags.
struct Checked {
    /// The request workloads' shared settings (None for keepalive and watch).
    setup: Option<Arc<Setup>>,
    endpoints: Vec<String>,
    clients: usize,
    /// Requests per second asked for, or computed (keepalive); None: closed loop.
    rate: Option<f64>,
    interval: Option<Duration>,
    limit: Limit,
    seed: u64,
    timeout: Duration,
    ttl: Duration,
    names: KeyNames,
    progress_visible: bool,
    /// `--cacert`, `--cert`, `--key`, read.
    access: Access,
}

fn positive_seconds(flag: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag} {s}: not a positive number of seconds"))
}

/// The sessions' TTL, within API.md's 1000..=300000 ms.
fn session_ttl(s: f64) -> Result<Duration, String> {
    let ttl = positive_seconds("--ttl", s)?;
    if !(Duration::from_secs(1)..=Duration::from_secs(300)).contains(&ttl) {
        return Err(format!("--ttl {s}: sessions live 1 to 300 seconds"));
    }
    Ok(ttl)
}

fn check(a: &BenchArgs) -> Result<Checked, String> {
    let endpoints = a.endpoints.list()?;
    let access = a.endpoints.access()?;
    if a.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    let kind = a.workload;
    if a.target == TargetKind::Etcd
        && !matches!(
            kind,
            WorkloadKind::Put | WorkloadKind::Get | WorkloadKind::Mixed
        )
    {
        return Err(format!(
            "--target etcd runs put, get and mixed, not {}",
            kind.name()
        ));
    }
    let ttl = session_ttl(a.ttl)?;
    if kind == WorkloadKind::Keepalive && a.sessions == 0 {
        return Err("--sessions must be at least 1".into());
    }
    if kind == WorkloadKind::Watch && a.watchers == 0 {
        return Err("--watchers must be at least 1".into());
    }
    let rate = match (a.rate, kind) {
        // Every session every ttl/3, as the client library keeps them.
        (None, WorkloadKind::Keepalive) => Some(a.sessions as f64 * 3.0 / ttl.as_secs_f64()),
        (rate, _) => rate,
    };
    let interval = match rate {
        None => None,
        Some(r) if r.is_finite() && r > 0.0 => Some(positive_seconds("--rate", 1.0 / r)?),
        Some(r) => return Err(format!("--rate {r}: not a positive number")),
    };
    let limit = match (a.requests, a.duration) {
        (Some(0), _) => return Err("--requests must be at least 1".into()),
        (Some(n), _) => Limit::Requests(n),
        (None, Some(s)) => Limit::Duration(positive_seconds("--duration", s)?),
        (None, None) if kind.is_request() => Limit::Requests(10_000),
        (None, None) => Limit::Duration(Duration::from_secs(10)),
    };
    let names = KeyNames::new(&a.prefix, a.key_bytes, a.keys)?;
    if a.keys == 0 {
        return Err("--keys must be at least 1".into());
    }
    let timeout = positive_seconds("--timeout", a.timeout)?;
    let setup = if kind.is_request() {
        let workload = Workload::new(kind, a.keys, a.read_ratio, a.batch)?;
        Some(Arc::new(Setup {
            target: a.target,
            workload,
            names: names.clone(),
            consistency: a.consistency,
            value_bytes: a.value_bytes,
            timeout,
            access: access.clone(),
        }))
    } else {
        None
    };
    if let Some(path) = &a.plot {
        if path.as_os_str().is_empty() {
            return Err("--plot needs a file name".into());
        }
    }
    Ok(Checked {
        setup,
        endpoints,
        clients: a.clients,
        rate,
        interval,
        limit,
        seed: a.seed,
        timeout,
        ttl,
        names,
        progress_visible: progress::visible(a.json),
        access,
    })
}

/// Runs the bench and prints its report on stdout.
pub fn main(args: BenchArgs) -> Result<(), BenchError> {
    let checked = check(&args).map_err(BenchError::Usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Failed(format!("starting the runtime: {e}")))?;
    let timeline = args.plot.as_ref().map(|_| Arc::new(Timeline::default()));
    let (report, plotted) = runtime.block_on(async {
        match args.workload {
            WorkloadKind::Keepalive => keepalive(&args, &checked, timeline.clone()).await,
            WorkloadKind::Watch => watch(&args, &checked, timeline.clone()).await,
            _ => requests(&args, &checked, timeline.clone()).await,
        }
    })?;
    if let (Some(path), Some(timeline)) = (&args.plot, &timeline) {
        let (title, what) = plot_titles(&args, &report);
        plot::draw(path, &title, what, &timeline.seconds(), &plotted)
            .map_err(BenchError::Failed)?;
    }
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| BenchError::Failed(format!("encoding the report: {e}")))?;
        println!("{json}");
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

/// The plot's title and what its latency is.
fn plot_titles(args: &BenchArgs, r: &Report) -> (String, &'static str) {
    let mode = match r.info.rate {
        Some(rate) => format!("open loop at {rate:.0}/s"),
        None => "closed loop".into(),
    };
    let what = match args.workload {
        WorkloadKind::Watch => "delivery",
        WorkloadKind::Keepalive => "keepalive",
        _ => "request",
    };
    let title = match &r.watch {
        Some(w) => format!(
            "concierge bench watch: {} watchers, writes {mode}, {:.0} events/s",
            w.watchers, w.events_per_second
        ),
        None => format!(
            "concierge bench {} against {}: {} clients, {mode}, {:.0}/s",
            r.info.workload, r.info.target, r.info.clients, r.throughput
        ),
    };
    (title, what)
}

fn run_info(args: &BenchArgs, c: &Checked) -> RunInfo {
    RunInfo {
        target: match args.target {
            TargetKind::Concierge => "concierge",
            TargetKind::Etcd => "etcd",
        },
        workload: args.workload.name(),
        endpoints: c.endpoints.clone(),
        clients: c.clients,
        rate: c.rate,
        keys_per_request: if args.workload == WorkloadKind::Txn {
            args.batch
        } else {
            1
        },
    }
}

/// A phase's bar: its goal from the plan's limit.
fn bar(c: &Checked, label: &str, limit: Limit) -> Arc<Progress> {
    let goal = match limit {
        Limit::Requests(n) => Goal::Count(n),
        Limit::Duration(d) => Goal::Time(d),
    };
    Arc::new(Progress::new(label, goal, c.progress_visible))
}

/// Runs one phase of `plan` over `senders` with a progress bar; its tally and the
/// time from its start to its last answer.
async fn timed_phase<S: schedule::Sender + Send + 'static>(
    c: &Checked,
    label: &str,
    senders: Vec<S>,
    plan: Plan,
    timeline: Option<Arc<Timeline>>,
) -> Result<(Tally, Duration), BenchError> {
    let progress = bar(c, label, plan.limit);
    let ticker = {
        let progress = Arc::clone(&progress);
        tokio::spawn(async move { progress.tick("requests").await })
    };
    let clock = Arc::new(TokioClock::start());
    let observers = Observers {
        progress: Some(Arc::clone(&progress)),
        timeline,
    };
    let tally = phase::run(senders, plan, Arc::clone(&clock), observers).await;
    let elapsed = clock.now();
    ticker.abort();
    progress.finish();
    Ok((tally.map_err(BenchError::Failed)?, elapsed))
}

/// The request workloads: put, get, mixed, cas, txn.
async fn requests(
    args: &BenchArgs,
    c: &Checked,
    timeline: Option<Arc<Timeline>>,
) -> Result<(Report, hdrhistogram::Histogram<u64>), BenchError> {
    let setup = c
        .setup
        .as_ref()
        .ok_or_else(|| BenchError::Failed("no request workload".into()))?;
    let conns = |prefill: bool| -> Result<Vec<Conn>, BenchError> {
        (0..c.clients)
            .map(|i| {
                let endpoint = &c.endpoints[i % c.endpoints.len()];
                let conn = Conn::new(Arc::clone(setup), endpoint, c.seed.wrapping_add(i as u64))
                    .map_err(BenchError::Failed)?;
                Ok(if prefill { conn.for_prefill() } else { conn })
            })
            .collect()
    };
    if args.workload.reads_existing_keys() && !args.no_prefill {
        let plan = Plan::new(None, Limit::Requests(args.keys));
        let (tally, _) = timed_phase(c, "prefill", conns(true)?, plan, None).await?;
        let errors = tally.failed();
        if errors > 0 {
            return Err(BenchError::Failed(format!(
                "writing the {} keys before the run: {errors} writes failed",
                args.keys
            )));
        }
    }
    let plan = Plan::new(c.interval, c.limit);
    let (tally, elapsed) =
        timed_phase(c, args.workload.name(), conns(false)?, plan, timeline).await?;
    let report = Report::new(run_info(args, c), &tally, elapsed);
    Ok((report, tally.latencies().clone()))
}

/// The keepalive workload: create the sessions, keep them alive (measured), close them.
async fn keepalive(
    args: &BenchArgs,
    c: &Checked,
    timeline: Option<Arc<Timeline>>,
) -> Result<(Report, hdrhistogram::Histogram<u64>), BenchError> {
    use sessions::{Pool, SessionConn, Step};
    let pool = Arc::new(Pool::new(args.sessions, c.ttl));
    let conns = |step: Step| -> Result<Vec<SessionConn>, BenchError> {
        (0..c.clients)
            .map(|i| {
                let endpoint = &c.endpoints[i % c.endpoints.len()];
                SessionConn::new(Arc::clone(&pool), step, endpoint, c.timeout, &c.access)
                    .map_err(BenchError::Failed)
            })
            .collect()
    };
    let plan = Plan::new(None, Limit::Requests(pool.len()));
    let created = timed_phase(c, "create", conns(Step::Create)?, plan, None).await;
    // Keep the created sessions alive only if all were created; close them anyway.
    let measured = match &created {
        Ok((tally, _)) if tally.failed() == 0 => {
            let plan = Plan::new(c.interval, c.limit);
            Some(timed_phase(c, "keepalive", conns(Step::Keepalive)?, plan, timeline).await)
        }
        _ => None,
    };
    let plan = Plan::new(None, Limit::Requests(pool.len()));
    let (closed, _) = timed_phase(c, "close", conns(Step::Close)?, plan, None).await?;
    let (create_tally, create_elapsed) = created?;
    let Some(measured) = measured else {
        return Err(BenchError::Failed(format!(
            "creating {} sessions: {} failed ({}); those created were closed",
            pool.len(),
            create_tally.failed(),
            Report::new(run_info(args, c), &create_tally, create_elapsed)
                .errors_by_kind
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let (tally, elapsed) = measured?;
    let mut report = Report::new(run_info(args, c), &tally, elapsed);
    report.sessions = Some(pool.stats(create_elapsed.as_secs_f64(), closed.failed()));
    Ok((report, tally.latencies().clone()))
}

/// The watch workload: watchers, writers, and what the watchers received.
async fn watch(
    args: &BenchArgs,
    c: &Checked,
    timeline: Option<Arc<Timeline>>,
) -> Result<(Report, hdrhistogram::Histogram<u64>), BenchError> {
    let spec = fanout::FanoutSpec {
        endpoints: c.endpoints.clone(),
        watchers: args.watchers,
        prefix: args.watch_prefix,
        names: c.names.clone(),
        prefix_text: args.prefix.clone(),
        keys: args.keys,
        writers: c.clients,
        value_bytes: args.value_bytes,
        timeout: c.timeout,
        seed: c.seed,
        progress_visible: c.progress_visible,
        access: c.access.clone(),
    };
    let plan = Plan::new(c.interval, c.limit);
    let result = fanout::run(&spec, plan, timeline)
        .await
        .map_err(BenchError::Failed)?;
    let mut report = Report::new(run_info(args, c), &result.writes, result.elapsed);
    report.watch = Some(result.stats);
    Ok((report, result.delivery))
}
