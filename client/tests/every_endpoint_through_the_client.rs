//! Every call of the client against a real 3-node cluster, with the typed answers and
//! the typed errors of the contract (404, 412 with the current version, 400).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use concierge_client::{
    Compare, Consistency, DeleteOptions, Error, ListOptions, Op, PageOptions, PutOptions, Txn,
    TxnResult,
};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_typed_values_and_typed_errors() {
    let cluster = Cluster::start(3, "every-endpoint").await;
    let client = cluster.client();

    // Keys.
    let put = client.put("a/1", "one").await.unwrap();
    assert!(put.created);
    assert_eq!((put.key.as_str(), put.version), ("a/1", 1));
    let put2 = client.put("a/1", "uno").await.unwrap();
    assert!(!put2.created);
    assert_eq!(put2.version, 2);
    let got = client.get("a/1").await.unwrap().unwrap();
    assert_eq!(&got.value[..], b"uno");
    assert_eq!(got.version, 2);
    assert_eq!(got.mod_revision, put2.mod_revision);
    assert_eq!(got.create_revision, put.create_revision);
    assert!(got.revision >= put2.mod_revision);
    let stale_ok = client
        .get_with("a/1", Consistency::Serializable)
        .await
        .unwrap();
    assert!(stale_ok.is_some());
    assert_eq!(client.get("a/none").await.unwrap(), None);

    // A key with reserved characters travels intact.
    let odd = "a/x y+z%/ü";
    client.put(odd, "odd").await.unwrap();
    assert_eq!(&client.get(odd).await.unwrap().unwrap().value[..], b"odd");

    // Conditions are typed errors carrying the server's code.
    let stale = PutOptions {
        version: Some(1),
        ..PutOptions::default()
    };
    match client.put_with("a/1", "x", &stale).await {
        Err(Error::VersionMismatch {
            current_version,
            error,
        }) => {
            assert_eq!(current_version, 2);
            assert_eq!(error.code, "version_mismatch");
            assert_eq!(error.status, 412);
        }
        other => panic!("expected a version mismatch, got {other:?}"),
    }
    match client.delete("a/none").await {
        Err(e @ Error::KeyNotFound(_)) => assert_eq!(e.code(), Some("key_not_found")),
        other => panic!("expected key_not_found, got {other:?}"),
    }
    match client.create_session(Some(Duration::from_millis(10))).await {
        Err(e @ Error::Rejected(_)) => assert_eq!(e.code(), Some("bad_request")),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Sequential keys.
    let seq = PutOptions {
        sequential: true,
        ..PutOptions::default()
    };
    let s1 = client.put_with("q/", "1", &seq).await.unwrap();
    let s2 = client.put_with("q/", "2", &seq).await.unwrap();
    assert_eq!(s1.key.len(), "q/".len() + 20);
    assert!(s1.key < s2.key);

    // Listings, paged.
    for i in 0..5 {
        client
            .put(&format!("l/{i}"), format!("v{i}"))
            .await
            .unwrap();
    }
    let page = client
        .list(
            "l/",
            &ListOptions {
                limit: Some(2),
                ..ListOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(page.more);
    assert_eq!(page.entries.len(), 2);
    assert_eq!(page.entries[0].value.as_deref(), Some(&b"v0"[..]));
    let all = client
        .list_all(
            "l/",
            &ListOptions {
                limit: Some(2),
                keys_only: true,
                ..ListOptions::default()
            },
            100,
        )
        .await
        .unwrap();
    let keys: Vec<&str> = all.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["l/0", "l/1", "l/2", "l/3", "l/4"]);
    assert!(all.iter().all(|e| e.value.is_none()));

    // Transactions: both branches, each op's result typed.
    let txn = Txn::new()
        .when(Compare::version("a/1", 2))
        .when(Compare::absent("t/new"))
        .then(Op::put("t/new", "n"))
        .then(Op::get("a/1"))
        .then(Op::delete("l/0"))
        .then(Op::get("t/none"))
        .otherwise(Op::get("a/1"));
    let done = client.txn(&txn).await.unwrap();
    assert!(done.succeeded);
    match &done.results[..] {
        [TxnResult::Put(p), TxnResult::Get(Some(e)), TxnResult::Deleted(1), TxnResult::Get(None)] =>
        {
            assert!(p.created);
            assert_eq!(p.mod_revision, done.revision);
            assert_eq!(e.value.as_deref(), Some(&b"uno"[..]));
        }
        other => panic!("unexpected results {other:?}"),
    }
    let again = client.txn(&txn).await.unwrap();
    assert!(!again.succeeded);
    assert!(matches!(&again.results[..], [TxnResult::Get(Some(_))]));
    let with_value = Txn::new()
        .when(Compare::value("a/1", "uno"))
        .when(Compare::exists("t/new"))
        .then(Op::get("t/new"));
    assert!(client.txn(&with_value).await.unwrap().succeeded);

    // Deletes: conditional and by prefix.
    let wrong = DeleteOptions {
        version: Some(9),
        ..DeleteOptions::default()
    };
    assert!(matches!(
        client.delete_with("a/1", &wrong).await,
        Err(Error::VersionMismatch {
            current_version: 2,
            ..
        })
    ));
    let gone = client.delete_prefix("l/").await.unwrap();
    assert_eq!(gone.deleted, 4);

    // Sessions: raw calls.
    let s = client
        .create_session(Some(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(s.ttl_ms, 5000);
    let owned = PutOptions {
        session: Some(s.id.clone()),
        ..PutOptions::default()
    };
    let eph = client.put_with("e/1", "x", &owned).await.unwrap();
    assert_eq!(eph.session.as_deref(), Some(s.id.as_str()));
    assert_eq!(
        client.get("e/1").await.unwrap().unwrap().session.as_deref(),
        Some(s.id.as_str())
    );
    assert_eq!(client.keepalive(&s.id).await.unwrap().id, s.id);
    let detail = client
        .session_info(&s.id, &PageOptions::default())
        .await
        .unwrap();
    assert_eq!(detail.keys, ["e/1"]);
    let listed = client.list_sessions(&PageOptions::default()).await.unwrap();
    assert!(listed.sessions.iter().any(|x| x.id == s.id));
    assert_eq!(client.close_session(&s.id).await.unwrap(), 1);
    assert_eq!(client.get("e/1").await.unwrap(), None);
    assert!(matches!(
        client.keepalive(&s.id).await,
        Err(Error::SessionNotFound(_))
    ));

    // Cluster and operations.
    let status = client.cluster().await.unwrap();
    assert_eq!(status.members.len(), 3);
    assert!(status.leader_id.is_some());
    for i in 0..3 {
        client.health(i).await.unwrap();
        client.ready(i).await.unwrap();
        assert_eq!(client.cluster_of(i).await.unwrap().node_id, i as u64 + 1);
    }
    assert!(client.metrics(0).await.unwrap().contains("concierge_"));
    let doc = client.openapi().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
}
