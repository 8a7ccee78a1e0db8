//! Slow or lying clients cannot pin a node's memory or hang its workers (issue 8):
//! a request head that never finishes is closed after `HTTP_HEADER_TIMEOUT_MS`; a body
//! that stalls is answered 408 `request_timeout` after `HTTP_BODY_TIMEOUT_MS` while
//! other requests are answered meanwhile; a `Content-Length` of 1 GiB with 10 bytes
//! sent allocates nothing near that. Raw TCP sockets; the deadlines are configured
//! short and the assertions are on outcomes, with generous bounds only so that a
//! failure cannot hang the test. Before the fix: no flags (the head deadline was a
//! fixed 5 s), no body deadline (a stalled body waited for ever), and the body buffer
//! was sized from the declared length.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(c: &Cluster) -> TcpStream {
    TcpStream::connect(("127.0.0.1", c.nodes[0].client_port))
        .await
        .unwrap()
}

/// Reads until the server closes (or `limit` passes: then None).
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    match read {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

fn vm_size_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_bodies_are_cut_and_big_declared_lengths_cost_nothing() {
    let c = Cluster::start_with_env(
        1,
        "slow-clients",
        &[
            ("HTTP_HEADER_TIMEOUT_MS", "1000"),
            ("HTTP_BODY_TIMEOUT_MS", "2000"),
            ("VALUE_BYTES_MAX", "2147483648"),
        ],
    )
    .await;

    // A head that never finishes: closed by the server, well before 5 s.
    let mut head = connect(&c).await;
    head.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut head, Duration::from_secs(4))
        .await
        .expect("the server kept an unfinished head open past its deadline");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A body that stalls after 10 of 100 bytes, and a declared length of 1 GiB.
    let pid = c.nodes[0].child.as_ref().unwrap().id();
    let before = vm_size_kib(pid);
    let mut stalled = connect(&c).await;
    stalled
        .write_all(
            b"PUT /v1/keys/stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let mut huge = connect(&c).await;
    huge.write_all(
        b"PUT /v1/keys/huge HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = vm_size_kib(pid);
    assert!(
        during < before + 256 * 1024,
        "the node's address space grew from {before} KiB to {during} KiB"
    );
    // Meanwhile other requests are answered.
    for _ in 0..5 {
        assert_eq!(c.get(0, "/health").await.status.as_u16(), 200);
        assert_eq!(
            c.put(0, "/v1/keys/other", b"v").await.status.as_u16() / 100,
            2
        );
    }
    // Both stalled bodies get 408 and the connection is closed.
    for (name, s) in [("stalled", &mut stalled), ("huge", &mut huge)] {
        let answer = read_to_close(s, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("the {name} body was never cut"));
        assert!(answer.starts_with("HTTP/1.1 408"), "{name}: {answer:?}");
        assert!(answer.contains("request_timeout"), "{name}: {answer:?}");
    }
    // Nothing was written.
    assert_eq!(c.get(0, "/v1/keys/stall").await.status.as_u16(), 404);
    assert_eq!(c.get(0, "/v1/keys/huge").await.status.as_u16(), 404);
}
