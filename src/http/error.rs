//! The API's errors: one enum, mapped to the exact status codes and JSON bodies of
//! API.md (`{"error": "<code>", "message": "<text>"}`).
//!
//! A 503 (`no_quorum`, `not_ready`) carries `Retry-After` and promises the request was
//! not applied; a 504 (`timeout`) means the outcome is unknown.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use std::fmt;

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    BadRequest(String),
    KeyNotFound(String),
    SessionNotFound(String),
    VersionMismatch {
        current_version: u64,
    },
    TooLarge {
        len: u64,
        max: u64,
    },
    NoQuorum(String),
    NotReady(String),
    Timeout(String),
    Compacted {
        compact_revision: u64,
    },
    /// The `Idempotency-Key` was first used for another request (422).
    IdempotencyKeyReused,
    /// The request body did not arrive within the body deadline (408); the connection
    /// is closed after the answer.
    RequestTimeout(String),
    /// The route does not serve this method; `allow` lists those it serves.
    MethodNotAllowed {
        allow: &'static str,
    },
    /// The storage quota or the sessions limit is reached (507); nothing was applied.
    QuotaExceeded(String),
    /// No such route.
    NotFound(String),
    /// No such cluster member (404).
    MemberNotFound(String),
    /// Another change of the members is in progress or came first (409); nothing changed.
    Conflict(String),
    /// Access control is on and the request carries no valid token (401).
    Unauthorized(String),
    /// The token does not grant what the request needs (403); nothing changed.
    Forbidden(String),
    /// A bug or a local storage failure.
    Internal(String),
}

impl ApiError {
    /// The `error` code of the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::KeyNotFound(_) => "key_not_found",
            ApiError::SessionNotFound(_) => "session_not_found",
            ApiError::VersionMismatch { .. } => "version_mismatch",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::NoQuorum(_) => "no_quorum",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Timeout(_) => "timeout",
            ApiError::Compacted { .. } => "compacted",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::QuotaExceeded(_) => "quota_exceeded",
            ApiError::NotFound(_) => "not_found",
            ApiError::MemberNotFound(_) => "member_not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The human message of the body.
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::KeyNotFound(m)
            | ApiError::SessionNotFound(m)
            | ApiError::NoQuorum(m)
            | ApiError::NotReady(m)
            | ApiError::Timeout(m)
            | ApiError::NotFound(m)
            | ApiError::MemberNotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::QuotaExceeded(m)
            | ApiError::RequestTimeout(m)
            | ApiError::Internal(m) => m.clone(),
            ApiError::VersionMismatch { current_version } => {
                format!("the key's current version is {current_version}")
            }
            ApiError::TooLarge { len, max } => {
                format!("the request body of {len} bytes exceeds the limit of {max} bytes")
            }
            ApiError::Compacted { compact_revision } => format!(
                "revisions up to {compact_revision} are no longer held; watch from {} or later",
                compact_revision + 1
            ),
            ApiError::MethodNotAllowed { allow } => {
                format!("this route serves only {allow}")
            }
            ApiError::IdempotencyKeyReused => "the Idempotency-Key was first used for another \
                request (method, key, query or body); nothing was applied"
                .into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::KeyNotFound(_)
            | ApiError::SessionNotFound(_)
            | ApiError::NotFound(_)
            | ApiError::MemberNotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::VersionMismatch { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NoQuorum(_) | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Compacted { .. } => StatusCode::GONE,
            ApiError::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::QuotaExceeded(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({"error": self.code(), "message": self.message()});
        match self {
            ApiError::VersionMismatch { current_version } => {
                body["current_version"] = json!(current_version);
            }
            ApiError::Compacted { compact_revision } => {
                body["compact_revision"] = json!(compact_revision);
            }
            _ => {}
        }
        let mut resp = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            resp.insert_header(("Retry-After", RETRY_AFTER_SECS.to_string()));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            resp.insert_header(("Allow", *allow));
        }
        if let ApiError::Unauthorized(_) = self {
            resp.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let ApiError::RequestTimeout(_) = self {
            // The rest of the body may still come: the connection cannot be reused.
            resp.force_close();
        }
        resp.json(body)
    }
}

impl ApiError {
    /// The error answer with the revision it reflects already stamped.
    pub fn error_response_with_revision(&self, revision: u64) -> HttpResponse {
        let mut resp = self.error_response();
        resp.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static(crate::http::headers::REVISION),
            actix_web::http::header::HeaderValue::from(revision),
        );
        resp
    }
}

impl From<crate::kv::KvError> for ApiError {
    fn from(e: crate::kv::KvError) -> Self {
        if let crate::kv::KvError::Resuming { .. } = e {
            return ApiError::NotReady(e.to_string());
        }
        tracing::error!(error = %e, "state machine read failed");
        ApiError::Internal(format!("local state read failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_match_the_contract() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400, "bad_request"),
            (ApiError::KeyNotFound("x".into()), 404, "key_not_found"),
            (
                ApiError::SessionNotFound("x".into()),
                404,
                "session_not_found",
            ),
            (
                ApiError::VersionMismatch { current_version: 0 },
                412,
                "version_mismatch",
            ),
            (ApiError::TooLarge { len: 2, max: 1 }, 413, "too_large"),
            (ApiError::NoQuorum("x".into()), 503, "no_quorum"),
            (ApiError::NotReady("x".into()), 503, "not_ready"),
            (ApiError::Timeout("x".into()), 504, "timeout"),
            (
                ApiError::Compacted {
                    compact_revision: 4,
                },
                410,
                "compacted",
            ),
            (
                ApiError::IdempotencyKeyReused,
                422,
                "idempotency_key_reused",
            ),
            (ApiError::RequestTimeout("x".into()), 408, "request_timeout"),
            (ApiError::Unauthorized("x".into()), 401, "unauthorized"),
            (ApiError::Forbidden("x".into()), 403, "forbidden"),
            (
                ApiError::MemberNotFound("x".into()),
                404,
                "member_not_found",
            ),
            (ApiError::Conflict("x".into()), 409, "conflict"),
            (
                ApiError::MethodNotAllowed { allow: "GET, HEAD" },
                405,
                "method_not_allowed",
            ),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.status_code().as_u16(), status);
            assert_eq!(e.code(), code);
            let resp = e.error_response();
            assert_eq!(
                resp.headers().contains_key("retry-after"),
                status == 503,
                "{code}"
            );
            assert_eq!(
                resp.headers().contains_key("allow"),
                status == 405,
                "{code}"
            );
        }
    }
}
