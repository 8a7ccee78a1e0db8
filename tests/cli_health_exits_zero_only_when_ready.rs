//! `concierge health` exits 0 only when every node given is ready (`GET /ready`): a
//! node of a one-node cluster is; a node of a three-node cluster started alone runs
//! (`/health` answers) but never has a quorum, so it is not, and neither is a port
//! nobody listens on. Docker's health check relies on exactly this (exit 1, never 2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{free_port, temp_dir, Cluster};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Kills and reaps the process when dropped, also when the test fails.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn health(endpoints: &str, json: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concierge"));
    cmd.args(["health", "--endpoints", endpoints])
        .env_remove("RUST_LOG");
    if json {
        cmd.arg("--json");
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_zero_for_a_ready_node_and_one_otherwise() {
    let c = Cluster::start(1, "cli-health").await;
    let ready = format!("127.0.0.1:{}", c.nodes[0].client_port);
    let out = health(&ready, false);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(stdout(&out), format!("http://{ready}: ready\n"));

    // One node of three, started alone: alive, never ready.
    let root = temp_dir("cli-health-alone");
    let (peer, client) = (free_port(), free_port());
    let members = format!(
        "127.0.0.1:{peer},127.0.0.1:{},127.0.0.1:{}",
        free_port(),
        free_port()
    );
    let log = std::fs::File::create(root.join("node.log")).unwrap();
    let alone = Command::new(env!("CARGO_BIN_EXE_concierge"))
        .arg("serve")
        .env("HOST", "127.0.0.1")
        .env("ACTOR_PORT", peer.to_string())
        .env("CLIENT_PORT", client.to_string())
        .env("CONCIERGES", members)
        .env("DATA_DIR", root.join("data"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let alone = Reaped(alone);
    let url = format!("http://127.0.0.1:{client}/health");
    let start = Instant::now();
    while !reqwest::get(&url).await.is_ok_and(|a| a.status() == 200) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the node never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lone = format!("127.0.0.1:{client}");
    let out = health(&lone, false);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("not ready"), "{}", stdout(&out));

    // Several endpoints: 0 only if all are ready; --json says which is not.
    let out = health(&format!("{ready},{lone}"), true);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ready"], false);
    assert_eq!(report["endpoints"][0]["ready"], true);
    assert_eq!(report["endpoints"][1]["ready"], false);
    // Nobody listening.
    let out = health(&format!("127.0.0.1:{}", free_port()), false);
    assert_eq!(out.status.code(), Some(1));

    drop(alone);
    let _ = std::fs::remove_dir_all(&root);
}
