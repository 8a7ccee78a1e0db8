//! How the applied state is laid out in the `storage` Db (the spec of the KV's bytes).
//!
//! ```text
//! key                                   value
//! "#"                                   Root            which area is live
//! A "m"                                 Meta            applied index, revision, history bounds
//! A "k" ++ user key (UTF-8)             KeyRecord       value, version, revisions, owner session
//! A "s" ++ session id (u64 BE)          SessionRecord   ttl
//! A "e" ++ session id (u64 BE) ++ key   ""              index: the ephemeral keys of a session
//! A "h" ++ revision (u64 BE)            Vec<Event>      the changes made at that revision
//! A "h" ++ revision ++ part (u32 BE)    Vec<Event>      more of them (part >= 1; big commands)
//! A "q" ++ prefix (UTF-8)               u64             last number of the prefix's sequence
//! A "i" ++ idempotency key              IdempotencyRecord  the first reply to that key
//! A "t" ++ stamp ms (u64 BE) ++ key     ""              time index of the idempotency records
//! A "a"                                 AuthState       roles, users, token hashes (`kv::auth`)
//! A "c"                                 MembershipRecord  the chosen membership changes (`kv::membership`)
//! ```
//! `A` is the area byte, `'A'` or `'B'`. The live state is in the area the root names;
//! a snapshot install is staged in the other one and made live by rewriting the root,
//! so an install that never finishes leaves the live state untouched.
//! Every record value is one format byte ([`RECORD_FORMAT`]) then MessagePack. Big-endian
//! ids and revisions keep byte order equal to numeric order, so prefix scans list
//! sessions and history in order. Decoding checks the format byte and the structure and
//! reports [`KvError::Corrupt`] naming the storage key.

use crate::kv::command::SessionId;
use crate::kv::error::KvError;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Format byte of every record value.
pub const RECORD_FORMAT: u8 = 1;
/// Kind byte of the meta record.
pub const META_KIND: u8 = b'm';
/// Prefix of key records.
pub const KEY_PREFIX: u8 = b'k';
/// Prefix of session records.
pub const SESSION_PREFIX: u8 = b's';
/// Prefix of the per-session ephemeral key index.
pub const EPHEMERAL_PREFIX: u8 = b'e';
/// Prefix of sequence counters (sequential keys).
pub const SEQUENCE_PREFIX: u8 = b'q';
/// Prefix of idempotency records.
pub const IDEMPOTENCY_PREFIX: u8 = b'i';
/// Prefix of the idempotency records' time index.
pub const IDEMPOTENCY_TIME_PREFIX: u8 = b't';
/// Prefix of history records.
pub const HISTORY_PREFIX: u8 = b'h';
/// Kind byte of the access-control record (`kv::auth`).
pub const AUTH_KIND: u8 = b'a';
/// Kind byte of the membership-changes record (`kv::membership`).
pub const MEMBERSHIP_KIND: u8 = b'c';

/// The state machine's bookkeeping, rewritten with every applied slot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The last slot applied. Invariant: every change of slots <= this is in the Db.
    pub applied_index: u64,
    /// The cluster revision: +1 per command that changed the key space.
    pub revision: u64,
    /// History holds revisions `compact_revision + 1 ..= revision`.
    pub compact_revision: u64,
    /// Total encoded bytes of the history records held.
    pub history_bytes: u64,
    /// Highest leader ballot whose session expiry was applied (round, node).
    pub expire_ballot: (u64, u32),
    /// The idempotency clock (ms): the state machine's notion of "now" for retiring
    /// idempotency records, advanced only by the elapsed time between two stamps of
    /// one leader (rules in `kv::idempotency`).
    pub idempotency_clock_ms: u64,
    /// The leader ballot (round, node) whose stamps drive the idempotency clock.
    /// Absent in metas written before it existed (then (0, 0)).
    #[serde(default)]
    pub idempotency_clock_ballot: (u64, u32),
    /// That leader's last wall-clock stamp applied (Unix ms).
    #[serde(default)]
    pub idempotency_leader_stamp_ms: u64,
    /// Commands of slot `applied_index + 1` already in the Db: a slot too large for one
    /// batch is written in several, each with this count, so a replay after a crash
    /// skips them. 0 between slots. (Absent in metas written before it existed.)
    #[serde(default)]
    pub slot_commands_done: u32,
    /// How far the command `slot_commands_done` of slot `applied_index + 1` got when it
    /// is applied in several chunks (a prefix delete, session close or expiry larger
    /// than one batch): a replay resumes it here. None between commands. (Absent in
    /// metas written before it existed.)
    #[serde(default)]
    pub command_cursor: Option<CommandCursor>,
    /// Bytes of the live key space: the sum of `key.len() + value.len()` over every
    /// live key (what the storage quota measures, `QUOTA_BYTES`). `None` in metas
    /// written before it existed: the state machine counts it when it opens such a
    /// meta (`KvStateMachine::count_live_bytes`), so it is always `Some` once open.
    #[serde(default)]
    pub live_bytes: Option<u64>,
}

