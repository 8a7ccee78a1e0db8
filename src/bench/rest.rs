//! The pooled reqwest client of the bench's workloads that are not request loops
//! (watch fan-out, sessions), and the small helpers they share with `target`. The
//! request loops (put, get, cas, txn) use one [`super::http1::Http1`] connection each.

use crate::endpoints::Access;
use reqwest::StatusCode;
use std::time::Duration;

/// An HTTP client for one connection: every request fails as `timeout` after
/// `timeout`; `https://` endpoints are checked, and the token sent, as `access` says.
pub fn http_client(timeout: Duration, access: &Access) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(1);
    access
        .apply(builder)?
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// An endpoint as a base URL: `host:port` gets `http://`.
pub fn base_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    }
}

/// Sends one request and reads its whole answer; Err is the error's kind.
pub async fn exchange(request: reqwest::RequestBuilder) -> Result<(StatusCode, Vec<u8>), String> {
    let response = request.send().await.map_err(|e| transport_kind(&e))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| transport_kind(&e))?;
    Ok((status, body.to_vec()))
}

/// A transport failure's kind, as the report counts it.
pub fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// A u64 field of a JSON object.
pub fn json_u64(body: &[u8], field: &str) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get(field)?
        .as_u64()
}
