//! `http` mode: a real one-node `concierge serve`, PUTs over HTTP, idle SSE watches as
//! TCP connections. Each round measures PUTs with no watches, opens N, measures again
//! and closes them; a warm-up phase comes first.
//!
//! Before each measured phase a few 1 MiB values are written to another key, so the
//! history the watchers could read holds large values (the case that made every PUT
//! take seconds with 2,000 watchers, issue 8). In the first round a write to some of
//! the idle keys checks their streams are live, not dead sockets.
//!
//! Every watch is one TCP connection, so N is bounded by the open-file limit of both
//! processes (`ulimit -n`; raising the hard limit needs CAP_SYS_RESOURCE) and by local
//! ports per source address (watches are spread over 127.0.0.1, 127.0.0.2, ...).

use crate::{is_prefix_watch, report, rss_kib, Opts, Phase};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use reqwest::{Client, StatusCode};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The soft open-file limit of this process (the server inherits it).
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The server child, killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start_server(o: &Opts, http: &Client) -> Server {
    let dir = std::env::temp_dir().join(format!("watchers-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let (peer, port) = (free_port(), free_port());
    let child = Command::new(&o.server)
        .arg("serve")
        .env("HOST", "127.0.0.1")
        .env("ACTOR_PORT", peer.to_string())
        .env("CLIENT_PORT", port.to_string())
        .env("DATA_DIR", dir.join("data"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", o.server.display()));
    let server = Server { child, port, dir };
    let started = Instant::now();
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await;
        if matches!(ready, Ok(r) if r.status() == StatusCode::OK) {
            return server;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server not ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn put(http: &Client, url: &str, body: Vec<u8>) {
    let resp = http.put(url).body(body).send().await.expect("PUT answered");
    assert!(resp.status().is_success(), "PUT {url}: {}", resp.status());
}

/// One phase: the big values, then PUTs from `clients` writers for `seconds`.
async fn measure(o: &Opts, http: &Client, port: u16, name: &str) -> Phase {
    for b in 0..o.big_values {
        let url = format!("http://127.0.0.1:{port}/v1/keys/big/{b}");
        put(http, &url, vec![b'x'; 1 << 20]).await;
    }
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(o.seconds);
    let tasks: Vec<_> = (0..o.clients)
        .map(|c| {
            let http = http.clone();
            let value = vec![b'v'; o.value_bytes];
            tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3).unwrap();
                let mut i = 0u64;
                while Instant::now() < until {
                    let url = format!("http://127.0.0.1:{port}/v1/keys/load/{c}/{}", i % 1000);
                    let t = Instant::now();
                    put(&http, &url, value.clone()).await;
                    h.record(t.elapsed().as_micros() as u64).unwrap();
                    i += 1;
                }
                h
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new(3).unwrap();
    for t in tasks {
        all.add(t.await.unwrap()).unwrap();
    }
    let count = all.len() as usize;
    Phase::of(name, count, started.elapsed().as_secs_f64(), &all)
}

/// The key (or prefix) idle watcher `i` follows: never written by the load.
fn watch_path(o: &Opts, i: usize) -> String {
    if is_prefix_watch(o, i) {
        format!("/v1/watch?prefix=idle/{i}/")
    } else {
        format!("/v1/watch?key=idle/{i}")
    }
}

/// Opens watch `i` from source address 127.0.0.(1 + i / per_source) and reads the
/// response head.
async fn open_watch(o: &Opts, port: u16, i: usize) -> TcpStream {
    let source = Ipv4Addr::new(127, 0, 0, 1 + (i / o.per_source) as u8);
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::V4(SocketAddrV4::new(source, 0)))
        .unwrap_or_else(|e| panic!("binding {source}: {e}"));
    let server = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let mut stream = socket
        .connect(server)
        .await
        .unwrap_or_else(|e| panic!("watch {i}: connect: {e}"));
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        watch_path(o, i)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "watch {i}: closed before the response head");
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    assert!(text.starts_with("HTTP/1.1 200"), "watch {i}: {text}");
    stream
}

/// Reads `stream` until an SSE event for `key` arrives.
async fn expect_event(stream: &mut TcpStream, key: &str) {
    let want = format!("\"key\":\"{key}\"");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains(&want) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no event for {key}"))
            .unwrap();
        assert!(n > 0, "the stream of {key} closed");
        seen.extend_from_slice(&buf[..n]);
    }
}

/// A write to a few idle keys reaches their streams.
async fn check_live(o: &Opts, http: &Client, port: u16, watches: &mut [TcpStream]) {
    for i in [0, o.watchers / 2, o.watchers.saturating_sub(1)] {
        let Some(stream) = watches.get_mut(i) else {
            continue;
        };
        let key = if is_prefix_watch(o, i) {
            format!("idle/{i}/x")
        } else {
            format!("idle/{i}")
        };
        let url = format!("http://127.0.0.1:{port}/v1/keys/{key}");
        put(http, &url, b"wake".to_vec()).await;
        expect_event(stream, &key).await;
    }
}

pub async fn run(o: &Opts) {
    let limit = open_files_limit().unwrap_or(0);
    println!(
        "http: {} watchers (1 in {} on a prefix), {} s of PUTs from {} clients of {} bytes, \
         {} x 1 MiB values before each phase, {} rounds, open-file limit {limit}",
        o.watchers, o.prefix_every, o.seconds, o.clients, o.value_bytes, o.big_values, o.rounds
    );
    assert!(
        (o.watchers as u64) + 200 < limit,
        "{} watchers need more than the open-file limit {limit} (ulimit -n)",
        o.watchers
    );
    let http = Client::builder()
        .timeout(Duration::from_secs(600))
        .pool_max_idle_per_host(o.clients + 1)
        .build()
        .unwrap();
    let server = start_server(o, &http).await;
    let (pid, port) = (server.child.id(), server.port);
    measure(o, &http, port, "warm-up").await;
    let (mut unwatched, mut watched, mut rss_delta) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..o.rounds {
        unwatched.push(measure(o, &http, port, "unwatched").await);
        let rss_before = rss_kib(pid);
        let started = Instant::now();
        let mut watches: Vec<TcpStream> = futures_util::stream::iter(0..o.watchers)
            .map(|i| async move { open_watch(o, port, i).await })
            .buffered(o.open_concurrency)
            .collect()
            .await;
        let open_secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss_watched = rss_kib(pid);
        rss_delta.push(rss_watched.saturating_sub(rss_before));
        println!(
            "round {round}: opened {} watches in {open_secs:.1} s; server RSS {rss_before} -> {rss_watched} KiB",
            watches.len()
        );
        watched.push(measure(o, &http, port, "watched").await);
        if round == 0 {
            check_live(o, &http, port, &mut watches).await;
        }
        drop(watches);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    report(&unwatched, &watched, &rss_delta, o.watchers);
}
