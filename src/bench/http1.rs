//! One HTTP/1.1 connection of `concierge bench`'s request workloads, written and read
//! by the task that sends on it: no pool, no channel to a connection task, no URL
//! parsed per request (wrk's shape). A reqwest client per connection cost the bench
//! more CPU than the node it measured: `wrk` drove one node to 31-33k linearizable
//! gets/s where the same bench through reqwest reached 20k, on this 2-core machine.
//!
//! Invariants: one request in flight; an answer is read to its end (`Content-Length`,
//! chunked, or to the close) before the next request is written; a connection that
//! failed, timed out, answered `Connection: close` or was closed is dropped, and the
//! next request opens a new one, as it does after a connection sat idle long enough
//! that the server may be closing it. Every byte read is checked: a malformed answer is an
//! error, never a panic. `https://` endpoints are checked against `--cacert` (else the
//! system's roots), with `--cert`/`--key` shown when given, as the other clients do.

use concierge_client::Tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The most header lines an answer may have.
const HEADERS_MAX: usize = 32;
/// The longest answer head (status line and headers) read.
const HEAD_BYTES_MAX: usize = 64 << 10;
/// The largest answer body read.
const BODY_BYTES_MAX: usize = 64 << 20;
/// A connection idle longer than this is not reused: the server closes idle ones
/// (`HTTP_KEEP_ALIVE_MS`, 5 s by default), and a request written as it does would fail.
/// The client library's `pool_idle_timeout` is the same 3 s.
const IDLE_REUSE_MAX: Duration = Duration::from_secs(3);
/// The least room made for one read from the socket.
const READ_BYTES: usize = 16 << 10;

/// A byte stream an HTTP connection runs over: TCP, or TLS over TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where a connection goes, parsed once from the endpoint.
struct Endpoint {
    host: String,
    port: u16,
    /// The TLS client and the name the node's certificate must hold, for `https://`.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// A failed exchange, as the report counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No answer within the timeout.
    Timeout,
    /// The connection could not be opened (or its TLS handshake failed).
    Connect(String),
    /// The connection broke, or the answer was not HTTP/1.1.
    Transport(String),
}

impl Failure {
    /// The failure's kind, as the report counts it.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect(_) => "connect",
            Failure::Transport(_) => "transport",
        }
    }
}

/// An answer: the status code and the whole body.
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One HTTP/1.1 connection to one endpoint, opened on first use.
pub struct Http1 {
    endpoint: Endpoint,
    /// The `Host` header line and, with a token, the `Authorization` line.
    fixed_headers: String,
    timeout: Duration,
    stream: Option<Box<dyn Io>>,
    /// When `stream` finished its last exchange.
    idle_since: Instant,
    /// `IDLE_REUSE_MAX` (shorter in tests).
    idle_reuse_max: Duration,
    /// The request being written (reused).
    out: Vec<u8>,
    /// Bytes read and not yet consumed (reused).
    buf: Vec<u8>,
}

