//! The client's errors: one enum that keeps apart what an application must treat
//! differently.
//!
//! - Conditions (`KeyNotFound`, `SessionNotFound`, `VersionMismatch`, `Compacted`): the
//!   server answered, and the request changed nothing.
//! - `Rejected`: the server refused the request as it is (400, 401, 403, 405, 413, 422,
//!   507, an unknown route); sending it again will not help.
//! - `Unavailable` (503) and `Unreachable` (no endpoint took the connection): the request
//!   was not applied and will not be; it is safe to send again.
//! - `Timeout` (504) and `OutcomeUnknown` (the connection failed after the request was
//!   sent): the write may or may not be applied.
//! - `Internal` (500), `Protocol` (an answer that breaks the contract), `InvalidArgument`
//!   (refused before sending).
//!
//! Invariant: a variant that promises "not applied" is never returned for a call one of
//! whose attempts may have been applied (the transport returns that attempt's error).

use std::fmt;

/// An error answer of the server: its status, its JSON `error` code (empty when the
/// body had none, as for a 408 of the HTTP layer) and message, and the endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub endpoint: String,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} from {}: {}",
            self.status, self.code, self.endpoint, self.message
        )
    }
}

/// Everything a call can fail with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// 404 `key_not_found`.
    KeyNotFound(ServerError),
    /// 404 `session_not_found`: the session expired, was closed or never existed.
    SessionNotFound(ServerError),
    /// 412 `version_mismatch`: the key's version is `current_version` (0 when absent).
    VersionMismatch {
        current_version: u64,
        error: ServerError,
    },
    /// 410 `compacted`: a watch's start is older than the retained history.
    Compacted {
        compact_revision: u64,
        error: ServerError,
    },
    /// Another 4xx: the request is wrong as it stands (the code says why).
    Rejected(ServerError),
    /// 503 on the last attempt: not applied, safe to retry later.
    Unavailable(ServerError),
    /// No endpoint accepted a connection before the call's deadline: not sent, not applied.
    Unreachable { message: String },
    /// 504 `timeout`: the outcome is unknown; the write may yet be applied.
    Timeout(ServerError),
    /// The request may have reached a node, but no answer came back (a timeout or a
    /// connection broken mid-request): the outcome is unknown.
    OutcomeUnknown { endpoint: String, message: String },
    /// A 5xx other than 503/504: a server bug.
    Internal(ServerError),
    /// An answer that does not follow the contract (bad JSON, a missing header,
    /// an event stream out of order).
    Protocol { endpoint: String, message: String },
    /// Refused by the client before anything was sent.
    InvalidArgument(String),
    /// The session a recipe (a lock) relied on was lost; what it held is gone.
    SessionLost { reason: String },
}

/// Whether a failed call changed anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Nothing was applied (a condition, a refusal, a 503, nothing sent).
    No,
    /// The write may have been applied.
    Unknown,
}

impl Error {
    /// The server's JSON `error` code, when the server answered.
    pub fn code(&self) -> Option<&str> {
        self.server().map(|e| e.code.as_str())
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        self.server().map(|e| e.status)
    }

    /// The server's answer, when there was one.
    pub fn server(&self) -> Option<&ServerError> {
        match self {
            Error::KeyNotFound(e)
            | Error::SessionNotFound(e)
            | Error::Rejected(e)
            | Error::Unavailable(e)
            | Error::Timeout(e)
            | Error::Internal(e) => Some(e),
            Error::VersionMismatch { error, .. } | Error::Compacted { error, .. } => Some(error),
            Error::Unreachable { .. }
            | Error::OutcomeUnknown { .. }
            | Error::Protocol { .. }
            | Error::InvalidArgument(_)
            | Error::SessionLost { .. } => None,
        }
    }

    /// Whether the failed call may have changed anything.
    pub fn applied(&self) -> Applied {
        match self {
            Error::Timeout(_) | Error::OutcomeUnknown { .. } | Error::Internal(_) => {
                Applied::Unknown
            }
            // A malformed answer came after the request was handled.
            Error::Protocol { .. } => Applied::Unknown,
            _ => Applied::No,
        }
    }

    /// A condition the application asked about (not found, version mismatch,
    /// compacted), not a failure of the service.
    pub fn is_condition(&self) -> bool {
        matches!(
            self,
            Error::KeyNotFound(_)
                | Error::SessionNotFound(_)
                | Error::VersionMismatch { .. }
                | Error::Compacted { .. }
        )
    }

