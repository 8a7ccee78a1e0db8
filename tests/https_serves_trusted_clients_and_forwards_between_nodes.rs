//! A three-node cluster serving HTTPS with the certificates `concierge certs` made:
//! a client that trusts the CA puts, gets, watches and keeps a session alive through a
//! follower (which forwards keepalives to the leader over HTTPS), and so does the CLI;
//! a client without the CA is refused with a TLS error, and plain HTTP to the port gets
//! no data. With TLS_CLIENT_CA_FILE, a client without a certificate is refused and one
//! with a certificate from the CA is served (forwarded keepalives included: a node
//! shows its own certificate).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{temp_dir, Cluster};
use concierge_client::{Client, ClientConfig, Error, Tls, WatchOptions};
use futures_util::StreamExt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_concierge");

/// The certificates of one test, removed with their directory when dropped.
struct Certs(PathBuf);

impl std::ops::Deref for Certs {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

/// Runs `concierge certs` into a fresh directory: nodes n1..n3, all on 127.0.0.1.
fn make_certs(tag: &str) -> Certs {
    let dir = temp_dir(tag).join("certs");
    let out = Command::new(BIN)
        .args([
            "certs",
            "--nodes",
            "n1,n2,n3",
            "--hosts",
            "127.0.0.1,localhost",
        ])
        .arg("--out")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "concierge certs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Certs(dir)
}

fn file(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// The harness's HTTP client: trusts the CA, shows the client certificate.
fn harness_http(certs: &Path) -> reqwest::Client {
    let ca = std::fs::read(certs.join("ca.pem")).unwrap();
    let mut identity = std::fs::read(certs.join("client.pem")).unwrap();
    identity.extend(std::fs::read(certs.join("client-key.pem")).unwrap());
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .identity(reqwest::Identity::from_pem(&identity).unwrap())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

async fn https_cluster(tag: &str, certs: &Path, client_certificates: bool) -> Cluster {
    let ca = file(certs, "ca.pem");
    let mut env = vec![("TLS_CA_FILE", ca.as_str())];
    if client_certificates {
        env.push(("TLS_CLIENT_CA_FILE", ca.as_str()));
    }
    let node_env = (1..=3)
        .map(|i| {
            vec![
                (
                    "TLS_CERT_FILE".to_string(),
                    file(certs, &format!("n{i}.pem")),
                ),
                (
                    "TLS_KEY_FILE".to_string(),
                    file(certs, &format!("n{i}-key.pem")),
                ),
            ]
        })
        .collect();
    Cluster::start_https(3, tag, &env, node_env, harness_http(certs)).await
}

/// A client of node `i` alone (so a keepalive to a follower is forwarded).
fn client_of(cluster: &Cluster, i: usize, tls: Tls) -> Client {
    let mut config = ClientConfig::new([cluster.url(i, "")]);
    config.tls = tls;
    config.call_deadline = Duration::from_secs(20);
    Client::new(config).unwrap()
}

fn tls(certs: &Path, ca: bool, identity: bool) -> Tls {
    let ca = ca.then(|| certs.join("ca.pem"));
    let (cert, key) = if identity {
        (
            Some(certs.join("client.pem")),
            Some(certs.join("client-key.pem")),
        )
    } else {
        (None, None)
    };
    Tls::from_files(ca.as_deref(), cert.as_deref(), key.as_deref()).unwrap()
}

/// Put, get, watch and a session kept alive by hand, all through node `i`.
async fn exercise(client: &Client, tag: &str) {
    let key = format!("{tag}/k");
    let put = client.put(&key, "v1").await.unwrap();
    let got = client.get(&key).await.unwrap().expect("the key was put");
    assert_eq!(got.value, "v1".as_bytes());
    let mut watch = client.watch(WatchOptions::key(&key).from_revision(put.mod_revision));
    let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
        .await
        .expect("the watch delivers the put")
        .expect("the stream goes on")
        .unwrap();
    assert_eq!(
        (event.key.as_str(), event.mod_revision),
        (key.as_str(), put.mod_revision)
    );
    let session = client
        .create_session(Some(Duration::from_secs(10)))
        .await
        .unwrap();
    for _ in 0..3 {
        let kept = client.keepalive(&session.id).await.unwrap();
        assert_eq!(kept.id, session.id);
    }
    client.close_session(&session.id).await.unwrap();
}

/// Sends a plain HTTP request to `port` and returns all the bytes that came back.
fn plain_http_exchange(port: u16, path: &str) -> Vec<u8> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_a_client_that_trusts_the_ca_and_nothing_else() {
    let certs = make_certs("https-ca");
    let cluster = https_cluster("https", &certs, false).await;
    let leader = cluster.wait_leader(Duration::from_secs(30)).await;
    let follower = cluster.other_than(leader);

    let trusted = client_of(&cluster, follower, tls(&certs, true, false));
    exercise(&trusted, "trusted").await;
    trusted.put("secret/k", "do-not-leak").await.unwrap();

    // The CLI with --cacert, through the follower.
    let endpoint = cluster.url(follower, "");
    let out = Command::new(BIN)
        .args(["get", "secret/k", "--endpoints", &endpoint, "--cacert"])
        .arg(certs.join("ca.pem"))
        .env_remove("CONCIERGE_ENDPOINTS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "do-not-leak");
    // ... and without it: a TLS error, exit 1.
    let out = Command::new(BIN)
        .args([
            "get",
            "secret/k",
            "--timeout",
            "3",
            "--endpoints",
            &endpoint,
        ])
        .env_remove("CONCIERGE_CACERT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");

    // A client that does not trust the CA is refused before sending anything.
    let mut config = ClientConfig::new([cluster.url(follower, "")]);
    config.call_deadline = Duration::from_secs(3);
    config.attempt_timeout = Duration::from_secs(2);
    let untrusting = Client::new(config).unwrap();
    match untrusting.get("secret/k").await {
        Err(Error::Unreachable { message }) => {
            assert!(message.contains("certificate"), "{message}")
        }
        other => panic!("a client without the CA got {other:?}"),
    }

    // Plain HTTP to the HTTPS port gets no HTTP answer and no data.
    for i in 0..3 {
        let got = plain_http_exchange(cluster.nodes[i].client_port, "/v1/keys/secret/k");
        let text = String::from_utf8_lossy(&got);
        assert!(!text.starts_with("HTTP/"), "node {}: {text:?}", i + 1);
        assert!(!text.contains("do-not-leak"), "node {}: {text:?}", i + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_when_the_cluster_asks() {
    let certs = make_certs("https-mtls");
    let cluster = https_cluster("mtls", &certs, true).await;
    let leader = cluster.wait_leader(Duration::from_secs(30)).await;
    let follower = cluster.other_than(leader);

    let mut config = ClientConfig::new([cluster.url(follower, "")]);
    config.tls = tls(&certs, true, false);
    config.call_deadline = Duration::from_secs(3);
    config.attempt_timeout = Duration::from_secs(2);
    let anonymous = Client::new(config).unwrap();
    let refused = anonymous.get("any").await;
    assert!(
        matches!(refused, Err(Error::Unreachable { .. })),
        "a client without a certificate got {refused:?}"
    );

    let with_cert = client_of(&cluster, follower, tls(&certs, true, true));
    exercise(&with_cert, "mtls").await;

    // A request without a certificate changed nothing.
    let attempt = anonymous.put("mtls/anonymous", "x").await;
    assert!(attempt.is_err(), "{attempt:?}");
    assert_eq!(with_cert.get("mtls/anonymous").await.unwrap(), None);

    // `concierge bench` (its own HTTP/1.1 connections) over HTTPS: with the CA and a
    // certificate every request is served; without the certificate none is.
    let endpoint = cluster.url(follower, "");
    let bench = |identity: bool| {
        let mut command = Command::new(BIN);
        command
            .args([
                "bench",
                "put",
                "--prefix",
                "mtls/bench-",
                "--requests",
                "20",
            ])
            .args(["--clients", "2", "--timeout", "3", "--json", "--endpoints"])
            .arg(&endpoint)
            .arg("--cacert")
            .arg(certs.join("ca.pem"))
            .env_remove("CONCIERGE_CERT")
            .env_remove("CONCIERGE_KEY");
        if identity {
            command
                .arg("--cert")
                .arg(certs.join("client.pem"))
                .arg("--key")
                .arg(certs.join("client-key.pem"));
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (report["errors"].as_u64(), report["errors_by_kind"].clone())
    };
    assert_eq!(bench(true).0, Some(0));
    let (errors, kinds) = bench(false);
    assert_eq!(errors, Some(20), "{kinds}");
    let refused = ["connect", "transport"].map(|k| kinds[k].as_u64().unwrap_or(0));
    assert_eq!(refused.iter().sum::<u64>(), 20, "{kinds}");
}
