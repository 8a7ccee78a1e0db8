//! The bench's HTTP/1.1 connection against a scripted server on loopback: each framing
//! of an answer, answers split across reads, reuse and reconnection, and malformed
//! answers refused as errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use tokio::net::TcpListener;

/// A server that, for each connection, reads one request head per answer in `answers`
/// and writes that answer in pieces of `piece` bytes; it returns the requests it read,
/// connection by connection.
async fn scripted(
    connections: Vec<Vec<&'static [u8]>>,
    piece: usize,
) -> (String, tokio::task::JoinHandle<Vec<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        for answers in connections {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut requests = Vec::new();
            let mut buf = Vec::new();
            for answer in answers {
                let request = loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8(buf[..end + 4].to_vec()).unwrap();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                        if buf.len() >= end + 4 + length {
                            let body = String::from_utf8(buf[end + 4..end + 4 + length].to_vec());
                            buf.drain(..end + 4 + length);
                            break head + &body.unwrap();
                        }
                    }
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "the client closed before its request");
                    buf.extend_from_slice(&chunk[..n]);
                };
                requests.push(request);
                for part in answer.chunks(piece) {
                    socket.write_all(part).await.unwrap();
                    socket.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
            seen.push(requests);
        }
        seen
    });
    (addr, task)
}

fn client(addr: &str) -> Http1 {
    Http1::new(addr, Duration::from_secs(5), &Tls::default(), Some("t0k")).unwrap()
}

#[tokio::test]
async fn every_framing_is_read_to_its_end_on_one_connection() {
    let answers: Vec<&'static [u8]> = vec![
        b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 412 Precondition Failed\r\ncontent-length: 2\r\n\r\n{}",
    ];
    for piece in [1, 7, 4096] {
        let (addr, server) = scripted(vec![answers.clone()], piece).await;
        let mut c = client(&addr);
        let a = c
            .send(
                "PUT",
                "/v1/keys/a",
                Some(("application/octet-stream", b"xy")),
            )
            .await
            .unwrap();
        assert_eq!((a.status, a.body.as_slice()), (201, &b"hello"[..]));
        let a = c
            .send("GET", "/v1/keys/a?consistency=linearizable", None)
            .await
            .unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"abcde"[..]));
        let a = c.send("DELETE", "/v1/keys/a", None).await.unwrap();
        assert_eq!((a.status, a.body.len()), (204, 0));
        let a = c
            .send("POST", "/v1/txn", Some(("application/json", b"{}")))
            .await
            .unwrap();
        assert_eq!((a.status, a.body.as_slice()), (412, &b"{}"[..]));
        let seen = server.await.unwrap();
        assert_eq!(
            seen.len(),
            1,
            "piece {piece}: one connection carried all four"
        );
        let r = &seen[0];
        assert!(r[0].starts_with("PUT /v1/keys/a HTTP/1.1\r\n"), "{}", r[0]);
        assert!(r[0].contains(&format!("\r\nHost: {addr}\r\n")), "{}", r[0]);
        assert!(
            r[0].contains("\r\nAuthorization: Bearer t0k\r\n"),
            "{}",
            r[0]
        );
        assert!(r[0].ends_with("Content-Length: 2\r\n\r\nxy"), "{}", r[0]);
        assert!(r[1].starts_with("GET /v1/keys/a?consistency=linearizable HTTP/1.1\r\n"));
        assert!(!r[1].contains("Content-Length"), "{}", r[1]);
        assert!(r[2].contains("Content-Length: 0\r\n"), "{}", r[2]);
        assert!(r[3].ends_with("Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"));
    }
}

#[tokio::test]
async fn a_closed_connection_is_opened_again_for_the_next_request() {
    let (addr, server) = scripted(
        vec![
            vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na"],
            vec![b"HTTP/1.0 200 OK\r\n\r\nuntil the close"],
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc"],
        ],
        4096,
    )
    .await;
    let mut c = client(&addr);
    assert_eq!(c.send("GET", "/1", None).await.unwrap().body, b"a");
    // The server drops the socket after writing: the body ends at the close.
    let server_closes = c.send("GET", "/2", None);
    assert_eq!(server_closes.await.unwrap().body, b"until the close");
    assert_eq!(c.send("GET", "/3", None).await.unwrap().body, b"c");
    assert_eq!(server.await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_connection_idle_past_the_bound_is_not_reused() {
    let ok: &'static [u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk";
    let (addr, server) = scripted(vec![vec![ok, ok], vec![ok]], 4096).await;
    let mut c = client(&addr);
    assert_eq!(c.send("GET", "/1", None).await.unwrap().body, b"k");
    assert_eq!(c.send("GET", "/2", None).await.unwrap().body, b"k");
    // Idle longer than the bound (zero here): the next request opens a new connection
    // rather than write on one the server may be closing.
    c.idle_reuse_max = Duration::ZERO;
    assert_eq!(c.send("GET", "/3", None).await.unwrap().body, b"k");
    let seen = server.await.unwrap();
    assert_eq!(seen.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
}

#[tokio::test]
async fn malformed_answers_are_errors_and_the_connection_is_dropped() {
    let bad: Vec<&'static [u8]> = vec![
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
    ];
    for answer in bad {
        let (addr, server) = scripted(vec![vec![answer]], 4096).await;
        let mut c = client(&addr);
        let failure = c.send("GET", "/", None).await.err();
        assert!(
            matches!(failure, Some(Failure::Transport(_))),
            "{:?}: {failure:?}",
            String::from_utf8_lossy(answer)
        );
        assert!(c.stream.is_none(), "the connection was kept");
        server.await.unwrap();
    }
}

#[tokio::test]
async fn a_silent_server_is_a_timeout_and_a_closed_port_a_connect_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut c = Http1::new(&addr, Duration::from_millis(200), &Tls::default(), None).unwrap();
    assert_eq!(c.send("GET", "/", None).await.err(), Some(Failure::Timeout));
    drop(listener);
    let failure = c.send("GET", "/", None).await.err();
    assert_eq!(failure.map(|f| f.kind()), Some("connect"));
}

#[test]
fn endpoints_are_parsed_once_and_bad_ones_refused() {
    let ok = |e: &str| parse_endpoint(e).unwrap();
    assert_eq!(ok("127.0.0.1:8080"), (false, "127.0.0.1".into(), 8080));
    assert_eq!(ok("http://node-1:2379/"), (false, "node-1".into(), 2379));
    assert_eq!(ok("https://node-1"), (true, "node-1".into(), 443));
    assert_eq!(ok("[::1]:8080"), (false, "::1".into(), 8080));
    for bad in ["ftp://x:1", "x:port", "http://x:1/v1", ":8080", "[::1:8080"] {
        assert!(parse_endpoint(bad).is_err(), "{bad}");
    }
    let v6 = Http1::new("[::1]:8080", Duration::from_secs(1), &Tls::default(), None).unwrap();
    assert_eq!(v6.fixed_headers, "Host: [::1]:8080\r\n");
    assert!(Http1::new("x:1", Duration::from_secs(1), &Tls::default(), Some("a\nb")).is_err());
}