    /// Maps an error answer (status and body) of `endpoint`.
    pub(crate) fn from_answer(status: u16, body: &[u8], endpoint: &str) -> Error {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let number = |name: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_u64())
        };
        let error = ServerError {
            status,
            code: field("error").unwrap_or_default(),
            message: field("message")
                .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect()),
            endpoint: endpoint.to_string(),
        };
        match (status, error.code.as_str()) {
            (404, "key_not_found") => Error::KeyNotFound(error),
            (404, "session_not_found") => Error::SessionNotFound(error),
            (412, _) => match number("current_version") {
                Some(current_version) => Error::VersionMismatch {
                    current_version,
                    error,
                },
                None => Error::Protocol {
                    endpoint: endpoint.to_string(),
                    message: format!("412 without current_version: {}", error.message),
                },
            },
            (410, _) => match number("compact_revision") {
                Some(compact_revision) => Error::Compacted {
                    compact_revision,
                    error,
                },
                None => Error::Protocol {
                    endpoint: endpoint.to_string(),
                    message: format!("410 without compact_revision: {}", error.message),
                },
            },
            (503, _) => Error::Unavailable(error),
            (504, _) => Error::Timeout(error),
            (400..=499, _) => Error::Rejected(error),
            _ => Error::Internal(error),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::KeyNotFound(e) => write!(f, "key not found ({e})"),
            Error::SessionNotFound(e) => write!(f, "session not found ({e})"),
            Error::VersionMismatch {
                current_version,
                error,
            } => write!(
                f,
                "version mismatch: the current version is {current_version} ({error})"
            ),
            Error::Compacted {
                compact_revision,
                error,
            } => write!(
                f,
                "history compacted through revision {compact_revision} ({error})"
            ),
            Error::Rejected(e) => write!(f, "request refused: {e}"),
            Error::Unavailable(e) => write!(f, "unavailable, not applied: {e}"),
            Error::Unreachable { message } => write!(f, "no endpoint reachable: {message}"),
            Error::Timeout(e) => write!(f, "timed out, outcome unknown: {e}"),
            Error::OutcomeUnknown { endpoint, message } => {
                write!(f, "no answer from {endpoint}, outcome unknown: {message}")
            }
            Error::Internal(e) => write!(f, "server error: {e}"),
            Error::Protocol { endpoint, message } => {
                write!(f, "bad answer from {endpoint}: {message}")
            }
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::SessionLost { reason } => write!(f, "the session was lost: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

/// An error and its causes, `: `-separated: reqwest's own message names only the URL,
/// the cause says why (a refused connection, an untrusted certificate).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, body: &str) -> Error {
        Error::from_answer(status, body.as_bytes(), "http://n1")
    }

    #[test]
    fn answers_map_to_the_variant_of_their_status_and_code() {
        assert!(matches!(
            map(404, r#"{"error":"key_not_found","message":"m"}"#),
            Error::KeyNotFound(_)
        ));
        assert!(matches!(
            map(404, r#"{"error":"session_not_found","message":"m"}"#),
            Error::SessionNotFound(_)
        ));
        assert!(matches!(
            map(404, r#"{"error":"not_found","message":"m"}"#),
            Error::Rejected(_)
        ));
        match map(
            412,
            r#"{"error":"version_mismatch","message":"m","current_version":7}"#,
        ) {
            Error::VersionMismatch {
                current_version, ..
            } => assert_eq!(current_version, 7),
            other => panic!("{other:?}"),
        }
        let e = map(503, r#"{"error":"no_quorum","message":"m"}"#);
        assert!(matches!(e, Error::Unavailable(_)));
        assert_eq!(e.applied(), Applied::No);
        assert_eq!(e.code(), Some("no_quorum"));
        let e = map(504, r#"{"error":"timeout","message":"m"}"#);
        assert!(matches!(e, Error::Timeout(_)));
        assert_eq!(e.applied(), Applied::Unknown);
        assert!(matches!(map(408, ""), Error::Rejected(_)));
        assert!(matches!(map(500, "oops"), Error::Internal(_)));
        // A 412 without its field breaks the contract.
        assert!(matches!(
            map(412, r#"{"error":"version_mismatch"}"#),
            Error::Protocol { .. }
        ));
    }
}
