//! The inbound side of the peer links: accept, run the listener's half of the handshake
//! (`handshake.rs`), then read frames and hand them to the driver.
//!
//! Before a connection is authenticated it may send only handshake frames (capped at
//! `HANDSHAKE_FRAME_BYTES_MAX`), and the whole handshake must finish within
//! `handshake_timeout_ms`; at most `inbound_handshakes_max` such connections exist at
//! once (`gate.rs`: a new one evicts the oldest, and authenticated connections are
//! counted apart, one per peer). Nothing in the dialer's `Hello` is acted on before its
//! MAC verified. A connection is then refused (closed with a warning) when its `Hello`
//! names another protocol, another cluster id, a node that is not a member, or
//! ourselves, or (with peer TLS, `peer_tls.rs`) whose TLS certificate does not name the
//! member entry of the id it claims (checked before anything in the `Hello` is acted
//! on; the TLS handshake itself runs under the same gate ticket and deadline); and
//! after the reply when the peer presents a data directory other than the
//! one we remember for it (`node/dir_ids.rs`: a node that lost its promises must not
//! vote). A peer's directory is remembered durably before anything after its `Hello` is
//! read. A frame that is oversize, torn or undecodable closes that connection with a
//! `warn!`; nothing a peer sends can panic this task. Delivery to the driver awaits
//! channel capacity, so a busy driver pushes back on the TCP connection and loss happens
//! at the sender's bounded queue. Connection tasks live in a `JoinSet` owned by the
//! accept loop: aborting the accept loop closes every inbound connection.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::frame;
use super::gate::{Gate, Ticket};
use super::handshake::{self, HandshakeError};
use super::wire::{Hello, Wire, PROTOCOL_VERSION};
use super::{peer_tls, Inbound, LinkContext, PeerTable};
use crate::paxos::NodeId;

