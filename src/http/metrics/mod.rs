//! `GET /metrics`: Prometheus text format (version 0.0.4) of this node's state, its
//! requests (counts by status class, latency by route), consensus (`consensus.rs`) and
//! storage engine (`engine.rs`). Names follow Prometheus' conventions as etcd users
//! know them: `_seconds` histograms, `_total` counters, `_bytes` gauges.

mod consensus;
mod engine;
pub mod routes;

use crate::http::auth::Caller;
use crate::http::{ApiError, AppState};
use actix_web::{web, HttpResponse};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use telemetry::prometheus as prom;

/// What the HTTP layer counts: responses by status class (1xx..5xx) and request
/// latency by route.
#[derive(Debug, Default)]
pub struct Metrics {
    responses: [AtomicU64; 5],
    routes: routes::RouteLatencies,
}

impl Metrics {
    /// Counts one response with `status`.
    pub fn count(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Records the latency of one request (labels from [`routes::method_label`] and
    /// [`routes::route_label`]).
    pub fn observe(&self, method: &'static str, route: String, elapsed: Duration) {
        self.routes.observe(method, route, elapsed);
    }
}

/// `GET /metrics`.
/// Any authenticated caller may read it (`_caller`).
pub async fn metrics(
    state: web::Data<AppState>,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let status = state.node.status();
    let meta = state.reader.meta()?;
    let db_size = crate::http::cluster::db_size_bytes(&state).await;
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: u64| prom::gauge(&mut out, name, help, value);
    gauge(
        "concierge_revision",
        "The cluster revision this node applied.",
        meta.revision,
    );
    gauge(
        "concierge_applied_index",
        "The last slot this node applied.",
        meta.applied_index,
    );
    gauge(
        "concierge_commit_index",
        "The last slot this node knows chosen.",
        status.commit_index,
    );
    gauge(
        "concierge_is_leader",
        "1 when this node is the leader.",
        u64::from(status.is_leader),
    );
    gauge(
        "concierge_leader_id",
        "The leader's node id (0 when none is known).",
        u64::from(status.leader.unwrap_or(0)),
    );
    gauge(
        "concierge_ballot_round",
        "The round of the ballot this node follows.",
        status.ballot.round,
    );
    gauge(
        "concierge_sessions",
        "Live sessions.",
        state.leases.len() as u64,
    );
    gauge(
        "concierge_sessions_max",
        "Live sessions at which a new one is refused (SESSIONS_MAX).",
        state.limits.sessions_max,
    );
    gauge(
        "concierge_live_bytes",
        "Bytes of live keys and values (key + value), what the storage quota measures.",
        meta.live_bytes.unwrap_or(0),
    );
    gauge(
        "concierge_quota_bytes",
        "The storage quota (QUOTA_BYTES): at it, writes that add data answer 507.",
        state.limits.quota_bytes,
    );
    gauge(
        "concierge_watchers",
        "Watches this node serves.",
        state.reader.hub().watchers() as u64,
    );
    gauge(
        "concierge_history_compact_revision",
        "Watches can start after this revision.",
        meta.compact_revision,
    );
    gauge(
        "concierge_history_bytes",
        "Encoded bytes of the watch history held (POST /v1/compact drops it).",
        meta.history_bytes,
    );
    gauge(
        "concierge_history_revisions",
        "Revisions the watch history holds (revision - compact revision).",
        meta.revision.saturating_sub(meta.compact_revision),
    );
    gauge(
        "concierge_db_size_bytes",
        "Bytes the storage engine's files take on disk (data_dir/kv).",
        db_size,
    );
    let healthy = status.members.iter().filter(|m| m.healthy).count() as u64;
    gauge(
        "concierge_members_healthy",
        "Members this node considers healthy.",
        healthy,
    );
    gauge(
        "concierge_apply_lag_slots",
        "Slots this node knows chosen but has not applied yet (commit - applied index).",
        status.commit_index.saturating_sub(meta.applied_index),
    );
    let name = "concierge_http_responses_total";
    prom::family(&mut out, name, "counter", "HTTP responses by status class.");
    for (i, c) in state.metrics.responses.iter().enumerate() {
        let class = format!("{}xx", i + 1);
        prom::sample(
            &mut out,
            name,
            &[("class", &class)],
            c.load(Ordering::Relaxed),
        );
    }
    let name = "concierge_http_request_duration_seconds";
    prom::family(
        &mut out,
        name,
        "histogram",
        "Time from a request reaching the router to its response head, by method and route.",
    );
    for (method, route, snap) in state.metrics.routes.snapshot() {
        let labels = [("method", method), ("route", route.as_str())];
        prom::histogram(&mut out, name, &labels, &snap, prom::NANOS_PER_SECOND);
    }
    consensus::render(&mut out, state.node.metrics());
    match state.engine.get() {
        Some(stats) => engine::render(&mut out, &stats),
        None => tracing::warn!("/metrics: the storage engine is closed"),
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out))
}
