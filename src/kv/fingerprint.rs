//! The fingerprint of a request made idempotent: which request an `Idempotency-Key`
//! was first used for, so that the key reused for another request is told apart
//! (API.md, Retries: 422 `idempotency_key_reused`).
//!
//! The fingerprint is taken of the validated command, not of the raw HTTP bytes: the
//! command is the request's meaning (method, key, query options and body), so two
//! spellings of one request (`%2F` or `/`, `?version=1` or `If-Match: "1"`, JSON
//! whitespace) are the same request, and a value the node chooses itself (a new
//! session's id) is left out, so a retried create matches its first attempt.
//!
//! Invariant: the bytes hashed are a hand-written, versioned layout ([`LAYOUT`]), not a
//! serde encoding, so a fingerprint stored in an idempotency record stays comparable
//! across releases and on every replica; a change to the layout must bump [`LAYOUT`].
//! The hash is XXH3-128 (specified and stable; not a cryptographic hash: a client can
//! only confuse itself by crafting a collision for its own key).
//!
//! ```text
//! layout  := LAYOUT:u8 command
//! command := tag:u8 fields...      (tags below; each field in declaration order)
//! str     := len:u64le bytes       u64 := u64le      opt<T> := 0:u8 | 1:u8 T
//! list<T> := count:u64le T*
//! ```

use crate::kv::command::{Command, Compare, CompareTarget, TxnOp};

/// Version of the hashed layout.
pub const LAYOUT: u8 = 1;

/// A request's fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub u128);

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.u64(v);
            }
        }
    }
    fn compare(&mut self, c: &Compare) {
        self.bytes(c.key.as_bytes());
        match &c.target {
            CompareTarget::Version(v) => {
                self.u8(1);
                self.u64(*v);
            }
            CompareTarget::Exists(e) => {
                self.u8(2);
                self.u8(u8::from(*e));
            }
            CompareTarget::Value(v) => {
                self.u8(3);
                self.bytes(v);
            }
        }
    }
    fn op(&mut self, op: &TxnOp) {
        match op {
            TxnOp::Put {
                key,
                value,
                session,
            } => {
                self.u8(1);
                self.bytes(key.as_bytes());
                self.bytes(value);
                self.opt_u64(session.map(|s| s.0));
            }
            TxnOp::Delete { key } => {
                self.u8(2);
                self.bytes(key.as_bytes());
            }
            TxnOp::Get { key } => {
                self.u8(3);
                self.bytes(key.as_bytes());
            }
        }
    }
    fn ops(&mut self, ops: &[TxnOp]) {
        self.u64(ops.len() as u64);
        for op in ops {
            self.op(op);
        }
    }
    fn command(&mut self, c: &Command) {
        match c {
            Command::Put {
                key,
                value,
                expect_version,
                session,
            } => {
                self.u8(1);
                self.bytes(key.as_bytes());
                self.bytes(value);
                self.opt_u64(*expect_version);
                self.opt_u64(session.map(|s| s.0));
            }
            Command::PutSequential {
                prefix,
                value,
                session,
            } => {
                self.u8(2);
                self.bytes(prefix.as_bytes());
                self.bytes(value);
                self.opt_u64(session.map(|s| s.0));
            }
            Command::Delete {
                key,
                expect_version,
            } => {
                self.u8(3);
                self.bytes(key.as_bytes());
                self.opt_u64(*expect_version);
            }
            Command::Txn {
                compares,
                success,
                failure,
            } => {
                self.u8(4);
                self.u64(compares.len() as u64);
                for c in compares {
                    self.compare(c);
                }
                self.ops(success);
                self.ops(failure);
            }
            Command::DeletePrefix { prefix } => {
                self.u8(5);
                self.bytes(prefix.as_bytes());
            }
            // The id is the node's choice, not the client's: a retry draws another.
            Command::CreateSession {
                id: _,
                ttl_ms,
                owner,
            } => {
                self.u8(6);
                self.u64(*ttl_ms);
                // Only when set: a request without access control keeps its print.
                if let Some(owner) = owner {
                    self.bytes(owner.as_bytes());
                }
            }
            Command::CloseSession { id } => {
                self.u8(7);
                self.u64(id.0);
            }
            // Never made idempotent (refused when applied); fingerprinted for totality.
            Command::Idempotent { key, inner, .. } => {
                self.u8(8);
                self.bytes(key.as_bytes());
                self.command(inner);
            }
            Command::ExpireSessions { ids, ballot } => {
                self.u8(9);
                self.u64(ids.len() as u64);
                for id in ids {
                    self.u64(id.0);
                }
                self.u64(ballot.round);
                self.u64(u64::from(ballot.node));
            }
            Command::LeaderClock { ballot, stamp_ms } => {
                self.u8(10);
                self.u64(ballot.round);
                self.u64(u64::from(ballot.node));
                self.u64(*stamp_ms);
            }
            Command::Compact { revision } => {
                self.u8(11);
                self.u64(*revision);
            }
            // Never sent idempotent by the HTTP layer; fingerprinted for totality.
            Command::Auth(auth) => {
                self.u8(12);
                self.bytes(format!("{auth:?}").as_bytes());
            }
        }
    }
}

