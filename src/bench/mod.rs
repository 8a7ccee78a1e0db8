//! `concierge bench`: a load generator for Concierge, and for etcd's JSON gateway so
//! that both are measured by the same client (docs/bench.md).
//!
//! Map: `workload` (what each request does, on which keys), `target` (one op as one
//! HTTP request to Concierge or etcd, and its outcome), `schedule` (open or closed
//! loop, and the loop each client runs), `report` (counts, errors, HDR latencies),
//! `progress` (the line on stderr). This file checks the flags and runs the phases:
//! fill the keys a read workload needs (not measured), then the measured run.
//! Dependencies point down from here; the parts never import this file.

mod progress;
mod report;
mod schedule;
mod target;
mod workload;

use clap::Args;
use progress::Progress;
use report::{Report, RunInfo, Tally};
use schedule::{drive, Limit, Plan, TokioClock};
use std::sync::Arc;
use std::time::Duration;
use target::{Conn, Consistency, Setup, TargetKind};
use workload::{KeyNames, Workload, WorkloadKind};

/// `concierge bench WORKLOAD [flags]`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// What every request does.
    #[arg(value_enum)]
    pub workload: WorkloadKind,
    /// The nodes, comma-separated host:port or URLs; clients are spread over them.
    #[arg(
        long,
        env = "CONCIERGE_ENDPOINTS",
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT,..."
    )]
    pub endpoints: String,
    /// The system measured.
    #[arg(long, value_enum, default_value = "concierge")]
    pub target: TargetKind,
    /// Concurrent clients, one connection each.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Stop after this many requests (default 10000 unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Requests per second over all clients (open loop: latency counts from each
    /// request's scheduled time). Without it, closed loop: each client sends as soon
    /// as its last answer came.
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
    /// Count a request as failed ("timeout") after this many seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Seed of the key choices (client i uses seed + i).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the report as one JSON document.
    #[arg(long)]
    pub json: bool,
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
    setup: Arc<Setup>,
    endpoints: Vec<String>,
    clients: usize,
    interval: Option<Duration>,
    limit: Limit,
    seed: u64,
}

fn positive_seconds(flag: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag} {s}: not a positive number of seconds"))
}

fn check(a: &BenchArgs) -> Result<Checked, String> {
    let endpoints: Vec<String> = a
        .endpoints
        .split(',')
        .map(|e| e.trim().to_string())
        .collect();
    if endpoints.iter().any(String::is_empty) {
        return Err(format!("--endpoints {:?}: an entry is empty", a.endpoints));
    }
    if a.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    if a.target == TargetKind::Etcd && matches!(a.workload, WorkloadKind::Cas | WorkloadKind::Txn) {
        return Err(format!(
            "--target etcd runs put, get and mixed, not {}",
            a.workload.name()
        ));
    }
    let interval = match a.rate {
        None => None,
        Some(r) if r.is_finite() && r > 0.0 => Some(positive_seconds("--rate", 1.0 / r)?),
        Some(r) => return Err(format!("--rate {r}: not a positive number")),
    };
    let limit = match (a.requests, a.duration) {
        (Some(0), _) => return Err("--requests must be at least 1".into()),
        (Some(n), _) => Limit::Requests(n),
        (None, Some(s)) => Limit::Duration(positive_seconds("--duration", s)?),
        (None, None) => Limit::Requests(10_000),
    };
    let workload = Workload::new(a.workload, a.keys, a.read_ratio, a.batch)?;
    let names = KeyNames::new(&a.prefix, a.key_bytes, a.keys)?;
    let setup = Setup {
        target: a.target,
        workload,
        names,
        consistency: a.consistency,
        value_bytes: a.value_bytes,
        timeout: positive_seconds("--timeout", a.timeout)?,
    };
    Ok(Checked {
        setup: Arc::new(setup),
        endpoints,
        clients: a.clients,
        interval,
        limit,
        seed: a.seed,
    })
}

/// Runs the bench and prints its report on stdout.
pub fn main(args: BenchArgs) -> Result<(), BenchError> {
    let checked = check(&args).map_err(BenchError::Usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Failed(format!("starting the runtime: {e}")))?;
    let report = runtime.block_on(run(&args, checked))?;
    if args.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| BenchError::Failed(format!("encoding the report: {e}")))?;
        println!("{json}");
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

async fn run(args: &BenchArgs, c: Checked) -> Result<Report, BenchError> {
    if args.workload.reads_existing_keys() && !args.no_prefill {
        let plan = Plan::new(None, Limit::Requests(args.keys));
        let (tally, _) = phase(&c, plan, true, "prefill").await?;
        let errors = tally.failed();
        if errors > 0 {
            return Err(BenchError::Failed(format!(
                "writing the {} keys before the run: {errors} writes failed",
                args.keys
            )));
        }
    }
    let plan = Plan::new(c.interval, c.limit);
    let (tally, elapsed) = phase(&c, plan, false, args.workload.name()).await?;
    let info = RunInfo {
        target: match args.target {
            TargetKind::Concierge => "concierge",
            TargetKind::Etcd => "etcd",
        },
        workload: args.workload.name(),
        endpoints: c.endpoints.clone(),
        clients: c.clients,
        rate: args.rate,
        keys_per_request: if args.workload == WorkloadKind::Txn {
            args.batch
        } else {
            1
        },
    };
    Ok(Report::new(info, &tally, elapsed))
}

/// Runs one plan on `c.clients` connections spread over the endpoints; the merged
/// tally of all of them, and the time from the first due time to the last answer.
async fn phase(
    c: &Checked,
    plan: Plan,
    prefill: bool,
    label: &str,
) -> Result<(Tally, Duration), BenchError> {
    let plan = Arc::new(plan);
    let clock = Arc::new(TokioClock::start());
    let progress = Arc::new(Progress::default());
    let total = match plan.limit {
        Limit::Requests(n) => Some(n),
        Limit::Duration(_) => None,
    };
    let printer = {
        let (progress, label) = (Arc::clone(&progress), label.to_string());
        tokio::spawn(async move { progress.print_every_second(&label, total).await })
    };
    let mut tasks = Vec::with_capacity(c.clients);
    for i in 0..c.clients {
        let endpoint = &c.endpoints[i % c.endpoints.len()];
        let conn = Conn::new(
            Arc::clone(&c.setup),
            endpoint,
            c.seed.wrapping_add(i as u64),
        )
        .map_err(BenchError::Failed)?;
        let mut conn = if prefill { conn.for_prefill() } else { conn };
        let (plan, clock, progress) =
            (Arc::clone(&plan), Arc::clone(&clock), Arc::clone(&progress));
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            drive(clock.as_ref(), &plan, &mut conn, |outcome, latency| {
                progress.add(matches!(outcome, schedule::Outcome::Error(_)));
                tally.record(outcome, latency);
            })
            .await;
            tally
        }));
    }
    let mut all = Tally::new();
    for task in tasks {
        match task.await {
            Ok(tally) => all.merge(&tally),
            Err(e) => return Err(BenchError::Failed(format!("a client stopped: {e}"))),
        }
    }
    let elapsed = schedule::Clock::now(clock.as_ref());
    printer.abort();
    progress.finish();
    Ok((all, elapsed))
}
