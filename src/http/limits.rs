//! The limits of the HTTP layer ([`HttpLimits`]) and the `concierge serve` flags that
//! set them ([`HttpArgs`], each also an environment variable; defaults are the
//! constants below and are listed in docs/API.md, "Limits").
//!
//! Invariant: every limit is positive once [`HttpArgs::check`] passed; a handler never
//! waits, buffers or answers beyond them.

use clap::Args;
use std::time::Duration;

/// Default deadline of a `/ready` probe.
pub const READY_TIMEOUT_MS_DEFAULT: u64 = 1000;
/// Default deadline for a request's head (line and headers) to arrive.
pub const HTTP_HEADER_TIMEOUT_MS_DEFAULT: u64 = 5000;
/// Least deadline for a request's head: actix-http measures it from a cached clock
/// that ticks every 500 ms, so a deadline may start up to 500 ms in the past.
pub const HTTP_HEADER_TIMEOUT_MS_MIN: u64 = 1000;
/// Default deadline for a request's whole body to arrive.
pub const HTTP_BODY_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Default time given a client to close after the server closed its side.
pub const HTTP_DISCONNECT_TIMEOUT_MS_DEFAULT: u64 = 1000;
/// Default idle time a kept-alive connection is held between requests.
pub const HTTP_KEEP_ALIVE_MS_DEFAULT: u64 = 5000;
/// Default number of client connections served at once by the node: every watch is a
/// connection, so room for `WATCHERS_MAX`'s default (100,000) and ordinary clients.
pub const HTTP_CONNECTIONS_MAX_DEFAULT: u64 = 102_400;

/// Default and least byte budget of a listing page (API.md: at least 4 MiB).
pub const PAGE_BYTES_MAX_DEFAULT: u64 = 4 << 20;

/// Flags of the HTTP server (flattened into `concierge serve`).
#[derive(Args, Debug, Clone, PartialEq, Eq)]
pub struct HttpArgs {
    /// Deadline of a `/ready` probe, ms: past it the probe answers 503 not_ready.
    #[arg(long, env = "READY_TIMEOUT_MS", default_value_t = READY_TIMEOUT_MS_DEFAULT)]
    pub ready_timeout_ms: u64,
    /// Byte budget of one page of a listing (`GET /v1/keys`, a session's keys), JSON
    /// as counted by the server; at least 4 MiB.
    #[arg(long, env = "PAGE_BYTES_MAX", default_value_t = PAGE_BYTES_MAX_DEFAULT)]
    pub page_bytes_max: u64,
    /// Deadline for a request's head (request line and headers), ms: past it the
    /// connection is answered 408 (empty body) and closed.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_MS", default_value_t = HTTP_HEADER_TIMEOUT_MS_DEFAULT)]
    pub http_header_timeout_ms: u64,
    /// Deadline for a request's whole body, ms: past it 408 request_timeout, nothing
    /// applied, and the connection is closed.
    #[arg(long, env = "HTTP_BODY_TIMEOUT_MS", default_value_t = HTTP_BODY_TIMEOUT_MS_DEFAULT)]
    pub http_body_timeout_ms: u64,
    /// Time a client has to close its side after the server closed, ms.
    #[arg(long, env = "HTTP_DISCONNECT_TIMEOUT_MS", default_value_t = HTTP_DISCONNECT_TIMEOUT_MS_DEFAULT)]
    pub http_disconnect_timeout_ms: u64,
    /// Idle time a kept-alive connection is held between requests, ms.
    #[arg(long, env = "HTTP_KEEP_ALIVE_MS", default_value_t = HTTP_KEEP_ALIVE_MS_DEFAULT)]
    pub http_keep_alive_ms: u64,
    /// Client connections served at once (split evenly over the HTTP workers); more
    /// wait in the listen backlog until one closes.
    #[arg(long, env = "HTTP_CONNECTIONS_MAX", default_value_t = HTTP_CONNECTIONS_MAX_DEFAULT)]
    pub http_connections_max: u64,
    /// Storage quota: bytes of live keys and values (key + value bytes) at which
    /// writes that add data are refused with 507 quota_exceeded (reads and deletes
    /// still work).
    #[arg(long, env = "QUOTA_BYTES", default_value_t = crate::http::quota::QUOTA_BYTES_DEFAULT)]
    pub quota_bytes: u64,
    /// Live sessions at which creating one more is refused with 507 quota_exceeded.
    #[arg(long, env = "SESSIONS_MAX", default_value_t = crate::http::quota::SESSIONS_MAX_DEFAULT)]
    pub sessions_max: u64,
}

