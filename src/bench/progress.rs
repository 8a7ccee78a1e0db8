//! The progress line: once a second, on stderr, how many requests were answered, how
//! many failed, and the rate over the last second.
//!
//! Clients bump [`Progress`]'s counters (relaxed atomics, no lock on the hot path); the
//! printer only reads them. On a terminal the line rewrites itself; elsewhere (a log,
//! a test) it is one line per second.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters shared by the clients of a run.
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    errors: AtomicU64,
}

impl Progress {
    pub fn add(&self, failed: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Prints the line every second until the task is aborted.
    pub async fn print_every_second(&self, label: &str, total: Option<u64>) {
        let terminal = std::io::stderr().is_terminal();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let (mut seconds, mut last) = (0u64, 0u64);
        loop {
            tick.tick().await;
            seconds += 1;
            let done = self.done.load(Ordering::Relaxed);
            let errors = self.errors.load(Ordering::Relaxed);
            let of = total.map(|t| format!("/{t}")).unwrap_or_default();
            let line = format!(
                "bench {label}: {seconds:>4} s  {done}{of} done  {}/s  {errors} errors",
                done - last
            );
            last = done;
            let mut err = std::io::stderr().lock();
            // Progress is best effort: a closed stderr must not stop the run.
            let _ = if terminal {
                write!(err, "\r{line}\x1b[K")
            } else {
                writeln!(err, "{line}")
            };
            let _ = err.flush();
        }
    }

    /// Ends the line on a terminal, so the report starts on its own.
    pub fn finish(&self) {
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
}
