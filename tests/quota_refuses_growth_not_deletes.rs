//! The storage quota and the sessions limit (docs/API.md, Limits): once the live keys
//! and values reach `QUOTA_BYTES`, writes that add data answer 507 `quota_exceeded`
//! and change nothing, while reads, deletes and put-free transactions still work and a
//! delete makes room at once; a retry of an applied idempotent write still replays; a
//! session past `SESSIONS_MAX` is 507 until one closes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::Method;

const VALUE: usize = 1000;

fn value(i: usize) -> Vec<u8> {
    vec![b'a' + (i % 26) as u8; VALUE]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_add_data_stop_at_the_quota_and_deletes_make_room() {
    let c = Cluster::start_with_env(
        1,
        "quota",
        &[("QUOTA_BYTES", "4096"), ("SESSIONS_MAX", "2")],
    )
    .await;

    // An idempotent write applied before the quota is reached.
    let idem = [("Idempotency-Key", "first-write")];
    let first = c
        .call(0, Method::PUT, "/v1/keys/k0", Some(value(0)), &idem)
        .await;
    assert_eq!(first.status.as_u16(), 201, "{}", first.text());
    // Each key adds 1,002 bytes (key + value): the 5th reaches the quota.
    for i in 1..5 {
        let a = c.put(0, &format!("/v1/keys/k{i}"), &value(i)).await;
        assert_eq!(a.status.as_u16(), 201, "put k{i}: {}", a.text());
    }
    let refused = c.put(0, "/v1/keys/k5", &value(5)).await;
    refused.assert_error(507, "quota_exceeded");
    assert_eq!(
        c.get(0, "/v1/keys/k5").await.status.as_u16(),
        404,
        "nothing applied"
    );
    // An overwrite, a sequential put and a transaction with a put are refused too.
    c.put(0, "/v1/keys/k1", b"x")
        .await
        .assert_error(507, "quota_exceeded");
    c.put(0, "/v1/keys/seq-?sequential=true", b"x")
        .await
        .assert_error(507, "quota_exceeded");
    let txn_put = r#"{"if": [], "then": [{"op": "put", "key": "t", "value": "eA=="}], "else": []}"#;
    c.post(0, "/v1/txn", txn_put)
        .await
        .assert_error(507, "quota_exceeded");
    assert_eq!(c.get(0, "/v1/keys/k1").await.body, value(1), "unchanged");
    let metrics = c.get(0, "/metrics").await.text();
    assert!(
        metrics.contains("\nconcierge_live_bytes 5010\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nconcierge_quota_bytes 4096\n"),
        "{metrics}"
    );

    // The retry of the applied idempotent write replays its first answer.
    let retry = c
        .call(0, Method::PUT, "/v1/keys/k0", Some(value(0)), &idem)
        .await;
    assert_eq!(retry.status.as_u16(), 201, "{}", retry.text());
    assert_eq!(retry.json(), first.json());
    // A new idempotent write is refused like any other.
    c.call(
        0,
        Method::PUT,
        "/v1/keys/k9",
        Some(value(9)),
        &[("Idempotency-Key", "new")],
    )
    .await
    .assert_error(507, "quota_exceeded");

    // Reads, a put-free transaction and deletes still work.
    assert_eq!(
        c.get(0, "/v1/keys?prefix=k").await.json()["entries"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let txn_get = r#"{"if": [], "then": [{"op": "get", "key": "k0"}, {"op": "delete", "key": "k4"}], "else": []}"#;
    let a = c.post(0, "/v1/txn", txn_get).await;
    assert_eq!(a.status.as_u16(), 200, "{}", a.text());
    // One key fewer: under the quota again, a put is accepted.
    let a = c.put(0, "/v1/keys/k5", &value(5)).await;
    assert_eq!(a.status.as_u16(), 201, "{}", a.text());
    let a = c.delete(0, "/v1/keys/k?prefix=true").await;
    assert_eq!(a.json()["deleted"], 5, "{}", a.text());
    let a = c.put(0, "/v1/keys/after", b"room").await;
    assert_eq!(a.status.as_u16(), 201, "{}", a.text());

    // Sessions: two live, a third refused until one closes.
    let mut ids = Vec::new();
    for _ in 0..2 {
        let a = c.post(0, "/v1/sessions", r#"{"ttl_ms": 60000}"#).await;
        assert_eq!(a.status.as_u16(), 201, "{}", a.text());
        ids.push(a.json()["id"].as_str().unwrap().to_string());
    }
    c.post(0, "/v1/sessions", r#"{"ttl_ms": 60000}"#)
        .await
        .assert_error(507, "quota_exceeded");
    let listed = c.get(0, "/v1/sessions").await.json();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2, "{listed}");
    let a = c.delete(0, &format!("/v1/sessions/{}", ids[0])).await;
    assert_eq!(a.status.as_u16(), 200, "{}", a.text());
    let a = c.post(0, "/v1/sessions", r#"{"ttl_ms": 60000}"#).await;
    assert_eq!(a.status.as_u16(), 201, "{}", a.text());
}
