//! The connection flags every client of a cluster takes: `--endpoints` (or
//! `CONCIERGE_ENDPOINTS`), for `https://` endpoints `--cacert`, `--cert` and `--key`,
//! and the access token `--token` (or `CONCIERGE_TOKEN`). The command-line client
//! (`src/cli/conn.rs` flattens them) and `concierge bench` share this one definition,
//! so the two never disagree on a name, variable, default or syntax.
//!
//! Invariants: [`Endpoints::list`] never returns an empty list or an empty entry; no
//! `Debug` output shows the token.

use clap::Args;
use concierge_client::Tls;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use std::fmt;
use std::path::PathBuf;

/// The nodes a client talks to, and how it proves who it is.
#[derive(Args, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The nodes, comma-separated host:port or URLs (client commands fail over in this
    /// order; `bench` spreads its connections over them).
    #[arg(
        long,
        env = "CONCIERGE_ENDPOINTS",
        default_value = "127.0.0.1:8080",
        value_name = "HOST:PORT,..."
    )]
    pub endpoints: String,
    /// Trust only the CA certificates of this PEM file for `https://` endpoints
    /// (default: the system's roots).
    #[arg(long, env = "CONCIERGE_CACERT", value_name = "PEM")]
    pub cacert: Option<PathBuf>,
    /// Show this certificate (PEM) to nodes that require client certificates; with --key.
    #[arg(long, env = "CONCIERGE_CERT", value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, env = "CONCIERGE_KEY", value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The access-control token, sent as `Authorization: Bearer` (none by default).
    #[arg(
        long,
        env = "CONCIERGE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoints")
            .field("endpoints", &self.endpoints)
            .field("cacert", &self.cacert)
            .field("cert", &self.cert)
            .field("key", &self.key)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// What an HTTP client of the nodes needs besides their addresses: the TLS settings
/// and the token. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct Access {
    pub tls: Tls,
    pub token: Option<String>,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("tls", &self.tls)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Access {
    /// Sets the TLS settings and, with a token, an `Authorization: Bearer` header on
    /// every request of an HTTP client builder.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
        let mut builder = self.tls.apply(builder).map_err(|e| e.to_string())?;
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "--token: not a valid header value".to_string())?;
            value.set_sensitive(true);
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value);
            builder = builder.default_headers(headers);
        }
        Ok(builder)
    }
}

impl Endpoints {
    /// The endpoints as given, trimmed; an empty entry is an error for the user.
    pub fn list(&self) -> Result<Vec<String>, String> {
        let list: Vec<String> = self
            .endpoints
            .split(',')
            .map(|e| e.trim().to_string())
            .collect();
        if list.iter().any(String::is_empty) {
            return Err(format!(
                "--endpoints {:?}: an entry is empty",
                self.endpoints
            ));
        }
        Ok(list)
    }

    /// The TLS files read (an unreadable file is an error for the user).
    pub fn tls(&self) -> Result<Tls, String> {
        Tls::from_files(
            self.cacert.as_deref(),
            self.cert.as_deref(),
            self.key.as_deref(),
        )
        .map_err(|e| e.to_string())
    }

    /// The TLS files read and the token.
    pub fn access(&self) -> Result<Access, String> {
        Ok(Access {
            tls: self.tls()?,
            token: self.token.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_trimmed_and_none_may_be_empty() {
        let e = |s: &str| Endpoints {
            endpoints: s.into(),
            cacert: None,
            cert: None,
            key: None,
            token: None,
        };
        assert_eq!(
            e("a:1, http://b:2 ").list(),
            Ok(vec!["a:1".to_string(), "http://b:2".to_string()])
        );
        assert!(e("a:1,,b:2").list().is_err());
        assert!(e("").list().is_err());
    }

    #[test]
    fn debug_never_shows_the_token() {
        let e = Endpoints {
            endpoints: "a:1".into(),
            cacert: None,
            cert: None,
            key: None,
            token: Some("0123.secret-part".into()),
        };
        let shown = format!(
            "{e:?} {:?}",
            e.access().unwrap_or_else(|err| panic!("{err}"))
        );
        assert!(!shown.contains("secret-part"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
