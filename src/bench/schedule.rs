//! The scheduler: which request comes next, when it is due, and the loop one client
//! runs ([`drive`]).
//!
//! Open loop (`--rate R`): request `n` is due at `n / R` seconds after the start,
//! whatever happened to the requests before it, and its latency is measured from that
//! due time, not from when it was sent. A stalled server therefore shows as growing
//! latency for every request that had to wait (no coordinated omission, as in wrk2).
//! Closed loop (no rate): a request is due when its client is free to send it.
//!
//! Time comes through [`Clock`], so a test can drive the loop on a fake clock.
//! Invariant: request numbers are handed out once each, in order, across all clients.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where time comes from: the elapsed time since the run started.
pub trait Clock {
    /// Time since the start of the run.
    fn now(&self) -> Duration;
    /// Returns once `now() >= at`.
    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()>;
}

/// One HTTP request per call; the scheduler only needs its outcome.
pub trait Sender {
    /// Sends request number `n` and waits for its answer.
    fn send(&mut self, n: u64) -> impl Future<Output = Outcome> + Send;
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done as asked.
    Ok,
    /// Answered, but a condition did not hold (a lost compare-and-set): contention,
    /// not a failure.
    Conflict,
    /// Failed; the kind is what the report groups errors by ("http 503", "timeout").
    Error(String),
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// After this many requests.
    Requests(u64),
    /// Requests due (open loop) or started (closed loop) before this much time.
    Duration(Duration),
}

/// The plan every client of a run shares.
#[derive(Debug)]
pub struct Plan {
    /// Open loop: the time between two consecutive due times. None: closed loop.
    pub interval: Option<Duration>,
    pub limit: Limit,
    /// The next request number to hand out.
    next: AtomicU64,
}

/// A request to send: its number and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub n: u64,
    pub due: Duration,
}

impl Plan {
    pub fn new(interval: Option<Duration>, limit: Limit) -> Plan {
        assert!(interval.is_none_or(|i| !i.is_zero()), "a zero interval");
        Plan {
            interval,
            limit,
            next: AtomicU64::new(0),
        }
    }

    /// The next request, or None once the run is over. `now` is the caller's time.
    pub fn take(&self, now: Duration) -> Option<Ticket> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let due = match self.interval {
            Some(interval) => due_at(interval, n),
            None => now,
        };
        let over = match self.limit {
            Limit::Requests(max) => n >= max,
            Limit::Duration(max) => due >= max,
        };
        (!over).then_some(Ticket { n, due })
    }
}

/// The due time of request `n` at one request per `interval`.
fn due_at(interval: Duration, n: u64) -> Duration {
    let nanos = interval.as_nanos().saturating_mul(u128::from(n));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// One client's loop: take a ticket, wait until it is due, send, record the latency
/// from the due time. Returns when the plan is exhausted.
pub async fn drive<C: Clock, S: Sender>(
    clock: &C,
    plan: &Plan,
    sender: &mut S,
    mut record: impl FnMut(&Outcome, Duration),
) {
    while let Some(ticket) = plan.take(clock.now()) {
        // Never "sleep until now": a timer fires on its next tick, not at once.
        if ticket.due > clock.now() {
            clock.sleep_until(ticket.due).await;
        }
        let outcome = sender.send(ticket.n).await;
        let latency = clock.now().saturating_sub(ticket.due);
        record(&outcome, latency);
    }
}

/// The real clock: tokio's, from the start of the run.
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn start() -> TokioClock {
        TokioClock {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep_until(self.start + at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Virtual time: sleeping jumps the clock forward, serving advances it. Counts
    /// the sleeps.
    #[derive(Default)]
    struct FakeClock(Cell<Duration>, Cell<u32>);

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            self.0.get()
        }

        fn sleep_until(&self, at: Duration) -> impl Future<Output = ()> {
            self.1.set(self.1.get() + 1);
            if at > self.0.get() {
                self.0.set(at);
            }
            std::future::ready(())
        }
    }

    /// A server that answers in 1 ms, except that request `stall_at` takes `stall`.
    struct StallingServer<'a> {
        clock: &'a FakeClock,
        stall_at: u64,
        stall: Duration,
    }

    impl Sender for StallingServer<'_> {
        fn send(&mut self, n: u64) -> impl Future<Output = Outcome> + Send {
            let took = if n == self.stall_at {
                self.stall
            } else {
                Duration::from_millis(1)
            };
            self.clock.0.set(self.clock.0.get() + took);
            std::future::ready(Outcome::Ok)
        }
    }

    /// Runs 20 requests on one client against a server that stalls 100 ms on request
    /// 5; returns every latency, in request order, and how many times it slept.
    fn run(interval: Option<Duration>) -> (Vec<Duration>, u32) {
        let clock = FakeClock::default();
        let plan = Plan::new(interval, Limit::Requests(20));
        let mut server = StallingServer {
            clock: &clock,
            stall_at: 5,
            stall: Duration::from_millis(100),
        };
        let mut latencies = Vec::new();
        let run = drive(&clock, &plan, &mut server, |outcome, latency| {
            assert_eq!(outcome, &Outcome::Ok);
            latencies.push(latency);
        });
        futures_util::FutureExt::now_or_never(run).expect("the fake clock never waits");
        assert_eq!(latencies.len(), 20);
        (latencies, clock.1.get())
    }

    #[test]
    fn open_loop_charges_a_stall_to_every_request_scheduled_during_it() {
        // Due every 10 ms; the stall from 50 ms to 150 ms delays the requests due at
        // 60..=150 ms (they queue behind it), and each of them counts its wait.
        let (latencies, sleeps) = run(Some(Duration::from_millis(10)));
        // Only the requests not yet due when their client was free waited: 1..=5
        // before the stall and 17..=19 after it caught up.
        assert_eq!(sleeps, 8, "{latencies:?}");
        let slow = latencies
            .iter()
            .filter(|l| **l > Duration::from_millis(1))
            .count();
        assert_eq!(slow, 11, "{latencies:?}");
        assert_eq!(latencies[5], Duration::from_millis(100));
        // The wait shrinks by one interval minus one service time per request.
        assert_eq!(latencies[6], Duration::from_millis(91));
        assert_eq!(latencies[7], Duration::from_millis(82));
        assert_eq!(latencies[15], Duration::from_millis(10));
        // Caught up: back to the service time.
        assert_eq!(latencies[19], Duration::from_millis(1));
    }

    #[test]
    fn closed_loop_sees_the_stall_once_and_never_sleeps() {
        let (latencies, sleeps) = run(None);
        // A timer rounds up to its next tick (1 ms in tokio): sleeping "until now"
        // would add that to every request.
        assert_eq!(sleeps, 0);
        let slow = latencies
            .iter()
            .filter(|l| **l > Duration::from_millis(1))
            .count();
        assert_eq!(slow, 1, "{latencies:?}");
    }

    #[test]
    fn a_duration_limit_counts_due_times() {
        let plan = Plan::new(
            Some(Duration::from_millis(10)),
            Limit::Duration(Duration::from_millis(35)),
        );
        let dues: Vec<u64> = std::iter::from_fn(|| plan.take(Duration::ZERO))
            .map(|t| t.due.as_millis() as u64)
            .collect();
        assert_eq!(dues, [0, 10, 20, 30]);
    }
}
