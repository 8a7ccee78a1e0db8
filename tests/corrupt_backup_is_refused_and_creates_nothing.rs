//! A backup file cut short, or with one byte flipped, is refused by `snapshot verify`
//! and `snapshot restore` with a message saying what is wrong, and the restore creates
//! no data directory (nor its staging directory).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(args)
        .output()
        .unwrap()
}

fn refused(file: &Path, dir: &Path, expect: &str) {
    let verify = cli(&["snapshot", "verify", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&verify.stderr).to_string();
    assert_eq!(verify.status.code(), Some(1), "verify: {err}");
    assert!(err.contains(expect), "verify said: {err}");
    let data_dir = dir.join("restored");
    let restore = cli(&[
        "snapshot",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--members",
        "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
    ]);
    let err = String::from_utf8_lossy(&restore.stderr).to_string();
    assert_eq!(restore.status.code(), Some(1), "restore: {err}");
    assert!(err.contains(expect), "restore said: {err}");
    assert!(!data_dir.exists(), "restore created {}", data_dir.display());
    assert!(!dir.join("restored.restoring").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_backup_is_refused_and_creates_nothing() {
    let c = Cluster::start(1, "backup-corrupt").await;
    for i in 0..200 {
        let a = c.put(0, &format!("/v1/keys/k{i:03}"), &[b'v'; 300]).await;
        assert!(a.status.is_success(), "{}", a.text());
    }
    let dir = common::temp_dir("backup-corrupt-files");
    let file = dir.join("good.backup");
    let endpoint = format!("127.0.0.1:{}", c.nodes[0].client_port);
    let saved = cli(&[
        "snapshot",
        "save",
        file.to_str().unwrap(),
        "--endpoints",
        &endpoint,
    ]);
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let good = std::fs::read(&file).unwrap();
    assert!(cli(&["snapshot", "verify", file.to_str().unwrap()])
        .status
        .success());

    let cut = dir.join("cut.backup");
    std::fs::write(&cut, &good[..good.len() * 2 / 3]).unwrap();
    refused(&cut, &dir, "truncated");

    let no_trailer = dir.join("no-trailer.backup");
    std::fs::write(&no_trailer, &good[..good.len() - 53]).unwrap();
    refused(&no_trailer, &dir, "truncated");

    let flipped = dir.join("flipped.backup");
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    std::fs::write(&flipped, &bad).unwrap();
    refused(&flipped, &dir, "checksum mismatch");

    let header = dir.join("header.backup");
    let mut bad = good.clone();
    bad[30] ^= 1; // the revision field
    std::fs::write(&header, &bad).unwrap();
    refused(&header, &dir, "checksum mismatch");

    // The good file still restores.
    let ok = cli(&[
        "snapshot",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        dir.join("ok").to_str().unwrap(),
        "--members",
        "127.0.0.1:1",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(dir.join("ok").join("cluster.json").exists());
    drop(c);
    let _ = tokio::time::timeout(Duration::from_millis(1), async {}).await;
    let _ = std::fs::remove_dir_all(&dir);
}
