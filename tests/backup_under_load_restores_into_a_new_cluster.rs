//! A backup saved with `concierge snapshot save` while clients write restores, with
//! `concierge snapshot restore`, into a brand-new 3-node cluster that holds every key
//! acknowledged before the save began with its version, create_revision and
//! mod_revision, the sessions and their ephemeral keys, and that goes on with
//! revisions above the backup's. The new cluster has its own identity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (version, create_revision, mod_revision) of a key as a write acknowledged it.
type Acked = BTreeMap<String, (u64, u64, u64)>;
/// Acknowledgements of the load: when each arrived, the key, its metadata.
type Acks = Arc<Mutex<Vec<(Instant, String, (u64, u64, u64))>>>;

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(args)
        .output()
        .unwrap()
}

fn meta_of(v: &Value) -> (u64, u64, u64) {
    (
        v["version"].as_u64().unwrap(),
        v["create_revision"].as_u64().unwrap(),
        v["mod_revision"].as_u64().unwrap(),
    )
}

/// Every key of node `i` with its metadata, page by page.
async fn all_keys(c: &Cluster, i: usize) -> Acked {
    let mut out = Acked::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = "/v1/keys?prefix=&limit=10000&keys_only=true".to_string();
        if let Some(a) = &after {
            path.push_str(&format!(
                "&start_after={}",
                percent_encoding::utf8_percent_encode(a, percent_encoding::NON_ALPHANUMERIC)
            ));
        }
        let page = c.get(i, &path).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let body = page.json();
        for e in body["entries"].as_array().unwrap() {
            let key = e["key"].as_str().unwrap().to_string();
            out.insert(key.clone(), meta_of(e));
            after = Some(key);
        }
        if body["more"] != true {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_under_load_restores_into_a_new_cluster() {
    let old = Cluster::start(3, "backup-old").await;
    old.wait_leader(Duration::from_secs(30)).await;

    // Keys written before the load, some updated (versions above 1).
    let mut before = Acked::new();
    for i in 0..300 {
        let key = format!("pre/{i:04}");
        let mut a = old.put(i % 3, &format!("/v1/keys/{key}"), b"first").await;
        if i % 3 == 0 {
            a = old.put(i % 3, &format!("/v1/keys/{key}"), b"second").await;
        }
        assert!(a.status.is_success(), "{}", a.text());
        before.insert(key, meta_of(&a.json()));
    }
    let session = old.post(0, "/v1/sessions", r#"{"ttl_ms": 60000}"#).await;
    assert_eq!(session.status, 201, "{}", session.text());
    let session_id = session.json()["id"].as_str().unwrap().to_string();
    let eph = old
        .put(1, &format!("/v1/keys/eph/a?session={session_id}"), b"e")
        .await;
    assert!(eph.status.is_success(), "{}", eph.text());
    before.insert("eph/a".into(), meta_of(&eph.json()));

    // Writers: unique keys, each acknowledgement stamped with when it arrived.
    let acks: Acks = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let old = Arc::new(old);
    let mut writers = Vec::new();
    for t in 0..3usize {
        let (old, acks, stop) = (old.clone(), acks.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("load/{t}/{n:06}");
                n += 1;
                let Some(a) = old
                    .try_call(
                        t,
                        Method::PUT,
                        &format!("/v1/keys/{key}"),
                        Some(vec![b'x'; 100]),
                        &[],
                    )
                    .await
                else {
                    continue;
                };
                if a.status.is_success() {
                    acks.lock()
                        .unwrap()
                        .push((Instant::now(), key, meta_of(&a.json())));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let dir = common::temp_dir("backup-files");
    let file = dir.join("cluster.backup");
    let endpoints = (0..3)
        .map(|i| format!("127.0.0.1:{}", old.nodes[i].client_port))
        .collect::<Vec<_>>()
        .join(",");
    let save_began = Instant::now();
    let saved = {
        let (file, endpoints) = (file.clone(), endpoints.clone());
        tokio::task::spawn_blocking(move || {
            cli(&[
                "snapshot",
                "save",
                file.to_str().unwrap(),
                "--endpoints",
                &endpoints,
                "--json",
            ])
        })
        .await
        .unwrap()
    };
    // A little more load after the save, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        saved.status.success(),
        "save failed: {}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let report: Value = serde_json::from_slice(&saved.stdout).unwrap();
    let backup_revision = report["revision"].as_u64().unwrap();
    assert!(file.exists() && !Path::new(&format!("{}.part", file.display())).exists());
    let acked_before_save: Vec<(String, (u64, u64, u64))> = acks
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, _, _)| *at < save_began)
        .map(|(_, k, m)| (k.clone(), *m))
        .collect();
    let acked_total = acks.lock().unwrap().len();
    assert!(
        acked_before_save.len() > 50,
        "the load wrote {} keys before the save",
        acked_before_save.len()
    );
    for (k, m) in acked_before_save {
        before.insert(k, m);
    }
    eprintln!(
        "backup: revision {backup_revision}, {} keys acked before the save, {acked_total} in all; {report}",
        before.len()
    );

    // A brand-new cluster on new ports and directories, every member from the file.
    let mut new = Cluster::prepare(3, "backup-new", &[], true);
    for n in &new.nodes {
        let out = cli(&[
            "snapshot",
            "restore",
            file.to_str().unwrap(),
            "--data-dir",
            n.data_dir.to_str().unwrap(),
            "--members",
            &new.concierges,
        ]);
        assert!(
            out.status.success(),
            "restore failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for i in 0..3 {
        new.launch(i);
    }
    for i in 0..3 {
        new.wait_ready(i, Duration::from_secs(30)).await;
    }

    let cluster = new.get(0, "/v1/cluster").await.json();
    assert_eq!(
        cluster["revision"].as_u64(),
        Some(backup_revision),
        "{cluster}"
    );
    let restored = all_keys(&new, 1).await;
    for (key, want) in &before {
        assert_eq!(restored.get(key), Some(want), "key {key}");
    }
    // Nothing the backup did not hold: every restored key is at or below its revision.
    assert!(restored.values().all(|m| m.2 <= backup_revision));

    let s = new.get(2, &format!("/v1/sessions/{session_id}")).await;
    assert_eq!(s.status, 200, "{}", s.text());
    assert_eq!(s.json()["keys"], serde_json::json!(["eph/a"]));

    let after = new.put(0, "/v1/keys/after-restore", b"new").await;
    assert!(after.status.is_success(), "{}", after.text());
    assert_eq!(
        after.json()["mod_revision"].as_u64(),
        Some(backup_revision + 1)
    );

    // The old cluster still serves on its own: the two never mixed.
    let old_after = old.put(0, "/v1/keys/old-after", b"old").await;
    assert!(old_after.status.is_success(), "{}", old_after.text());
    let _ = std::fs::remove_dir_all(&dir);
}
