//! Peer authentication by a shared cluster secret: the secret, the nonces, and the
//! HMAC-SHA256 over the handshake transcript (the byte grammar is below and in
//! `docs/peer-protocol.md`). Pure: no I/O, no clock; `handshake.rs` does the exchange.
//!
//! ```text
//! transcript := DOMAIN (24 bytes, "concierge peer handshake")
//!               role u8                    1 = the dialer's MAC, 2 = the listener's
//!               listener_nonce [32]        fresh from the OS RNG per connection
//!               dialer_nonce [32]          fresh from the OS RNG per connection
//!               hello(dialer's Hello)
//!               hello(listener's Hello)    in the listener's transcript only
//! hello      := protocol u32be | cluster_id u64be | node u32be | dir u64be
//!               | you_were_tag u8 (0 = None, 1 = Some) [| you_were u64be if 1]
//!               | client_addr_len u16be | client_addr (UTF-8, <= CLIENT_ADDR_BYTES_MAX)
//! mac        := HMAC-SHA256(key = the secret's bytes, transcript)
//! ```
//! Invariants: every field of both `Hello`s is covered (nothing in a Hello is acted on
//! unless its MAC verified); the two roles' transcripts differ in `role`, so one side's
//! MAC is never valid as the other's; the listener's nonce is fresh, so an old
//! transcript's MAC does not verify again; tags are compared in constant time
//! (`Mac::verify_slice`). The secret itself never leaves this module's callers' memory.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::wire::Hello;

/// The transcript's first bytes (a domain label: these MACs mean nothing elsewhere).
pub const DOMAIN: &[u8; 24] = b"concierge peer handshake";
/// Bytes of a nonce.
pub const NONCE_BYTES: usize = 32;
/// Bytes of a MAC (HMAC-SHA256).
pub const MAC_BYTES: usize = 32;
/// Shortest secret accepted.
pub const SECRET_BYTES_MIN: usize = 16;
/// Longest client address a Hello may carry (keeps handshake frames small).
pub const CLIENT_ADDR_BYTES_MAX: usize = 255;
const _: () = assert!(CLIENT_ADDR_BYTES_MAX <= u16::MAX as usize);

/// A handshake nonce.
pub type Nonce = [u8; NONCE_BYTES];
/// A handshake MAC.
pub type Tag = [u8; MAC_BYTES];

/// Which side's MAC a transcript is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Dialer = 1,
    Listener = 2,
}

/// The cluster secret every member shares. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSecret(Vec<u8>);

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretTooShort {
    pub len: usize,
}

impl fmt::Display for SecretTooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the cluster secret has {} bytes, at least {SECRET_BYTES_MIN} are needed \
             (e.g. `openssl rand -hex 32`)",
            self.len
        )
    }
}

impl ClusterSecret {
    /// A secret of at least [`SECRET_BYTES_MIN`] bytes.
    pub fn new(bytes: Vec<u8>) -> Result<ClusterSecret, SecretTooShort> {
        if bytes.len() < SECRET_BYTES_MIN {
            return Err(SecretTooShort { len: bytes.len() });
        }
        Ok(ClusterSecret(bytes))
    }

    /// The MAC of `transcript` under this secret.
    pub fn mac(&self, transcript: &[u8]) -> Tag {
        let mut m = self.keyed();
        m.update(transcript);
        m.finalize().into_bytes().into()
    }

    /// True when `tag` is the MAC of `transcript` (constant-time comparison).
    pub fn verify(&self, transcript: &[u8], tag: &Tag) -> bool {
        let mut m = self.keyed();
        m.update(transcript);
        m.verify_slice(tag).is_ok()
    }

    fn keyed(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length (longer ones are hashed first).
        match <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        }
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterSecret({} bytes, redacted)", self.0.len())
    }
}

/// A fresh nonce from the operating system's random source.
pub fn fresh_nonce() -> Result<Nonce, String> {
    let mut n = [0u8; NONCE_BYTES];
    getrandom::fill(&mut n).map_err(|e| format!("the OS random source failed: {e}"))?;
    Ok(n)
}

/// The transcript `role`'s MAC covers. `listener` is `Some` exactly for [`Role::Listener`].
pub fn transcript(
    role: Role,
    listener_nonce: &Nonce,
    dialer_nonce: &Nonce,
    dialer: &Hello,
    listener: Option<&Hello>,
) -> Result<Vec<u8>, String> {
    assert_eq!(
        role == Role::Listener,
        listener.is_some(),
        "the listener's transcript, and only it, covers the listener's hello"
    );
    let mut t = Vec::with_capacity(DOMAIN.len() + 1 + 2 * NONCE_BYTES + 2 * 300);
    t.extend_from_slice(DOMAIN);
    t.push(role as u8);
    t.extend_from_slice(listener_nonce);
    t.extend_from_slice(dialer_nonce);
    put_hello(&mut t, dialer)?;
    if let Some(h) = listener {
        put_hello(&mut t, h)?;
    }
    Ok(t)
}

