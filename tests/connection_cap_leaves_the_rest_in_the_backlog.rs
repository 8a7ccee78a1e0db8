//! `HTTP_CONNECTIONS_MAX` (docs/API.md, Limits): a node serves at most that many client
//! connections at once (rounded up to a multiple of its HTTP workers); more wait in the
//! listen backlog, unaccepted, until one closes. Counted, not timed: the sockets the
//! process holds are read from /proc/PID/fd while 40 idle connections are open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cluster;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sockets the process holds.
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path())
                .map(|t| t.to_string_lossy().starts_with("socket:"))
                .unwrap_or(false)
        })
        .count()
}

/// The most sockets seen over `rounds` looks, 50 ms apart (the server accepts at once;
/// a count that stays put for a second is what it holds).
fn settled_sockets(pid: u32) -> usize {
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(sockets(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    most
}

async fn held_sockets_with_40_idle_connections(env: &[(&str, &str)]) -> (usize, usize) {
    let mut c = Cluster::start_with_env(1, "conn-cap", env).await;
    let pid = c.nodes[0].child.as_ref().unwrap().id();
    let port = c.nodes[0].client_port;
    let before = settled_sockets(pid);
    // Idle connections that sent half a request head: each is held until the head
    // deadline (a minute here) unless the node never accepted it.
    let mut idle = Vec::new();
    for _ in 0..40 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
        idle.push(s);
    }
    let during = settled_sockets(pid);
    // Closing them lets the node serve again.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = c
            .try_call_within(
                0,
                reqwest::Method::GET,
                "/health",
                None,
                &[],
                Duration::from_secs(2),
            )
            .await;
        if a.is_some_and(|a| a.status.as_u16() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "the node never served again");
    }
    c.kill(0);
    (before, during)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_unaccepted() {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cap = 2 * workers;
    let (before, during) = held_sockets_with_40_idle_connections(&[
        ("HTTP_CONNECTIONS_MAX", &cap.to_string()),
        ("HTTP_HEADER_TIMEOUT_MS", "60000"),
    ])
    .await;
    assert!(
        during <= before + cap,
        "the node holds {during} sockets with 40 idle connections open ({before} before); cap {cap}"
    );
    // The control: with the default cap, the same 40 connections are all accepted.
    let (before, during) =
        held_sockets_with_40_idle_connections(&[("HTTP_HEADER_TIMEOUT_MS", "60000")]).await;
    assert!(
        during >= before + 40,
        "control: {during} sockets with 40 idle connections ({before} before)"
    );
}
