//! The errors a node reports to its callers and at start-up.
//!
//! `NodeError` is what `NodeHandle` methods return; the HTTP layer maps `NoQuorum` and
//! `NotReady` to 503 and `Timeout` to 504. `StartError` covers a bad configuration or an
//! unreadable acceptor log at start-up (it converts into `io::Error` for `Node::start`).

use std::fmt;
use std::io;

/// Why a request to the node did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeError {
    /// No leader is known (or this node cannot reach a quorum); retry later.
    NoQuorum,
    /// The node is overloaded or catching up (queue full, apply lagging); retry later.
    NotReady { reason: &'static str },
    /// The request did not complete within its deadline; it may still be applied later.
    Timeout { ms: u64 },
    /// The node is shutting down or has stopped.
    Shutdown,
    /// The state machine failed to apply a command (the node stops applying).
    Apply { reason: String },
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::NoQuorum => write!(f, "no leader or no quorum reachable"),
            NodeError::NotReady { reason } => write!(f, "node not ready: {reason}"),
            NodeError::Timeout { ms } => write!(f, "request timed out after {ms} ms"),
            NodeError::Shutdown => write!(f, "node is shut down"),
            NodeError::Apply { reason } => write!(f, "state machine failed: {reason}"),
        }
    }
}

impl std::error::Error for NodeError {}

/// Why a node could not start.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is inconsistent.
    Config { reason: String },
    /// The acceptor log could not be opened or holds a record that does not decode.
    Storage { context: String, reason: String },
    /// Binding the peer listener or another I/O step failed.
    Io { context: String, source: io::Error },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config { reason } => write!(f, "invalid node config: {reason}"),
            StartError::Storage { context, reason } => write!(f, "{context}: {reason}"),
            StartError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for StartError {}

impl From<StartError> for io::Error {
    fn from(e: StartError) -> io::Error {
        let kind = match &e {
            StartError::Config { .. } => io::ErrorKind::InvalidInput,
            StartError::Storage { .. } => io::ErrorKind::InvalidData,
            StartError::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, e.to_string())
    }
}
