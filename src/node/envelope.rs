//! The envelope around every command a node proposes, so that the node that took a
//! request recognises it when the command is applied and can answer the waiting caller.
//!
//! ```text
//! envelope := magic:u8 (0xCE) origin:u32be incarnation:u64be sequence:u64be command:[u8]
//! ```
//! `incarnation` is random per process start, so a restarted node never mistakes an old
//! command of its previous life for one of its new ones. A command that does not parse
//! as an envelope (only a buggy or foreign proposer could produce one) is applied as its
//! raw bytes with no origin, the same way on every node, so replicas stay identical.

use bytes::{BufMut, Bytes, BytesMut};

use crate::paxos::NodeId;

const MAGIC: u8 = 0xCE;
/// Bytes of the envelope header.
pub const HEADER_BYTES: usize = 1 + 4 + 8 + 8;
const _: () = assert!(HEADER_BYTES == 21);

/// Who proposed a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub node: NodeId,
    pub incarnation: u64,
    pub sequence: u64,
}

/// Wraps `command` in an envelope.
pub fn wrap(origin: Origin, command: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(HEADER_BYTES + command.len());
    b.put_u8(MAGIC);
    b.put_u32(origin.node);
    b.put_u64(origin.incarnation);
    b.put_u64(origin.sequence);
    b.put_slice(command);
    b.freeze()
}

/// Splits an envelope into its origin and the inner command (zero-copy); a value that is
/// not an envelope comes back whole with no origin.
pub fn unwrap(envelope: &Bytes) -> (Option<Origin>, Bytes) {
    let Some(header) = envelope.get(..HEADER_BYTES) else {
        return (None, envelope.clone());
    };
    if header[0] != MAGIC {
        return (None, envelope.clone());
    }
    let u32_at =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
    let origin = Origin {
        node: u32_at(1),
        incarnation: u64_at(5),
        sequence: u64_at(13),
    };
    (Some(origin), envelope.slice(HEADER_BYTES..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_roundtrip_and_foreign_bytes() {
        let o = Origin {
            node: 3,
            incarnation: 0xdead_beef_0102_0304,
            sequence: u64::MAX - 1,
        };
        let e = wrap(o, b"hello");
        assert_eq!(e.len(), HEADER_BYTES + 5);
        let (got, inner) = unwrap(&e);
        assert_eq!(got, Some(o));
        assert_eq!(&inner[..], b"hello");

        let raw = Bytes::from_static(b"short");
        assert_eq!(unwrap(&raw), (None, raw.clone()));
        let mut not_magic = e.to_vec();
        not_magic[0] = 0;
        let not_magic = Bytes::from(not_magic);
        assert_eq!(unwrap(&not_magic), (None, not_magic.clone()));
    }
}
