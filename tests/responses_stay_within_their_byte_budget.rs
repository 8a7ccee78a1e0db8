//! Every answer that lists things is bounded: a listing page stops at the byte budget
//! (4 MiB of JSON by default) as well as at `limit`, and says so with `more`;
//! `keys_only` pages count no values; `GET /v1/sessions` and a session's key list page
//! by `limit` and `start_after`; a transaction whose gets would return more than the
//! budget is refused whole. Before the fix each was built whole in memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::Cluster;
use reqwest::Method;
use serde_json::Value;

const MIB: usize = 1 << 20;

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e[field].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_sessions_and_txns_stay_within_the_budget() {
    let c = Cluster::start(1, "budget").await;
    let value = vec![b'v'; MIB];
    let names: Vec<String> = (0..12).map(|i| format!("big/{i:02}")).collect();
    for n in &names {
        let a = c.put(0, &format!("/v1/keys/{n}"), &value).await;
        assert_eq!(a.status.as_u16(), 201, "{}", a.text());
    }

    // Values: several pages, each within the budget plus one entry.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/keys?prefix=big/&limit=100&start_after={a}"),
            None => "/v1/keys?prefix=big/&limit=100".to_string(),
        };
        let a = c.get(0, &path).await;
        assert_eq!(a.status.as_u16(), 200, "{}", a.text());
        assert!(
            a.body.len() <= 4 * MIB + 2 * MIB,
            "a page of {} bytes",
            a.body.len()
        );
        let j = a.json();
        let keys = strings(&j["entries"], "key");
        assert!(!keys.is_empty());
        for e in j["entries"].as_array().unwrap() {
            let v = base64::engine::general_purpose::STANDARD
                .decode(e["value"].as_str().unwrap())
                .unwrap();
            assert_eq!(v.len(), MIB);
        }
        after = keys.last().cloned();
        seen.extend(keys);
        pages += 1;
        if j["more"] == false {
            break;
        }
        assert!(pages < 20, "the walk does not end");
    }
    assert_eq!(seen, names);
    assert!(pages >= 3, "16 MiB of values came in {pages} page(s)");

    // keys_only: no values, so everything fits one page.
    let a = c.get(0, "/v1/keys?prefix=big/&keys_only=true").await;
    let j = a.json();
    assert_eq!(j["more"], false);
    assert_eq!(strings(&j["entries"], "key"), names);
    assert!(j["entries"][0].get("value").is_none());

    // A transaction whose gets would return more than the budget is refused whole.
    let mut then: Vec<Value> = names
        .iter()
        .take(6)
        .map(|n| serde_json::json!({"op": "get", "key": n}))
        .collect();
    then.push(serde_json::json!({"op": "put", "key": "txn-marker", "value": "eA=="}));
    let body = serde_json::json!({"then": then}).to_string();
    let a = c.post(0, "/v1/txn", &body).await;
    assert_eq!(
        a.status.as_u16(),
        400,
        "{}",
        &a.text()[..a.text().len().min(300)]
    );
    assert_eq!(a.json()["error"], "bad_request");
    assert_eq!(c.get(0, "/v1/keys/txn-marker").await.status.as_u16(), 404);
    // Within the budget it goes through.
    let body = serde_json::json!({"then": [{"op": "get", "key": "big/00"}]}).to_string();
    assert_eq!(c.post(0, "/v1/txn", &body).await.status.as_u16(), 200);

    // Sessions page by limit and start_after.
    let mut ids = Vec::new();
    for _ in 0..5 {
        let a = c.post(0, "/v1/sessions", "{\"ttl_ms\": 60000}").await;
        assert_eq!(a.status.as_u16(), 201);
        ids.push(a.json()["id"].as_str().unwrap().to_string());
    }
    ids.sort();
    let a = c.get(0, "/v1/sessions?limit=2").await;
    assert_eq!(a.status.as_u16(), 200, "{}", a.text());
    let j = a.json();
    assert_eq!(j["more"], true, "{j}");
    assert_eq!(strings(&j["sessions"], "id"), ids[..2]);
    let a = c
        .get(0, &format!("/v1/sessions?limit=2&start_after={}", ids[1]))
        .await;
    assert_eq!(strings(&a.json()["sessions"], "id"), ids[2..4]);
    let a = c
        .get(0, &format!("/v1/sessions?start_after={}", ids[3]))
        .await;
    let j = a.json();
    assert_eq!(strings(&j["sessions"], "id"), ids[4..]);
    assert_eq!(j["more"], false);
    assert_eq!(c.get(0, "/v1/sessions?limit=0").await.status.as_u16(), 400);

    // A session's keys page the same way.
    let sid = &ids[0];
    for i in 0..5 {
        let a = c
            .call(
                0,
                Method::PUT,
                &format!("/v1/keys/eph/{i}?session={sid}"),
                Some(b"e".to_vec()),
                &[],
            )
            .await;
        assert_eq!(a.status.as_u16(), 201, "{}", a.text());
    }
    let a = c.get(0, &format!("/v1/sessions/{sid}?limit=2")).await;
    let j = a.json();
    assert_eq!(j["more"], true, "{j}");
    assert_eq!(j["keys"], serde_json::json!(["eph/0", "eph/1"]));
    let a = c
        .get(0, &format!("/v1/sessions/{sid}?limit=2&start_after=eph/1"))
        .await;
    assert_eq!(a.json()["keys"], serde_json::json!(["eph/2", "eph/3"]));
    let a = c
        .get(0, &format!("/v1/sessions/{sid}?start_after=eph/3"))
        .await;
    let j = a.json();
    assert_eq!(j["keys"], serde_json::json!(["eph/4"]));
    assert_eq!(j["more"], false);
}
