//! `Backoff`: how long a loop that proposes on its own (session expiry) waits after a
//! proposal was refused or failed before proposing again: from `first`, doubling per
//! refusal up to `max`, back to nothing after a success. A pure value (no clock of its
//! own): the loop asks it with the current instant.

use std::time::Duration;
use tokio::time::Instant;

/// The wait after consecutive failures.
#[derive(Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// The wait the next failure starts (None: no failure since the last success).
    next: Option<Duration>,
    /// No proposal before this.
    until: Option<Instant>,
}

impl Backoff {
    /// A backoff waiting `first` after one failure, at most `max` after many.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: None,
            until: None,
        }
    }

    /// Records a failure at `now`; returns how long proposals now wait.
    pub fn failed(&mut self, now: Instant) -> Duration {
        let wait = self.next.unwrap_or(self.first).min(self.max);
        self.next = Some(wait.saturating_mul(2).min(self.max));
        self.until = Some(now + wait);
        wait
    }

    /// Records a success: the next proposal goes at once, and a later failure waits
    /// `first` again.
    pub fn succeeded(&mut self) {
        self.next = None;
        self.until = None;
    }

    /// Whether a proposal may go at `now`.
    pub fn ready(&self, now: Instant) -> bool {
        self.until.is_none_or(|t| now >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_max_and_a_success_resets_them() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1_000));
        let t0 = Instant::now();
        assert!(b.ready(t0));
        let waits: Vec<u128> = (0..6).map(|_| b.failed(t0).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert!(!b.ready(t0 + ms(999)));
        assert!(b.ready(t0 + ms(1_000)));
        b.succeeded();
        assert!(b.ready(t0));
        assert_eq!(b.failed(t0), ms(100));
    }
}
