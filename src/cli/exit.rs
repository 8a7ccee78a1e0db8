//! The command-line client's exit codes and its one error type, [`Failure`].
//!
//! Invariant: "not found" (3) and "condition failed" (4) are answers the user asked
//! for, kept apart from failures of the service or the network (1) and from a wrong
//! command line (2, also clap's own code). docs/cli.md lists them; a change here is a
//! change there.

use concierge_client::Error;
use std::fmt;

/// Success.
pub const OK: u8 = 0;
/// The call failed: unreachable, unavailable, timed out, refused, a bad answer, I/O.
pub const ERROR: u8 = 1;
/// The command line is wrong (clap's code) or an argument was refused before sending.
pub const USAGE: u8 = 2;
/// The key or the session does not exist.
pub const NOT_FOUND: u8 = 3;
/// A condition did not hold: version mismatch, a transaction's compares failed (its
/// `else` branch ran), a watch's start revision is compacted.
pub const CONDITION: u8 = 4;

/// Why a command stopped, with the code it exits with.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(USAGE, message)
    }

    pub fn error(message: impl Into<String>) -> Failure {
        Failure::new(ERROR, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The exit code of a client error.
pub fn code_of(e: &Error) -> u8 {
    match e {
        Error::KeyNotFound(_) | Error::SessionNotFound(_) => NOT_FOUND,
        Error::VersionMismatch { .. } | Error::Compacted { .. } => CONDITION,
        Error::InvalidArgument(_) => USAGE,
        Error::Rejected(_)
        | Error::Unavailable(_)
        | Error::Unreachable { .. }
        | Error::Timeout(_)
        | Error::OutcomeUnknown { .. }
        | Error::Internal(_)
        | Error::Protocol { .. }
        | Error::SessionLost { .. } => ERROR,
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::new(code_of(&e), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concierge_client::ServerError;

    fn server(status: u16, code: &str) -> ServerError {
        ServerError {
            status,
            code: code.into(),
            message: String::new(),
            endpoint: "http://n1".into(),
        }
    }

    #[test]
    fn conditions_keep_their_own_codes_apart_from_failures() {
        assert_eq!(
            code_of(&Error::KeyNotFound(server(404, "key_not_found"))),
            3
        );
        assert_eq!(
            code_of(&Error::SessionNotFound(server(404, "session_not_found"))),
            3
        );
        let mismatch = Error::VersionMismatch {
            current_version: 2,
            error: server(412, "version_mismatch"),
        };
        assert_eq!(code_of(&mismatch), 4);
        assert_eq!(code_of(&Error::Unavailable(server(503, "no_quorum"))), 1);
        assert_eq!(code_of(&Error::Timeout(server(504, "timeout"))), 1);
        assert_eq!(code_of(&Error::Rejected(server(400, "invalid_key"))), 1);
        assert_eq!(code_of(&Error::InvalidArgument("x".into())), 2);
    }
}
