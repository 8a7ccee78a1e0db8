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
}

impl Default for HttpArgs {
    fn default() -> Self {
        HttpArgs {
            ready_timeout_ms: READY_TIMEOUT_MS_DEFAULT,
            page_bytes_max: PAGE_BYTES_MAX_DEFAULT,
        }
    }
}

impl HttpArgs {
    /// Refuses unusable values: (flag name, reason).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let positive = [("READY_TIMEOUT_MS", self.ready_timeout_ms)];
        for (name, v) in positive {
            if v == 0 {
                return Err((name, "must be at least 1".into()));
            }
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
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            value_bytes_max: 1 << 20,
            json_body_bytes_max: 64 << 10,
            request_timeout: Duration::from_secs(5),
            ready_timeout: Duration::from_millis(READY_TIMEOUT_MS_DEFAULT),
            page_bytes_max: PAGE_BYTES_MAX_DEFAULT,
        }
    }
}
