//! `/v1/keys`: put, get and delete one key (optionally conditional, ephemeral or by
//! prefix), and list keys by prefix. A listing page stops at `limit` entries or at
//! the page byte budget (`limits.page_bytes_max`, counted by [`entry_json_bytes`]),
//! whichever comes first, and `more` says so.

use crate::http::auth::Caller;
use crate::http::body::read_limited;
use crate::http::consensus::{propose, read_barrier};
use crate::http::headers::REVISION;
use crate::http::validate::{
    consistency, expected_version, key_from_request, list_limit, validate_key, validate_key_param,
    validate_prefix_param, Consistency, Query,
};
use crate::http::{ApiError, AppState};
use crate::kv::read::Page;
use crate::kv::{Command, KeyRecord, Outcome, Reply};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bytes::Bytes;
use serde_json::json;

/// Maps the failure outcomes every write shares; passes the others through.
pub fn failure(reply: &Reply) -> Option<ApiError> {
    match &reply.outcome {
        Outcome::VersionMismatch { current_version } => Some(ApiError::VersionMismatch {
            current_version: *current_version,
        }),
        Outcome::KeyNotFound => Some(ApiError::KeyNotFound("no such key".into())),
        Outcome::SessionNotFound => Some(ApiError::SessionNotFound(
            "the session does not exist or has expired".into(),
        )),
        Outcome::Rejected { reason } => Some(ApiError::BadRequest(reason.clone())),
        Outcome::IdempotencyKeyReused => Some(ApiError::IdempotencyKeyReused),
        _ => None,
    }
}

/// An unexpected outcome for the command sent: a bug.
pub fn unexpected(reply: &Reply) -> ApiError {
    ApiError::Internal(format!("unexpected outcome {:?}", reply.outcome))
}

async fn serve_read(state: &AppState, query: &Query) -> Result<(), ApiError> {
    match consistency(query)? {
        Consistency::Linearizable => read_barrier(state).await,
        Consistency::Serializable => Ok(()),
    }
}

/// `PUT /v1/keys/{key}`.
pub async fn put(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let key = key_from_request(&req)?;
    let query = Query::of(&req)?;
    let expect_version = expected_version(&req, &query)?;
    let session = query.session("session")?;
    let sequential = query.bool("sequential")?;
    if sequential {
        caller.write_all(&key)?;
    } else {
        caller.write(&key)?;
    }
    if let Some(id) = session {
        caller.use_session(&state, id).await?;
    }
    let command_of = |value| {
        if sequential {
            if expect_version.is_some() {
                return Err(ApiError::BadRequest(
                    "a version condition cannot apply to a sequential put".into(),
                ));
            }
            validate_key(&format!("{key}{:020}", 0))?;
            Ok(Command::PutSequential {
                prefix: key.clone(),
                value,
                session,
            })
        } else {
            Ok(Command::Put {
                key: key.clone(),
                value,
                expect_version,
                session,
            })
        }
    };
    // Check the request before reading the body, then the body against its limit.
    command_of(Bytes::new())?;
    let value = read_limited(
        &req,
        &mut payload,
        state.limits.value_bytes_max,
        state.limits.body_timeout,
    )
    .await?;
    let reply = propose(&req, &state, command_of(value)?).await?;
    if let Some(err) = failure(&reply) {
        return Err(err);
    }
    match reply.outcome {
        Outcome::Put { entry, created } => {
            let mut resp = if created {
                HttpResponse::Created()
            } else {
                HttpResponse::Ok()
            };
            Ok(resp.insert_header((REVISION, reply.revision)).json(json!({
                "key": entry.key,
                "version": entry.version,
                "create_revision": entry.create_revision,
                "mod_revision": entry.mod_revision,
                "session": entry.session.map(|s| s.to_string()),
            })))
        }
        _ => Err(unexpected(&reply)),
    }
}

