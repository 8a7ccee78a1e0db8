//! `POST /v1/txn`: compare-then-branch transactions, parsed and checked here (at most
//! `TXN_OPS_MAX` ops, one write per key per branch, valid keys, values within the
//! limit) before they become one `Command::Txn`.

use crate::http::auth::Caller;
use crate::http::body::read_required_json;
use crate::http::consensus::propose;
use crate::http::headers::REVISION;
use crate::http::keys::{entry_json, failure, unexpected};
use crate::http::validate::validate_key;
use crate::http::{ApiError, AppState};
use crate::kv::{Command, Compare, CompareTarget, Outcome, SessionId, TxnOp, TxnResult};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;

/// Most ops (compares plus both branches) one transaction may hold.
pub const TXN_OPS_MAX: usize = 128;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TxnBody {
    #[serde(rename = "if", default)]
    compares: Vec<CompareBody>,
    #[serde(rename = "then", default)]
    success: Vec<OpBody>,
    #[serde(rename = "else", default)]
    failure: Vec<OpBody>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareBody {
    key: String,
    version: Option<u64>,
    exists: Option<bool>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpBody {
    op: String,
    key: String,
    value: Option<String>,
    session: Option<String>,
}

fn decode_value(v: &str, max: usize) -> Result<Bytes, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v)
        .map_err(|e| ApiError::BadRequest(format!("value is not base64: {e}")))?;
    if bytes.len() > max {
        return Err(ApiError::TooLarge {
            len: bytes.len() as u64,
            max: max as u64,
        });
    }
    Ok(Bytes::from(bytes))
}

fn parse_compare(c: CompareBody, max: usize) -> Result<Compare, ApiError> {
    validate_key(&c.key)?;
    let target = match (c.version, c.exists, c.value) {
        (Some(v), None, None) => CompareTarget::Version(v),
        (None, Some(e), None) => CompareTarget::Exists(e),
        (None, None, Some(v)) => CompareTarget::Value(decode_value(&v, max)?),
        _ => {
            return Err(ApiError::BadRequest(format!(
                "condition on {:?} must have exactly one of version, exists, value",
                c.key
            )))
        }
    };
    Ok(Compare { key: c.key, target })
}

fn parse_branch(ops: Vec<OpBody>, max: usize) -> Result<Vec<TxnOp>, ApiError> {
    let mut written = HashSet::new();
    let mut out = Vec::with_capacity(ops.len());
    for o in ops {
        validate_key(&o.key)?;
        let op = match o.op.as_str() {
            "put" => {
                let value = decode_value(o.value.as_deref().unwrap_or(""), max)?;
                let session = o
                    .session
                    .map(|s| {
                        s.parse::<SessionId>()
                            .map_err(|e| ApiError::BadRequest(e.to_string()))
                    })
                    .transpose()?;
                TxnOp::Put {
                    key: o.key.clone(),
                    value,
                    session,
                }
            }
            "delete" | "get" if o.value.is_some() || o.session.is_some() => {
                return Err(ApiError::BadRequest(format!(
                    "a {} op takes only a key",
                    o.op
                )))
            }
            "delete" => TxnOp::Delete { key: o.key.clone() },
            "get" => TxnOp::Get { key: o.key.clone() },
            other => {
                return Err(ApiError::BadRequest(format!(
                    "op {other:?}: expected put, delete or get"
                )))
            }
        };
        if !matches!(op, TxnOp::Get { .. }) && !written.insert(o.key.clone()) {
            return Err(ApiError::BadRequest(format!(
                "key {:?} is written twice in one branch",
                o.key
            )));
        }
        out.push(op);
    }
    Ok(out)
}

fn result_json(r: &TxnResult) -> Value {
    match r {
        TxnResult::Put { entry, .. } => json!({
            "key": entry.key,
            "version": entry.version,
            "create_revision": entry.create_revision,
            "mod_revision": entry.mod_revision,
            "session": entry.session.map(|s| s.to_string()),
        }),
        TxnResult::Deleted { count } => json!({ "deleted": count }),
        TxnResult::Get(Some((key, record))) => entry_json(key, record, true),
        TxnResult::Get(None) => Value::Null,
    }
}

/// `POST /v1/txn`.
pub async fn txn(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let max = state.limits.value_bytes_max;
    // Room for one value at the limit in base64, plus the rest of the document.
    let body_max = max / 3 * 4 + 8 + state.limits.json_body_bytes_max;
    const SHAPE: &str = "not a transaction document";
    let parsed: TxnBody = read_required_json(
        &req,
        &mut payload,
        body_max,
        state.limits.body_timeout,
        SHAPE,
    )
    .await?;
    let ops = parsed.compares.len() + parsed.success.len() + parsed.failure.len();
    if ops > TXN_OPS_MAX {
        return Err(ApiError::BadRequest(format!(
            "{ops} ops; a transaction holds at most {TXN_OPS_MAX}"
        )));
    }
    let compares = parsed
        .compares
        .into_iter()
        .map(|c| parse_compare(c, max))
        .collect::<Result<Vec<_>, _>>()?;
    let success = parse_branch(parsed.success, max)?;
    let failure_ops = parse_branch(parsed.failure, max)?;
    // Every key either branch touches is checked: lacking any right refuses it whole.
    for c in &compares {
        caller.read(&c.key)?;
    }
    for op in success.iter().chain(&failure_ops) {
        match op {
            TxnOp::Put { key, session, .. } => {
                caller.write(key)?;
                if let Some(id) = session {
                    caller.use_session(&state, *id).await?;
                }
            }
            TxnOp::Delete { key } => caller.write(key)?,
            TxnOp::Get { key } => caller.read(key)?,
        }
    }
    let reply = propose(
        &req,
        &state,
        Command::Txn {
            compares,
            success,
            failure: failure_ops,
        },
    )
    .await?;
    if let Some(err) = failure(&reply) {
        return Err(err);
    }
    match &reply.outcome {
        Outcome::Txn { succeeded, results } => Ok(HttpResponse::Ok()
            .insert_header((REVISION, reply.revision))
            .json(json!({
                "succeeded": succeeded,
                "revision": reply.revision,
                "results": results.iter().map(result_json).collect::<Vec<_>>(),
            }))),
        _ => Err(unexpected(&reply)),
    }
}