fn put_hello(t: &mut Vec<u8>, h: &Hello) -> Result<(), String> {
    let addr = h.client_addr.as_bytes();
    if addr.len() > CLIENT_ADDR_BYTES_MAX {
        return Err(format!(
            "client address of {} bytes exceeds {CLIENT_ADDR_BYTES_MAX}",
            addr.len()
        ));
    }
    t.extend_from_slice(&h.protocol.to_be_bytes());
    t.extend_from_slice(&h.cluster_id.to_be_bytes());
    t.extend_from_slice(&h.node.to_be_bytes());
    t.extend_from_slice(&h.dir.to_be_bytes());
    match h.you_were {
        None => t.push(0),
        Some(d) => {
            t.push(1);
            t.extend_from_slice(&d.to_be_bytes());
        }
    }
    // addr.len() <= CLIENT_ADDR_BYTES_MAX <= u16::MAX, checked above.
    t.extend_from_slice(&(addr.len() as u16).to_be_bytes());
    t.extend_from_slice(addr);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn hello(node: u32) -> Hello {
        Hello {
            protocol: 4,
            cluster_id: 0x0102_0304_0506_0708,
            node,
            client_addr: "h:1".into(),
            dir: 0x1112_1314_1516_1718,
            you_were: None,
        }
    }

    #[test]
    fn short_secrets_are_refused_and_debug_redacts() {
        assert_eq!(
            ClusterSecret::new(vec![7; 15]),
            Err(SecretTooShort { len: 15 })
        );
        let s = ClusterSecret::new(b"0123456789abcdef".to_vec()).unwrap();
        assert!(!format!("{s:?}").contains("0123"), "{s:?}");
    }

    #[test]
    fn the_transcript_is_the_documented_bytes() {
        let t = transcript(Role::Dialer, &[0xaa; 32], &[0xbb; 32], &hello(2), None).unwrap();
        let mut want = b"concierge peer handshake".to_vec();
        want.push(1);
        want.extend_from_slice(&[0xaa; 32]);
        want.extend_from_slice(&[0xbb; 32]);
        want.extend_from_slice(&[0, 0, 0, 4]);
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        want.extend_from_slice(&[0, 0, 0, 2]);
        want.extend_from_slice(&[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
        want.push(0);
        want.extend_from_slice(&[0, 3]);
        want.extend_from_slice(b"h:1");
        assert_eq!(t, want);
    }

    #[test]
    fn every_field_and_the_role_change_the_mac() {
        let s = ClusterSecret::new(vec![1; 32]).unwrap();
        let (ln, dn) = ([1u8; 32], [2u8; 32]);
        let base = transcript(Role::Listener, &ln, &dn, &hello(1), Some(&hello(2))).unwrap();
        let tag = s.mac(&base);
        assert!(s.verify(&base, &tag));
        let mut variants = vec![
            transcript(Role::Listener, &[9; 32], &dn, &hello(1), Some(&hello(2))).unwrap(),
            transcript(Role::Listener, &ln, &[9; 32], &hello(1), Some(&hello(2))).unwrap(),
            transcript(Role::Listener, &ln, &dn, &hello(3), Some(&hello(2))).unwrap(),
        ];
        let mutations: [fn(&mut Hello); 6] = [
            |h| h.protocol += 1,
            |h| h.cluster_id ^= 1,
            |h| h.node += 1,
            |h| h.dir ^= 1,
            |h| h.you_were = Some(0),
            |h| h.client_addr.push('x'),
        ];
        for m in mutations {
            let mut h = hello(2);
            m(&mut h);
            variants.push(transcript(Role::Listener, &ln, &dn, &hello(1), Some(&h)).unwrap());
        }
        for v in &variants {
            assert!(!s.verify(v, &tag), "a changed transcript verified");
        }
        let dialer = transcript(Role::Dialer, &ln, &dn, &hello(1), None).unwrap();
        assert!(!s.verify(&dialer, &tag));
        let other = ClusterSecret::new(vec![2; 32]).unwrap();
        assert!(!other.verify(&base, &tag));
    }

    #[test]
    fn an_overlong_client_address_is_refused() {
        let mut h = hello(1);
        h.client_addr = "x".repeat(CLIENT_ADDR_BYTES_MAX + 1);
        assert!(transcript(Role::Dialer, &[0; 32], &[0; 32], &h, None).is_err());
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(fresh_nonce().unwrap(), fresh_nonce().unwrap());
    }
}
