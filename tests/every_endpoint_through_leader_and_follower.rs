//! Every endpoint of API.md's Keys, Sessions and Cluster sections answers as the
//! contract says, through the leader and through a follower of a 3-node cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::{Method, StatusCode};
use std::time::Duration;

async fn exercise(c: &Cluster, n: usize, other: usize, tag: &str) {
    let key = format!("/v1/keys/{tag}%2Fa%20b");
    // Create, then update.
    let a = c.put(n, &key, b"one").await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let j = a.json();
    assert_eq!(j["key"], format!("{tag}/a b"));
    assert_eq!(j["version"], 1);
    assert_eq!(j["session"], serde_json::Value::Null);
    let created_rev = j["create_revision"].as_u64().unwrap();
    assert_eq!(j["mod_revision"].as_u64().unwrap(), created_rev);
    assert_eq!(a.revision(), created_rev);
    let leader = a.header("x-concierge-leader").unwrap();
    assert!(!leader.is_empty());

    let a = c.put(n, &key, b"two").await;
    assert_eq!(a.status, StatusCode::OK);
    let j = a.json();
    assert_eq!(j["version"], 2);
    assert_eq!(j["create_revision"].as_u64().unwrap(), created_rev);
    let mod_rev = j["mod_revision"].as_u64().unwrap();
    assert!(mod_rev > created_rev);

    // A linearizable read on the other node sees the write at once.
    for (node, q) in [(other, ""), (n, "?consistency=linearizable")] {
        let a = c.get(node, &format!("{key}{q}")).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, b"two");
        assert_eq!(a.header("etag").unwrap(), "\"2\"");
        assert_eq!(a.header("x-concierge-version").unwrap(), "2");
        assert_eq!(
            a.header("x-concierge-create-revision").unwrap(),
            created_rev.to_string()
        );
        assert_eq!(
            a.header("x-concierge-mod-revision").unwrap(),
            mod_rev.to_string()
        );
        assert_eq!(
            a.header("content-type").unwrap(),
            "application/octet-stream"
        );
        assert!(a.header("x-concierge-session").is_none());
        assert!(a.revision() >= mod_rev);
    }
    let a = c.get(n, &format!("{key}?consistency=serializable")).await;
    assert_eq!(a.status, StatusCode::OK);

    // Conditional writes.
    let a = c.put(n, &format!("{key}?version=1"), b"x").await;
    a.assert_error(412, "version_mismatch");
    assert_eq!(a.json()["current_version"], 2);
    let a = c
        .call(
            n,
            Method::PUT,
            &key,
            Some(b"x".to_vec()),
            &[("If-None-Match", "*")],
        )
        .await;
    a.assert_error(412, "version_mismatch");
    let a = c
        .call(
            n,
            Method::PUT,
            &key,
            Some(b"three".to_vec()),
            &[("If-Match", "\"2\"")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["version"], 3);
    let fresh = format!("/v1/keys/{tag}-fresh");
    let a = c
        .call(
            n,
            Method::PUT,
            &format!("{fresh}?version=0"),
            Some(b"f".to_vec()),
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let a = c.get(n, &format!("/v1/keys/{tag}-absent")).await;
    a.assert_error(404, "key_not_found");

    // Deletes.
    let a = c.delete(n, &format!("{key}?version=9")).await;
    a.assert_error(412, "version_mismatch");
    assert_eq!(a.json()["current_version"], 3);
    let a = c.delete(n, &key).await;
    assert_eq!(a.status, StatusCode::OK);
    let j = a.json();
    assert_eq!(j["deleted"], 1);
    assert_eq!(j["revision"].as_u64().unwrap(), a.revision());
    let a = c.delete(n, &key).await;
    a.assert_error(404, "key_not_found");
    let a = c.get(other, &key).await;
    a.assert_error(404, "key_not_found");

    // Listing.
    for i in 0..5 {
        let a = c
            .put(
                n,
                &format!("/v1/keys/{tag}/list/{i}"),
                format!("v{i}").as_bytes(),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED);
    }
    let a = c
        .get(other, &format!("/v1/keys?prefix={tag}/list/&limit=2"))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let j = a.json();
    assert_eq!(j["more"], true);
    assert_eq!(j["revision"].as_u64().unwrap(), a.revision());
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["key"], format!("{tag}/list/0"));
    assert_eq!(entries[0]["value"], "djA=");
    assert_eq!(entries[0]["version"], 1);
    assert!(entries[0]["create_revision"].is_u64());
    assert!(entries[0]["mod_revision"].is_u64());
    assert_eq!(entries[0]["session"], serde_json::Value::Null);
    let a = c
        .get(
            n,
            &format!("/v1/keys?prefix={tag}/list/&start_after={tag}/list/1&keys_only=true&consistency=serializable"),
        )
        .await;
    let j = a.json();
    assert_eq!(j["more"], false);
    let entries = j["entries"].as_array().unwrap();
    let keys: Vec<_> = entries.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        vec![
            format!("{tag}/list/2"),
            format!("{tag}/list/3"),
            format!("{tag}/list/4")
        ]
    );
    assert!(entries[0].get("value").is_none());

    // Prefix delete.
    let a = c
        .delete(n, &format!("/v1/keys/{tag}/list/?prefix=true"))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["deleted"], 5);
    let a = c.get(other, &format!("/v1/keys?prefix={tag}/list/")).await;
    assert_eq!(a.json()["entries"].as_array().unwrap().len(), 0);

    // Sequential keys: the key as given plus a 20-digit number, increasing.
    let mut seq_keys = Vec::new();
    for _ in 0..2 {
        let a = c
            .put(n, &format!("/v1/keys/{tag}/seq-?sequential=true"), b"s")
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
        seq_keys.push(a.json()["key"].as_str().unwrap().to_string());
    }
    let base = format!("{tag}/seq-");
    assert!(seq_keys[0].starts_with(&base) && seq_keys[0].len() == base.len() + 20);
    assert!(seq_keys[0] < seq_keys[1], "{seq_keys:?}");
    let a = c.get(other, &format!("/v1/keys/{}", seq_keys[1])).await;
    assert_eq!(a.status, StatusCode::OK);

    // Idempotency keys: a retry, on any node, gets the first answer and is not applied.
    let idem_key = format!("{tag}-idem");
    let path = format!("/v1/keys/{tag}/idem");
    let first = c
        .call(
            n,
            Method::PUT,
            &path,
            Some(b"i".to_vec()),
            &[("Idempotency-Key", &idem_key)],
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let retry = c
        .call(
            other,
            Method::PUT,
            &path,
            Some(b"i".to_vec()),
            &[("Idempotency-Key", &idem_key)],
        )
        .await;
    assert_eq!(retry.status, StatusCode::CREATED, "the first answer, again");
    assert_eq!(retry.json(), first.json());
    assert_eq!(
        c.get(n, &path).await.header("x-concierge-version").unwrap(),
        "1"
    );
    let long_key = "i".repeat(129);
    let a = c
        .call(
            n,
            Method::PUT,
            &path,
            Some(b"i".to_vec()),
            &[("Idempotency-Key", &long_key)],
        )
        .await;
    a.assert_error(400, "bad_request");

    // Transactions.
    let t = format!("{tag}/txn");
    let doc = serde_json::json!({
        "if": [{"key": t, "exists": false}],
        "then": [{"op": "put", "key": t, "value": "dg=="}, {"op": "get", "key": t}],
        "else": [{"op": "get", "key": t}],
    })
    .to_string();
    let a = c.post(n, "/v1/txn", &doc).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let j = a.json();
    assert_eq!(j["succeeded"], true);
    assert_eq!(j["revision"].as_u64().unwrap(), a.revision());
    assert_eq!(j["results"][0]["version"], 1);
    assert_eq!(j["results"][1]["value"], "dg==");
    let a = c.post(other, "/v1/txn", &doc).await;
    let j = a.json();
    assert_eq!(j["succeeded"], false);
    assert_eq!(j["results"][0]["key"], t.as_str());
    let twice = serde_json::json!({
        "then": [{"op": "put", "key": t, "value": ""}, {"op": "delete", "key": t}],
    })
    .to_string();
    let a = c.post(n, "/v1/txn", &twice).await;
    a.assert_error(400, "bad_request");

    // Bad requests change nothing.
    let before = c.get(n, "/v1/cluster").await.json()["revision"]
        .as_u64()
        .unwrap();
    let big = vec![b'x'; (1 << 20) + 1];
    let a = c.put(n, &format!("/v1/keys/{tag}-big"), &big).await;
    a.assert_error(413, "too_large");
    let a = c.put(n, &format!("/v1/keys/{tag}-ctl%01"), b"x").await;
    a.assert_error(400, "bad_request");
    let a = c.put(n, &format!("/v1/keys/{tag}?version=abc"), b"x").await;
    a.assert_error(400, "bad_request");
    let a = c.get(n, &format!("/v1/keys?prefix={tag}&limit=0")).await;
    a.assert_error(400, "bad_request");
    let a = c
        .get(n, &format!("/v1/keys/{tag}?consistency=eventual"))
        .await;
    a.assert_error(400, "bad_request");
    let long = "k".repeat(1025);
    let a = c.put(n, &format!("/v1/keys/{long}"), b"x").await;
    a.assert_error(400, "bad_request");
    let a = c.post(n, "/v1/sessions", "{\"ttl_ms\": 5}").await;
    a.assert_error(400, "bad_request");
    let a = c.post(n, "/v1/sessions", "not json").await;
    a.assert_error(400, "bad_request");
    let after = c.get(n, "/v1/cluster").await.json()["revision"]
        .as_u64()
        .unwrap();
    assert_eq!(before, after, "a 4xx changes nothing");
    // A value of exactly the limit is accepted.
    let a = c.put(n, &format!("/v1/keys/{tag}-max"), &big[1..]).await;
    assert_eq!(a.status, StatusCode::CREATED);

    // Sessions and ephemeral keys.
    let a = c.post(n, "/v1/sessions", "{\"ttl_ms\": 30000}").await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let j = a.json();
    assert_eq!(j["ttl_ms"], 30000);
    let id = j["id"].as_str().unwrap().to_string();
    let a = c
        .post(other, &format!("/v1/sessions/{id}/keepalive"), "")
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["id"], id.as_str());
    assert_eq!(a.json()["ttl_ms"], 30000);
    let eph = format!("/v1/keys/{tag}/eph");
    let a = c.put(n, &format!("{eph}?session={id}"), b"e").await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.json()["session"], id.as_str());
    let a = c.get(other, &eph).await;
    assert_eq!(a.header("x-concierge-session").unwrap(), id);
    let a = c.get(other, &format!("/v1/sessions/{id}")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["keys"], serde_json::json!([format!("{tag}/eph")]));
    let a = c.get(n, "/v1/sessions").await;
    let listed = a.json()["sessions"].as_array().unwrap().clone();
    assert!(listed
        .iter()
        .any(|s| s["id"] == id.as_str() && s["ttl_ms"] == 30000));
    let a = c
        .put(n, &format!("{eph}2?session=00000000000000aa"), b"e")
        .await;
    a.assert_error(404, "session_not_found");
    let a = c.delete(other, &format!("/v1/sessions/{id}")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["deleted_keys"], 1);
    let a = c.get(n, &eph).await;
    a.assert_error(404, "key_not_found");
    let a = c.post(n, &format!("/v1/sessions/{id}/keepalive"), "").await;
    a.assert_error(404, "session_not_found");
    let a = c
        .post(other, &format!("/v1/sessions/{id}/keepalive"), "")
        .await;
    a.assert_error(404, "session_not_found");
    let a = c.get(n, &format!("/v1/sessions/{id}")).await;
    a.assert_error(404, "session_not_found");
    let a = c.delete(n, &format!("/v1/sessions/{id}")).await;
    a.assert_error(404, "session_not_found");
    let a = c.post(n, "/v1/sessions", "").await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.json()["ttl_ms"], 10000, "the default TTL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_through_leader_and_follower() {
    let c = Cluster::start(3, "endpoints").await;
    let leader = c.wait_leader(Duration::from_secs(20)).await;
    let follower = c.other_than(leader);

    for i in 0..3 {
        let a = c.get(i, "/health").await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(a.header("x-concierge-revision").is_some());
        let a = c.get(i, "/ready").await;
        assert_eq!(a.status, StatusCode::OK);
        let a = c.get(i, "/v1/cluster").await;
        let j = a.json();
        assert_eq!(j["node_id"], i + 1);
        assert_eq!(j["leader_id"], leader + 1);
        assert!(j["commit_index"].is_u64() && j["applied_index"].is_u64());
        assert!(j["revision"].is_u64() && !j["ballot"].is_null());
        let members = j["members"].as_array().unwrap();
        assert_eq!(members.len(), 3);
        for (m, node) in members.iter().zip(&c.nodes) {
            assert_eq!(m["id"], node.id);
            assert_eq!(m["peer_addr"], format!("127.0.0.1:{}", node.peer_port));
            assert!(m["healthy"].is_boolean());
        }
        assert_eq!(
            a.header("x-concierge-leader").unwrap(),
            (leader + 1).to_string()
        );
    }
    let a = c.get(follower, "/v1/nothing-here").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.header("x-concierge-revision").is_some());

    exercise(&c, leader, follower, "via-leader").await;
    exercise(&c, follower, leader, "via-follower").await;
}
