//! A key is the same string wherever a URL carries it: in the path of `/v1/keys/{key}`
//! and in the query parameters `prefix` and `start_after`, percent-decoded only (`+`
//! is a plus, a space is `%20`), and checked by the same rules (1..=1024 bytes of UTF-8,
//! no control characters) in both. Before the fix, `+` was a space in queries only, and
//! `start_after` took anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;

fn keys(a: &common::Answer) -> Vec<String> {
    a.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_in_queries_decode_and_validate_as_in_paths() {
    let c = Cluster::start(1, "query-keys").await;
    for path in ["/v1/keys/p/a+b", "/v1/keys/p/a%20b", "/v1/keys/p/c"] {
        assert_eq!(c.put(0, path, b"v").await.status.as_u16(), 201, "{path}");
    }
    let a = c.get(0, "/v1/keys?prefix=p/a+").await;
    assert_eq!(a.status.as_u16(), 200, "{}", a.text());
    assert_eq!(keys(&a), ["p/a+b"]);
    let a = c.get(0, "/v1/keys?prefix=p/a%20").await;
    assert_eq!(keys(&a), ["p/a b"]);
    let a = c.get(0, "/v1/keys?prefix=p/&start_after=p/a+b").await;
    assert_eq!(keys(&a), ["p/c"]);
    let a = c.get(0, "/v1/keys?prefix=p/&start_after=p/a%2Bb").await;
    assert_eq!(keys(&a), ["p/c"]);

    let long = "x".repeat(1025);
    for bad in [
        "/v1/keys?prefix=p/&start_after=%01".to_string(),
        "/v1/keys?prefix=p/&start_after=a%00b".to_string(),
        "/v1/keys?prefix=p/&start_after=%ff".to_string(),
        format!("/v1/keys?prefix=p/&start_after={long}"),
        format!("/v1/keys?prefix={long}"),
        "/v1/keys?prefix=%7f".to_string(),
    ] {
        let a = c.get(0, &bad).await;
        assert_eq!(a.status.as_u16(), 400, "{bad}: {}", a.text());
        assert_eq!(a.json()["error"], "bad_request");
    }
}
