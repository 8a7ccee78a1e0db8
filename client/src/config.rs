//! [`ClientConfig`]: the endpoints and every time limit of the client, with defaults
//! chosen against the server's (docs/API.md, "Limits").
//!
//! Invariant (checked by [`ClientConfig::check`]): at least one endpoint, every limit
//! positive, and an attempt's timeout shorter than its call's deadline.

use crate::error::Error;
use crate::tls::Tls;
use std::time::Duration;

/// The server's `REQUEST_TIMEOUT_MS` default: after it a node answers 504.
pub const SERVER_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The server's `HTTP_KEEP_ALIVE_MS` default: an idle connection is closed after it.
pub const SERVER_KEEP_ALIVE: Duration = Duration::from_secs(5);
/// The server's silence after which a watch sends a progress comment.
pub const SERVER_WATCH_PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// How the client reaches the cluster and how long it waits.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URLs of the nodes (`http://host:port` or `https://host:port`; a bare
    /// `host:port` gets `http://`).
    pub endpoints: Vec<String>,
    /// One attempt's limit (connect, send, answer). Shorter than the server's request
    /// timeout, so a stuck node is left for the next endpoint before it would answer
    /// 504; the retry carries the same Idempotency-Key, so it cannot apply twice.
    pub attempt_timeout: Duration,
    /// A connection attempt's limit: a dead host is left quickly.
    pub connect_timeout: Duration,
    /// A whole call's limit, over all its attempts and endpoints.
    pub call_deadline: Duration,
    /// Idle pooled connections are dropped after this, before the server's own
    /// keep-alive closes them (a request racing that close would fail).
    pub pool_idle_timeout: Duration,
    /// Writes carry a fresh random Idempotency-Key, so a write whose outcome is unknown
    /// (504, no answer) is retried safely. Off: such a write is not retried.
    pub idempotent_writes: bool,
    /// A watch connection that brings nothing (not even a progress comment) for this
    /// long is taken as dead and resumed elsewhere.
    pub watch_idle_timeout: Duration,
    /// A watch that cannot reconnect anywhere for this long ends with the last error.
    pub watch_reconnect_deadline: Duration,
    /// Least and most pause after every endpoint failed once (doubling in between).
    /// `backoff_min` is also the least time left before the deadline for which a call
    /// starts another attempt.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// What an `https://` endpoint is checked against, and the certificate shown to a
    /// node that asks for one.
    pub tls: Tls,
    /// The access-control token, sent with every request as `Authorization: Bearer
    /// <token>` (None: no header, for a cluster with access control off).
    pub token: Option<Token>,
}

/// A bearer token; its `Debug` form hides it (configs get logged).
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<hidden>)")
    }
}

impl ClientConfig {
    /// The defaults for these endpoints.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> ClientConfig {
        ClientConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            attempt_timeout: Duration::from_millis(4000),
            connect_timeout: Duration::from_millis(1000),
            call_deadline: Duration::from_secs(20),
            pool_idle_timeout: Duration::from_millis(3000),
            idempotent_writes: true,
            watch_idle_timeout: SERVER_WATCH_PROGRESS_EVERY + Duration::from_secs(5),
            watch_reconnect_deadline: Duration::from_secs(60),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(1000),
            tls: Tls::default(),
            token: None,
        }
    }

    /// The same config sending `token` as a bearer token with every request.
    pub fn with_token(mut self, token: impl Into<String>) -> ClientConfig {
        self.token = Some(Token(token.into()));
        self
    }

    /// Refuses unusable settings.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.endpoints.is_empty() {
            return bad("no endpoints".into());
        }
        let limits = [
            ("attempt_timeout", self.attempt_timeout),
            ("connect_timeout", self.connect_timeout),
            ("call_deadline", self.call_deadline),
            ("pool_idle_timeout", self.pool_idle_timeout),
            ("watch_idle_timeout", self.watch_idle_timeout),
            ("watch_reconnect_deadline", self.watch_reconnect_deadline),
            ("backoff_min", self.backoff_min),
            ("backoff_max", self.backoff_max),
        ];
        for (name, d) in limits {
            if d.is_zero() {
                return bad(format!("{name} must be positive"));
            }
        }
        if self.attempt_timeout > self.call_deadline {
            return bad("attempt_timeout must not exceed call_deadline".into());
        }
        if let Some(Token(t)) = &self.token {
            let printable = t.bytes().all(|b| b.is_ascii_graphic());
            if t.is_empty() || !printable {
                return bad("the token must be non-empty printable ASCII without spaces".into());
            }
        }
        if self.backoff_min > self.backoff_max {
            return bad("backoff_min must not exceed backoff_max".into());
        }
        Ok(())
    }

    /// The endpoints as base URLs without a trailing `/`.
    pub(crate) fn base_urls(&self) -> Result<Vec<String>, Error> {
        self.endpoints
            .iter()
            .map(|e| {
                let e = e.trim().trim_end_matches('/');
                if e.is_empty() {
                    return Err(Error::InvalidArgument("an endpoint is empty".into()));
                }
                let url = if e.contains("://") {
                    e.to_string()
                } else {
                    format!("http://{e}")
                };
                reqwest::Url::parse(&url)
                    .map_err(|err| Error::InvalidArgument(format!("endpoint {e:?}: {err}")))?;
                Ok(url)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_stay_inside_the_servers_limits() {
        let c = ClientConfig::new(["127.0.0.1:8080", "http://h:1/"]);
        assert_eq!(c.check(), Ok(()));
        assert!(c.attempt_timeout < SERVER_REQUEST_TIMEOUT);
        assert!(c.pool_idle_timeout < SERVER_KEEP_ALIVE);
        assert!(c.watch_idle_timeout > SERVER_WATCH_PROGRESS_EVERY);
        assert_eq!(
            c.base_urls(),
            Ok(vec!["http://127.0.0.1:8080".into(), "http://h:1".into()])
        );
        assert!(ClientConfig::new(Vec::<String>::new()).check().is_err());
        assert!(ClientConfig::new([""]).base_urls().is_err());
    }
}
