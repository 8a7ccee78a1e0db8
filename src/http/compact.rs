//! `POST /v1/compact` `{"revision": R}`: drops the watch history below R, through the
//! log (`Command::Compact`, applied by every replica alike; `kv::history::compact`).
//!
//! Answers 200 `{"compact_revision": R - 1, "revision"}`; afterwards a watch from below
//! R is 410 `compacted`. R above the current revision ("a future revision") or at or
//! below the oldest revision history holds ("already compacted") is 400 `bad_request`
//! and changes nothing, like etcd's errors for both. A compaction takes no revision.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::http::auth::Caller;
use crate::http::body::read_small_json;
use crate::http::consensus::propose;
use crate::http::{ApiError, AppState};
use crate::kv::{Command, Outcome};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompactBody {
    revision: u64,
}

/// `POST /v1/compact`.
pub async fn compact(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.cluster()?;
    const SHAPE: &str = "body is not {\"revision\": N}";
    let parsed: CompactBody = read_small_json(&req, &mut payload, &state, SHAPE).await?;
    if parsed.revision == 0 {
        return Err(ApiError::BadRequest("revision must be at least 1".into()));
    }
    let reply = propose(
        &req,
        &state,
        Command::Compact {
            revision: parsed.revision,
        },
    )
    .await?;
    match reply.outcome {
        Outcome::Compacted {
            compact_revision, ..
        } => Ok(HttpResponse::Ok()
            .insert_header((crate::http::headers::REVISION, reply.revision))
            .json(json!({
                "compact_revision": compact_revision,
                "revision": reply.revision,
            }))),
        Outcome::Rejected { reason } => Err(ApiError::BadRequest(reason)),
        Outcome::IdempotencyKeyReused => Err(ApiError::IdempotencyKeyReused),
        other => Err(ApiError::Internal(format!("compact answered {other:?}"))),
    }
}
