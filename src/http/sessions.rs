//! `/v1/sessions`: create, keepalive, inspect, list and close sessions.
//!
//! Keepalives never go through the log: the leader's [`LeaseTable`] takes them. A
//! follower forwards a keepalive to the leader's client address and relays the answer
//! (`http::forward`). The leader first
//! applies through its commit index (a local wait), so a keepalive sent after a close
//! was acknowledged, by any node, is answered 404.
//!
//! [`LeaseTable`]: crate::kv::LeaseTable

use crate::http::auth::Caller;
use crate::http::body::read_json;
use crate::http::consensus::{propose, read_barrier, wait_applied};
use crate::http::headers::REVISION;
use crate::http::keys::{failure, unexpected};
use crate::http::validate::{list_limit, validate_key_param, Query};
use crate::http::{forward, ApiError, AppState};
use crate::kv::read::Page;
use crate::kv::sessions::{SESSION_TTL_MS_MAX, SESSION_TTL_MS_MIN};
use crate::kv::{Command, Outcome, SessionId};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// TTL of a session created without one.
pub const SESSION_TTL_MS_DEFAULT: u64 = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    ttl_ms: Option<u64>,
}

/// A fresh random session id (SipHash keyed by the process's random state, over a
/// counter and the time, so ids differ across calls, nodes and restarts).
pub fn new_session_id() -> SessionId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    h.write_u64(nanos);
    SessionId(h.finish())
}

/// The `{id}` of the path. An id that is not 1 to 16 hex digits names no session:
/// 404, as for any id that is not a live session (API.md: "well-formed or not").
fn parse_id(req: &HttpRequest) -> Result<SessionId, ApiError> {
    let raw = req.match_info().get("id").unwrap_or_default();
    raw.parse().map_err(|e: crate::kv::command::BadSessionId| {
        ApiError::SessionNotFound(format!("{e}: no session has this id"))
    })
}

fn not_found(id: SessionId) -> ApiError {
    ApiError::SessionNotFound(format!("session {id} does not exist or has expired"))
}

/// `POST /v1/sessions`.
pub async fn create(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.sessions()?;
    let limit = state.limits.json_body_bytes_max;
    let shape = "body is not {\"ttl_ms\": N}";
    let parsed: Option<CreateBody> =
        read_json(&req, &mut payload, limit, state.limits.body_timeout, shape).await?;
    let ttl_ms = parsed
        .and_then(|b| b.ttl_ms)
        .unwrap_or(SESSION_TTL_MS_DEFAULT);
    if !(SESSION_TTL_MS_MIN..=SESSION_TTL_MS_MAX).contains(&ttl_ms) {
        return Err(ApiError::BadRequest(format!(
            "ttl_ms {ttl_ms} outside {SESSION_TTL_MS_MIN}..={SESSION_TTL_MS_MAX}"
        )));
    }
    // A random 64-bit id collides with a live one essentially never; retry once anyway.
    for _ in 0..2 {
        let id = new_session_id();
        let reply = propose(
            &req,
            &state,
            Command::CreateSession {
                id,
                ttl_ms,
                owner: caller.owner(),
            },
        )
        .await?;
        if reply.outcome == Outcome::IdempotencyKeyReused {
            return Err(ApiError::IdempotencyKeyReused);
        }
        match reply.outcome {
            Outcome::SessionCreated { id, ttl_ms } => {
                return Ok(HttpResponse::Created()
                    .insert_header((REVISION, reply.revision))
                    .json(json!({"id": id.to_string(), "ttl_ms": ttl_ms})))
            }
            Outcome::Rejected { .. } => continue,
            _ => return Err(unexpected(&reply)),
        }
    }
    Err(ApiError::Internal("session id collided twice".into()))
}

/// `POST /v1/sessions/{id}/keepalive`.
pub async fn keepalive(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&req)?;
    caller.sessions()?;
    let status = state.node.status();
    if status.is_leader {
        caller.use_session(&state, id).await?;
        // A close acknowledged by another node is chosen at or below this leader's
        // commit index: apply that far first, or a closed session would be kept alive.
        wait_applied(&state, status.commit_index).await?;
        let ttl_ms = match state.leases.keepalive(id) {
            Some(ttl) => ttl,
            None => {
                // The session may be in a slot this leader has not applied yet.
                read_barrier(&state).await?;
                state.leases.keepalive(id).ok_or_else(|| not_found(id))?
            }
        };
        return Ok(HttpResponse::Ok().json(json!({"id": id.to_string(), "ttl_ms": ttl_ms})));
    }
    forward::to_leader(&req, &state, "keepalive", bytes::Bytes::new()).await
}

/// `GET /v1/sessions/{id}[?limit=N&start_after=K]`: the session and a page of its
/// ephemeral keys (by count and the page byte budget), `more` when the page was cut.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&req)?;
    caller.use_session(&state, id).await?;
    let query = Query::of(&req)?;
    let page = Page {
        limit: list_limit(&query)?,
        bytes_max: state.limits.page_bytes_max,
    };
    let start_after = query.get("start_after")?;
    if let Some(after) = start_after {
        validate_key_param("start_after", after)?;
    }
    read_barrier(&state).await?;
    let record = state.reader.session(id)?.ok_or_else(|| not_found(id))?;
    let (keys, more) = state.reader.session_keys_page(id, start_after, page)?;
    Ok(HttpResponse::Ok()
        .json(json!({"id": id.to_string(), "ttl_ms": record.ttl_ms, "keys": keys, "more": more})))
}

/// `GET /v1/sessions[?limit=N&start_after=ID]`: a page of the live sessions in id
/// order, `more` when there are more.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.sessions()?;
    let query = Query::of(&req)?;
    let limit = list_limit(&query)?;
    let start_after = query.session("start_after")?;
    read_barrier(&state).await?;
    let (page, more) = state.reader.sessions_page(start_after, limit)?;
    // Only the caller's own sessions, unless it is an admin (a page may hold fewer).
    let sessions: Vec<_> = page
        .into_iter()
        .filter(|(_, r)| caller.grants().owns(r.owner.as_deref()))
        .map(|(id, r)| json!({"id": id.to_string(), "ttl_ms": r.ttl_ms}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions, "more": more })))
}

/// `DELETE /v1/sessions/{id}`.
pub async fn close(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&req)?;
    caller.use_session(&state, id).await?;
    let reply = propose(&req, &state, Command::CloseSession { id }).await?;
    if let Some(err) = failure(&reply) {
        return Err(err);
    }
    match reply.outcome {
        Outcome::SessionClosed { deleted_keys } => Ok(HttpResponse::Ok()
            .insert_header((REVISION, reply.revision))
            .json(json!({ "deleted_keys": deleted_keys }))),
        _ => Err(unexpected(&reply)),
    }
}
