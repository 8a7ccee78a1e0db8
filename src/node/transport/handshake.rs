//! The peer handshake (protocol 4), both roles, over any byte stream (`AsyncRead +
//! AsyncWrite`: TCP today, a TLS stream wrapping it later).
//!
//! ```text
//! listener -> dialer  Challenge{protocol, nonce_L, authenticated}
//! dialer -> listener  Hello{hello_D, nonce_D, mac_D}     mac_D = MAC(Dialer, nonce_L, nonce_D, hello_D)
//!                     (the listener verifies mac_D before it acts on anything in hello_D)
//! listener -> dialer  Welcome{hello_L, mac_L}            mac_L = MAC(Listener, nonce_L, nonce_D, hello_D, hello_L)
//!                     (the dialer verifies mac_L before it sends any other frame)
//! ```
//! The MACs and their transcript are `auth.rs`. Without a cluster secret both MACs are
//! `None` and `Challenge.authenticated` is false; a side with a secret refuses a side
//! without one, and the other way round (a mismatched configuration fails loudly rather
//! than silently dropping authentication). Every handshake frame is read with the
//! [`HANDSHAKE_FRAME_BYTES_MAX`] cap, so an unauthenticated connection can make us
//! allocate at most that much; the callers bound the whole exchange by
//! `handshake_timeout_ms`. This module checks authenticity and shape only; who may
//! connect (cluster id, membership, data directories) is the callers' business.

