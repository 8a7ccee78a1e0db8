//! What the server answers, as typed values: entries of keys, write results, pages.
//! Values arrive as raw bytes (GET) or base64 (listings, transactions, events) and are
//! decoded here; a value that is not base64 is a protocol error.

use crate::error::Error;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

/// A key's value and metadata (`GET /v1/keys/{key}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub version: u64,
    pub create_revision: u64,
    pub mod_revision: u64,
    /// The owning session of an ephemeral key.
    pub session: Option<String>,
    /// The cluster revision the answer reflects.
    pub revision: u64,
}

/// The result of a put (`PUT /v1/keys/{key}`, a transaction's put).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PutResult {
    /// The key written (for a sequential put, the key with its number).
    pub key: String,
    pub version: u64,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub session: Option<String>,
    /// 201: the put created the key (for a transaction's put: `version == 1`).
    #[serde(default)]
    pub created: bool,
}

/// The result of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct DeleteResult {
    pub deleted: u64,
    pub revision: u64,
}

/// One entry of a listing or of a transaction's get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// None in a `keys_only` listing.
    pub value: Option<Bytes>,
    pub version: u64,
    pub create_revision: u64,
    pub mod_revision: u64,
    pub session: Option<String>,
}

/// An entry as it travels (value in base64).
#[derive(Deserialize)]
pub(crate) struct RawEntry {
    key: String,
    value: Option<String>,
    version: u64,
    create_revision: u64,
    mod_revision: u64,
    session: Option<String>,
}

impl RawEntry {
    pub fn decode(self) -> Result<Entry, String> {
        Ok(Entry {
            value: self.value.as_deref().map(decode_base64).transpose()?,
            key: self.key,
            version: self.version,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            session: self.session,
        })
    }
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage {
    pub revision: u64,
    /// More keys follow: continue with `start_after` = the last entry's key.
    pub more: bool,
    pub entries: Vec<Entry>,
}

#[derive(Deserialize)]
pub(crate) struct RawListPage {
    pub revision: u64,
    pub more: bool,
    pub entries: Vec<RawEntry>,
}

/// Options of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Entries per page (server default 1,000, at most 10,000).
    pub limit: Option<u64>,
    pub start_after: Option<String>,
    pub keys_only: bool,
    pub consistency: Consistency,
}

/// Read consistency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consistency {
    /// Reflects every write acknowledged before the read began (the default).
    #[default]
    Linearizable,
    /// Served by the node from its own replica: may be stale, never goes back in time
    /// on one node (but may across nodes after a failover).
    Serializable,
}

impl Consistency {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Consistency::Linearizable => "linearizable",
            Consistency::Serializable => "serializable",
        }
    }
}

/// Decodes a base64 value of an answer.
pub(crate) fn decode_base64(s: &str) -> Result<Bytes, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map(Bytes::from)
        .map_err(|e| format!("value is not base64: {e}"))
}

/// Encodes a value for a JSON body.
pub(crate) fn encode_base64(v: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

/// Maps a decoding failure of an answer from `endpoint`.
pub(crate) fn protocol(endpoint: &str, message: String) -> Error {
    Error::Protocol {
        endpoint: endpoint.to_string(),
        message,
    }
}
