//! What applying a command produced, sent back to the node that took the request.
//!
//! Every replica computes the same [`Reply`] for the same slot; only the node that
//! proposed the command decodes it (through the node's result bytes) and turns it into
//! an HTTP answer. Encoding: one format byte then MessagePack, like commands.

use crate::kv::command::SessionId;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The format byte every encoded reply starts with.
pub const REPLY_FORMAT: u8 = 1;

/// A key's metadata after a write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    pub key: String,
    pub version: u64,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub session: Option<SessionId>,
}

/// The result of one operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnResult {
    Put {
        entry: EntryMeta,
        created: bool,
    },
    Deleted {
        count: u64,
    },
    /// The key and its record, or None when absent.
    Get(Option<(String, crate::kv::keyspace::KeyRecord)>),
}

/// The result of one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// A put was applied; `created` when the key did not exist before.
    Put { entry: EntryMeta, created: bool },
    /// A transaction ran the branch `succeeded` selects.
    Txn {
        succeeded: bool,
        results: Vec<TxnResult>,
    },
    /// A delete (single or prefix) removed `count` keys (0 for a prefix with no match).
    Deleted { count: u64 },
    /// A compare failed; nothing changed. `current_version` is 0 when the key is absent.
    VersionMismatch { current_version: u64 },
    /// The key to delete does not exist; nothing changed.
    KeyNotFound,
    /// The session named does not exist (never did, closed or expired); nothing changed.
    SessionNotFound,
    /// A session was opened.
    SessionCreated { id: SessionId, ttl_ms: u64 },
    /// A session was closed; its ephemeral keys are gone.
    SessionClosed { deleted_keys: u64 },
    /// Sessions expired by the leader; `sessions` of them still existed.
    SessionsExpired { sessions: u64, deleted_keys: u64 },
    /// An idempotent command's retry: the first reply (never sent to clients as such:
    /// the state machine answers with the reply inside).
    Replayed(Box<Reply>),
    /// The command was not applied: undecodable, over a limit, or a stale expiry.
    Rejected { reason: String },
    /// The idempotency key was first used for another request; nothing changed.
    IdempotencyKeyReused,
    /// The leader's clock was applied; `retired` idempotency records went.
    ClockAdvanced { retired: u64 },
    /// History below `compact_revision + 1` is gone; `dropped` revisions went now.
    Compacted { compact_revision: u64, dropped: u64 },
    /// An access-control command was applied.
    AuthChanged,
    /// The role, user or token an access-control command names does not exist.
    AuthNotFound { what: String },
}

/// Most bytes of values the gets of one transaction may return (the reply travels to
/// the proposer and becomes one HTTP answer): a transaction over it is refused whole.
/// A constant, not an option: every replica must refuse the same transactions.
pub const TXN_GET_BYTES_MAX: u64 = 4 << 20;

impl Outcome {
    /// Bytes of values the reply carries (a transaction's gets; 0 for the rest).
    pub fn get_bytes(&self) -> u64 {
        match self {
            Outcome::Txn { results, .. } => results
                .iter()
                .map(|r| match r {
                    TxnResult::Get(Some((_, record))) => record.value.len() as u64,
                    _ => 0,
                })
                .sum(),
            _ => 0,
        }
    }
}

/// An outcome and the cluster revision right after the command was applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub revision: u64,
    pub outcome: Outcome,
}

/// Why bytes did not decode as a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyDecodeError(pub String);

impl std::fmt::Display for ReplyDecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bad reply bytes: {}", self.0)
    }
}

impl Reply {
    /// The bytes handed back through the node.
    pub fn encode(&self) -> Bytes {
        let mut out = vec![REPLY_FORMAT];
        if let Err(e) = rmp_serde::encode::write(&mut out, self) {
            unreachable!("encoding a reply into memory failed: {e}");
        }
        Bytes::from(out)
    }

    /// Parses bytes written by [`Reply::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Reply, ReplyDecodeError> {
        match bytes.split_first() {
            Some((&REPLY_FORMAT, body)) => {
                rmp_serde::from_slice(body).map_err(|e| ReplyDecodeError(e.to_string()))
            }
            Some((b, _)) => Err(ReplyDecodeError(format!("unknown format byte {b}"))),
            None => Err(ReplyDecodeError("empty".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip() {
        let replies = [
            Reply {
                revision: 9,
                outcome: Outcome::Put {
                    entry: EntryMeta {
                        key: "k".into(),
                        version: 2,
                        create_revision: 3,
                        mod_revision: 9,
                        session: Some(SessionId(4)),
                    },
                    created: false,
                },
            },
            Reply {
                revision: 1,
                outcome: Outcome::VersionMismatch { current_version: 0 },
            },
            Reply {
                revision: 1,
                outcome: Outcome::Rejected { reason: "x".into() },
            },
        ];
        for r in replies {
            assert_eq!(Reply::decode(&r.encode()), Ok(r));
        }
        assert!(Reply::decode(&[]).is_err());
        assert!(Reply::decode(&[2, 0]).is_err());
    }
}
