//! The REST API of API.md over actix-web: request -> validated command -> node -> answer.
//!
//! Handlers parse and validate at the edge ([`validate`]), propose commands through the
//! local [`NodeHandle`] (a follower's core forwards them to the leader and this node
//! answers once it applied them), and serve reads from the local state after a read
//! index barrier (linearizable) or directly (serializable). [`headers`] stamps
//! `X-Concierge-Revision` and `X-Concierge-Leader` on every response, errors included.

pub mod body;
pub mod cluster;
pub mod consensus;
pub mod error;
pub mod headers;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod sessions;
pub mod txn;
pub mod validate;
pub mod watch;

use crate::kv::{KvReader, LeaseTable};
use crate::node::NodeHandle;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;
use std::time::Duration;

pub use error::ApiError;

/// Limits of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Largest value a PUT may carry.
    pub value_bytes_max: usize,
    /// Largest JSON request body.
    pub json_body_bytes_max: usize,
    /// How long a request may wait on consensus before answering 504.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            value_bytes_max: 1 << 20,
            json_body_bytes_max: 64 << 10,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub node: NodeHandle,
    pub reader: KvReader,
    pub leases: Arc<LeaseTable>,
    pub limits: HttpLimits,
    /// Client for forwarding keepalives to the leader.
    pub forward: reqwest::Client,
    /// Request counters for `/metrics`.
    pub metrics: metrics::Metrics,
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    )))
}

/// Registers every route (used by the server and by tests).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(cluster::health))
        .route("/ready", web::get().to(cluster::ready))
        .route("/v1/cluster", web::get().to(cluster::cluster))
        .route("/metrics", web::get().to(metrics::metrics))
        .route("/v1/openapi.json", web::get().to(openapi::openapi))
        .route("/v1/keys", web::get().to(keys::list))
        .service(
            web::resource("/v1/keys/{key:.*}")
                .route(web::put().to(keys::put))
                .route(web::get().to(keys::get))
                .route(web::delete().to(keys::delete)),
        )
        .route("/v1/watch", web::get().to(watch::watch))
        .route("/v1/txn", web::post().to(txn::txn))
        .route("/v1/sessions", web::post().to(sessions::create))
        .route("/v1/sessions", web::get().to(sessions::list))
        .route(
            "/v1/sessions/{id}/keepalive",
            web::post().to(sessions::keepalive),
        )
        .route("/v1/sessions/{id}", web::get().to(sessions::get))
        .route("/v1/sessions/{id}", web::delete().to(sessions::close))
        .default_service(web::to(no_route));
}
