//! Every route answers a method it does not serve with 405 `method_not_allowed`, a JSON
//! error and an `Allow` header (API.md, General); every GET route but the watch stream
//! answers HEAD like GET without a body; a session id that is not hex is a session that
//! does not exist (404), as API.md says "well-formed or not". Before the fix: an empty
//! 405 without `Allow`, 404 for `HEAD /health`, and 400 for `/v1/sessions/not-hex`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Answer, Cluster};
use reqwest::Method;

fn allowed(a: &Answer) -> Vec<String> {
    let mut v: Vec<String> = a
        .header("allow")
        .unwrap_or_else(|| panic!("no Allow header: {:?}", a.headers))
        .split(',')
        .map(|m| m.trim().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_methods_head_and_bad_session_ids() {
    let c = Cluster::start(1, "methods").await;
    assert_eq!(c.put(0, "/v1/keys/x", b"v").await.status.as_u16(), 201);

    let cases: &[(Method, &str, &[&str])] = &[
        (
            Method::POST,
            "/v1/keys/x",
            &["DELETE", "GET", "HEAD", "PUT"],
        ),
        (
            Method::PATCH,
            "/v1/keys/x",
            &["DELETE", "GET", "HEAD", "PUT"],
        ),
        (Method::POST, "/v1/keys", &["GET", "HEAD"]),
        (Method::DELETE, "/v1/keys", &["GET", "HEAD"]),
        (Method::GET, "/v1/txn", &["POST"]),
        (Method::PUT, "/v1/sessions", &["GET", "HEAD", "POST"]),
        (
            Method::PUT,
            "/v1/sessions/00000000000000ff",
            &["DELETE", "GET", "HEAD"],
        ),
        (
            Method::GET,
            "/v1/sessions/00000000000000ff/keepalive",
            &["POST"],
        ),
        (Method::POST, "/v1/watch", &["GET"]),
        (Method::DELETE, "/health", &["GET", "HEAD"]),
        (Method::POST, "/ready", &["GET", "HEAD"]),
        (Method::PUT, "/v1/cluster", &["GET", "HEAD"]),
        (Method::POST, "/metrics", &["GET", "HEAD"]),
        (Method::POST, "/v1/openapi.json", &["GET", "HEAD"]),
    ];
    for (method, path, allow) in cases {
        let a = c.call(0, method.clone(), path, None, &[]).await;
        a.assert_error(405, "method_not_allowed");
        assert_eq!(allowed(&a), *allow, "{method} {path}");
    }
    // Nothing was written by the refused POST.
    assert_eq!(c.get(0, "/v1/keys/x").await.body, b"v");

    // HEAD answers as GET would, without the body.
    for path in [
        "/health",
        "/ready",
        "/v1/cluster",
        "/metrics",
        "/v1/openapi.json",
        "/v1/keys?prefix=x",
        "/v1/keys/x",
        "/v1/sessions",
    ] {
        let head = c.call(0, Method::HEAD, path, None, &[]).await;
        let get = c.get(0, path).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert_eq!(head.status.as_u16(), 200, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path} sent a body");
        assert!(head.header("x-concierge-revision").is_some(), "HEAD {path}");
    }
    let head = c.call(0, Method::HEAD, "/v1/keys/x", None, &[]).await;
    assert_eq!(head.header("x-concierge-version").unwrap(), "1");
    assert_eq!(head.header("etag").unwrap(), "\"1\"");
    let head = c.call(0, Method::HEAD, "/v1/keys/absent", None, &[]).await;
    assert_eq!(head.status.as_u16(), 404);

    // A session id that is not hex names no session.
    for (method, path) in [
        (Method::GET, "/v1/sessions/not-hex"),
        (Method::POST, "/v1/sessions/not-hex/keepalive"),
        (Method::DELETE, "/v1/sessions/not-hex"),
        (Method::GET, "/v1/sessions/00000000000000000000"),
    ] {
        let a = c.call(0, method.clone(), path, None, &[]).await;
        a.assert_error(404, "session_not_found");
    }
    // Unknown paths stay 404 not_found.
    let a = c.get(0, "/v2/nothing").await;
    a.assert_error(404, "not_found");
}
