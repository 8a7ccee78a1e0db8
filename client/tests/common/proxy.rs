//! A proxy in front of one real node that loses answers: it forwards each request
//! whole to the node, waits for the node's whole answer (so the request was handled),
//! and then either closes the client's connection without a byte (an answer lost to
//! the network, or a node killed after applying) or answers 504 `timeout` itself (a
//! node that gave up waiting while the write was applied anyway).
//!
//! It counts the requests it forwarded and remembers their Idempotency-Keys.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with the node's answer.
#[derive(Clone, Copy, Debug)]
pub enum Loss {
    /// Closes the connection without answering.
    Drop,
    /// Answers 504 `timeout`.
    Answer504,
}

/// A running proxy.
pub struct Proxy {
    pub endpoint: String,
    /// The Idempotency-Key of each forwarded request ("" for none), in order.
    pub forwarded: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream_port: u16, loss: Loss) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let forwarded = Arc::new(Mutex::new(Vec::new()));
        let seen = forwarded.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, upstream_port, loss, seen).await;
                });
            }
        });
        Proxy {
            endpoint: format!("http://127.0.0.1:{port}"),
            forwarded,
            task,
        }
    }

    pub fn forwarded(&self) -> Vec<String> {
        self.forwarded.lock().unwrap().clone()
    }
}

/// Reads one HTTP message (head and a Content-Length body) from `s`.
async fn read_message(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + len {
                return Ok(buf);
            }
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn serve(
    mut client: TcpStream,
    upstream_port: u16,
    loss: Loss,
    seen: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let request = read_message(&mut client).await?;
    let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("idempotency-key:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default();
    seen.lock().unwrap().push(key);
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port)).await?;
    upstream.write_all(&request).await?;
    let answer = read_message(&mut upstream).await?;
    assert!(
        answer.starts_with(b"HTTP/1.1 2"),
        "the node refused: {}",
        String::from_utf8_lossy(&answer)
    );
    match loss {
        Loss::Drop => Ok(()),
        Loss::Answer504 => {
            let body = r#"{"error":"timeout","message":"the proxy lost the answer"}"#;
            let resp = format!(
                "HTTP/1.1 504 Gateway Timeout\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(resp.as_bytes()).await
        }
    }
}
