//! `/v1/cluster`, `/health` and `/ready`.

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

/// `GET /v1/cluster`.
pub async fn cluster(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let status = state.node.status();
    let meta = state.reader.meta()?;
    let members: Vec<_> = status
        .members
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "peer_addr": m.peer_addr,
                "client_addr": m.client_addr,
                "healthy": m.healthy,
            })
        })
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
        })))
}
