//! The peer link's framing: `u32` big-endian payload length, then that many bytes of a
//! MessagePack-encoded (`rmp-serde`) [`Wire`] message.
//!
//! ```text
//! frame   := length:u32be payload:[u8; length]
//! payload := rmp-serde(Wire)        1 <= length <= frame_bytes_max
//!          | rmp-serde(Handshake)   1 <= length <= HANDSHAKE_FRAME_BYTES_MAX
//! ```
//! Invariants: the length is checked against `frame_bytes_max` BEFORE the payload buffer
//! is allocated, so a hostile or corrupt header cannot make us allocate; a zero length,
//! an oversize length, a short read or a payload that does not decode is a [`FrameError`]
//! (the caller closes that connection with a warning), never a panic.

use std::fmt;
use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::wire::Wire;

/// Bytes of the length prefix.
pub const LEN_BYTES: usize = 4;
const _: () = assert!(LEN_BYTES == std::mem::size_of::<u32>());

/// Largest handshake frame payload, in both directions: everything a connection may make
/// a node allocate before it is authenticated.
pub const HANDSHAKE_FRAME_BYTES_MAX: u32 = 4096;

/// The buffer on each side of a peer connection: the dialer's writer gathers frames
/// into this much before a send, and the listener's reader takes as much per recv.
pub const STREAM_BUFFER_BYTES: usize = 64 * 1024;

/// Why a frame could not be read, decoded or encoded.
#[derive(Debug)]
pub enum FrameError {
    /// The connection failed or ended inside a frame.
    Io(io::Error),
    /// The header announces more than `frame_bytes_max` bytes.
    TooLarge { len: u64, max: u32 },
    /// The header announces an empty payload (never produced by an honest peer).
    Empty,
    /// The payload is not a valid `Wire` message.
    Decode { len: usize, reason: String },
    /// The message could not be encoded (only for values the peer could not decode either).
    Encode { reason: String },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "frame i/o: {e}"),
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds frame_bytes_max {max}")
            }
            FrameError::Empty => write!(f, "empty frame"),
            FrameError::Decode { len, reason } => {
                write!(f, "undecodable frame of {len} bytes: {reason}")
            }
            FrameError::Encode { reason } => write!(f, "cannot encode frame: {reason}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Encodes `msg` (a [`Wire`] or a handshake message) as one whole frame (prefix
/// included), refusing payloads over `max` bytes.
pub fn encode<T: Serialize>(msg: &T, max: u32) -> Result<Bytes, FrameError> {
    let mut buf = BytesMut::with_capacity(256).writer();
    buf.get_mut().put_u32(0); // placeholder for the length
    rmp_serde::encode::write(&mut buf, msg).map_err(|e| FrameError::Encode {
        reason: e.to_string(),
    })?;
    let mut buf = buf.into_inner();
    let payload_len = buf.len() - LEN_BYTES;
    if payload_len as u64 > u64::from(max) {
        return Err(FrameError::TooLarge {
            len: payload_len as u64,
            max,
        });
    }
    // payload_len <= max <= u32::MAX, checked just above.
    let len = u32::try_from(payload_len).map_err(|_| FrameError::TooLarge {
        len: payload_len as u64,
        max,
    })?;
    buf[..LEN_BYTES].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Decodes one payload (the bytes after the length prefix).
pub fn decode(payload: &[u8]) -> Result<Wire, FrameError> {
    decode_as(payload)
}

/// Decodes one payload as a `T` (a handshake message).
pub fn decode_as<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    rmp_serde::from_slice(payload).map_err(|e| FrameError::Decode {
        len: payload.len(),
        reason: e.to_string(),
    })
}

/// Reads one frame's payload; `Ok(None)` on a clean end of stream between frames.
pub async fn read_payload<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u32,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; LEN_BYTES];
    // Distinguish a clean EOF (no byte of the next frame) from a torn header.
    let first = reader.read(&mut header).await.map_err(FrameError::Io)?;
    if first == 0 {
        return Ok(None);
    }
    reader
        .read_exact(&mut header[first..])
        .await
        .map_err(FrameError::Io)?;
    let len = u32::from_be_bytes(header);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > max {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
            max,
        });
    }
    let mut payload = vec![0u8; len as usize];
    reader
        .read_exact(&mut payload)
        .await
        .map_err(FrameError::Io)?;
    Ok(Some(payload))
}

