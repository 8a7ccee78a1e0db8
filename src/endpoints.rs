//! The `--endpoints` flag (or `CONCIERGE_ENDPOINTS`) that every client of a cluster
//! takes: the command-line client (`src/cli/conn.rs` flattens it) and `concierge bench`.
//! One definition, so the two never disagree on its name, variable, default or syntax.
//!
//! Invariant: [`Endpoints::list`] never returns an empty list or an empty entry.

use clap::Args;

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_trimmed_and_none_may_be_empty() {
        let e = |s: &str| Endpoints {
            endpoints: s.into(),
        };
        assert_eq!(
            e("a:1, http://b:2 ").list(),
            Ok(vec!["a:1".to_string(), "http://b:2".to_string()])
        );
        assert!(e("a:1,,b:2").list().is_err());
        assert!(e("").list().is_err());
    }
}