/// The fingerprint of `command`, the inner command of an idempotent request.
pub fn of(command: &Command) -> Fingerprint {
    let mut w = Writer(Vec::with_capacity(64));
    w.u8(LAYOUT);
    w.command(command);
    Fingerprint(xxhash_rust::xxh3::xxh3_128(&w.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::command::SessionId;
    use bytes::Bytes;

    fn put(key: &str, value: &'static [u8], expect_version: Option<u64>) -> Command {
        Command::Put {
            key: key.into(),
            value: Bytes::from_static(value),
            expect_version,
            session: None,
        }
    }

    #[test]
    fn one_request_one_fingerprint_and_any_difference_shows() {
        assert_eq!(of(&put("a", b"1", None)), of(&put("a", b"1", None)));
        let different = [
            put("b", b"1", None),
            put("a", b"2", None),
            put("a", b"1", Some(0)),
            put("a", b"1", Some(1)),
            Command::Delete {
                key: "a".into(),
                expect_version: None,
            },
            Command::DeletePrefix { prefix: "a".into() },
            Command::PutSequential {
                prefix: "a".into(),
                value: Bytes::from_static(b"1"),
                session: None,
            },
        ];
        let base = of(&put("a", b"1", None));
        for (i, c) in different.iter().enumerate() {
            assert_ne!(of(c), base, "{c:?}");
            for d in &different[i + 1..] {
                assert_ne!(of(c), of(d), "{c:?} vs {d:?}");
            }
        }
        // Length prefixes keep field boundaries: ("ab","c") is not ("a","bc").
        assert_ne!(of(&put("ab", b"c", None)), of(&put("a", b"bc", None)));
    }

    #[test]
    fn a_session_create_ignores_the_node_chosen_id() {
        let c = |id, ttl_ms| Command::CreateSession {
            id: SessionId(id),
            ttl_ms,
            owner: None,
        };
        assert_eq!(of(&c(1, 5000)), of(&c(2, 5000)));
        assert_ne!(of(&c(1, 5000)), of(&c(1, 6000)));
    }

    #[test]
    fn the_layout_and_the_hash_are_pinned() {
        // A stored fingerprint must match the same request after an upgrade. If this
        // fails, the layout or the hash changed: bump LAYOUT (old records then differ).
        let layout = [
            1, 1, 1, 0, 0, 0, 0, 0, 0, 0, b'a', 1, 0, 0, 0, 0, 0, 0, 0, b'1', 0, 0,
        ];
        assert_eq!(
            of(&put("a", b"1", None)).0,
            xxhash_rust::xxh3::xxh3_128(&layout)
        );
        assert_eq!(
            of(&put("a", b"1", None)).0,
            0x0b46_8578_6b24_c475_deb7_bf4d_eb36_ed2c
        );
    }
}
