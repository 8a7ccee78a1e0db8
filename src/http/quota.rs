//! The storage quota and the sessions limit, enforced where commands are proposed.
//!
//! A command that can add data (a put, a sequential put, a transaction with a put, a
//! session) is refused with 507 `quota_exceeded` before it is proposed when this
//! node's applied state holds `quota_bytes` or more of live keys and values
//! (`Meta::live_bytes`: key + value bytes of every live key, read from the figures
//! published with the pinned state, `KvReader::live_bytes`, so a write decodes no meta
//! record), or, for a session, when `sessions_max` sessions are live. Reads, deletes,
//! keepalives and session closes are never refused, so a client can always make room.
//! Invariants:
//! - a refusal happens before proposing: it changes nothing, on any node;
//! - the check reads this node's applied state, so in-flight writes can pass it
//!   together: the live bytes exceed the quota by at most what concurrent writers
//!   had in flight when it was reached (as etcd's quota, a limit, not an exact cap);
//! - a retry of an idempotent request whose first attempt applied is never refused:
//!   it is proposed and replays the first answer (API.md: a 504 is retried with the
//!   same `Idempotency-Key` to learn the outcome).

use crate::http::consensus::{idempotency_key, read_barrier};
use crate::http::{ApiError, AppState};
use crate::kv::{Command, TxnOp};
use actix_web::HttpRequest;

/// Default quota of live key and value bytes (etcd's default backend quota).
pub const QUOTA_BYTES_DEFAULT: u64 = 2 << 30;
/// Default number of live sessions.
pub const SESSIONS_MAX_DEFAULT: u64 = 100_000;

/// What a command may add, if anything.
enum Growth {
    None,
    Data,
    Session,
}

fn growth(command: &Command) -> Growth {
    match command {
        Command::Put { .. } | Command::PutSequential { .. } => Growth::Data,
        Command::Txn {
            success, failure, ..
        } => {
            let puts = |ops: &[TxnOp]| ops.iter().any(|op| matches!(op, TxnOp::Put { .. }));
            if puts(success) || puts(failure) {
                Growth::Data
            } else {
                Growth::None
            }
        }
        Command::CreateSession { .. } => Growth::Session,
        Command::Idempotent { inner, .. } => growth(inner),
        Command::Delete { .. }
        | Command::DeletePrefix { .. }
        | Command::CloseSession { .. }
        | Command::ExpireSessions { .. }
        | Command::LeaderClock { .. }
        | Command::Compact { .. }
        | Command::Auth(_) => Growth::None,
    }
}

/// Why this node's state refuses more of `growth`, if it does.
fn over(state: &AppState, growth: Growth) -> Result<Option<String>, ApiError> {
    match growth {
        Growth::None => Ok(None),
        Growth::Data => {
            let live = state.reader.live_bytes()?.unwrap_or(0);
            let quota = state.limits.quota_bytes;
            Ok((live >= quota).then(|| {
                format!(
                    "the live keys and values take {live} bytes, at or over the quota of \
                     {quota} (QUOTA_BYTES); reads and deletes still work: delete keys to make room"
                )
            }))
        }
        Growth::Session => {
            let live = state.leases.len() as u64;
            let max = state.limits.sessions_max;
            Ok((live >= max).then(|| {
                format!(
                    "{live} sessions are live, the most allowed (SESSIONS_MAX); close or let \
                     some expire"
                )
            }))
        }
    }
}

/// Refuses `command` with 507 when it would add data or a session beyond the limits,
/// unless it retries an idempotent request that already applied.
pub async fn admit(req: &HttpRequest, state: &AppState, command: &Command) -> Result<(), ApiError> {
    let Some(reason) = over(state, growth(command))? else {
        return Ok(());
    };
    if let Some(key) = idempotency_key(req)? {
        // The first attempt may have applied on the leader and not yet here.
        read_barrier(state).await?;
        if state.reader.idempotency_record_held(&key)? {
            return Ok(());
        }
    }
    Err(ApiError::QuotaExceeded(reason))
}
