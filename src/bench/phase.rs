//! One phase of a run: a plan driven by one client per sender, each on its own task of
//! the one runtime, and the merged tally of all of them.
//!
//! Every workload's phases go through here (the prefill, the measured requests, the
//! creation, keepalives and closing of sessions, the writer of a watch run), so they
//! count, time and show progress the same way.

use super::progress::Progress;
use super::report::Tally;
use super::schedule::{self, drive, Clock, Plan, Sender, TokioClock};
use super::timeline::Timeline;
use std::sync::Arc;

/// Where a phase reports as it goes.
#[derive(Clone, Default)]
pub struct Observers {
    /// Counts every answer (None: nothing shows this phase's progress).
    pub progress: Option<Arc<Progress>>,
    /// Records every latency by the second its answer came (for `--plot`).
    pub timeline: Option<Arc<Timeline>>,
}

/// Runs `plan` with one client per sender; returns the merged tally once every client
/// has run out of tickets. Latencies and times are on `clock`.
pub async fn run<S: Sender + Send + 'static>(
    senders: Vec<S>,
    plan: Plan,
    clock: Arc<TokioClock>,
    observers: Observers,
) -> Result<Tally, String> {
    let plan = Arc::new(plan);
    let mut tasks = Vec::with_capacity(senders.len());
    for mut sender in senders {
        let (plan, clock) = (Arc::clone(&plan), Arc::clone(&clock));
        let progress = observers.progress.clone();
        let mut recorder = observers.timeline.as_ref().map(Timeline::recorder);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            drive(clock.as_ref(), &plan, &mut sender, |outcome, latency| {
                if let Some(p) = &progress {
                    p.add(matches!(outcome, schedule::Outcome::Error(_)));
                }
                if let Some(r) = recorder.as_mut() {
                    r.record(clock.now(), latency);
                }
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
            Err(e) => return Err(format!("a client stopped: {e}")),
        }
    }
    Ok(all)
}