/// Progress of a command applied in chunks (`kv::chunked`), stored with each chunk.
/// The command's revision is `Meta::revision + 1` until its last chunk bumps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCursor {
    /// Session commands: the index in the command's session list of the session in
    /// progress (0 for a prefix delete).
    pub session_index: u32,
    /// The last storage key done: a key record (prefix delete) or an ephemeral index
    /// entry of the session in progress; None = none of it yet.
    pub after: Option<Bytes>,
    /// Keys deleted so far.
    pub deleted: u64,
    /// Sessions removed so far.
    pub sessions: u64,
    /// History parts of the command's revision written so far.
    pub parts: u32,
}

/// The first reply given to an idempotency key, as the first record format wrote it
/// (format byte 1; `kv::idempotency` writes format 2 and reads both).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub stamp_ms: u64,
    pub reply: crate::kv::outcome::Reply,
}

/// One key's stored state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub value: Bytes,
    /// 1 on create, +1 per update.
    pub version: u64,
    pub create_revision: u64,
    pub mod_revision: u64,
    /// Set for ephemeral keys: the owning session.
    pub session: Option<SessionId>,
}

/// One live session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub ttl_ms: u64,
    /// The user whose token created it (None with access control off). Written only
    /// when set, so a record without it keeps the first layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// What a change did to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change, as a watcher sees it. For a delete, `value` is None, `version` 0 and
/// `mod_revision` the deleting revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub key: String,
    pub value: Option<Bytes>,
    pub version: u64,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub session: Option<SessionId>,
}

/// Storage key of the root record, outside both areas.
pub const ROOT_KEY: &[u8] = b"#";

/// Which of the two areas holds the live state (the other stages snapshot installs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    pub area: u8,
}

/// One of the two areas of the Db; every state record's storage key starts with its byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Area(pub u8);

/// The area a fresh Db uses.
pub const AREA_FIRST: Area = Area(b'A');
/// The other area.
pub const AREA_SECOND: Area = Area(b'B');

impl Area {
    /// The area an install into this state stages in.
    pub fn other(self) -> Area {
        if self == AREA_FIRST {
            AREA_SECOND
        } else {
            AREA_FIRST
        }
    }

    /// Parses a root record's area byte.
    pub fn from_root(root: Root) -> Result<Area, KvError> {
        match Area(root.area) {
            a if a == AREA_FIRST || a == AREA_SECOND => Ok(a),
            _ => Err(KvError::corrupt(
                ROOT_KEY,
                format!("unknown area byte {}", root.area),
            )),
        }
    }

    fn with(self, kind: u8, rest: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(2 + rest.len());
        k.push(self.0);
        k.push(kind);
        k.extend_from_slice(rest);
        k
    }

    /// Prefix of every record of this area.
    pub fn prefix(self) -> Vec<u8> {
        vec![self.0]
    }

    /// Storage key of the meta record.
    pub fn meta_key(self) -> Vec<u8> {
        self.with(META_KIND, &[])
    }

    /// Storage key of the access-control record.
    pub fn auth_key(self) -> Vec<u8> {
        self.with(AUTH_KIND, &[])
    }

    /// Storage key of the membership-changes record.
    pub fn membership_key(self) -> Vec<u8> {
        self.with(MEMBERSHIP_KIND, &[])
    }

    /// Storage key of a user key.
    pub fn key_key(self, key: &str) -> Vec<u8> {
        self.with(KEY_PREFIX, key.as_bytes())
    }

    /// Storage key of a session record.
    pub fn session_key(self, id: SessionId) -> Vec<u8> {
        self.with(SESSION_PREFIX, &id.0.to_be_bytes())
    }

    /// Prefix of all session records.
    pub fn sessions_prefix(self) -> Vec<u8> {
        self.with(SESSION_PREFIX, &[])
    }

