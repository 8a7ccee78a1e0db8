//! The messages that travel on a peer link, one per frame (see `frame.rs`).
//!
//! Two message types: [`Handshake`] frames, exchanged first (`handshake.rs`: the listener's
//! `Challenge`, the dialer's `Hello`, the listener's `Welcome`), read with the small
//! pre-authentication cap; then [`Wire`] frames, which the dialer only writes and the
//! listener only reads. `cluster_id` is derived from the member list (`cluster_id()`), so
//! a node configured for another cluster is refused at the handshake.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::auth::{Nonce, Tag};
use crate::paxos::{Message, NodeId, Slot};

/// Version of this wire protocol; a peer speaking another version is refused.
/// 3: `SnapshotMsg::Chunk` carries `digest` (the whole-snapshot checksum).
/// 4: the listener speaks first (`Challenge`); hellos carry nonces and MACs.
pub const PROTOCOL_VERSION: u32 = 4;

/// One handshake frame's payload (before a connection is authenticated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Handshake {
    /// The listener's first frame.
    Challenge(Challenge),
    /// The dialer's answer.
    Hello(DialerHello),
    /// The listener's answer, once it accepted the dialer.
    Welcome(Welcome),
}

/// The listener's first frame: its protocol, a fresh nonce, and whether it demands MACs
/// (it has a cluster secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub protocol: u32,
    pub nonce: Nonce,
    pub authenticated: bool,
}

/// The dialer's hello, its own nonce, and its MAC (`auth.rs`; None without a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialerHello {
    pub hello: Hello,
    pub nonce: Nonce,
    pub mac: Option<Tag>,
}

/// The listener's hello and its MAC (`auth.rs`; None without a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub hello: Hello,
    pub mac: Option<Tag>,
}

/// One frame's payload after the handshake.
#[derive(Debug, Serialize, Deserialize)]
pub enum Wire {
    /// A consensus message for the Paxos core.
    Paxos(Message),
    /// Snapshot transfer (catch-up of a peer behind the compaction point).
    Snapshot(SnapshotMsg),
}

/// The handshake: who is speaking, for which cluster, from which data directory, and
/// where it serves clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub cluster_id: u64,
    pub node: NodeId,
    pub client_addr: String,
    /// The speaker's data-directory id (`node/dir_ids.rs`).
    pub dir: u64,
    /// In the listener's reply: the directory id it remembered for the dialer before this
    /// handshake (None the first time). Always None in the dialer's hello.
    pub you_were: Option<u64>,
}

/// Snapshot streaming: the sender sends `Chunk`s (numbered from 0, the last one flagged
/// and carrying the whole-snapshot checksum, see `node/snapshot_digest.rs`); the receiver
/// answers each applied chunk with `Ack` and ends with `Done`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotMsg {
    Chunk {
        transfer: u64,
        slot: Slot,
        seq: u64,
        data: Bytes,
        last: bool,
        /// XXH3-64 of every chunk's `data` concatenated, in the last chunk only.
        digest: Option<u64>,
    },
    Ack {
        transfer: u64,
        seq: u64,
    },
    Done {
        transfer: u64,
        ok: bool,
    },
}

/// The cluster id: FNV-1a (64-bit) over the sorted member list `id=addr;...`.
/// Stable across builds and platforms (unlike `DefaultHasher`).
pub fn cluster_id(members: &[(NodeId, String)]) -> u64 {
    let mut sorted: Vec<&(NodeId, String)> = members.iter().collect();
    sorted.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (id, addr) in sorted {
        eat(&id.to_be_bytes());
        eat(b"=");
        eat(addr.as_bytes());
        eat(b";");
    }
    h
}

/// The cluster id of a cluster with a token (restored from a backup: `config.rs`);
/// token 0 is the plain [`cluster_id`], so directories made before tokens keep theirs.
pub fn cluster_id_with_token(members: &[(NodeId, String)], token: u64) -> u64 {
    let id = cluster_id(members);
    if token == 0 {
        return id;
    }
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&id.to_be_bytes());
    bytes[8..].copy_from_slice(&token.to_be_bytes());
    xxhash_rust::xxh3::xxh3_64(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_changes_the_cluster_id() {
        let a = vec![(1, "h1:1".to_string()), (2, "h2:1".to_string())];
        assert_eq!(cluster_id_with_token(&a, 0), cluster_id(&a));
        assert_ne!(cluster_id_with_token(&a, 5), cluster_id(&a));
        assert_ne!(cluster_id_with_token(&a, 5), cluster_id_with_token(&a, 6));
    }

    #[test]
    fn cluster_id_ignores_order_but_not_content() {
        let a = vec![(1, "h1:1".to_string()), (2, "h2:1".to_string())];
        let b = vec![(2, "h2:1".to_string()), (1, "h1:1".to_string())];
        let c = vec![(1, "h1:1".to_string()), (2, "h3:1".to_string())];
        assert_eq!(cluster_id(&a), cluster_id(&b));
        assert_ne!(cluster_id(&a), cluster_id(&c));
    }
}