impl Http1 {
    /// A connection to `endpoint` (`host:port`, `http://host:port` or
    /// `https://host:port`); nothing is opened yet. Every exchange fails as
    /// [`Failure::Timeout`] after `timeout`. `tls` is the trust for `https://`, `token`
    /// is sent as `Authorization: Bearer`.
    pub fn new(
        endpoint: &str,
        timeout: Duration,
        tls: &Tls,
        token: Option<&str>,
    ) -> Result<Http1, String> {
        let (https, host, port) = parse_endpoint(endpoint)?;
        let tls = if https {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("endpoint {endpoint:?}: {e}"))?;
            Some((TlsConnector::from(client_config(tls)?), name))
        } else {
            None
        };
        let named = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let mut fixed_headers = if port == if https { 443 } else { 80 } {
            format!("Host: {named}\r\n")
        } else {
            format!("Host: {named}:{port}\r\n")
        };
        if let Some(token) = token {
            if token.bytes().any(|b| b < b' ' || b == 0x7f) {
                return Err("--token: not a valid header value".into());
            }
            fixed_headers.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        Ok(Http1 {
            endpoint: Endpoint { host, port, tls },
            fixed_headers,
            timeout,
            stream: None,
            idle_since: Instant::now(),
            idle_reuse_max: IDLE_REUSE_MAX,
            out: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// Sends one request (`target` is the path and query) and reads its whole answer.
    /// `body` goes with `Content-Type: content_type` when given.
    pub async fn send(
        &mut self,
        method: &str,
        target: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer, Failure> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.exchange(method, target, body)).await {
            Ok(Ok((answer, keep))) => {
                if keep {
                    self.idle_since = Instant::now();
                } else {
                    self.stream = None;
                }
                Ok(answer)
            }
            Ok(Err(failure)) => {
                self.stream = None;
                Err(failure)
            }
            Err(_) => {
                self.stream = None;
                Err(Failure::Timeout)
            }
        }
    }

    /// The exchange, and whether the connection may carry another.
    async fn exchange(
        &mut self,
        method: &str,
        target: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<(Answer, bool), Failure> {
        if self.stream.is_some() && self.idle_since.elapsed() > self.idle_reuse_max {
            self.stream = None;
        }
        if self.stream.is_none() {
            self.stream = Some(connect(&self.endpoint).await?);
            self.buf.clear();
        }
        self.out.clear();
        self.out.extend_from_slice(method.as_bytes());
        self.out.push(b' ');
        self.out.extend_from_slice(target.as_bytes());
        self.out.extend_from_slice(b" HTTP/1.1\r\n");
        self.out.extend_from_slice(self.fixed_headers.as_bytes());
        match body {
            Some((content_type, bytes)) => {
                self.out.extend_from_slice(b"Content-Type: ");
                self.out.extend_from_slice(content_type.as_bytes());
                self.out.extend_from_slice(b"\r\nContent-Length: ");
                self.out
                    .extend_from_slice(bytes.len().to_string().as_bytes());
                self.out.extend_from_slice(b"\r\n\r\n");
                self.out.extend_from_slice(bytes);
            }
            None if method == "GET" => self.out.extend_from_slice(b"\r\n"),
            None => self.out.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
        }
        let Some(stream) = self.stream.as_mut() else {
            return Err(Failure::Transport("no connection".into()));
        };
        stream.write_all(&self.out).await.map_err(broken)?;
        stream.flush().await.map_err(broken)?;
        read_answer(stream.as_mut(), &mut self.buf).await
    }
}

/// Opens a connection to `e` (and its TLS session for `https://`).
async fn connect(e: &Endpoint) -> Result<Box<dyn Io>, Failure> {
    let tcp = TcpStream::connect((e.host.as_str(), e.port))
        .await
        .map_err(|err| Failure::Connect(format!("{}:{}: {err}", e.host, e.port)))?;
    tcp.set_nodelay(true)
        .map_err(|err| Failure::Connect(format!("setting TCP_NODELAY: {err}")))?;
    match &e.tls {
        None => Ok(Box::new(tcp)),
        Some((connector, name)) => {
            let tls = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|err| Failure::Connect(format!("TLS with {}: {err}", e.host)))?;
            Ok(Box::new(tls))
        }
    }
}

fn broken(e: std::io::Error) -> Failure {
    Failure::Transport(e.to_string())
}

/// Reads more bytes into `buf`; the connection closing is an error.
async fn fill(stream: &mut dyn Io, buf: &mut Vec<u8>) -> Result<(), Failure> {
    if fill_or_eof(stream, buf).await? {
        Ok(())
    } else {
        Err(Failure::Transport(
            "the connection closed mid-answer".into(),
        ))
    }
}

/// Reads more bytes into `buf` (into its spare capacity: nothing is zeroed first);
/// false when the connection closed.
async fn fill_or_eof(stream: &mut dyn Io, buf: &mut Vec<u8>) -> Result<bool, Failure> {
    buf.reserve(READ_BYTES);
    let n = stream.read_buf(buf).await.map_err(broken)?;
    Ok(n > 0)
}

/// Reads one answer from `stream` (bytes already read are in `buf`, and what follows the
/// answer stays there); also whether the connection may be reused.
async fn read_answer(stream: &mut dyn Io, buf: &mut Vec<u8>) -> Result<(Answer, bool), Failure> {
    let head = loop {
        if let Some(head) = parse_head(buf)? {
            break head;
        }
        if buf.len() > HEAD_BYTES_MAX {
            return Err(Failure::Transport(format!(
                "an answer head longer than {HEAD_BYTES_MAX} bytes"
            )));
        }
        fill(stream, buf).await?;
    };
    buf.drain(..head.len);
    let body = match head.framing {
        Framing::Empty => Vec::new(),
        Framing::Length(n) => {
            while buf.len() < n {
                fill(stream, buf).await?;
            }
            buf.drain(..n).collect()
        }
        Framing::Chunked => read_chunked(stream, buf).await?,
        Framing::Close => {
            while fill_or_eof(stream, buf).await? {
                if buf.len() > BODY_BYTES_MAX {
                    return Err(too_large());
                }
            }
            std::mem::take(buf)
        }
    };
    let keep = head.keep_alive && head.framing != Framing::Close;
    Ok((
        Answer {
            status: head.status,
            body,
        },
        keep,
    ))
}

fn too_large() -> Failure {
    Failure::Transport(format!("an answer body over {BODY_BYTES_MAX} bytes"))
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (1xx, 204, 304).
    Empty,
    Length(usize),
    Chunked,
    /// At the close of the connection.
    Close,
}

/// A parsed answer head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    /// Its length in bytes, the blank line included.
    len: usize,
    status: u16,
    framing: Framing,
    keep_alive: bool,
}

/// The head at the start of `buf`, or None if it is not all there yet.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Failure::Transport(format!("a malformed answer: {e}"))),
    };
    let status = response.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 closes it.
    let mut keep_alive = response.version == Some(1);
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| Failure::Transport("a malformed Content-Length".into()))?;
            if length.is_some_and(|m| m != n) {
                return Err(Failure::Transport("two Content-Lengths".into()));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        if n > BODY_BYTES_MAX {
            return Err(too_large());
        }
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Some(Head {
        len,
        status,
        framing,
        keep_alive,
    }))
}

