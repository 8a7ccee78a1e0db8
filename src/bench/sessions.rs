//! The `keepalive` workload: sessions at scale. Three phases, each one request per
//! ticket on `--clients` connections spread over the endpoints:
//!
//! 1. create `--sessions` sessions (`POST /v1/sessions`, closed loop, not measured);
//! 2. the measured phase: keepalive `n` goes to session `n % sessions`, open loop at
//!    `--rate` (default: every session every ttl/3, as the client library does);
//! 3. close every session created (`DELETE /v1/sessions/{id}`), whatever happened.
//!
//! A keepalive answered 404 means the session expired while the bench was keeping it
//! alive: the session is counted lost (once, however many 404s it gets), and the
//! answer counts as the error `session lost`. A close answered 404 finds a session
//! lost too. Nothing is retried, so nothing is hidden.
//!
//! Invariant: once phase 3 ran, every created session was closed (200), found gone
//! (404, counted lost), or counted in `close_errors`.

use super::report::SessionStats;
use super::rest::{base_url, exchange, http_client, json_u64};
use super::schedule::{Outcome, Sender};
use crate::endpoints::Access;
use reqwest::StatusCode;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The sessions of a run: ids as they are created, and which were found lost.
#[derive(Debug)]
pub struct Pool {
    pub ttl: Duration,
    ids: Vec<OnceLock<String>>,
    lost: Vec<AtomicBool>,
    lost_at_close: AtomicU64,
    closed: AtomicU64,
}

impl Pool {
    pub fn new(sessions: u64, ttl: Duration) -> Pool {
        let n = usize::try_from(sessions).unwrap_or(usize::MAX);
        Pool {
            ttl,
            ids: (0..n).map(|_| OnceLock::new()).collect(),
            lost: (0..n).map(|_| AtomicBool::new(false)).collect(),
            lost_at_close: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        }
    }

    pub fn len(&self) -> u64 {
        self.ids.len() as u64
    }

    fn id(&self, n: u64) -> Option<&str> {
        let i = usize::try_from(n % self.len().max(1)).ok()?;
        self.ids.get(i)?.get().map(String::as_str)
    }

    /// Marks session `n % sessions` lost; true if it was not already.
    fn mark_lost(&self, n: u64) -> bool {
        usize::try_from(n % self.len().max(1))
            .ok()
            .and_then(|i| self.lost.get(i))
            .is_some_and(|flag| !flag.swap(true, Ordering::Relaxed))
    }

    pub fn created(&self) -> u64 {
        self.ids.iter().filter(|id| id.get().is_some()).count() as u64
    }

    /// The summary, once the phases ran; `close_errors` from the close phase's tally.
    pub fn stats(&self, create_s: f64, close_errors: u64) -> SessionStats {
        SessionStats {
            sessions: self.len(),
            ttl_ms: u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX),
            created: self.created(),
            create_s,
            lost: self
                .lost
                .iter()
                .filter(|l| l.load(Ordering::Relaxed))
                .count() as u64,
            lost_at_close: self.lost_at_close.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
            close_errors,
        }
    }
}

/// What a session connection does with each ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Keepalive,
    Close,
}

/// One connection of a session phase.
pub struct SessionConn {
    pool: Arc<Pool>,
    step: Step,
    base: String,
    http: reqwest::Client,
}

impl SessionConn {
    pub fn new(
        pool: Arc<Pool>,
        step: Step,
        endpoint: &str,
        timeout: Duration,
        access: &Access,
    ) -> Result<SessionConn, String> {
        Ok(SessionConn {
            pool,
            step,
            base: base_url(endpoint),
            http: http_client(timeout, access)?,
        })
    }

    async fn create(&self, n: u64) -> Outcome {
        let ttl_ms = u64::try_from(self.pool.ttl.as_millis()).unwrap_or(u64::MAX);
        let request = self
            .http
            .post(format!("{}/v1/sessions", self.base))
            .json(&serde_json::json!({ "ttl_ms": ttl_ms }));
        match exchange(request).await {
            Ok((StatusCode::CREATED, body)) => {
                let id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["id"].as_str().map(str::to_string));
                let slot = usize::try_from(n).ok().and_then(|i| self.pool.ids.get(i));
                match (id, slot) {
                    (Some(id), Some(slot)) => {
                        // Ticket n is handed out once: the slot is empty.
                        let _ = slot.set(id);
                        Outcome::Ok
                    }
                    _ => Outcome::Error("bad answer".into()),
                }
            }
            Ok((status, _)) => Outcome::Error(format!("http {}", status.as_u16())),
            Err(kind) => Outcome::Error(kind),
        }
    }

    async fn keepalive(&self, n: u64) -> Outcome {
        let Some(id) = self.pool.id(n) else {
            return Outcome::Error("no session".into());
        };
        let url = format!("{}/v1/sessions/{id}/keepalive", self.base);
        match exchange(self.http.post(url)).await {
            Ok((StatusCode::OK, body)) if json_u64(&body, "ttl_ms").is_some() => Outcome::Ok,
            Ok((StatusCode::OK, _)) => Outcome::Error("bad answer".into()),
            Ok((StatusCode::NOT_FOUND, _)) => {
                self.pool.mark_lost(n);
                Outcome::Error("session lost".into())
            }
            Ok((status, _)) => Outcome::Error(format!("http {}", status.as_u16())),
            Err(kind) => Outcome::Error(kind),
        }
    }

    async fn close(&self, n: u64) -> Outcome {
        let Some(id) = self.pool.id(n) else {
            // Never created: nothing to close.
            return Outcome::Ok;
        };
        let url = format!("{}/v1/sessions/{id}", self.base);
        match exchange(self.http.delete(url)).await {
            Ok((StatusCode::OK, _)) => {
                self.pool.closed.fetch_add(1, Ordering::Relaxed);
                Outcome::Ok
            }
            Ok((StatusCode::NOT_FOUND, _)) => {
                if self.pool.mark_lost(n) {
                    self.pool.lost_at_close.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Conflict
            }
            Ok((status, _)) => Outcome::Error(format!("http {}", status.as_u16())),
            Err(kind) => Outcome::Error(kind),
        }
    }
}

impl Sender for SessionConn {
    fn send(&mut self, n: u64) -> impl Future<Output = Outcome> + Send {
        let this: &SessionConn = self;
        async move {
            match this.step {
                Step::Create => this.create(n).await,
                Step::Keepalive => this.keepalive(n).await,
                Step::Close => this.close(n).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_n_goes_to_session_n_mod_sessions_and_loss_counts_once() {
        let pool = Pool::new(3, Duration::from_secs(10));
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            pool.ids[i].set(id.to_string()).unwrap();
        }
        assert_eq!(pool.id(4), Some("b"));
        assert!(pool.mark_lost(4));
        assert!(!pool.mark_lost(1), "session b is lost already");
        let s = pool.stats(1.0, 0);
        assert_eq!((s.sessions, s.created, s.lost, s.ttl_ms), (3, 3, 1, 10_000));
    }
}
