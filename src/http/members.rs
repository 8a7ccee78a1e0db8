//! `/v1/cluster/members`: change the members of a running cluster, through the log.
//!
//! - `POST /v1/cluster/members` `{"peer_addr": "host:port", "client_addr": "host:port"}`
//!   adds a node as a learner (it follows the log without voting) under the next id;
//!   201 `{"id", "peer_addr", "client_addr", "role": "learner", "slot"}`. Start the node
//!   afterwards with `JOIN` naming any member (docs/API.md, "Changing the members").
//! - `POST /v1/cluster/members/{id}/promote` makes a learner a voter once it has caught
//!   up (409 `conflict` while it lags); 200 `{"id", "role": "voter", "slot"}`.
//! - `DELETE /v1/cluster/members/{id}` removes a voter or a learner (a leader that
//!   removes itself hands over); 200 `{"id", "removed": true, "slot"}`.
//!
//! One change at a time: a change governs the slots from `slot + delay` on
//! (`paxos::membership`), and until then another is 409 `conflict`. A follower relays the
//! request to the leader (`http::forward`). `slot` is the log slot that chose the change.
//! Unknown id: 404 `member_not_found`. Needs the `cluster` right when access control is on.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::auth::Caller;
use crate::http::body::read_small_json;
use crate::http::consensus::node_error;
use crate::http::{forward, ApiError, AppState};
use crate::node::{MemberChanged, MemberError, MemberOp};
use crate::paxos::NodeId;

/// Longest address accepted (a host name of 253 bytes and a port).
const ADDR_BYTES_MAX: usize = 260;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    peer_addr: String,
    #[serde(default)]
    client_addr: String,
}

/// A `host:port` address: a nonempty host without spaces or slashes, and a port 1-65535.
fn check_addr(field: &str, addr: &str) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::BadRequest(format!("{field} {addr:?}: {why}")));
    if addr.len() > ADDR_BYTES_MAX {
        return bad("too long");
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return bad("expected host:port");
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return bad("the host is empty or holds a space, '/' or '@'");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => bad("the port must be 1 to 65535"),
    }
}

/// The `{id}` of the path: a member id is 1 to 2^32 - 1; anything else names no member.
fn parse_id(req: &HttpRequest) -> Result<NodeId, ApiError> {
    let raw = req.match_info().get("id").unwrap_or_default();
    match raw.parse::<NodeId>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::MemberNotFound(format!(
            "{raw:?} is not a member id (a positive integer)"
        ))),
    }
}

/// Carries out `op` here if this node leads, else relays the request to the leader.
async fn change(
    req: &HttpRequest,
    state: &AppState,
    op: MemberOp,
    body: bytes::Bytes,
) -> Result<Result<MemberChanged, HttpResponse>, ApiError> {
    match state.node.change_members(op).await {
        Ok(changed) => Ok(Ok(changed)),
        Err(MemberError::NotLeader(_)) => Ok(Err(forward::to_leader(
            req,
            state,
            "the change of the members",
            body,
        )
        .await?)),
        Err(MemberError::Conflict(why)) => Err(ApiError::Conflict(why)),
        Err(MemberError::Invalid(why)) => Err(ApiError::BadRequest(why)),
        Err(MemberError::NotFound(id)) => Err(ApiError::MemberNotFound(format!(
            "node {id} is not a member"
        ))),
        Err(MemberError::Node(e)) => Err(node_error(e)),
    }
}

/// `POST /v1/cluster/members`.
pub async fn add(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.cluster()?;
    const SHAPE: &str =
        "body is not {\"peer_addr\": \"host:port\", \"client_addr\": \"host:port\"}";
    let parsed: AddBody = read_small_json(&req, &mut payload, &state, SHAPE).await?;
    check_addr("peer_addr", &parsed.peer_addr)?;
    if !parsed.client_addr.is_empty() {
        check_addr("client_addr", &parsed.client_addr)?;
    }
    let body = serde_json::to_vec(&parsed)
        .map_err(|e| ApiError::Internal(format!("re-encoding the body: {e}")))?;
    let op = MemberOp::Add {
        peer_addr: parsed.peer_addr.clone(),
        client_addr: parsed.client_addr.clone(),
    };
    match change(&req, &state, op, body.into()).await? {
        Ok(changed) => Ok(HttpResponse::Created().json(json!({
            "id": changed.node,
            "peer_addr": parsed.peer_addr,
            "client_addr": parsed.client_addr,
            "role": "learner",
            "slot": changed.slot,
        }))),
        Err(relayed) => Ok(relayed),
    }
}

/// `POST /v1/cluster/members/{id}/promote`.
pub async fn promote(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    by_id(
        &req,
        &state,
        caller,
        MemberOp::Promote,
        |id, slot| json!({"id": id, "role": "voter", "slot": slot}),
    )
    .await
}

/// `DELETE /v1/cluster/members/{id}`.
pub async fn remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    by_id(
        &req,
        &state,
        caller,
        MemberOp::Remove,
        |id, slot| json!({"id": id, "removed": true, "slot": slot}),
    )
    .await
}

/// A change naming the member of the path: 200 with `answer(id, slot)`.
async fn by_id(
    req: &HttpRequest,
    state: &AppState,
    caller: Caller,
    op: fn(NodeId) -> MemberOp,
    answer: fn(NodeId, u64) -> serde_json::Value,
) -> Result<HttpResponse, ApiError> {
    caller.cluster()?;
    let id = parse_id(req)?;
    match change(req, state, op(id), bytes::Bytes::new()).await? {
        Ok(changed) => Ok(HttpResponse::Ok().json(answer(id, changed.slot))),
        Err(relayed) => Ok(relayed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_host_and_port() {
        for ok in ["127.0.0.1:23456", "node-4.example:1", "[::1]:80"] {
            assert!(check_addr("peer_addr", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "host", ":80", "h:0", "h:65536", "h:x", "a b:1", "h/x:1", "u@h:1",
        ] {
            assert!(check_addr("peer_addr", bad).is_err(), "{bad}");
        }
        assert!(check_addr("peer_addr", &format!("{}:1", "h".repeat(300))).is_err());
    }
}