/// Reads a chunked body (and its trailer) from `buf` and `stream`.
async fn read_chunked(stream: &mut dyn Io, buf: &mut Vec<u8>) -> Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    loop {
        let (line, size) = loop {
            match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((line, size))) => break (line, size),
                Ok(httparse::Status::Partial) => fill(stream, buf).await?,
                Err(_) => return Err(Failure::Transport("a malformed chunk size".into())),
            }
        };
        let size = usize::try_from(size)
            .ok()
            .filter(|s| body.len().saturating_add(*s) <= BODY_BYTES_MAX)
            .ok_or_else(too_large)?;
        if size == 0 {
            buf.drain(..line);
            // The trailer: header lines up to a blank line.
            loop {
                match buf.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        buf.drain(..2);
                        return Ok(body);
                    }
                    Some(end) => {
                        buf.drain(..end + 2);
                    }
                    None if buf.len() > HEAD_BYTES_MAX => {
                        return Err(Failure::Transport("an endless chunk trailer".into()))
                    }
                    None => fill(stream, buf).await?,
                }
            }
        }
        while buf.len() < line + size + 2 {
            fill(stream, buf).await?;
        }
        if &buf[line + size..line + size + 2] != b"\r\n" {
            return Err(Failure::Transport("a chunk not ended by CRLF".into()));
        }
        body.extend_from_slice(&buf[line..line + size]);
        buf.drain(..line + size + 2);
    }
}

/// `host:port`, `http://host:port[/]` or `https://host:port[/]` as (https, host,
/// port); an IPv6 address is bracketed (`[::1]:8080`) and given to TCP without them.
fn parse_endpoint(endpoint: &str) -> Result<(bool, String, u16), String> {
    let bad = |why: &str| format!("endpoint {endpoint:?}: {why}");
    let trimmed = endpoint.trim_end_matches('/');
    let (https, rest) = if let Some(rest) = trimmed.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = trimmed.strip_prefix("http://") {
        (false, rest)
    } else if trimmed.contains("://") {
        return Err(bad("only http:// and https:// are served"));
    } else {
        (false, trimmed)
    };
    if rest.contains('/') {
        return Err(bad("an endpoint is a host and port, without a path"));
    }
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("no closing ']'"))?;
            (host, after.strip_prefix(':'))
        }
        None => match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        },
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| bad("the port is not a number"))?,
        None if https => 443,
        None => 80,
    };
    Ok((https, host.to_string(), port))
}

/// The TLS client of `https://` endpoints: `tls`'s CA (else the system's roots), and
/// its certificate and key shown to a node that asks.
fn client_config(tls: &Tls) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("the CA certificate: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err("the CA certificate file holds no PEM certificate".into());
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match &tls.identity_pem {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("the client certificate: {e}"))?;
            let key =
                PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("the client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate and key: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;
