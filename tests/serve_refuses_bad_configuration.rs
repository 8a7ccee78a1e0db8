//! `concierge serve` refuses to start, with a clear message, when this node is not in
//! CONCIERGES, when its data directory belongs to another cluster, or when its cluster
//! secret is too short, unreadable or given twice; with nothing set but ports and a
//! data directory it runs a one-node cluster. TLS files that cannot serve are refused
//! the same way, and so are peer TLS flags given in part, or a peer certificate that
//! does not name this node's member entry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{free_port, temp_dir};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn serve(envs: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concierge"));
    cmd.arg("serve")
        .env_remove("CONCIERGES")
        .env_remove("HOST")
        .env_remove("CLUSTER_SECRET")
        .env_remove("CLUSTER_SECRET_FILE")
        .env_remove("PEER_TLS_CERT_FILE")
        .env_remove("PEER_TLS_KEY_FILE")
        .env_remove("PEER_TLS_CA_FILE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

#[test]
fn serve_refuses_bad_configuration() {
    let dir = temp_dir("config");
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let members = format!("[\"127.0.0.1:{p1}\",\"127.0.0.1:{p2}\"]");

    // Not a member.
    let out = serve(&[
        ("ACTOR_PORT", p3.to_string()),
        ("CLIENT_PORT", free_port().to_string()),
        ("CONCIERGES", members.clone()),
        ("DATA_DIR", dir.join("a").display().to_string()),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{p3}")) && err.contains("CONCIERGES"),
        "{err}"
    );

    // A cluster secret that is too short, missing, or given both ways.
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short-secret");
    std::fs::write(&short, "tooshort\n").unwrap();
    let long = dir.join("secret");
    std::fs::write(&long, "a-long-enough-secret\n").unwrap();
    let base = [
        ("ACTOR_PORT", p1.to_string()),
        ("CLIENT_PORT", free_port().to_string()),
        ("CONCIERGES", members.clone()),
        ("DATA_DIR", dir.join("s").display().to_string()),
    ];
    let cases: [(&str, String, &str); 4] = [
        (
            "CLUSTER_SECRET_FILE",
            short.display().to_string(),
            "at least 16",
        ),
        ("CLUSTER_SECRET", String::new(), "at least 16"),
        (
            "CLUSTER_SECRET_FILE",
            dir.join("none").display().to_string(),
            "cannot read",
        ),
        ("CLUSTER_SECRET", "a-long-enough-secret".into(), "only one"),
    ];
    for (name, value, says) in cases {
        let mut envs = base.to_vec();
        envs.push((name, value));
        if says == "only one" {
            envs.push(("CLUSTER_SECRET_FILE", long.display().to_string()));
        }
        let out = serve(&envs).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("cluster secret") && err.contains(says),
            "{err}"
        );
    }

    // A storage memory budget too small to hold two memtables and a cache.
    let mut envs = base.to_vec();
    envs.push(("MEMORY_BUDGET_MIB", "4".into()));
    let out = serve(&envs).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "MEMORY_BUDGET_MIB=4");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MEMORY_BUDGET_MIB"), "{err}");

    // A one-node cluster records its membership; a different CONCIERGES is refused.
    let data = dir.join("b");
    let client = free_port();
    let mut child = serve(&[
        ("ACTOR_PORT", p1.to_string()),
        ("CLIENT_PORT", client.to_string()),
        ("DATA_DIR", data.display().to_string()),
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let start = Instant::now();
    while !data.join("cluster.json").exists() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the data directory never got its cluster file");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let out = serve(&[
        ("ACTOR_PORT", p1.to_string()),
        ("CLIENT_PORT", free_port().to_string()),
        ("CONCIERGES", members),
        ("DATA_DIR", data.display().to_string()),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to the cluster"), "{err}");

    // TLS files that cannot serve: exit 2 naming the file and the reason, before the
    // data directory is touched.
    let tls_data = dir.join("tls");
    let missing = dir.join("missing.pem").display().to_string();
    // Certificates for members n1:23456 and n2:23456, none of them this node.
    let certs = dir.join("certs");
    let made = Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(["certs", "--nodes", "n1,n2", "--out"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pem = |name: &str| certs.join(name).display().to_string();
    for (envs, want) in [
        (
            vec![("TLS_CERT_FILE", missing.clone())],
            "TLS_KEY_FILE is not",
        ),
        (
            vec![
                ("TLS_CERT_FILE", missing.clone()),
                ("TLS_KEY_FILE", missing.clone()),
            ],
            "missing.pem",
        ),
        (
            vec![("PEER_TLS_CERT_FILE", pem("n1.pem"))],
            "missing: PEER_TLS_KEY_FILE, PEER_TLS_CA_FILE",
        ),
        (
            vec![
                ("PEER_TLS_CERT_FILE", pem("n1.pem")),
                ("PEER_TLS_KEY_FILE", pem("n1-key.pem")),
                ("PEER_TLS_CA_FILE", pem("ca.pem")),
            ],
            "names member(s) [\"n1:23456\"]",
        ),
    ] {
        let mut all = vec![
            ("ACTOR_PORT", p3.to_string()),
            ("CLIENT_PORT", free_port().to_string()),
            ("DATA_DIR", tls_data.display().to_string()),
        ];
        all.extend(envs);
        let out = serve(&all).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
        assert!(!tls_data.exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