use std::fmt;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::auth::{self, ClusterSecret, Nonce, Role, CLIENT_ADDR_BYTES_MAX};
use super::frame::{self, FrameError, HANDSHAKE_FRAME_BYTES_MAX};
use super::wire::{Challenge, DialerHello, Handshake, Hello, Welcome, PROTOCOL_VERSION};

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// Reading or writing a frame failed (oversize frames included).
    Frame(FrameError),
    /// The other side closed the connection.
    Closed,
    /// A frame other than the one the protocol expects here.
    Unexpected { expected: &'static str },
    /// The other side speaks another protocol version.
    Protocol { theirs: u32 },
    /// The other side is not authenticated (wrong or missing MAC, or secrets configured
    /// on one side only).
    Unauthenticated(String),
    /// A malformed hello, or a local failure (the random source).
    Invalid(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Frame(e) => write!(f, "{e}"),
            HandshakeError::Closed => write!(f, "closed by the other side during the handshake"),
            HandshakeError::Unexpected { expected } => {
                write!(f, "expected a {expected} frame, got another one")
            }
            HandshakeError::Protocol { theirs } => write!(
                f,
                "the other side speaks peer protocol {theirs}, we speak {PROTOCOL_VERSION}"
            ),
            HandshakeError::Unauthenticated(why) => write!(f, "not authenticated: {why}"),
            HandshakeError::Invalid(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

const BAD_MAC: &str = "the MAC does not verify (a wrong cluster secret, or a forged, altered \
                       or replayed handshake)";

/// The listener's side after it sent its challenge.
#[derive(Debug)]
pub struct Listening {
    nonce: Nonce,
}

/// A dialer's hello whose MAC verified (or, without a secret, that arrived well-formed).
#[derive(Debug)]
pub struct VerifiedHello {
    pub hello: Hello,
    listener_nonce: Nonce,
    dialer_nonce: Nonce,
}

/// Listener, step 1: send a challenge with a fresh nonce.
pub async fn challenge<S: AsyncWrite + Unpin>(
    stream: &mut S,
    secret: Option<&ClusterSecret>,
) -> Result<Listening, HandshakeError> {
    let nonce = auth::fresh_nonce().map_err(HandshakeError::Invalid)?;
    let msg = Handshake::Challenge(Challenge {
        protocol: PROTOCOL_VERSION,
        nonce,
        authenticated: secret.is_some(),
    });
    send(stream, &msg).await?;
    Ok(Listening { nonce })
}

impl Listening {
    /// Listener, step 2: read the dialer's hello and verify its MAC. Nothing in the
    /// hello may be acted on unless this returned it.
    pub async fn read_hello<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        secret: Option<&ClusterSecret>,
    ) -> Result<VerifiedHello, HandshakeError> {
        let DialerHello { hello, nonce, mac } = match receive(stream).await? {
            Handshake::Hello(h) => h,
            _ => return Err(HandshakeError::Unexpected { expected: "Hello" }),
        };
        check_shape(&hello)?;
        match (secret, mac) {
            (Some(secret), Some(mac)) => {
                let t = auth::transcript(Role::Dialer, &self.nonce, &nonce, &hello, None)
                    .map_err(HandshakeError::Invalid)?;
                if !secret.verify(&t, &mac) {
                    return Err(HandshakeError::Unauthenticated(BAD_MAC.into()));
                }
            }
            (Some(_), None) => {
                return Err(HandshakeError::Unauthenticated(
                    "the dialer sent no MAC (it has no cluster secret, we have one)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(HandshakeError::Unauthenticated(
                    "the dialer has a cluster secret and we have none".into(),
                ))
            }
            (None, None) => {}
        }
        Ok(VerifiedHello {
            hello,
            listener_nonce: self.nonce,
            dialer_nonce: nonce,
        })
    }
}

impl VerifiedHello {
    /// Listener, step 3: answer with our hello and our MAC over the whole exchange.
    pub async fn welcome<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        secret: Option<&ClusterSecret>,
        mine: Hello,
    ) -> Result<(), HandshakeError> {
        check_shape(&mine)?;
        let mac = match secret {
            Some(secret) => {
                let t = auth::transcript(
                    Role::Listener,
                    &self.listener_nonce,
                    &self.dialer_nonce,
                    &self.hello,
                    Some(&mine),
                )
                .map_err(HandshakeError::Invalid)?;
                Some(secret.mac(&t))
            }
            None => None,
        };
        send(stream, &Handshake::Welcome(Welcome { hello: mine, mac })).await
    }
}

/// The dialer's whole side: read the challenge, send our hello with its MAC, read the
/// listener's hello and verify its MAC. Returns the listener's hello only if authentic.
pub async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    secret: Option<&ClusterSecret>,
    mine: &Hello,
) -> Result<Hello, HandshakeError> {
    check_shape(mine)?;
    let challenge = match receive(stream).await? {
        Handshake::Challenge(c) => c,
        _ => {
            return Err(HandshakeError::Unexpected {
                expected: "Challenge",
            })
        }
    };
    if challenge.protocol != PROTOCOL_VERSION {
        return Err(HandshakeError::Protocol {
            theirs: challenge.protocol,
        });
    }
    match (secret.is_some(), challenge.authenticated) {
        (true, false) => {
            return Err(HandshakeError::Unauthenticated(
                "the listener has no cluster secret; a node with one talks only to \
                 authenticated peers"
                    .into(),
            ))
        }
        (false, true) => {
            return Err(HandshakeError::Unauthenticated(
                "the listener demands a cluster secret and this node has none \
                 (CLUSTER_SECRET_FILE)"
                    .into(),
            ))
        }
        _ => {}
    }
    let nonce = auth::fresh_nonce().map_err(HandshakeError::Invalid)?;
    let mac = match secret {
        Some(secret) => {
            let t = auth::transcript(Role::Dialer, &challenge.nonce, &nonce, mine, None)
                .map_err(HandshakeError::Invalid)?;
            Some(secret.mac(&t))
        }
        None => None,
    };
    let hello = Handshake::Hello(DialerHello {
        hello: mine.clone(),
        nonce,
        mac,
    });
    send(stream, &hello).await?;
    let Welcome { hello: theirs, mac } = match receive(stream).await? {
        Handshake::Welcome(w) => w,
        _ => {
            return Err(HandshakeError::Unexpected {
                expected: "Welcome",
            })
        }
    };
    check_shape(&theirs)?;
    match (secret, mac) {
        (Some(secret), Some(mac)) => {
            let t = auth::transcript(
                Role::Listener,
                &challenge.nonce,
                &nonce,
                mine,
                Some(&theirs),
            )
            .map_err(HandshakeError::Invalid)?;
            if !secret.verify(&t, &mac) {
                return Err(HandshakeError::Unauthenticated(BAD_MAC.into()));
            }
        }
        (None, None) => {}
        _ => {
            return Err(HandshakeError::Unauthenticated(
                "the listener's welcome does not match its challenge (MAC present or missing)"
                    .into(),
            ))
        }
    }
    Ok(theirs)
}

fn check_shape(h: &Hello) -> Result<(), HandshakeError> {
    if h.client_addr.len() > CLIENT_ADDR_BYTES_MAX {
        return Err(HandshakeError::Invalid(format!(
            "a client address of {} bytes exceeds {CLIENT_ADDR_BYTES_MAX}",
            h.client_addr.len()
        )));
    }
    Ok(())
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    msg: &Handshake,
) -> Result<(), HandshakeError> {
    let bytes = frame::encode(msg, HANDSHAKE_FRAME_BYTES_MAX).map_err(HandshakeError::Frame)?;
    stream
        .write_all(&bytes)
        .await
        .map_err(|e| HandshakeError::Frame(FrameError::Io(e)))?;
    stream
        .flush()
        .await
        .map_err(|e| HandshakeError::Frame(FrameError::Io(e)))
}

async fn receive<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Handshake, HandshakeError> {
    frame::read_message(stream, HANDSHAKE_FRAME_BYTES_MAX)
        .await
        .map_err(HandshakeError::Frame)?
        .ok_or(HandshakeError::Closed)
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
