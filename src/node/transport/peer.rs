//! The outbound side of one peer link: dial, with peer TLS a TLS handshake whose
//! certificate must name the member entry dialed (`peer_tls.rs`), then the handshake (the dialer's half, `handshake.rs`:
//! no frame is sent before the listener proved it knows the cluster secret), write
//! queued frames; on any error
//! reconnect with exponential backoff (doubling from `reconnect_backoff_ms_min`, capped at
//! `reconnect_backoff_ms_max`).
//!
//! The dialer never reads after the handshake except to notice that the listener closed
//! the connection (any byte or end of stream ends it). Each successful handshake bumps
//! the link's `epoch`, which the snapshot sender uses to restart a transfer whose
//! connection broke. Frames sit in the bounded [`PeerQueue`] while the peer is down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::frame::{FrameError, STREAM_BUFFER_BYTES};
use super::handshake::{self, HandshakeError};
use super::queue::PeerQueue;
use super::wire::{Hello, PROTOCOL_VERSION};
use super::LinkContext;
use crate::node::dir_ids::Answer;
use crate::paxos::NodeId;

/// Everything known about one peer: its queue and the state of our connection to it.
#[derive(Debug)]
pub struct PeerLink {
    pub id: NodeId,
    pub addr: String,
    pub queue: PeerQueue,
    connected: AtomicBool,
    epoch: AtomicU64,
    client_addr: Mutex<Option<String>>,
}

impl PeerLink {
    pub fn new(id: NodeId, addr: String, queue: PeerQueue) -> PeerLink {
        PeerLink {
            id,
            addr,
            queue,
            connected: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            client_addr: Mutex::new(None),
        }
    }

    /// True while an outbound connection is established and handshaken.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Number of successful handshakes so far (changes whenever the connection changes).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The peer's client (HTTP) address, learnt from its handshake.
    pub fn client_addr(&self) -> Option<String> {
        self.client_addr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_client_addr(&self, addr: String) {
        *self.client_addr.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
    }
}

/// A handshaken connection: plain TCP, or TLS over it.
trait PeerIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> PeerIo for T {}
type PeerStream = Box<dyn PeerIo>;

/// Why one connection attempt or session ended.
#[derive(Debug)]
enum LinkError {
    Connect(std::io::Error),
    Timeout(&'static str),
    Frame(FrameError),
    Refused(String),
    Closed,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Connect(e) => write!(f, "connect: {e}"),
            LinkError::Timeout(what) => write!(f, "timed out: {what}"),
            LinkError::Frame(e) => write!(f, "{e}"),
            LinkError::Refused(why) => write!(f, "handshake refused: {why}"),
            LinkError::Closed => write!(f, "closed by peer"),
        }
    }
}

