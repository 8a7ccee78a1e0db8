//! The progress bar of a phase (indicatif, on stderr): how far the phase is (requests
//! done of the total, or seconds of the duration), the rate over the last second and
//! the errors so far.
//!
//! Clients bump [`Progress`]'s counters (relaxed atomics, no lock on the hot path); a
//! ticker task copies them to the bar ten times a second. The bar is hidden when
//! stdout or stderr is not a terminal (a pipe, a log, a test) and with `--json`: then
//! the phase prints nothing but its report.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a phase ends, as the bar measures it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// After this many operations.
    Count(u64),
    /// After this long.
    Time(Duration),
}

/// Counters shared by the clients of a phase, and the bar that shows them.
#[derive(Debug)]
pub struct Progress {
    done: AtomicU64,
    errors: AtomicU64,
    goal: Goal,
    bar: ProgressBar,
}

/// Whether a bar would be seen: both streams on a terminal, and no `--json`.
pub fn visible(json: bool) -> bool {
    !json && std::io::stderr().is_terminal() && std::io::stdout().is_terminal()
}

impl Progress {
    /// A bar labelled `label` (e.g. "put", "prefill"), drawn only if `visible`.
    pub fn new(label: &str, goal: Goal, visible: bool) -> Progress {
        let bar = if visible {
            // Tenths of a second for a timed phase, operations for a counted one.
            let length = match goal {
                Goal::Count(n) => n,
                Goal::Time(d) => u64::try_from(d.as_millis() / 100).unwrap_or(u64::MAX),
            };
            let bar = ProgressBar::new(length.max(1));
            // The template is a constant: an error is a programmer's mistake.
            let style = ProgressStyle::with_template(
                "{prefix:>10} [{elapsed_precise}] {bar:30.cyan/blue} {percent:>3}%  {msg}",
            )
            .unwrap_or_else(|e| panic!("progress template: {e}"))
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            goal,
            bar,
        }
    }

    /// Counts one operation done.
    pub fn add(&self, failed: bool) {
        self.done.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts `n` operations done without error (a watcher's batch of events).
    pub fn add_ok(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Updates the bar ten times a second until the task is aborted; `unit` names what
    /// is counted ("requests", "events").
    pub async fn tick(&self, unit: &str) {
        if self.bar.is_hidden() {
            return;
        }
        let start = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        // The count a second ago, for the rate: ten slots of one tick each.
        let mut window = [0u64; 10];
        for n in 0usize.. {
            tick.tick().await;
            let done = self.done.load(Ordering::Relaxed);
            let errors = self.errors.load(Ordering::Relaxed);
            let slot = n % window.len();
            let rate = done.saturating_sub(window[slot]);
            window[slot] = done;
            let position = match self.goal {
                Goal::Count(_) => done,
                Goal::Time(_) => u64::try_from(start.elapsed().as_millis() / 100).unwrap_or(0),
            };
            self.bar.set_position(position);
            self.bar
                .set_message(format!("{done} {unit}  {rate}/s  {errors} errors"));
        }
    }

    /// Removes the bar, so the report starts on a clean line.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
