//! `GET /v1/watch` refuses what is not a revision or not a key with 400 `bad_request`
//! (never a bogus 410, never a stream that can only wait forever), and accepts every
//! revision below 2^63, also one this node has not reached yet (a client resuming on a
//! lagging follower): that stream simply waits for it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sse::Sse;
use common::Cluster;
use reqwest::StatusCode;
use std::time::Duration;

/// The status and error code of a watch request (the stream, if any, is dropped).
async fn open(c: &Cluster, path: &str, last_event_id: Option<&str>) -> (StatusCode, String) {
    let mut req = c.http.get(c.url(0, path));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    if status == StatusCode::OK {
        return (status, String::new());
    }
    let body: serde_json::Value = resp.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
    )
}

fn bad() -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, "bad_request".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_refuses_bad_input() {
    let c = Cluster::start(1, "watch-bad").await;
    c.put(0, "/v1/keys/k", b"1").await;
    let ok = (StatusCode::OK, String::new());

    // Last-Event-ID: a revision is a number below 2^63.
    for id in [
        "18446744073709551615",
        "9223372036854775808",
        "abc",
        "-1",
        "",
    ] {
        assert_eq!(
            open(&c, "/v1/watch?key=k", Some(id)).await,
            bad(),
            "Last-Event-ID {id:?}"
        );
    }
    assert_eq!(
        open(&c, "/v1/watch?key=k", Some("9223372036854775807")).await,
        ok
    );
    // from_revision: the same range.
    for r in ["18446744073709551615", "9223372036854775808", "x"] {
        let path = format!("/v1/watch?key=k&from_revision={r}");
        assert_eq!(open(&c, &path, None).await, bad(), "from_revision={r}");
    }
    assert_eq!(
        open(
            &c,
            "/v1/watch?key=k&from_revision=9223372036854775807",
            None
        )
        .await,
        ok
    );

    // prefix= is checked as keys are (an empty prefix follows every key).
    let long = "p".repeat(1025);
    for q in [
        "prefix=a%01b",
        "prefix=%0A",
        &format!("prefix={long}"),
        "key=a%01b",
        "key=",
    ] {
        let path = format!("/v1/watch?{q}");
        assert_eq!(open(&c, &path, None).await, bad(), "{q}");
    }
    let longest = "p".repeat(1024);
    for q in ["prefix=", "prefix=a%20b", &format!("prefix={longest}")] {
        assert_eq!(open(&c, &format!("/v1/watch?{q}"), None).await, ok, "{q}");
    }

    // A revision ahead of the node is waited for, not refused.
    let now = c.get(0, "/v1/keys/k").await.revision();
    let resp = c
        .http
        .get(c.url(0, "/v1/watch?key=k"))
        .header("Last-Event-ID", (now + 1).to_string())
        .send()
        .await
        .unwrap();
    let mut sse = Sse::of(resp);
    c.put(0, "/v1/keys/k", b"2").await; // now + 1: skipped, the client has it
    c.put(0, "/v1/keys/k", b"3").await; // now + 2
    let got = sse.changes(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].revision(), now + 2);
}
