//! Stamps `X-Concierge-Revision` and `X-Concierge-Leader` on every response, and
//! counts it (status class, latency by route) for `/metrics`.
//!
//! A handler that knows the revision its answer reflects (a write's reply, a read's
//! snapshot) sets `X-Concierge-Revision` itself; otherwise the current applied revision
//! of this node is used. The leader header is this node's view of the leader's id, or
//! empty when none is known.

use crate::http::metrics::routes;
use crate::http::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, Error};
use std::time::Instant;

/// The revision header.
pub const REVISION: &str = "x-concierge-revision";
/// The leader header.
pub const LEADER: &str = "x-concierge-leader";

/// The middleware (use with `actix_web::middleware::from_fn`).
pub async fn stamp(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let started = Instant::now();
    let method = routes::method_label(req.method());
    let mut res = next.call(req).await?;
    if let Some(state) = state {
        state.metrics.count(res.status().as_u16());
        let route = routes::route_label(res.request().match_pattern());
        state.metrics.observe(method, route, started.elapsed());
        let headers = res.headers_mut();
        if !headers.contains_key(REVISION) {
            let revision = state.reader.revision().unwrap_or_else(|e| {
                tracing::error!(error = %e, "reading the revision for a response header");
                0
            });
            headers.insert(
                HeaderName::from_static(REVISION),
                HeaderValue::from(revision),
            );
        }
        let leader = match state.node.leader() {
            Some(id) => HeaderValue::from(id),
            None => HeaderValue::from_static(""),
        };
        headers.insert(HeaderName::from_static(LEADER), leader);
    }
    Ok(res)
}
