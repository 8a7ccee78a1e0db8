//! Reading request bodies under a size limit and a deadline, without buffering more
//! than the limit.
//!
//! A declared `Content-Length` over the limit is refused at once; a body is read chunk
//! by chunk and refused as soon as it passes the limit. Before answering 413, a
//! moderately oversized body is drained (read and dropped, never kept) so the client
//! sees the answer instead of a reset connection. Invariants: the buffer grows with
//! the bytes received, never from the declared length (a client declaring 1 GiB and
//! sending 10 bytes costs 10 bytes); the whole body must arrive within the body
//! deadline (`limits.body_timeout`), else 408 `request_timeout` and the connection is
//! closed, so a stalled or slow-dripping client holds no handler for longer.

use crate::http::{ApiError, AppState};
use actix_web::{web, HttpRequest};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Oversized bodies up to this many bytes are drained before the 413 answer.
const DRAIN_BYTES_MAX: u64 = 32 << 20;
/// Draining gives up after this long.
const DRAIN_TIME_MAX: Duration = Duration::from_secs(2);

fn content_length(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    req.headers()
        .get("content-length")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::BadRequest("Content-Length is not a number".into()))
        })
        .transpose()
}

async fn drain(payload: &mut web::Payload, declared: u64) {
    if declared > DRAIN_BYTES_MAX {
        return;
    }
    let _ = tokio::time::timeout(DRAIN_TIME_MAX, async {
        while let Some(Ok(_)) = payload.next().await {}
    })
    .await;
}

/// Bytes reserved up front at most, whatever the declared length.
const RESERVE_BYTES_MAX: usize = 64 << 10;

/// Reads the whole body if it is at most `max` bytes and arrives within `timeout`.
pub async fn read_limited(
    req: &HttpRequest,
    payload: &mut web::Payload,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let max64 = max as u64;
    let declared = content_length(req)?;
    if let Some(len) = declared {
        if len > max64 {
            drain(payload, len).await;
            return Err(ApiError::TooLarge { len, max: max64 });
        }
    }
    let reserve = declared.map_or(0, |l| usize::try_from(l).unwrap_or(max));
    let mut buf = BytesMut::with_capacity(reserve.min(RESERVE_BYTES_MAX));
    let read = tokio::time::timeout(timeout, async {
        while let Some(chunk) = payload.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::BadRequest(format!("reading the body failed: {e}")))?;
            if buf.len() + chunk.len() > max {
                let seen = (buf.len() + chunk.len()) as u64;
                drain(payload, seen).await;
                return Err(ApiError::TooLarge {
                    len: seen,
                    max: max64,
                });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(())
    })
    .await;
    match read {
        Ok(Ok(())) => Ok(buf.freeze()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ApiError::RequestTimeout(format!(
            "the request body did not arrive within {} ms ({} bytes came); nothing was applied",
            timeout.as_millis(),
            buf.len()
        ))),
    }
}

/// Reads a JSON document of at most `max` bytes (as [`read_limited`]) and parses it as
/// `T`: `None` for an empty or all-whitespace body; a body that is not a `T` is 400
/// `bad_request`, its message `"{shape}: {why}"`.
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: &mut web::Payload,
    max: usize,
    timeout: Duration,
    shape: &str,
) -> Result<Option<T>, ApiError> {
    let body = read_limited(req, payload, max, timeout).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(format!("{shape}: {e}")))
}

/// As [`read_json`], for a body the request cannot do without: an empty one is 400
/// `bad_request` too (`"{shape}: it is empty"`).
pub async fn read_required_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: &mut web::Payload,
    max: usize,
    timeout: Duration,
    shape: &str,
) -> Result<T, ApiError> {
    read_json(req, payload, max, timeout, shape)
        .await?
        .ok_or_else(|| ApiError::BadRequest(format!("{shape}: it is empty")))
}

/// A required small JSON document: [`read_required_json`] under the configured JSON
/// body limit and body deadline.
pub async fn read_small_json<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: &mut web::Payload,
    state: &AppState,
    shape: &str,
) -> Result<T, ApiError> {
    let limit = state.limits.json_body_bytes_max;
    read_required_json(req, payload, limit, state.limits.body_timeout, shape).await
}
