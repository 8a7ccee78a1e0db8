//! The commands the log carries, and their byte encoding.
//!
//! A command is the validated intent of one client request (or of the leader's session
//! expiry): everything the state machine needs to apply it deterministically is inside,
//! including generated session ids. Encoding: one format byte ([`COMMAND_FORMAT`]) then
//! the MessagePack (rmp-serde, positional) form of [`Command`]. Decoding checks both;
//! a command that fails to decode is answered `Outcome::Rejected` on every replica
//! alike, never a panic.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The format byte every encoded command starts with.
pub const COMMAND_FORMAT: u8 = 1;

/// A session's id: a random u64 chosen by the node that took the create request,
/// shown to clients as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Why a session id string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSessionId(pub String);

impl fmt::Display for BadSessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session id must be 1 to 16 hex digits, got {:?}", self.0)
    }
}

impl FromStr for SessionId {
    type Err = BadSessionId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadSessionId(s.chars().take(40).collect()));
        }
        u64::from_str_radix(s, 16)
            .map(SessionId)
            .map_err(|_| BadSessionId(s.to_string()))
    }
}

/// The ballot of the leader that decided an expiry, as (round, node). Ordered like
/// the core's ballots; kept here as plain numbers so the log format does not depend
/// on the consensus crate's types.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LeaderBallot {
    pub round: u64,
    pub node: u32,
}

/// What a transaction's condition checks about one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    /// The key's version is this (0 = absent).
    Version(u64),
    /// The key exists (or not).
    Exists(bool),
    /// The key exists with exactly this value.
    Value(Bytes),
}

/// One condition of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub key: String,
    pub target: CompareTarget,
}

/// One operation of a transaction branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    Put {
        key: String,
        value: Bytes,
        session: Option<SessionId>,
    },
    Delete {
        key: String,
    },
    Get {
        key: String,
    },
}

/// One replicated command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Writes `value` at `key`. `expect_version`: Some(0) = only if absent, Some(n) = only
    /// if the current version is n. `session`: the key becomes ephemeral, owned by it.
    Put {
        key: String,
        value: Bytes,
        expect_version: Option<u64>,
        session: Option<SessionId>,
    },
    /// Writes `value` at `prefix` followed by the next 20-digit number of that prefix's
    /// sequence (unique and increasing per prefix, like ZooKeeper's sequential nodes).
    PutSequential {
        prefix: String,
        value: Bytes,
        session: Option<SessionId>,
    },
    /// Deletes `key` (optionally only at `expect_version`).
    Delete {
        key: String,
        expect_version: Option<u64>,
    },
    /// If every compare holds, runs `success`, else `failure`: all-or-nothing, one
    /// revision (none when the branch taken writes nothing).
    Txn {
        compares: Vec<Compare>,
        success: Vec<TxnOp>,
        failure: Vec<TxnOp>,
    },
    /// Deletes every key starting with `prefix`, in one revision.
    DeletePrefix { prefix: String },
    /// `inner`, applied at most once per idempotency `key`: a retry within the
    /// retention window gets the first reply back and changes nothing; the key used
    /// for another request is refused. `stamp_ms` is the proposing node's wall clock
    /// (Unix ms) and `leader` its ballot when it proposed as the leader (None from a
    /// follower, and in commands written before the field existed): only a leader's
    /// stamps move the state machine's idempotency clock (`kv::idempotency`), so the
    /// state machine itself never reads a clock and a skewed follower cannot move it.
    Idempotent {
        key: String,
        stamp_ms: u64,
        inner: Box<Command>,
        /// Written only when set, so a follower's command keeps the first layout
        /// (three fields) that a node of the previous release reads.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        leader: Option<LeaderBallot>,
    },
    /// Opens a session with the given id and time-to-live, owned by `owner` (the
    /// user whose token asked; written only when set, so the first layout stays).
    CreateSession {
        id: SessionId,
        ttl_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    /// Closes a session, deleting its ephemeral keys in one revision.
    CloseSession { id: SessionId },
    /// The leader found these sessions past their deadline: delete them and all their
    /// ephemeral keys in one revision. Ignored when a newer leader's expiry was applied
    /// already (`ballot` lower than the highest seen).
    ExpireSessions {
        ids: Vec<SessionId>,
        ballot: LeaderBallot,
    },
    /// The leader's wall clock (`stamp_ms`, Unix ms) under `ballot`, proposed while
    /// idempotency records are held and no idempotent write of the leader moved the
    /// clock lately: it advances the idempotency clock and retires old records.
    LeaderClock { ballot: LeaderBallot, stamp_ms: u64 },
    /// Drops the watch history of every revision below `revision` (etcd's compact):
    /// afterwards a watch from below it is answered `compacted`. Refused (nothing
    /// changes) when `revision` is above the current revision or at or below the oldest
    /// revision history still holds. Changes no key, so it takes no revision.
    Compact { revision: u64 },
    /// Changes the access-control state (`kv::auth`); changes no key, takes no revision.
    Auth(crate::kv::auth::AuthCommand),
}