impl Default for HttpArgs {
    fn default() -> Self {
        HttpArgs {
            ready_timeout_ms: READY_TIMEOUT_MS_DEFAULT,
            page_bytes_max: PAGE_BYTES_MAX_DEFAULT,
            http_header_timeout_ms: HTTP_HEADER_TIMEOUT_MS_DEFAULT,
            http_body_timeout_ms: HTTP_BODY_TIMEOUT_MS_DEFAULT,
            http_disconnect_timeout_ms: HTTP_DISCONNECT_TIMEOUT_MS_DEFAULT,
            http_keep_alive_ms: HTTP_KEEP_ALIVE_MS_DEFAULT,
            http_connections_max: HTTP_CONNECTIONS_MAX_DEFAULT,
            quota_bytes: crate::http::quota::QUOTA_BYTES_DEFAULT,
            sessions_max: crate::http::quota::SESSIONS_MAX_DEFAULT,
        }
    }
}

impl HttpArgs {
    /// Refuses unusable values: (flag name, reason).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("READY_TIMEOUT_MS", self.ready_timeout_ms),
            ("HTTP_HEADER_TIMEOUT_MS", self.http_header_timeout_ms),
            ("HTTP_BODY_TIMEOUT_MS", self.http_body_timeout_ms),
            (
                "HTTP_DISCONNECT_TIMEOUT_MS",
                self.http_disconnect_timeout_ms,
            ),
            ("HTTP_KEEP_ALIVE_MS", self.http_keep_alive_ms),
            ("HTTP_CONNECTIONS_MAX", self.http_connections_max),
            ("QUOTA_BYTES", self.quota_bytes),
            ("SESSIONS_MAX", self.sessions_max),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err((name, "must be at least 1".into()));
            }
        }
        if self.http_header_timeout_ms < HTTP_HEADER_TIMEOUT_MS_MIN {
            return Err((
                "HTTP_HEADER_TIMEOUT_MS",
                format!(
                    "must be at least {HTTP_HEADER_TIMEOUT_MS_MIN}: the server's clock for it \
                     ticks every 500 ms, so a shorter deadline can pass before a head is read"
                ),
            ));
        }
        if self.page_bytes_max < PAGE_BYTES_MAX_DEFAULT {
            return Err((
                "PAGE_BYTES_MAX",
                format!("must be at least {PAGE_BYTES_MAX_DEFAULT}"),
            ));
        }
        Ok(())
    }

    /// The limits these flags set (the others at their defaults).
    pub fn limits(&self) -> HttpLimits {
        HttpLimits {
            ready_timeout: Duration::from_millis(self.ready_timeout_ms),
            page_bytes_max: self.page_bytes_max,
            body_timeout: Duration::from_millis(self.http_body_timeout_ms),
            quota_bytes: self.quota_bytes,
            sessions_max: self.sessions_max,
            ..HttpLimits::default()
        }
    }
}

/// Limits of the HTTP layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Largest value a PUT may carry.
    pub value_bytes_max: usize,
    /// Largest JSON request body.
    pub json_body_bytes_max: usize,
    /// How long a request may wait on consensus before answering 504.
    pub request_timeout: Duration,
    /// How long a `/ready` probe may take before answering 503.
    pub ready_timeout: Duration,
    /// Byte budget of one listing page.
    pub page_bytes_max: u64,
    /// How long a request's whole body may take to arrive before 408.
    pub body_timeout: Duration,
    /// Live key and value bytes at which writes that add data are refused (507).
    pub quota_bytes: u64,
    /// Live sessions at which a new one is refused (507).
    pub sessions_max: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            value_bytes_max: 1 << 20,
            json_body_bytes_max: 64 << 10,
            request_timeout: Duration::from_secs(5),
            ready_timeout: Duration::from_millis(READY_TIMEOUT_MS_DEFAULT),
            page_bytes_max: PAGE_BYTES_MAX_DEFAULT,
            body_timeout: Duration::from_millis(HTTP_BODY_TIMEOUT_MS_DEFAULT),
            quota_bytes: crate::http::quota::QUOTA_BYTES_DEFAULT,
            sessions_max: crate::http::quota::SESSIONS_MAX_DEFAULT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_and_unusable_values_are_refused_by_name() {
        assert_eq!(HttpArgs::default().check(), Ok(()));
        assert_eq!(HttpArgs::default().limits(), HttpLimits::default());
        let refused = |a: HttpArgs| a.check().map_err(|(name, _)| name);
        assert_eq!(
            refused(HttpArgs {
                http_connections_max: 0,
                ..HttpArgs::default()
            }),
            Err("HTTP_CONNECTIONS_MAX")
        );
        assert_eq!(
            refused(HttpArgs {
                http_header_timeout_ms: 300,
                ..HttpArgs::default()
            }),
            Err("HTTP_HEADER_TIMEOUT_MS")
        );
        assert_eq!(
            refused(HttpArgs {
                page_bytes_max: 1 << 20,
                ..HttpArgs::default()
            }),
            Err("PAGE_BYTES_MAX")
        );
        assert_eq!(
            refused(HttpArgs {
                ready_timeout_ms: 0,
                ..HttpArgs::default()
            }),
            Err("READY_TIMEOUT_MS")
        );
    }
}
