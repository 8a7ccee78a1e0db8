//! The transport: sends one call through the endpoint list with failover, by the retry
//! rules of docs/client.md.
//!
//! A call starts at the endpoint that last answered and moves to the next one when an
//! attempt fails in a way another node may not (a refused connection, 503, 408, and,
//! when the call is safe to repeat, a timeout, a broken connection or 504). After every
//! endpoint failed once it pauses (doubling from `backoff_min` to `backoff_max`). No
//! attempt starts with less than `backoff_min` left before the call's deadline (nor
//! does a pause run into it): an attempt the deadline cuts short after it was sent
//! would turn a write's clean "not applied" into "outcome unknown".
//!
//! Safe to repeat: reads, keepalives (they never go through the log), and writes that
//! carry an Idempotency-Key. The key is generated once per call, before its first
//! attempt, and every attempt sends it: a node that already applied the write replays
//! its first answer instead of applying it again.
//!
//! Invariant: a call returns an error that promises "not applied" only if none of its
//! attempts may have been applied; otherwise it returns the last such attempt's error.

use crate::config::ClientConfig;
use crate::error::{with_causes, Applied, Error};
use crate::idempotency;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::Method;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// What kind of request a call is, which decides when it may be repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Changes nothing: always safe to repeat.
    Read,
    /// Extends a session's lease: repeating it only extends it again.
    Keepalive,
    /// Goes through the log: repeated only with an Idempotency-Key.
    Write,
}

/// One logical request.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    pub body: Option<Bytes>,
    pub kind: Kind,
    /// Overrides the configured call deadline (a keepalive must end before the lease).
    pub deadline: Option<Instant>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Call {
    pub fn read(path: String) -> Call {
        Call {
            method: Method::GET,
            path,
            body: None,
            kind: Kind::Read,
            deadline: None,
            headers: Vec::new(),
        }
    }

    pub fn write(method: Method, path: String, body: Option<Bytes>) -> Call {
        Call {
            method,
            path,
            body,
            kind: Kind::Write,
            deadline: None,
            headers: Vec::new(),
        }
    }
}

/// A successful (2xx) answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub endpoint: String,
    /// When the attempt that got this answer was sent.
    pub sent_at: Instant,
}

impl Answer {
    /// The body as JSON of type `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| self.protocol(format!("body: {e}")))
    }

    /// A numeric header; None when absent.
    pub fn header_u64(&self, name: &str) -> Result<Option<u64>, Error> {
        let Some(v) = self.headers.get(name) else {
            return Ok(None);
        };
        v.to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| self.protocol(format!("header {name} is not a number")))
    }

    /// A numeric header the contract requires.
    pub fn required_u64(&self, name: &str) -> Result<u64, Error> {
        self.header_u64(name)?
            .ok_or_else(|| self.protocol(format!("header {name} is missing")))
    }

    pub fn protocol(&self, message: String) -> Error {
        Error::Protocol {
            endpoint: self.endpoint.clone(),
            message,
        }
    }
}

/// How one attempt ended.
enum Attempt {
    Done(Answer),
    /// `retry`: another attempt (on another endpoint) may succeed and is allowed.
    Failed {
        error: Error,
        retry: bool,
    },
}

/// The endpoints, the HTTP client and the retry rules.
#[derive(Debug)]
pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub endpoints: Vec<String>,
    pub config: ClientConfig,
    /// The endpoint that answered last; calls start there.
    preferred: AtomicUsize,
}

