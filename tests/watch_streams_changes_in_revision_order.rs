//! `GET /v1/watch` on a follower streams every change of a prefix (puts, deletes, a
//! session's close) as Server-Sent Events in revision order, with no gaps and no
//! duplicates, and resumes after `Last-Event-ID`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sse::Sse;
use common::Cluster;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Reads the first `count` change events of a watch as (mod_revision, data, id).
async fn read_events(
    c: &Cluster,
    node: usize,
    path: &str,
    last_id: Option<u64>,
    count: usize,
) -> Vec<(u64, Value, Option<u64>)> {
    let mut req = c.http.get(c.url(node, path));
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let mut sse = Sse::of(req.send().await.unwrap());
    sse.changes(count, Duration::from_secs(20))
        .await
        .into_iter()
        .map(|f| (f.revision(), f.data.clone().unwrap(), f.id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_changes_in_revision_order() {
    let c = Cluster::start(3, "watch").await;
    let leader = c.wait_leader(Duration::from_secs(20)).await;
    let follower = c.other_than(leader);

    let first = c.put(leader, "/v1/keys/w/a", b"1").await.json()["mod_revision"]
        .as_u64()
        .unwrap();
    c.put(leader, "/v1/keys/other", b"x").await;
    c.put(follower, "/v1/keys/w/b", b"2").await;
    c.put(leader, "/v1/keys/w/a", b"3").await;
    c.delete(leader, "/v1/keys/w/b").await;
    let s = c
        .post(leader, "/v1/sessions", "{\"ttl_ms\": 60000}")
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.put(leader, &format!("/v1/keys/w/e1?session={s}"), b"e")
        .await;
    c.put(leader, &format!("/v1/keys/w/e2?session={s}"), b"e")
        .await;
    c.delete(leader, &format!("/v1/sessions/{s}")).await;

    let path = format!("/v1/watch?prefix=w/&from_revision={first}");
    let events = read_events(&c, follower, &path, None, 8).await;
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|(_, e, _)| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("put", "w/a"),
        ("put", "w/b"),
        ("put", "w/a"),
        ("delete", "w/b"),
        ("put", "w/e1"),
        ("put", "w/e2"),
        ("delete", "w/e1"),
        ("delete", "w/e2"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(t, k)| (t.to_string(), k.to_string()))
        .collect();
    assert_eq!(summary, want);
    let ids: Vec<u64> = events.iter().map(|(rev, _, _)| *rev).collect();
    assert!(ids.windows(2).all(|w| w[0] <= w[1]), "{ids:?}");
    assert_eq!(ids[6], ids[7], "a session's close is one revision");
    for (i, (rev, _, id)) in events.iter().enumerate() {
        let last_of_revision = events.get(i + 1).is_none_or(|next| next.0 != *rev);
        assert_eq!(*id, last_of_revision.then_some(*rev), "event {i}");
    }
    assert_eq!(events[0].1["value"], "MQ==");
    assert_eq!(events[2].1["version"], 2);
    assert_eq!(events[3].1["value"], Value::Null);
    assert_eq!(events[4].1["session"], s.as_str());

    // Resume after the third event: the rest, then a live change.
    let resume = read_events(&c, leader, "/v1/watch?prefix=w/", Some(ids[2]), 5).await;
    assert_eq!(resume[0].0, ids[3]);
    let writer = {
        let url = c.url(follower, "/v1/keys/w/live");
        let http = c.http.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            http.put(url).body("live").send().await.unwrap();
        })
    };
    let live = read_events(&c, leader, "/v1/watch?key=w/live", None, 1).await;
    writer.await.unwrap();
    assert_eq!(live[0].1["key"], "w/live");
    assert_eq!(live[0].1["type"], "put");

    let a = c.get(leader, "/v1/watch").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = c.get(leader, "/v1/watch?key=a&prefix=b").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
}
