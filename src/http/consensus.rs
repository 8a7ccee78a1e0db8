//! The handlers' bridge to the node: proposing a command, and the read-index barrier of
//! linearizable reads, each bounded by the request timeout and mapped to API errors.
//!
//! An `Idempotency-Key` wraps the command in `Command::Idempotent`, stamped with this
//! node's wall clock and, when this node is the leader, its ballot (only the leader's
//! stamps move the idempotency clock: `kv::idempotency`).
//!
//! `NoQuorum`/`NotReady` become 503 (not applied, safe to retry); a timeout or a
//! shutdown mid-request becomes 504 (outcome unknown).

use crate::http::{ApiError, AppState};
use crate::kv::idempotency::IDEMPOTENCY_KEY_BYTES_MAX;
use crate::kv::{Command, LeaderBallot, Reply};
use crate::node::NodeError;
use crate::paxos::Slot;
use actix_web::HttpRequest;
use std::future::Future;

/// Maps a node error to its API answer.
pub fn node_error(e: NodeError) -> ApiError {
    match e {
        NodeError::NoQuorum => ApiError::NoQuorum(e.to_string()),
        NodeError::NotReady { .. } => ApiError::NotReady(e.to_string()),
        NodeError::Timeout { .. } | NodeError::Shutdown => ApiError::Timeout(e.to_string()),
        NodeError::Apply { .. } => ApiError::Internal(e.to_string()),
    }
}

async fn bounded<T>(
    state: &AppState,
    what: &str,
    fut: impl Future<Output = Result<T, NodeError>>,
) -> Result<T, ApiError> {
    // The node applies its own deadline; this one only guards against it hanging.
    let limit = state.limits.request_timeout + state.limits.request_timeout / 2;
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(node_error),
        Err(_) => Err(ApiError::Timeout(format!(
            "{what} did not complete within {} ms",
            limit.as_millis()
        ))),
    }
}

/// The request's `Idempotency-Key`, checked.
pub fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key is not visible ASCII".into()))?;
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_BYTES_MAX {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1..={IDEMPOTENCY_KEY_BYTES_MAX} bytes"
        )));
    }
    Ok(Some(key.to_string()))
}

/// This node's wall clock, Unix ms (0 before 1970).
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Proposes the command of `req`, made idempotent when it carries an
/// `Idempotency-Key`, and waits until this node applied it. A command that would add
/// data or a session past the limits is refused first ([`crate::http::quota`]).
pub async fn propose(
    req: &HttpRequest,
    state: &AppState,
    command: Command,
) -> Result<Reply, ApiError> {
    crate::http::quota::admit(req, state, &command).await?;
    let command = match idempotency_key(req)? {
        Some(key) => {
            // The stamp counts for the idempotency clock only from the leader.
            let status = state.node.status();
            Command::Idempotent {
                key,
                stamp_ms: wall_clock_ms(),
                inner: Box::new(command),
                leader: status.is_leader.then_some(LeaderBallot {
                    round: status.ballot.round,
                    node: status.ballot.node,
                }),
            }
        }
        None => command,
    };
    propose_command(state, command).await
}

/// Proposes `command` as it is and waits until this node applied it.
pub async fn propose_command(state: &AppState, command: Command) -> Result<Reply, ApiError> {
    let kind = command.kind();
    let (_slot, bytes) = bounded(state, kind, state.node.propose(command.encode())).await?;
    Reply::decode(&bytes).map_err(|e| ApiError::Internal(format!("{kind}: {e}")))
}

/// Waits until this node's applied state reflects every write acknowledged before now.
pub async fn read_barrier(state: &AppState) -> Result<(), ApiError> {
    let slot = bounded(state, "read index", state.node.read_index()).await?;
    wait_applied(state, slot).await
}

/// Waits until this node applied `slot` (a local wait: no message is sent).
pub async fn wait_applied(state: &AppState, slot: Slot) -> Result<(), ApiError> {
    bounded(state, "waiting to apply", state.node.wait_applied(slot)).await
}
