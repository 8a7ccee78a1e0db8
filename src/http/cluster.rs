//! `/v1/cluster`, `/health` and `/ready`.

use crate::http::auth::Caller;
use crate::http::consensus::read_barrier;
use crate::http::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use serde_json::json;

/// `GET /health`: 200 while the process runs.
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /ready`: 200 when a leader is known and this node has applied everything
/// committed up to when it asked; else 503 `not_ready`. A probe answers within
/// `limits.ready_timeout` (1 s by default): the read barrier is given that long, not
/// the request timeout, and past it the answer is 503.
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let status = state.node.status();
    if status.leader.is_none() {
        return Err(ApiError::NotReady("no leader is known".into()));
    }
    let limit = state.limits.ready_timeout;
    match tokio::time::timeout(limit, read_barrier(&state)).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Ok(Err(e)) => Err(ApiError::NotReady(format!(
            "not caught up: {}",
            e.message()
        ))),
        Err(_) => Err(ApiError::NotReady(format!(
            "could not confirm being caught up within {} ms",
            limit.as_millis()
        ))),
    }
}

/// Bytes the storage engine's files take on disk (walked off the async threads).
pub async fn db_size_bytes(state: &AppState) -> u64 {
    let dir = state.data_dir.join("kv");
    web::block(move || crate::backup::data_size::dir_bytes(&dir))
        .await
        .unwrap_or(0)
}

/// `GET /v1/cluster`. Besides API.md's fields: `db_size_bytes` (the storage engine's
/// files), `live_bytes` (live keys and values), `history_bytes` and `compact_revision`
/// (the watch history: revisions above it are held); the newest membership this node
/// knows: `voters`, `learners`, each member's `role` and `commit_index` (the commit
/// index it last reported: its progress), `membership_slot` (the slot that chose it);
/// and what a joining node needs: `cluster_id`, `first_members`, `cluster_token`.
/// Any authenticated caller may read it (`_caller`).
pub async fn cluster(
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let status = state.node.status();
    let meta = state.reader.meta()?;
    let db_size = db_size_bytes(&state).await;
    let members: Vec<_> = status
        .members
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "peer_addr": m.peer_addr,
                "client_addr": m.client_addr,
                "healthy": m.healthy,
                "role": if m.voter { "voter" } else { "learner" },
                "commit_index": m.commit_index,
            })
        })
        .collect();
    let ids = |voter: bool| -> Vec<_> {
        status
            .members
            .iter()
            .filter(|m| m.voter == voter)
            .map(|m| m.id)
            .collect()
    };
    let (first, token) = state.node.first_members();
    let first: Vec<_> = first
        .iter()
        .map(|(id, addr)| json!({"id": id, "peer_addr": addr}))
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((crate::http::headers::REVISION, meta.revision))
        .json(json!({
            "node_id": status.id,
            "leader_id": status.leader,
            "ballot": status.ballot,
            "commit_index": status.commit_index,
            "applied_index": meta.applied_index,
            "revision": meta.revision,
            "members": members,
            "voters": ids(true),
            "learners": ids(false),
            "membership_slot": status.membership_slot,
            "cluster_id": format!("{:016x}", state.node.cluster_id()),
            "first_members": first,
            "cluster_token": format!("{token:016x}"),
            "db_size_bytes": db_size,
            "live_bytes": meta.live_bytes.unwrap_or(0),
            "history_bytes": meta.history_bytes,
            "compact_revision": meta.compact_revision,
        })))
}