/// Why bytes did not decode as a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    UnknownFormat(u8),
    Malformed(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "empty command"),
            DecodeError::UnknownFormat(b) => write!(f, "unknown command format byte {b}"),
            DecodeError::Malformed(r) => write!(f, "malformed command: {r}"),
        }
    }
}

impl Command {
    /// The log bytes of this command.
    pub fn encode(&self) -> Bytes {
        let mut out = vec![COMMAND_FORMAT];
        // Serializing an owned enum of strings, bytes and integers into a Vec cannot fail.
        if let Err(e) = rmp_serde::encode::write(&mut out, self) {
            unreachable!("encoding a command into memory failed: {e}");
        }
        Bytes::from(out)
    }

    /// Parses log bytes written by [`Command::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        let (&format, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if format != COMMAND_FORMAT {
            return Err(DecodeError::UnknownFormat(format));
        }
        rmp_serde::from_slice(body).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Put { .. } => "put",
            Command::PutSequential { .. } => "put_sequential",
            Command::Delete { .. } => "delete",
            Command::Txn { .. } => "txn",
            Command::DeletePrefix { .. } => "delete_prefix",
            Command::Idempotent { inner, .. } => inner.kind(),
            Command::CreateSession { .. } => "create_session",
            Command::CloseSession { .. } => "close_session",
            Command::ExpireSessions { .. } => "expire_sessions",
            Command::LeaderClock { .. } => "leader_clock",
            Command::Compact { .. } => "compact",
            Command::Auth(_) => "auth",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        let cmds = vec![
            Command::Put {
                key: "a/b".into(),
                value: Bytes::from_static(b"\x00\xffvalue"),
                expect_version: Some(3),
                session: Some(SessionId(0xdead_beef)),
            },
            Command::Delete {
                key: "k".into(),
                expect_version: None,
            },
            Command::PutSequential {
                prefix: "q/".into(),
                value: Bytes::from_static(b"v"),
                session: None,
            },
            Command::DeletePrefix {
                prefix: "p/".into(),
            },
            Command::CreateSession {
                id: SessionId(u64::MAX),
                ttl_ms: 1000,
                owner: None,
            },
            Command::CreateSession {
                id: SessionId(3),
                ttl_ms: 1000,
                owner: Some("u".into()),
            },
            Command::Auth(crate::kv::auth::AuthCommand::CreateToken {
                id: "0011".into(),
                user: "u".into(),
                hash: [7; 32],
            }),
            Command::CloseSession { id: SessionId(1) },
            Command::Idempotent {
                key: "req-1".into(),
                stamp_ms: 1_700_000_000_000,
                inner: Box::new(Command::CloseSession { id: SessionId(2) }),
                leader: Some(LeaderBallot { round: 3, node: 1 }),
            },
            Command::LeaderClock {
                ballot: LeaderBallot { round: 3, node: 1 },
                stamp_ms: 1_700_000_000_000,
            },
            Command::ExpireSessions {
                ids: vec![SessionId(1), SessionId(2)],
                ballot: LeaderBallot { round: 7, node: 2 },
            },
        ];
        for c in cmds {
            assert_eq!(Command::decode(&c.encode()), Ok(c));
        }
    }

    /// An idempotent command written before `leader` existed (three fields) decodes,
    /// as proposed by a follower; a follower's command is still written that way.
    #[test]
    fn an_idempotent_command_of_the_previous_layout_decodes() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        enum Old {
            Idempotent {
                key: String,
                stamp_ms: u64,
                inner: Box<Command>,
            },
        }
        let mut bytes = vec![COMMAND_FORMAT];
        rmp_serde::encode::write(
            &mut bytes,
            &Old::Idempotent {
                key: "k".into(),
                stamp_ms: 5,
                inner: Box::new(Command::CloseSession { id: SessionId(2) }),
            },
        )
        .unwrap();
        assert_eq!(
            Command::decode(&bytes),
            Ok(Command::Idempotent {
                key: "k".into(),
                stamp_ms: 5,
                inner: Box::new(Command::CloseSession { id: SessionId(2) }),
                leader: None,
            })
        );
        let follower = Command::Idempotent {
            key: "k".into(),
            stamp_ms: 5,
            inner: Box::new(Command::CloseSession { id: SessionId(2) }),
            leader: None,
        };
        assert_eq!(follower.encode(), Bytes::from(bytes));
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert_eq!(Command::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Command::decode(&[9, 1]), Err(DecodeError::UnknownFormat(9)));
        assert!(matches!(
            Command::decode(&[COMMAND_FORMAT, 0xc1]),
            Err(DecodeError::Malformed(_))
        ));
        let good = Command::CloseSession { id: SessionId(5) }.encode();
        assert!(Command::decode(&good[..good.len() - 1]).is_err());
    }

    #[test]
    fn session_ids_parse_and_print() {
        assert_eq!(SessionId(255).to_string(), "00000000000000ff");
        assert_eq!("00000000000000ff".parse(), Ok(SessionId(255)));
        assert_eq!("FF".parse(), Ok(SessionId(255)));
        assert!("".parse::<SessionId>().is_err());
        assert!("xyz".parse::<SessionId>().is_err());
        assert!("+1".parse::<SessionId>().is_err());
        assert!("00000000000000001".parse::<SessionId>().is_err());
    }
}