/// Runs the link forever (until the task is aborted).
pub async fn run(link: Arc<PeerLink>, ctx: Arc<LinkContext>) {
    let backoff_min = Duration::from_millis(ctx.reconnect_backoff_ms_min);
    let backoff_max = Duration::from_millis(ctx.reconnect_backoff_ms_max);
    let mut backoff = backoff_min;
    let mut was_up = false;
    // A refused handshake is logged once per distinct reason (a misconfigured peer
    // shows up in the log without a line per retry).
    let mut last_refusal = String::new();
    loop {
        match connect(&link, &ctx).await {
            Ok(stream) => {
                backoff = backoff_min;
                link.epoch.fetch_add(1, Ordering::AcqRel);
                link.connected.store(true, Ordering::Release);
                info!(peer = link.id, addr = %link.addr, "peer link up");
                was_up = true;
                let end = write_loop(stream, &link, &ctx).await;
                link.connected.store(false, Ordering::Release);
                warn!(peer = link.id, error = %end, "peer link down");
            }
            Err(e) => {
                let refusal = matches!(
                    e,
                    LinkError::Refused(_) | LinkError::Timeout(HANDSHAKE_HINT)
                );
                if refusal && e.to_string() != last_refusal {
                    last_refusal = e.to_string();
                    warn!(peer = link.id, addr = %link.addr, error = %e, "peer handshake failed");
                    was_up = false;
                } else if was_up {
                    warn!(peer = link.id, error = %e, "cannot reach peer");
                    was_up = false;
                } else {
                    debug!(peer = link.id, error = %e, "cannot reach peer");
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(backoff_max);
    }
}

/// What a plaintext dialer says when the listener sends no challenge in time.
const HANDSHAKE_HINT: &str = "handshake (no challenge from the peer; if it has peer TLS on \
                              (PEER_TLS_*), this node needs it too)";

async fn connect(link: &PeerLink, ctx: &LinkContext) -> Result<PeerStream, LinkError> {
    let connect_timeout = Duration::from_millis(ctx.connect_timeout_ms);
    let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(&link.addr))
        .await
        .map_err(|_| LinkError::Timeout("connect"))?
        .map_err(LinkError::Connect)?;
    stream.set_nodelay(true).map_err(LinkError::Connect)?;
    let deadline = Instant::now() + Duration::from_millis(ctx.handshake_timeout_ms);
    match &ctx.tls {
        None => {
            let mut stream = stream;
            hello_exchange(&mut stream, link, ctx, deadline, HANDSHAKE_HINT).await?;
            Ok(Box::new(stream))
        }
        Some(tls) => {
            // The listener's certificate chains to the CA and names `link.addr`, or
            // nothing more is sent.
            let secured = tokio::time::timeout_at(deadline, tls.connect(stream, &link.addr))
                .await
                .map_err(|_| LinkError::Timeout("TLS handshake"))?
                .map_err(LinkError::Refused)?;
            let mut stream = secured.stream;
            hello_exchange(&mut stream, link, ctx, deadline, "handshake").await?;
            Ok(Box::new(stream))
        }
    }
}

/// The dialer's hello exchange and the checks of the listener's answer.
async fn hello_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    link: &PeerLink,
    ctx: &LinkContext,
    deadline: Instant,
    timeout_reason: &'static str,
) -> Result<(), LinkError> {
    let mine = Hello {
        protocol: PROTOCOL_VERSION,
        cluster_id: ctx.cluster_id,
        node: ctx.self_id,
        client_addr: ctx.client_addr.clone(),
        dir: ctx.dir_ids.dir(),
        you_were: None,
    };
    let handshake = handshake::dial(stream, ctx.secret.as_ref(), &mine);
    // Nothing in the listener's hello is trusted before `dial` returns it.
    let h = tokio::time::timeout_at(deadline, handshake)
        .await
        .map_err(|_| LinkError::Timeout(timeout_reason))?
        .map_err(|e| match e {
            HandshakeError::Closed => LinkError::Closed,
            HandshakeError::Frame(f) => LinkError::Frame(f),
            other => LinkError::Refused(other.to_string()),
        })?;
    if h.protocol != PROTOCOL_VERSION {
        return Err(LinkError::Refused(format!("protocol {}", h.protocol)));
    }
    if h.cluster_id != ctx.cluster_id {
        return Err(LinkError::Refused(format!(
            "cluster id {:#x}, ours {:#x}",
            h.cluster_id, ctx.cluster_id
        )));
    }
    if h.node != link.id {
        return Err(LinkError::Refused(format!(
            "expected node {}, got {}",
            link.id, h.node
        )));
    }
    let ids = ctx.dir_ids.clone();
    let (peer, you_were) = (link.id, h.you_were);
    let answer = tokio::task::spawn_blocking(move || ids.answered(peer, you_were))
        .await
        .map_err(|e| LinkError::Refused(format!("recording the answer: {e}")))?
        .map_err(|e| LinkError::Refused(format!("recording the answer: {e}")))?;
    if let Answer::Remembers(old) = answer {
        return Err(LinkError::Refused(format!(
            "it remembers an earlier data directory of ours ({old:#x})"
        )));
    }
    // Learnt only from the authenticated hello of the peer we dialed.
    link.set_client_addr(h.client_addr);
    Ok(())
}

/// Writes queued frames until the connection fails; returns why it ended.
async fn write_loop(stream: PeerStream, link: &PeerLink, ctx: &LinkContext) -> LinkError {
    let (mut rd, wr) = tokio::io::split(stream);
    let mut wr = BufWriter::with_capacity(STREAM_BUFFER_BYTES, wr);
    let write_timeout = Duration::from_millis(ctx.write_timeout_ms);
    let mut probe = [0u8; 1];
    loop {
        let flushed = tokio::time::timeout(write_timeout, async {
            while let Some(frame) = link.queue.pop() {
                wr.write_all(&frame).await?;
            }
            wr.flush().await
        })
        .await;
        match flushed {
            Err(_) => return LinkError::Timeout("write"),
            Ok(Err(e)) => return LinkError::Frame(FrameError::Io(e)),
            Ok(Ok(())) => {}
        }
        tokio::select! {
            _ = link.queue.wait() => {}
            r = rd.read(&mut probe) => {
                return match r {
                    Ok(0) => LinkError::Closed,
                    Ok(_) => LinkError::Refused("unexpected bytes from listener".into()),
                    Err(e) => LinkError::Frame(FrameError::Io(e)),
                };
            }
        }
    }
}
