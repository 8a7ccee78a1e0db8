//! The flags every client command shares (`--endpoints` and the TLS files, defined
//! once in `concierge::endpoints` for `bench` too, `--json`, `--timeout`, `--token`) and the [`Client`]
//! they build.
//!
//! Invariant: every attempt's limit is within the call's (`--timeout`), and the
//! defaults are the client crate's (an attempt 4 s, below the server's 5 s).

use super::exit::Failure;
use clap::Args;
use concierge::endpoints::Endpoints;
use concierge_client::{Client, ClientConfig};
use std::time::Duration;

/// Where the cluster is and how to answer.
#[derive(Args, Debug, Clone)]
pub struct Conn {
    #[command(flatten)]
    pub endpoints: Endpoints,
    /// Print JSON (one document, or one per line for `watch`) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Give up on a call after this many seconds (all its attempts and endpoints).
    #[arg(long, default_value_t = 20.0, value_name = "SECONDS")]
    pub timeout: f64,
}

impl Conn {
    /// The endpoints as given, trimmed.
    pub fn endpoint_list(&self) -> Result<Vec<String>, Failure> {
        self.endpoints.list().map_err(Failure::usage)
    }

    /// A client of the endpoints with the call limit of `--timeout`.
    pub fn client(&self) -> Result<Client, Failure> {
        let timeout = Duration::try_from_secs_f64(self.timeout)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or_else(|| {
                Failure::usage(format!(
                    "--timeout {}: not a positive duration",
                    self.timeout
                ))
            })?;
        let mut config = ClientConfig::new(self.endpoint_list()?);
        config.tls = self.endpoints.tls().map_err(Failure::usage)?;
        if let Some(token) = &self.endpoints.token {
            config = config.with_token(token.clone());
        }
        config.call_deadline = timeout;
        config.attempt_timeout = config.attempt_timeout.min(timeout);
        config.connect_timeout = config.connect_timeout.min(timeout);
        config.check()?;
        Ok(Client::new(config)?)
    }
}