/// `GET /v1/keys/{key}`.
pub async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let key = key_from_request(&req)?;
    caller.read(&key)?;
    let query = Query::of(&req)?;
    serve_read(&state, &query).await?;
    let (record, revision) = state.reader.get(&key)?;
    let Some(record) = record else {
        return Ok(
            ApiError::KeyNotFound(format!("no key {key:?}")).error_response_with_revision(revision)
        );
    };
    let mut resp = HttpResponse::Ok();
    resp.content_type("application/octet-stream")
        .insert_header((REVISION, revision))
        .insert_header(("ETag", format!("\"{}\"", record.version)))
        .insert_header(("X-Concierge-Version", record.version))
        .insert_header(("X-Concierge-Create-Revision", record.create_revision))
        .insert_header(("X-Concierge-Mod-Revision", record.mod_revision));
    if let Some(s) = record.session {
        resp.insert_header(("X-Concierge-Session", s.to_string()));
    }
    Ok(resp.body(record.value))
}

/// `DELETE /v1/keys/{key}` (and `?prefix=true`).
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let key = key_from_request(&req)?;
    let query = Query::of(&req)?;
    let expect_version = expected_version(&req, &query)?;
    let command = if query.bool("prefix")? {
        if expect_version.is_some() {
            return Err(ApiError::BadRequest(
                "a version condition cannot apply to a prefix delete".into(),
            ));
        }
        caller.write_all(&key)?;
        Command::DeletePrefix { prefix: key }
    } else {
        caller.write(&key)?;
        Command::Delete {
            key,
            expect_version,
        }
    };
    let reply = propose(&req, &state, command).await?;
    if let Some(err) = failure(&reply) {
        return Err(err);
    }
    match reply.outcome {
        Outcome::Deleted { count } => Ok(HttpResponse::Ok()
            .insert_header((REVISION, reply.revision))
            .json(json!({"deleted": count, "revision": reply.revision}))),
        _ => Err(unexpected(&reply)),
    }
}

/// Bytes of JSON beyond the key and the value an entry takes at most (field names,
/// numbers, a session id).
pub const ENTRY_JSON_OVERHEAD_BYTES: u64 = 192;

/// The JSON size of one entry of a listing, as counted against the page's budget: the
/// key (escaping at most doubles it), the value in base64, and the rest.
pub fn entry_json_bytes(key: &str, record: &KeyRecord, with_value: bool) -> u64 {
    let value = if with_value {
        (record.value.len() as u64).div_ceil(3) * 4
    } else {
        0
    };
    2 * key.len() as u64 + value + ENTRY_JSON_OVERHEAD_BYTES
}

/// One entry of a listing.
pub fn entry_json(key: &str, record: &KeyRecord, with_value: bool) -> serde_json::Value {
    let mut e = json!({
        "key": key,
        "version": record.version,
        "create_revision": record.create_revision,
        "mod_revision": record.mod_revision,
        "session": record.session.map(|s| s.to_string()),
    });
    if with_value {
        e["value"] = json!(base64::engine::general_purpose::STANDARD.encode(&record.value));
    }
    e
}

/// `GET /v1/keys?prefix=P`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let prefix = query.get("prefix")?.unwrap_or("").to_string();
    validate_prefix_param("prefix", &prefix)?;
    caller.read_some(&prefix)?;
    let start_after = query.get("start_after")?.map(str::to_string);
    if let Some(after) = &start_after {
        validate_key_param("start_after", after)?;
    }
    let limit = list_limit(&query)?;
    let keys_only = query.bool("keys_only")?;
    serve_read(&state, &query).await?;
    let page = Page {
        limit,
        bytes_max: state.limits.page_bytes_max,
    };
    let page = state.reader.list_page(
        &prefix,
        start_after.as_deref(),
        page,
        !keys_only,
        &|key, record| entry_json_bytes(key, record, !keys_only),
    )?;
    // Only the keys the token may read (a page may hold fewer than `limit`).
    let entries: Vec<_> = page
        .entries
        .iter()
        .filter(|(k, _)| caller.grants().can_read(k))
        .map(|(k, r)| entry_json(k, r, !keys_only))
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header((REVISION, page.revision))
        .json(json!({"revision": page.revision, "more": page.more, "entries": entries})))
}
