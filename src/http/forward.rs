//! Relaying a request only the leader can serve (a session keepalive, a change of the
//! members) from a follower to the leader's client address, and the leader's answer back.
//!
//! The relayed request carries [`FORWARDED`], and a node that receives a forwarded
//! request it cannot serve either answers 503 rather than forwarding it again, so a
//! request crosses at most one hop. The caller's `Authorization` goes along: the leader
//! checks the token itself. A request that could not be delivered (no leader known, its
//! client address not learnt yet, connection refused) is a 503: it was not applied.

use actix_web::{HttpRequest, HttpResponse};
use bytes::Bytes;
use concierge_client::error::with_causes;

use crate::http::{ApiError, AppState};

/// Header marking a request forwarded by a follower.
pub const FORWARDED: &str = "x-concierge-forwarded";

/// Sends `req` (its method, path and query, with `body`) to the leader and relays the
/// answer. `what` names the request in errors.
pub async fn to_leader(
    req: &HttpRequest,
    state: &AppState,
    what: &str,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    if req.headers().contains_key(FORWARDED) {
        return Err(ApiError::NotReady(
            "this node is not the leader (any more); retry".into(),
        ));
    }
    let status = state.node.status();
    let Some(leader) = status.leader else {
        return Err(ApiError::NoQuorum("no leader is known; retry".into()));
    };
    let Some(addr) = status
        .members
        .iter()
        .find(|m| m.id == leader)
        .map(|m| m.client_addr.clone())
        .filter(|a| !a.is_empty())
    else {
        return Err(ApiError::NotReady(format!(
            "the leader's ({leader}) client address is not known yet; retry"
        )));
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.as_str().to_string());
    let url = format!("{}://{addr}{path}", state.forward_scheme);
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|e| ApiError::Internal(format!("forwarding {what}: {e}")))?;
    let mut request = state.forward.request(method, &url).header(FORWARDED, "1");
    if let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        request = request.header(reqwest::header::AUTHORIZATION, value.as_bytes());
    }
    if !body.is_empty() {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    let sent = request.timeout(state.limits.request_timeout).send().await;
    let resp = match sent {
        Ok(r) => r,
        // Not delivered: the leader did not see it, so a retry is safe.
        Err(e) if e.is_connect() => {
            return Err(ApiError::NotReady(format!(
                "{what} to the leader: {}",
                with_causes(&e)
            )))
        }
        Err(e) => {
            return Err(ApiError::Timeout(format!(
                "{what} to the leader: {}",
                with_causes(&e)
            )))
        }
    };
    let status = actix_web::http::StatusCode::from_u16(resp.status().as_u16())
        .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY);
    let retry_after = resp.headers().get("retry-after").cloned();
    let body = resp
        .bytes()
        .await
        .map_err(|e| ApiError::Timeout(format!("reading the leader's answer to {what}: {e}")))?;
    let mut out = HttpResponse::build(status);
    out.content_type("application/json");
    if let Some(v) = retry_after.and_then(|v| v.to_str().ok().map(str::to_string)) {
        out.insert_header(("Retry-After", v));
    }
    Ok(out.body(body))
}