/// Accepts peer connections until aborted.
pub async fn run(
    listener: TcpListener,
    ctx: Arc<LinkContext>,
    peers: Arc<PeerTable>,
    inbound: mpsc::Sender<Inbound>,
) {
    let mut conns = JoinSet::new();
    let gate = Gate::new(ctx.inbound_handshakes_max);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    if let Err(e) = stream.set_nodelay(true) {
                        debug!(%remote, error = %e, "peer connection lost at accept");
                        continue;
                    }
                    let (ctx, peers, inbound) = (ctx.clone(), peers.clone(), inbound.clone());
                    let evicted = gate.admit(&mut conns, move |ticket| async move {
                        match secure_and_serve(stream, ticket, &ctx, &peers, &inbound).await {
                            Ok(()) => {}
                            Err(End::Quiet(reason)) => {
                                debug!(%remote, %reason, "unauthenticated peer connection closed");
                            }
                            Err(End::Loud(reason)) => {
                                warn!(%remote, %reason, "peer connection closed");
                            }
                        }
                    });
                    if evicted {
                        debug!(
                            %remote,
                            "unauthenticated peer connections at their limit: the oldest was closed"
                        );
                    }
                }
                Err(e) => {
                    warn!(error = %e, "accepting a peer connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Why a connection ended: `Loud` is logged as a warning (a refused peer, a broken
/// authenticated link); `Quiet` at debug level: a connection that never got as far as a
/// well-formed hello (timed out, closed, evicted, oversize or garbage frames), so a
/// flood of them cannot flood the log too.
enum End {
    Quiet(String),
    Loud(String),
}

/// With peer TLS on, runs the TLS handshake (under the same gate ticket and the same
/// handshake deadline as the hello exchange that follows), then serves the connection.
async fn secure_and_serve(
    stream: TcpStream,
    ticket: Ticket,
    ctx: &LinkContext,
    peers: &PeerTable,
    inbound: &mpsc::Sender<Inbound>,
) -> Result<(), End> {
    let deadline = Instant::now() + Duration::from_millis(ctx.handshake_timeout_ms);
    let Some(tls) = &ctx.tls else {
        return serve(stream, None, deadline, ticket, ctx, peers, inbound).await;
    };
    let secured = tokio::time::timeout_at(deadline, tls.accept(stream))
        .await
        .map_err(|_| End::Quiet("TLS handshake timed out".to_string()))?
        .map_err(|e| {
            if e.about_certificate {
                End::Loud(format!("refused: {e}"))
            } else {
                End::Quiet(e.to_string())
            }
        })?;
    serve(
        secured.stream,
        Some(secured.peer_cert),
        deadline,
        ticket,
        ctx,
        peers,
        inbound,
    )
    .await
}

/// Serves one inbound connection (over TLS when `cert`, the dialer's verified
/// certificate, is given); `Ok` on a clean end.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    cert: Option<CertificateDer<'static>>,
    deadline: Instant,
    ticket: Ticket,
    ctx: &LinkContext,
    peers: &PeerTable,
    inbound: &mpsc::Sender<Inbound>,
) -> Result<(), End> {
    let secret = ctx.secret.as_ref();
    let verified = tokio::time::timeout_at(deadline, async {
        let listening = handshake::challenge(&mut stream, secret).await?;
        listening.read_hello(&mut stream, secret).await
    })
    .await
    .map_err(|_| End::Quiet("handshake timed out".to_string()))?
    .map_err(|e| match e {
        HandshakeError::Unauthenticated(_)
        | HandshakeError::Protocol { .. }
        | HandshakeError::Invalid(_) => End::Loud(e.to_string()),
        HandshakeError::Frame(_) | HandshakeError::Closed | HandshakeError::Unexpected { .. } => {
            End::Quiet(e.to_string())
        }
    })?;
    // From here on the dialer is authenticated (or no secret is configured).
    let from = welcome(&mut stream, verified, cert.as_ref(), ctx, peers)
        .await
        .map_err(End::Loud)?;
    if !ticket.authenticated(from) {
        return Err(End::Quiet(format!(
            "node {from}'s connection was evicted before it finished its handshake"
        )));
    }
    debug!(peer = from, "inbound peer connection accepted");

    // From here on the stream is only read, frame after frame: buffered, one recv
    // serves every frame the peer's writer flushed together (unbuffered, each frame took
    // two: its length, then its payload). The handshake above read exactly its own
    // bytes, so nothing is left behind in the unbuffered stream.
    let mut stream = BufReader::with_capacity(frame::STREAM_BUFFER_BYTES, stream);
    loop {
        let msg = match frame::read_frame(&mut stream, ctx.frame_bytes_max).await {
            Ok(Some(msg)) => msg,
            Ok(None) => return Ok(()),
            Err(e) => return Err(End::Loud(format!("from node {from}: {e}"))),
        };
        let item = match msg {
            Wire::Paxos(m) => Inbound::Paxos(from, m),
            Wire::Snapshot(s) => Inbound::Snapshot(from, s),
        };
        if inbound.send(item).await.is_err() {
            return Ok(()); // the driver stopped
        }
    }
}

/// The rest of the listener's half of the handshake, once the dialer's hello verified:
/// check who it is (with TLS: that its certificate names the member entry of the id it
/// claims), remember its data directory, answer. Returns the peer's id.
async fn welcome<S: AsyncWrite + Unpin>(
    stream: &mut S,
    verified: handshake::VerifiedHello,
    cert: Option<&CertificateDer<'static>>,
    ctx: &LinkContext,
    peers: &PeerTable,
) -> Result<NodeId, String> {
    let hello = &verified.hello;
    let from = check_hello(hello, ctx, peers)?;
    if let Some(cert) = cert {
        let link = peers
            .get(&from)
            .ok_or_else(|| format!("node {from} is not a member"))?;
        let entry = link.addr.as_str();
        peer_tls::check_member(cert, entry).map_err(|why| {
            format!("refused: a peer claims to be node {from} ({entry}), but {why}")
        })?;
    }
    let ids = ctx.dir_ids.clone();
    let presented = hello.dir;
    let you_were = tokio::task::spawn_blocking(move || ids.remember(from, presented))
        .await
        .map_err(|e| format!("remembering node {from}'s data directory: {e}"))?
        .map_err(|e| format!("remembering node {from}'s data directory: {e}"))?;
    let reply = Hello {
        protocol: PROTOCOL_VERSION,
        cluster_id: ctx.cluster_id,
        node: ctx.self_id,
        client_addr: ctx.client_addr.clone(),
        dir: ctx.dir_ids.dir(),
        you_were,
    };
    verified
        .welcome(stream, ctx.secret.as_ref(), reply)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(known) = you_were.filter(|&d| d != presented) {
        return Err(format!(
            "node {from} presented data directory {presented:#x}, but it voted from {known:#x}: refused (a node that lost its promises must not vote)"
        ));
    }
    // Learnt only from the authenticated hello of `from` itself.
    if let Some(link) = peers.get(&from) {
        link.set_client_addr(hello.client_addr.clone());
    }
    Ok(from)
}

fn check_hello(h: &Hello, ctx: &LinkContext, peers: &PeerTable) -> Result<NodeId, String> {
    if h.protocol != PROTOCOL_VERSION {
        return Err(format!("node {} speaks protocol {}", h.node, h.protocol));
    }
    if h.cluster_id != ctx.cluster_id {
        return Err(format!(
            "node {} is in cluster {:#x}, we are in {:#x}",
            h.node, h.cluster_id, ctx.cluster_id
        ));
    }
    if h.node == ctx.self_id {
        return Err("a node may not connect to itself".into());
    }
    if !peers.contains(&h.node) {
        return Err(format!("node {} is not a member", h.node));
    }
    Ok(h.node)
}
