//! The client-facing HTTP server: actix-web's `HttpServer` over `http::configure`,
//! with the connection-level limits of [`HttpArgs`] applied.
//!
//! What each flag bounds: `HTTP_HEADER_TIMEOUT_MS` the time to send a request head
//! (`client_request_timeout`; past it 408 and close), `HTTP_DISCONNECT_TIMEOUT_MS` the
//! time a client has to close after the server did, `HTTP_KEEP_ALIVE_MS` how long an
//! idle connection is held between requests, `HTTP_CONNECTIONS_MAX` how many
//! connections are served at once (split over the workers: actix counts per worker;
//! beyond it new connections wait in the listen backlog). Bodies are bounded by the
//! handlers (`http::body`, `HTTP_BODY_TIMEOUT_MS`). Every response goes through the
//! header stamping middleware (`http::headers`). With a TLS configuration the port
//! speaks only HTTPS (`crate::tls`); a TLS handshake must end within
//! `HTTP_HEADER_TIMEOUT_MS` too.

use crate::http::{self, AppState, HttpArgs};
use actix_web::dev::Server;
use std::sync::Arc;
use std::time::Duration;

/// The HTTP workers the server runs (one per available core, at least one).
pub fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Connections one worker serves at once, for `total` over `workers`, at least one.
pub fn connections_per_worker(total: u64, workers: usize) -> usize {
    let per = total.div_ceil(workers.max(1) as u64).max(1);
    usize::try_from(per).unwrap_or(usize::MAX)
}

/// Binds `addr` and returns the server (not yet awaited): HTTPS with `tls`, else
/// plain HTTP.
pub fn serve(
    addr: &str,
    args: &HttpArgs,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: actix_web::web::Data<AppState>,
) -> std::io::Result<Server> {
    let workers = workers();
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .wrap(actix_web::middleware::from_fn(http::headers::stamp))
            .configure(http::configure)
    })
    .workers(workers)
    .max_connections(connections_per_worker(args.http_connections_max, workers))
    .client_request_timeout(Duration::from_millis(args.http_header_timeout_ms))
    .client_disconnect_timeout(Duration::from_millis(args.http_disconnect_timeout_ms))
    .keep_alive(Duration::from_millis(args.http_keep_alive_ms))
    // A client that closes its side is gone: without this, an idle watch to a closed
    // connection lingered (and held its place under WATCHERS_MAX) until its second
    // progress comment failed to send, 20 s later.
    .h1_allow_half_closed(false);
    let server = match tls {
        // A handshake is bounded by HTTP_HEADER_TIMEOUT_MS too.
        Some(config) => server
            .tls_handshake_timeout(Duration::from_millis(args.http_header_timeout_ms))
            .bind_rustls_0_23(addr, Arc::unwrap_or_clone(config))?,
        None => server.bind(addr)?,
    };
    let server = server.shutdown_timeout(2).run();
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_split_over_workers_round_up() {
        assert_eq!(connections_per_worker(1024, 2), 512);
        assert_eq!(connections_per_worker(5, 2), 3);
        assert_eq!(connections_per_worker(1, 4), 1);
        assert_eq!(connections_per_worker(0, 0), 1);
    }
}
