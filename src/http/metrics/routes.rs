//! Request latency per route and method, for `concierge_http_request_duration_seconds`.
//!
//! The route is the pattern the request matched (`/v1/keys/{key}`, never the path
//! itself), or `unmatched`; the method is one of the standard ones or `OTHER`. So the
//! label sets are bounded by the routing table, whatever paths clients send.
//! The time is from the request reaching the router to its response head: a watch
//! stream counts until its headers are sent, not for as long as it streams.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::time::Duration;
use telemetry::{Histogram, HistogramSnapshot};

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Latency histograms keyed by (method, route).
#[derive(Debug, Default)]
pub struct RouteLatencies {
    by_route: RwLock<BTreeMap<&'static str, BTreeMap<String, Histogram>>>,
}

/// The label of an HTTP method: the standard ones by name, anything else `OTHER`.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The route label of a matched pattern: regex parts of its segments dropped
/// (`/v1/keys/{key:.*}` becomes `/v1/keys/{key}`).
pub fn route_label(pattern: Option<String>) -> String {
    let Some(pattern) = pattern else {
        return UNMATCHED.to_string();
    };
    let mut out = String::with_capacity(pattern.len());
    let (mut in_name, mut in_regex) = (false, false);
    for c in pattern.chars() {
        match c {
            '{' if !in_regex => {
                in_name = true;
                out.push(c);
            }
            ':' if in_name => {
                in_name = false;
                in_regex = true;
            }
            '}' => {
                in_name = false;
                in_regex = false;
                out.push(c);
            }
            c if !in_regex => out.push(c),
            _ => {}
        }
    }
    out
}

impl RouteLatencies {
    /// Records one request's latency.
    pub fn observe(&self, method: &'static str, route: String, elapsed: Duration) {
        {
            let map = self.by_route.read().unwrap_or_else(|p| p.into_inner());
            if let Some(h) = map.get(method).and_then(|routes| routes.get(&route)) {
                h.observe_duration(elapsed);
                return;
            }
        }
        let mut map = self.by_route.write().unwrap_or_else(|p| p.into_inner());
        map.entry(method)
            .or_default()
            .entry(route)
            .or_insert_with(Histogram::latency)
            .observe_duration(elapsed);
    }

    /// Every (method, route) seen, in order, with its histogram.
    pub fn snapshot(&self) -> Vec<(&'static str, String, HistogramSnapshot)> {
        let map = self.by_route.read().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .flat_map(|(m, routes)| routes.iter().map(|(r, h)| (*m, r.clone(), h.snapshot())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_lose_their_regex_and_unmatched_requests_share_one_label() {
        assert_eq!(
            route_label(Some("/v1/keys/{key:.*}".into())),
            "/v1/keys/{key}"
        );
        assert_eq!(
            route_label(Some("/v1/sessions/{id}/keepalive".into())),
            "/v1/sessions/{id}/keepalive"
        );
        assert_eq!(route_label(Some("/health".into())), "/health");
        assert_eq!(route_label(None), UNMATCHED);
    }

    #[test]
    fn each_method_and_route_has_its_own_histogram() {
        let l = RouteLatencies::default();
        l.observe("GET", "/v1/keys/{key}".into(), Duration::from_micros(20));
        l.observe("GET", "/v1/keys/{key}".into(), Duration::from_millis(20));
        l.observe("PUT", "/v1/keys/{key}".into(), Duration::from_millis(2));
        let snap = l.snapshot();
        let counts: Vec<_> = snap
            .iter()
            .map(|(m, r, h)| (*m, r.as_str(), h.count))
            .collect();
        assert_eq!(
            counts,
            [("GET", "/v1/keys/{key}", 2), ("PUT", "/v1/keys/{key}", 1)]
        );
    }
}
