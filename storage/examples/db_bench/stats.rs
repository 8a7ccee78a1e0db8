//! Timing and reporting in RocksDB db_bench's format, plus the process facts printed
//! at the end (on-disk size of the database directory, peak resident memory).
//!
//! The report line matches RocksDB's `Stats::Report`:
//! `%-12s : %11.3f micros/op %ld ops/sec %.3f seconds %lu operations;%s%s`
//! where the tail is ` %6.1f MB/s` (when bytes were moved) and then any message.

use std::path::Path;
use std::time::Instant;

/// CPU seconds used so far: (the whole process, this thread), from `/proc` (Linux).
/// CPU time is the fair measure on a shared machine: wall time counts other loads.
pub fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14, 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    let thread = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let thread_ns: f64 = thread.split_whitespace().next()?.parse().ok()?;
    Some((ticks / 100.0, thread_ns / 1e9))
}

/// Counters for one benchmark run.
pub struct Stats {
    cpu_start: Option<(f64, f64)>,
    start: Instant,
    last_op: Instant,
    done: u64,
    bytes: u64,
    message: String,
    /// Per-operation latencies in whole microseconds, kept only with `--histogram`.
    latencies_us: Option<Vec<u64>>,
}

impl Stats {
    pub fn start(histogram: bool, expected_ops: u64) -> Stats {
        let now = Instant::now();
        let capacity = usize::try_from(expected_ops.min(1 << 26)).unwrap_or(0);
        Stats {
            cpu_start: cpu_seconds(),
            start: now,
            last_op: now,
            done: 0,
            bytes: 0,
            message: String::new(),
            latencies_us: histogram.then(|| Vec::with_capacity(capacity)),
        }
    }

    /// Counts one finished operation that moved `bytes` bytes.
    #[inline]
    pub fn finished_op(&mut self, bytes: usize) {
        self.done += 1;
        self.bytes += bytes as u64;
        if let Some(lat) = &mut self.latencies_us {
            let now = Instant::now();
            lat.push(
                u64::try_from(now.duration_since(self.last_op).as_micros()).unwrap_or(u64::MAX),
            );
            self.last_op = now;
        }
    }

    /// Adds another thread's counts of the same benchmark (RocksDB's `Stats::Merge`):
    /// the run started when the first thread started.
    pub fn merge(&mut self, other: Stats) {
        self.start = self.start.min(other.start);
        self.done += other.done;
        self.bytes += other.bytes;
        if let (Some(mine), Some(theirs)) = (&mut self.latencies_us, other.latencies_us) {
            mine.extend(theirs);
        }
    }

    /// Appends a message to the report line (space separated, as RocksDB does).
    pub fn add_message(&mut self, msg: &str) {
        if !self.message.is_empty() {
            self.message.push(' ');
        }
        self.message.push_str(msg);
    }

    /// Prints the report line (and the histogram when kept); returns ops/sec.
    pub fn report(&mut self, name: &str, op_kind: &str) -> f64 {
        let elapsed = self.start.elapsed().as_secs_f64().max(1e-9);
        let done = self.done.max(1);
        let mut extra = String::new();
        if self.bytes > 0 {
            extra = format!("{:6.1} MB/s", (self.bytes as f64 / 1_048_576.0) / elapsed);
        }
        if !self.message.is_empty() {
            if !extra.is_empty() {
                extra.push(' ');
            }
            extra.push_str(&self.message);
        }
        let throughput = done as f64 / elapsed;
        println!(
            "{:<12} : {:11.3} micros/op {} ops/sec {:.3} seconds {} operations;{}{}",
            name,
            elapsed * 1e6 / done as f64,
            throughput as i64,
            elapsed,
            done,
            if extra.is_empty() { "" } else { " " },
            extra
        );
        if let (Some((p0, t0)), Some((p1, t1))) = (self.cpu_start, cpu_seconds()) {
            println!(
                "  cpu: process {:.3} s ({:.3} micros/op), benchmark thread {:.3} s",
                p1 - p0,
                (p1 - p0) * 1e6 / done as f64,
                t1 - t0
            );
        }
        if let Some(lat) = &mut self.latencies_us {
            crate::histogram::print(op_kind, lat);
        }
        throughput
    }
}

/// Disk usage of everything under `dir`: (allocated bytes as `du` counts them, apparent bytes).
pub fn disk_usage(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut allocated = 0u64;
    let mut apparent = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                allocated += meta.blocks() * 512;
                apparent += meta.len();
            }
        }
    }
    Ok((allocated, apparent))
}

/// The process's peak resident set size in KiB (`VmHWM` in /proc/self/status).
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