/// Reads and decodes one frame; `Ok(None)` on a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u32,
) -> Result<Option<Wire>, FrameError> {
    read_message(reader, max).await
}

/// Reads and decodes one frame as a `T`; `Ok(None)` on a clean end of stream.
pub async fn read_message<T: DeserializeOwned, R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u32,
) -> Result<Option<T>, FrameError> {
    match read_payload(reader, max).await? {
        None => Ok(None),
        Some(payload) => decode_as(&payload).map(Some),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::node::transport::wire::SnapshotMsg;
    use crate::paxos::{Ballot, Message};

    fn heartbeat() -> Message {
        Message::Heartbeat {
            leading: Some(Ballot { round: 3, node: 2 }),
            commit: 9,
            read_round: 1,
        }
    }

    #[tokio::test]
    async fn roundtrip_several_frames() {
        let chunk = Wire::Snapshot(SnapshotMsg::Chunk {
            transfer: 7,
            slot: 99,
            seq: 3,
            data: Bytes::from(vec![5u8; 1000]),
            last: true,
            digest: Some(0x0123_4567_89ab_cdef),
        });
        let mut stream = Vec::new();
        stream.extend_from_slice(&encode(&Wire::Paxos(heartbeat()), 1 << 20).unwrap());
        stream.extend_from_slice(&encode(&chunk, 1 << 20).unwrap());
        let mut r = &stream[..];
        match read_frame(&mut r, 1 << 20).await.unwrap() {
            Some(Wire::Paxos(m)) => assert_eq!(m, heartbeat()),
            other => panic!("expected a heartbeat, got {other:?}"),
        }
        match (read_frame(&mut r, 1 << 20).await.unwrap(), chunk) {
            (Some(Wire::Snapshot(got)), Wire::Snapshot(want)) => assert_eq!(got, want),
            (other, _) => panic!("expected chunk, got {other:?}"),
        }
        assert!(read_frame(&mut r, 1 << 20).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversize_header_is_rejected_before_allocating() {
        // 4 GiB - 1 announced, nothing behind it: must fail on the length, not on the read.
        let stream = u32::MAX.to_be_bytes();
        let mut r = &stream[..];
        match read_frame(&mut r, 1 << 20).await {
            Err(FrameError::TooLarge { len, max }) => {
                assert_eq!(len, u64::from(u32::MAX));
                assert_eq!(max, 1 << 20);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn encode_refuses_payload_over_max() {
        let big = Wire::Snapshot(SnapshotMsg::Chunk {
            transfer: 1,
            slot: 1,
            seq: 0,
            data: Bytes::from(vec![0u8; 2000]),
            last: false,
            digest: None,
        });
        assert!(matches!(
            encode(&big, 1000),
            Err(FrameError::TooLarge { max: 1000, .. })
        ));
    }

    #[tokio::test]
    async fn garbage_payload_is_a_decode_error() {
        let mut stream = 5u32.to_be_bytes().to_vec();
        stream.extend_from_slice(&[0xc1, 0xff, 0x00, 0x13, 0x37]); // 0xc1 is never valid msgpack
        let mut r = &stream[..];
        assert!(matches!(
            read_frame(&mut r, 1 << 20).await,
            Err(FrameError::Decode { len: 5, .. })
        ));
    }

    #[tokio::test]
    async fn empty_and_torn_frames_are_errors() {
        let stream = 0u32.to_be_bytes();
        let mut r = &stream[..];
        assert!(matches!(
            read_frame(&mut r, 1 << 20).await,
            Err(FrameError::Empty)
        ));

        let mut stream = 100u32.to_be_bytes().to_vec();
        stream.extend_from_slice(&[1, 2, 3]);
        let mut r = &stream[..];
        assert!(matches!(
            read_frame(&mut r, 1 << 20).await,
            Err(FrameError::Io(_))
        ));

        let stream = [0u8, 0];
        let mut r = &stream[..];
        assert!(matches!(
            read_frame(&mut r, 1 << 20).await,
            Err(FrameError::Io(_))
        ));
    }

    #[test]
    fn decode_never_panics_on_random_bytes() {
        // A cheap deterministic sweep; the fuzz target does the thorough job.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..512usize {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode(&bytes);
        }
    }
}
