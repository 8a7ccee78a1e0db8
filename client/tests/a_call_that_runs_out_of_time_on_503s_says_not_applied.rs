//! A write that meets only 503s until its call deadline ends with `Unavailable` (not
//! applied), never `OutcomeUnknown`: the client must not start an attempt it has no
//! time left to finish, since an attempt cut short after it was sent may have been
//! applied. The node here is a stand-in that answers every request 503 `no_quorum` a
//! few milliseconds late, as a loaded node that knows no leader does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use concierge_client::{Applied, Client, ClientConfig, Error};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How late the stand-in answers: longer than the 1 ms floor of an attempt's timeout.
const ANSWER_DELAY: Duration = Duration::from_millis(20);

/// Serves one connection: every request (head and body read whole) is answered 503.
async fn answer_503s(mut stream: TcpStream, answered: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let body_len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + body_len {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + body_len);
        tokio::time::sleep(ANSWER_DELAY).await;
        let body = r#"{"error":"no_quorum","message":"no leader or no quorum reachable"}"#;
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        answered.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_only_meets_503s_ends_unavailable_at_its_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = answered.clone();
    let server = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_503s(stream, counter.clone()));
        }
    });

    let mut config = ClientConfig::new([endpoint]);
    config.call_deadline = Duration::from_millis(600);
    config.attempt_timeout = Duration::from_millis(300);
    let client = Client::new(config).unwrap();
    for round in 0..3 {
        match client.put("k", "v").await {
            Err(e @ Error::Unavailable(_)) => {
                assert_eq!(e.status(), Some(503));
                assert_eq!(e.applied(), Applied::No);
            }
            other => panic!("round {round}: expected 503 unavailable, got {other:?}"),
        }
    }
    // The client did retry within each call (backoff between attempts).
    assert!(answered.load(Ordering::Relaxed) >= 6, "too few attempts");
    server.abort();
}
