//! The REST API of API.md over actix-web: request -> validated command -> node -> answer.
//!
//! Handlers parse and validate at the edge ([`validate`]), propose commands through the
//! local [`NodeHandle`] (a follower's core forwards them to the leader and this node
//! answers once it applied them), and serve reads from the local state after a read
//! index barrier (linearizable) or directly (serializable). [`headers`] stamps
//! `X-Concierge-Revision` and `X-Concierge-Leader` on every response, errors included.
//! What only the leader serves (a keepalive, a change of the members: [`members`]) a
//! follower relays to it ([`forward`]).

pub mod auth;
pub mod auth_admin;
pub mod body;
pub mod cluster;
pub mod compact;
pub mod consensus;
pub mod error;
pub mod forward;
pub mod headers;
pub mod keys;
pub mod limits;
pub mod members;
pub mod metrics;
pub mod openapi;
pub mod quota;
pub mod sessions;
pub mod snapshot;
pub mod txn;
pub mod validate;
pub mod watch;

use crate::kv::{AuthTable, KvReader, LeaseTable};
use crate::node::NodeHandle;
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::Arc;

pub use error::ApiError;
pub use limits::{HttpArgs, HttpLimits};

/// What every handler shares.
pub struct AppState {
    pub node: NodeHandle,
    pub reader: KvReader,
    pub leases: Arc<LeaseTable>,
    /// The applied access-control state (`http::auth` checks requests against it).
    pub auth: Arc<AuthTable>,
    pub limits: HttpLimits,
    /// Client for relaying requests only the leader serves (`forward.rs`).
    pub forward: reqwest::Client,
    /// The leader's client port speaks this (`http` or `https`: every node of a
    /// cluster serves the same).
    pub forward_scheme: &'static str,
    /// Request counters for `/metrics`.
    pub metrics: metrics::Metrics,
    /// The node's data directory (`/metrics` and `/v1/cluster` report its size).
    pub data_dir: std::path::PathBuf,
    /// Places for backups streaming from this node (`GET /v1/snapshot`).
    pub backups: snapshot::BackupPlaces,
    /// The storage engine's figures for `/metrics`.
    pub engine: storage::StatsReader,
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    )))
}

/// The answer of a route to a method it does not serve: 405 with `Allow`.
fn not_allowed(allow: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) })
}

/// Registers every route (used by the server and by tests). Each path is one resource
/// that lists its methods; any other method gets 405 with `Allow`. Every GET route but
/// the watch stream also answers HEAD (the same handler; the server sends no body).
pub fn configure(cfg: &mut web::ServiceConfig) {
    let get_head = |path: &str, handler: fn() -> actix_web::Route| {
        web::resource(path.to_string())
            .route(handler().method(actix_web::http::Method::GET))
            .route(handler().method(actix_web::http::Method::HEAD))
            .default_service(not_allowed("GET, HEAD"))
    };
    cfg.service(get_head("/health", || web::route().to(cluster::health)))
        .service(get_head("/ready", || web::route().to(cluster::ready)))
        .service(get_head("/v1/cluster", || {
            web::route().to(cluster::cluster)
        }))
        .service(
            web::resource("/v1/cluster/members")
                .route(web::post().to(members::add))
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/v1/cluster/members/{id}/promote")
                .route(web::post().to(members::promote))
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/v1/cluster/members/{id}")
                .route(web::delete().to(members::remove))
                .default_service(not_allowed("DELETE")),
        )
        .service(get_head("/metrics", || web::route().to(metrics::metrics)))
        .service(get_head("/v1/openapi.json", || {
            web::route().to(openapi::openapi)
        }))
        .service(get_head("/v1/keys", || web::route().to(keys::list)))
        .service(
            web::resource("/v1/keys/{key:.*}")
                .route(web::put().to(keys::put))
                .route(web::get().to(keys::get))
                .route(web::head().to(keys::get))
                .route(web::delete().to(keys::delete))
                .default_service(not_allowed("GET, HEAD, PUT, DELETE")),
        )
        .service(
            web::resource("/v1/watch")
                .route(web::get().to(watch::watch))
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource("/v1/txn")
                .route(web::post().to(txn::txn))
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/v1/sessions")
                .route(web::post().to(sessions::create))
                .route(web::get().to(sessions::list))
                .route(web::head().to(sessions::list))
                .default_service(not_allowed("GET, HEAD, POST")),
        )
        .service(
            web::resource("/v1/sessions/{id}/keepalive")
                .route(web::post().to(sessions::keepalive))
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/v1/sessions/{id}")
                .route(web::get().to(sessions::get))
                .route(web::head().to(sessions::get))
                .route(web::delete().to(sessions::close))
                .default_service(not_allowed("GET, HEAD, DELETE")),
        )
        .service(
            web::resource("/v1/snapshot")
                .route(web::get().to(snapshot::snapshot))
                .default_service(not_allowed("GET")),
        )
        .service(
            web::resource("/v1/auth/enable")
                .route(web::post().to(auth_admin::enable))
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/v1/auth/disable")
                .route(web::post().to(auth_admin::disable))
                .default_service(not_allowed("POST")),
        )
        .service(get_head("/v1/auth", || web::route().to(auth_admin::show)))
        .service(
            web::resource("/v1/auth/roles/{name}")
                .route(web::put().to(auth_admin::put_role))
                .route(web::delete().to(auth_admin::delete_role))
                .default_service(not_allowed("PUT, DELETE")),
        )
        .service(
            web::resource("/v1/auth/users/{name}")
                .route(web::put().to(auth_admin::put_user))
                .route(web::delete().to(auth_admin::delete_user))
                .default_service(not_allowed("PUT, DELETE")),
        )
        .service(
            web::resource("/v1/auth/tokens")
                .route(web::post().to(auth_admin::create_token))
                .default_service(not_allowed("POST")),
        )
        .service(
            web::resource("/v1/auth/tokens/{id}")
                .route(web::delete().to(auth_admin::revoke_token))
                .default_service(not_allowed("DELETE")),
        )
        .service(
            web::resource("/v1/compact")
                .route(web::post().to(compact::compact))
                .default_service(not_allowed("POST")),
        )
        .default_service(web::to(no_route));
}