    /// Prefix of the ephemeral index entries of one session.
    pub fn ephemeral_prefix(self, id: SessionId) -> Vec<u8> {
        self.with(EPHEMERAL_PREFIX, &id.0.to_be_bytes())
    }

    /// Storage key of one ephemeral index entry.
    pub fn ephemeral_key(self, id: SessionId, key: &str) -> Vec<u8> {
        let mut k = self.ephemeral_prefix(id);
        k.extend_from_slice(key.as_bytes());
        k
    }

    /// Storage key of the history record of one revision.
    pub fn history_key(self, revision: u64) -> Vec<u8> {
        self.with(HISTORY_PREFIX, &revision.to_be_bytes())
    }

    /// Storage key of the sequence counter of a sequential-key prefix.
    pub fn sequence_key(self, prefix: &str) -> Vec<u8> {
        self.with(SEQUENCE_PREFIX, prefix.as_bytes())
    }

    /// Storage key of an idempotency record.
    pub fn idempotency_key(self, key: &str) -> Vec<u8> {
        self.with(IDEMPOTENCY_PREFIX, key.as_bytes())
    }

    /// Prefix of the idempotency time index.
    pub fn idempotency_time_prefix(self) -> Vec<u8> {
        self.with(IDEMPOTENCY_TIME_PREFIX, &[])
    }

    /// Storage key of one idempotency time index entry.
    pub fn idempotency_time_key(self, stamp_ms: u64, key: &str) -> Vec<u8> {
        let mut k = self.idempotency_time_prefix();
        k.extend_from_slice(&stamp_ms.to_be_bytes());
        k.extend_from_slice(key.as_bytes());
        k
    }

    /// Storage key of part `part` of a revision's history (part 0 is
    /// [`Area::history_key`]; more parts follow it in key order, before the next revision).
    pub fn history_part_key(self, revision: u64, part: u32) -> Vec<u8> {
        let mut k = self.history_key(revision);
        if part > 0 {
            k.extend_from_slice(&part.to_be_bytes());
        }
        k
    }

    /// Prefix of all history records.
    pub fn history_prefix(self) -> Vec<u8> {
        self.with(HISTORY_PREFIX, &[])
    }
}

/// The user key inside a key record's storage key.
pub fn user_key(storage_key: &[u8]) -> Result<String, KvError> {
    match storage_key {
        [_, KEY_PREFIX, rest @ ..] => String::from_utf8(rest.to_vec()).map_err(|_| {
            KvError::corrupt(storage_key, "key record's user key is not UTF-8".into())
        }),
        _ => Err(KvError::corrupt(storage_key, "not a key record".into())),
    }
}

/// The session id inside a session record's storage key.
pub fn session_id_of(storage_key: &[u8]) -> Result<SessionId, KvError> {
    match storage_key {
        [_, SESSION_PREFIX, rest @ ..] => <[u8; 8]>::try_from(rest)
            .map(|b| SessionId(u64::from_be_bytes(b)))
            .map_err(|_| KvError::corrupt(storage_key, "session key is not 10 bytes".into())),
        _ => Err(KvError::corrupt(storage_key, "not a session record".into())),
    }
}

/// The user key inside an ephemeral index entry's storage key.
pub fn ephemeral_user_key(storage_key: &[u8]) -> Result<String, KvError> {
    match storage_key {
        [_, EPHEMERAL_PREFIX, _, _, _, _, _, _, _, _, rest @ ..] => {
            String::from_utf8(rest.to_vec()).map_err(|_| {
                KvError::corrupt(storage_key, "ephemeral index key is not UTF-8".into())
            })
        }
        _ => Err(KvError::corrupt(
            storage_key,
            "not an ephemeral index key".into(),
        )),
    }
}

/// The revision inside a history record's storage key.
pub fn history_revision_of(storage_key: &[u8]) -> Result<u64, KvError> {
    Ok(history_part_of(storage_key)?.0)
}

