//! An `Idempotency-Key` names one request (API.md, Retries): the same request again is
//! answered with the first reply and applied once; the key reused for another request
//! (another method, key, query or body) is a 422 `idempotency_key_reused` and changes
//! nothing. Before the fix, PUT then DELETE with one key answered 500 ("unexpected
//! outcome Put") and a PUT with another body silently answered the first reply.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Answer, Cluster};
use reqwest::Method;

fn assert_reused(a: &Answer) {
    a.assert_error(422, "idempotency_key_reused");
}

async fn put(c: &Cluster, path: &str, body: &[u8], key: &str) -> Answer {
    c.call(
        0,
        Method::PUT,
        path,
        Some(body.to_vec()),
        &[("Idempotency-Key", key)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_idempotency_key_is_422_and_changes_nothing() {
    let c = Cluster::start(1, "idem-reuse").await;

    // The same request twice: one write, the first answer twice.
    let first = put(&c, "/v1/keys/a", b"one", "k1").await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.text());
    let again = put(&c, "/v1/keys/a", b"one", "k1").await;
    assert_eq!(again.status.as_u16(), 201, "{}", again.text());
    assert_eq!(again.json(), first.json());
    assert_eq!(again.revision(), first.revision());
    let got = c.get(0, "/v1/keys/a").await;
    assert_eq!(got.header("x-concierge-version").unwrap(), "1");

    // Another method with the same key: was a 500.
    let del = c
        .call(
            0,
            Method::DELETE,
            "/v1/keys/a",
            None,
            &[("Idempotency-Key", "k1")],
        )
        .await;
    assert_reused(&del);
    let got = c.get(0, "/v1/keys/a").await;
    assert_eq!(got.status.as_u16(), 200, "the key must still be there");
    assert_eq!(got.body, b"one");

    // The same endpoint with another body: was the first reply, nothing written.
    let other_body = put(&c, "/v1/keys/a", b"two", "k1").await;
    assert_reused(&other_body);
    // Another key, another query.
    assert_reused(&put(&c, "/v1/keys/b", b"one", "k1").await);
    assert_reused(&put(&c, "/v1/keys/a?version=1", b"one", "k1").await);
    let got = c.get(0, "/v1/keys/a").await;
    assert_eq!(got.body, b"one");
    assert_eq!(got.header("x-concierge-version").unwrap(), "1");
    assert_eq!(c.get(0, "/v1/keys/b").await.status.as_u16(), 404);

    // A refusal is not recorded: the first request still replays.
    let again = put(&c, "/v1/keys/a", b"one", "k1").await;
    assert_eq!(again.status.as_u16(), 201, "{}", again.text());
    assert_eq!(again.json(), first.json());

    // Sessions: a retried create is the same request (the node picks the id).
    let s1 = c
        .call(
            0,
            Method::POST,
            "/v1/sessions",
            Some(b"{\"ttl_ms\": 5000}".to_vec()),
            &[("Idempotency-Key", "s1")],
        )
        .await;
    assert_eq!(s1.status.as_u16(), 201, "{}", s1.text());
    let s2 = c
        .call(
            0,
            Method::POST,
            "/v1/sessions",
            Some(b"{\"ttl_ms\": 5000}".to_vec()),
            &[("Idempotency-Key", "s1")],
        )
        .await;
    assert_eq!(s2.json(), s1.json());
    let s3 = c
        .call(
            0,
            Method::POST,
            "/v1/sessions",
            Some(b"{\"ttl_ms\": 6000}".to_vec()),
            &[("Idempotency-Key", "s1")],
        )
        .await;
    assert_reused(&s3);
    // A transaction reusing a put's key.
    let t = c
        .call(
            0,
            Method::POST,
            "/v1/txn",
            Some(b"{\"then\": [{\"op\": \"get\", \"key\": \"a\"}]}".to_vec()),
            &[("Idempotency-Key", "k1")],
        )
        .await;
    assert_reused(&t);
}