impl Transport {
    pub fn new(config: ClientConfig) -> Result<Transport, Error> {
        config.check()?;
        let endpoints = config.base_urls()?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(config.pool_idle_timeout);
        if let Some(crate::config::Token(token)) = &config.token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| Error::InvalidArgument(format!("the token: {e}")))?;
            // Kept out of debug output.
            value.set_sensitive(true);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        let http = config
            .tls
            .apply(builder)?
            .build()
            .map_err(|e| Error::InvalidArgument(format!("building the HTTP client: {e}")))?;
        Ok(Transport {
            http,
            endpoints,
            config,
            preferred: AtomicUsize::new(0),
        })
    }

    /// The endpoint calls start at.
    pub fn preferred(&self) -> usize {
        self.preferred.load(Ordering::Relaxed) % self.endpoints.len()
    }

    /// Whether an attempt that may have reached the server can be repeated.
    fn repeatable(&self, call: &Call, idempotency_key: &Option<String>) -> bool {
        match call.kind {
            Kind::Read | Kind::Keepalive => true,
            Kind::Write => idempotency_key.is_some(),
        }
    }

    /// Runs `call` with failover until it succeeds, fails for good, or its deadline.
    pub async fn execute(&self, call: &Call) -> Result<Answer, Error> {
        let deadline = call
            .deadline
            .unwrap_or_else(|| Instant::now() + self.config.call_deadline);
        let idempotency_key = match call.kind {
            Kind::Write if self.config.idempotent_writes => Some(idempotency::new_key()?),
            _ => None,
        };
        let n = self.endpoints.len();
        let mut index = self.preferred();
        let mut failed_in_round = 0;
        let mut backoff = self.config.backoff_min;
        // The last error of an attempt that may have been applied (invariant above).
        let mut unknown: Option<Error> = None;
        loop {
            let attempt = self
                .attempt(index, call, idempotency_key.as_deref(), deadline)
                .await;
            let (error, retry) = match attempt {
                Attempt::Done(answer) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok(answer);
                }
                Attempt::Failed { error, retry } => (error, retry),
            };
            if call.kind == Kind::Write && error.applied() == Applied::Unknown {
                unknown = Some(error.clone());
            }
            let retry = retry
                && (error.applied() == Applied::No || self.repeatable(call, &idempotency_key));
            let round_ends = failed_in_round + 1 >= n;
            let pause = if round_ends { backoff } else { Duration::ZERO };
            // An attempt cut short by the deadline after it was sent leaves a write's
            // outcome unknown, so none starts without at least `backoff_min` to run.
            let left = deadline.saturating_duration_since(Instant::now());
            if !retry || left.saturating_sub(pause) < self.config.backoff_min {
                return Err(match (error.applied(), unknown) {
                    (Applied::No, Some(earlier)) => earlier,
                    _ => error,
                });
            }
            tracing::debug!(endpoint = %self.endpoints[index], error = %error, "failing over");
            index = (index + 1) % n;
            failed_in_round += 1;
            if round_ends {
                failed_in_round = 0;
                tokio::time::sleep(pause).await;
                backoff = (backoff * 2).min(self.config.backoff_max);
            }
        }
    }

    /// One attempt on exactly the endpoint `index`, no failover (a node's own health).
    pub async fn execute_on(&self, index: usize, call: &Call) -> Result<Answer, Error> {
        let Some(_) = self.endpoints.get(index) else {
            return Err(Error::InvalidArgument(format!(
                "endpoint {index} of {}",
                self.endpoints.len()
            )));
        };
        let deadline = Instant::now() + self.config.attempt_timeout;
        match self.attempt(index, call, None, deadline).await {
            Attempt::Done(answer) => Ok(answer),
            Attempt::Failed { error, .. } => Err(error),
        }
    }

    async fn attempt(
        &self,
        index: usize,
        call: &Call,
        idempotency_key: Option<&str>,
        deadline: Instant,
    ) -> Attempt {
        let endpoint = &self.endpoints[index];
        let remaining = deadline.saturating_duration_since(Instant::now());
        let timeout = self
            .config
            .attempt_timeout
            .min(remaining)
            .max(Duration::from_millis(1));
        let mut req = self
            .http
            .request(call.method.clone(), format!("{endpoint}{}", call.path))
            .timeout(timeout);
        for (name, value) in &call.headers {
            req = req.header(*name, value);
        }
        if let Some(key) = idempotency_key {
            req = req.header("idempotency-key", key);
        }
        if let Some(body) = &call.body {
            req = req.body(body.clone());
        }
        let sent_at = Instant::now();
        let broken = |e: reqwest::Error| {
            if e.is_connect() {
                // Nothing reached the node.
                Attempt::Failed {
                    error: Error::Unreachable {
                        message: format!("{endpoint}: {}", with_causes(&e)),
                    },
                    retry: true,
                }
            } else {
                let error = Error::OutcomeUnknown {
                    endpoint: endpoint.clone(),
                    message: with_causes(&e),
                };
                // A read that got no answer may simply be asked again.
                let error = if call.kind == Kind::Write {
                    error
                } else {
                    Error::Unreachable {
                        message: format!("{endpoint}: {}", with_causes(&e)),
                    }
                };
                Attempt::Failed { error, retry: true }
            }
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return broken(e),
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return broken(e),
        };
        if (200..300).contains(&status) {
            return Attempt::Done(Answer {
                status,
                headers,
                body,
                endpoint: endpoint.clone(),
                sent_at,
            });
        }
        // 503: not applied. 408: the request was never (wholly) read, nothing applied.
        // 504: outcome unknown, repeatable only with the same Idempotency-Key.
        let retry = matches!(status, 503 | 504 | 408);
        let error = match Error::from_answer(status, &body, endpoint) {
            Error::Rejected(e) if status == 408 => Error::Unavailable(e),
            other => other,
        };
        Attempt::Failed { error, retry }
    }
}
