//! The connection flags every client of a cluster takes: `--endpoints` (or
//! `CONCIERGE_ENDPOINTS`) and, for `https://` endpoints, `--cacert`, `--cert` and
//! `--key`. The command-line client (`src/cli/conn.rs` flattens them) and `concierge
//! bench` share this one definition, so the two never disagree on a name, variable,
//! default or syntax.
//!
//! Invariant: [`Endpoints::list`] never returns an empty list or an empty entry.

use clap::Args;
use concierge_client::Tls;
use std::path::PathBuf;

/// The nodes a client talks to.
#[derive(Args, Debug, Clone, PartialEq, Eq)]
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
        };
        assert_eq!(
            e("a:1, http://b:2 ").list(),
            Ok(vec!["a:1".to_string(), "http://b:2".to_string()])
        );
        assert!(e("a:1,,b:2").list().is_err());
        assert!(e("").list().is_err());
    }
}
