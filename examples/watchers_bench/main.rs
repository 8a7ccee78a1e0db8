//! What idle watchers cost writers, measured two ways in one binary:
//!
//! - `http` (default): a real one-node `concierge serve`; PUT throughput and latency
//!   over HTTP with no watchers and with N idle SSE watches (one TCP connection each)
//!   on keys and prefixes the load never writes, in alternating rounds; the server's
//!   resident memory per idle watch. N is bounded by the open-file limit.
//! - `hub`: the state machine and the watch hub in this process (a real storage Db on
//!   disk, real `WatchStream`s each waiting in its own task, as the HTTP handler runs
//!   them, without sockets), so N can be 100,000 or more: the latency of applying one
//!   write with and without N idle watchers, and the memory per watcher this part
//!   costs.
//!
//! Each mode prints every phase and the ratios of the watched phases to the unwatched
//! ones of the same run (the machine may be shared; ratios within one run are what
//! counts).
//!
//! ```text
//! cargo build --release --bin concierge --example watchers_bench
//! target/release/examples/watchers_bench http --watchers 19000
//! target/release/examples/watchers_bench hub --watchers 100000
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http;
mod hub;

use hdrhistogram::Histogram;

/// Command-line settings shared by both modes.
#[derive(Clone, Debug)]
pub struct Opts {
    pub server: std::path::PathBuf,
    pub watchers: usize,
    /// Every this-many-th watcher follows a prefix instead of a key.
    pub prefix_every: usize,
    /// Length of each measured phase: at least one progress period (10 s), so the
    /// idle watches' progress comments are part of what is measured.
    pub seconds: f64,
    /// Concurrent writers (http mode).
    pub clients: usize,
    pub value_bytes: usize,
    /// 1 MiB values written before each measured phase (they go through the history).
    pub big_values: usize,
    /// Alternating (unwatched, watched) rounds.
    pub rounds: usize,
    pub open_concurrency: usize,
    /// Watch connections per source address (below the ephemeral port range's size).
    pub per_source: usize,
}

fn parse() -> (String, Opts) {
    let exe = std::env::current_exe().expect("current exe");
    let server = exe
        .parent()
        .and_then(|examples| examples.parent())
        .map(|release| release.join("concierge"))
        .expect("target/release/concierge beside examples/");
    let mut o = Opts {
        server,
        watchers: 19_000,
        prefix_every: 10,
        seconds: 12.0,
        clients: 8,
        value_bytes: 32,
        big_values: 4,
        rounds: 3,
        open_concurrency: 128,
        per_source: 20_000,
    };
    let mut args = std::env::args().skip(1).peekable();
    let mode = match args.peek().map(String::as_str) {
        Some("http") | Some("hub") => args.next().unwrap_or_default(),
        _ => "http".to_string(),
    };
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--server" => o.server = value().into(),
            "--watchers" => o.watchers = value().parse().expect("--watchers"),
            "--prefix-every" => o.prefix_every = value().parse().expect("--prefix-every"),
            "--seconds" => o.seconds = value().parse().expect("--seconds"),
            "--clients" => o.clients = value().parse().expect("--clients"),
            "--value-bytes" => o.value_bytes = value().parse().expect("--value-bytes"),
            "--big-values" => o.big_values = value().parse().expect("--big-values"),
            "--rounds" => o.rounds = value().parse().expect("--rounds"),
            "--open-concurrency" => {
                o.open_concurrency = value().parse().expect("--open-concurrency")
            }
            "--per-source" => o.per_source = value().parse().expect("--per-source"),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(o.clients > 0 && o.seconds > 0.0 && o.prefix_every > 0 && o.rounds > 0);
    (mode, o)
}

/// Whether idle watcher `i` follows a prefix (else a key).
pub fn is_prefix_watch(o: &Opts, i: usize) -> bool {
    i % o.prefix_every == o.prefix_every - 1
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

/// One measured phase.
pub struct Phase {
    pub per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Phase {
    /// Summarises `count` writes in `secs` with latencies `h` (µs), printing a line.
    pub fn of(name: &str, count: usize, secs: f64, h: &Histogram<u64>) -> Phase {
        let p = Phase {
            per_sec: count as f64 / secs,
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        };
        println!(
            "{name:<12} {:>10.0} writes/s  p50 {:>7} us  p99 {:>7} us  max {:>8} us",
            p.per_sec, p.p50_us, p.p99_us, p.max_us
        );
        p
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Prints the ratios of the watched phases to the unwatched ones (medians over rounds).
pub fn report(unwatched: &[Phase], watched: &[Phase], rss_delta_kib: &[u64], watchers: usize) {
    let rate = |ps: &[Phase]| median(ps.iter().map(|p| p.per_sec).collect());
    let p99 = |ps: &[Phase]| median(ps.iter().map(|p| p.p99_us as f64).collect());
    println!(
        "median over {} rounds: unwatched {:.0} writes/s p99 {:.0} us; watched {:.0} writes/s p99 {:.0} us",
        unwatched.len(),
        rate(unwatched),
        p99(unwatched),
        rate(watched),
        p99(watched)
    );
    println!(
        "ratios (watched / unwatched): throughput {:.3}, p99 {:.3}",
        rate(watched) / rate(unwatched),
        p99(watched) / p99(unwatched)
    );
    // The first round's delta: later rounds reuse memory the allocator kept from the
    // watchers closed before, so their RSS grows less than what they hold.
    let first = rss_delta_kib.first().copied().unwrap_or(0);
    println!(
        "memory per idle watcher: {:.0} bytes (first round's RSS delta {first} KiB / {watchers}; \
         all rounds {rss_delta_kib:?} KiB)",
        first as f64 * 1024.0 / watchers.max(1) as f64
    );
}

fn main() {
    let (mode, o) = parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match mode.as_str() {
        "hub" => runtime.block_on(hub::run(&o)),
        _ => runtime.block_on(http::run(&o)),
    }
}
