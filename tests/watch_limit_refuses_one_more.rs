//! A node serves at most `WATCHERS_MAX` watches: one more is 503 `not_ready` with
//! `Retry-After`, and a closed watch frees its place as soon as the client closes the
//! connection (`/metrics` counts `concierge_watchers`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sse::Sse;
use common::Cluster;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

async fn watchers(c: &Cluster) -> Option<u64> {
    let text = c.get(0, "/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix("concierge_watchers "))
        .and_then(|v| v.parse().ok())
}

#[test]
fn watch_limit_refuses_one_more() {
    // The child inherits this process's environment (set before any thread starts).
    std::env::set_var("WATCHERS_MAX", "2");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Cluster::start(1, "watch-limit").await;
        // Streams outlive the harness client's 15 s request timeout.
        let streams = reqwest::Client::new();
        let open = |path: &str| streams.get(c.url(0, path)).send();
        let a = Sse::of(open("/v1/watch?key=a").await.unwrap());
        let mut b = Sse::of(open("/v1/watch?prefix=").await.unwrap());
        assert_eq!(watchers(&c).await, Some(2));

        let refused = open("/v1/watch?key=c").await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(refused.headers().contains_key("retry-after"));
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "not_ready");

        drop(a);
        let start = Instant::now();
        while watchers(&c).await != Some(1) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the closed watch stays"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut d = Sse::of(open("/v1/watch?key=d").await.unwrap());
        c.put(0, "/v1/keys/d", b"1").await;
        assert_eq!(d.changes(1, Duration::from_secs(20)).await[0].key(), "d");
        assert_eq!(b.changes(1, Duration::from_secs(20)).await[0].key(), "d");
    });
}