/// The revision and part inside a history record's storage key.
pub fn history_part_of(storage_key: &[u8]) -> Result<(u64, u32), KvError> {
    let bad = |what: &str| KvError::corrupt(storage_key, what.into());
    match storage_key {
        [_, HISTORY_PREFIX, rest @ ..] => {
            let (rev, part) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| bad("history key is shorter than 10 bytes"))?;
            let rev = u64::from_be_bytes(*rev);
            match part.len() {
                0 => Ok((rev, 0)),
                4 => match u32::from_be_bytes([part[0], part[1], part[2], part[3]]) {
                    0 => Err(bad("history part 0 written with a part number")),
                    p => Ok((rev, p)),
                },
                _ => Err(bad("history key is neither 10 nor 14 bytes")),
            }
        }
        _ => Err(bad("not a history record")),
    }
}

/// The smallest storage key strictly greater than every key starting with `prefix`,
/// or None when there is none (prefix of all 0xff): the storage engine's own.
pub use storage::prefix_successor as prefix_end;

/// Encodes a record value.
pub fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT];
    if let Err(e) = rmp_serde::encode::write(&mut out, record) {
        unreachable!("encoding a record into memory failed: {e}");
    }
    out
}

/// Decodes a record value stored under `storage_key`.
pub fn decode<T: DeserializeOwned>(storage_key: &[u8], bytes: &[u8]) -> Result<T, KvError> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT, body)) => rmp_serde::from_slice(body)
            .map_err(|e| KvError::corrupt(storage_key, format!("undecodable record: {e}"))),
        Some((b, _)) => Err(KvError::corrupt(
            storage_key,
            format!("unknown record format byte {b}"),
        )),
        None => Err(KvError::corrupt(storage_key, "empty record".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_keys_round_trip() {
        let a = AREA_FIRST;
        assert_eq!(user_key(&a.key_key("a/b")).ok(), Some("a/b".to_string()));
        let id = SessionId(0x0102_0304_0506_0708);
        assert_eq!(session_id_of(&a.session_key(id)).ok(), Some(id));
        assert_eq!(
            ephemeral_user_key(&a.ephemeral_key(id, "x")).ok(),
            Some("x".to_string())
        );
        assert_eq!(history_revision_of(&a.history_key(300)).ok(), Some(300));
        assert_eq!(history_part_of(&a.history_key(300)).ok(), Some((300, 0)));
        assert_eq!(a.history_part_key(300, 0), a.history_key(300));
        assert_eq!(
            history_part_of(&a.history_part_key(300, 2)).ok(),
            Some((300, 2))
        );
        assert!(a.history_key(300) < a.history_part_key(300, 1));
        assert!(a.history_part_key(300, 1) < a.history_part_key(300, 2));
        assert!(a.history_part_key(300, u32::MAX) < a.history_key(301));
        assert!(history_part_of(b"Ah\0\0\0\0\0\0\0\x01\0\0\0\0").is_err());
        assert!(history_part_of(b"Ah\0\0\0\0\0\0\0\x01\0").is_err());
        assert!(session_id_of(b"As123").is_err());
        assert!(user_key(b"A").is_err());
        assert!(a.history_key(1) < a.history_key(256));
        assert_eq!(a.other().other(), a);
        assert!(a.key_key("z") < a.other().prefix());
    }

    #[test]
    fn a_meta_of_the_previous_layout_decodes_with_the_new_fields_zero() {
        #[derive(Serialize)]
        struct OldMeta(u64, u64, u64, u64, (u64, u32), u64);
        let bytes = encode(&OldMeta(7, 6, 5, 4, (3, 2), 1));
        let meta: Meta = decode(b"Am", &bytes).unwrap();
        assert_eq!(
            meta,
            Meta {
                applied_index: 7,
                revision: 6,
                compact_revision: 5,
                history_bytes: 4,
                expire_ballot: (3, 2),
                idempotency_clock_ms: 1,
                idempotency_clock_ballot: (0, 0),
                idempotency_leader_stamp_ms: 0,
                slot_commands_done: 0,
                command_cursor: None,
                live_bytes: None,
            }
        );
    }

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }

    #[test]
    fn records_decode_what_they_encode_and_reject_garbage() {
        let r = KeyRecord {
            value: Bytes::from_static(b"v"),
            version: 1,
            create_revision: 2,
            mod_revision: 2,
            session: None,
        };
        let bytes = encode(&r);
        assert_eq!(decode::<KeyRecord>(b"kx", &bytes).ok(), Some(r));
        assert!(decode::<KeyRecord>(b"kx", &bytes[..bytes.len() - 1]).is_err());
        assert!(decode::<KeyRecord>(b"kx", &[]).is_err());
        assert!(decode::<KeyRecord>(b"kx", &[7, 1]).is_err());
    }
}
