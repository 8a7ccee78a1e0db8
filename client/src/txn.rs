//! Transactions (`POST /v1/txn`): compares, then one branch of ops, all at one
//! revision. [`Txn`] builds the document; the answer's results are decoded by the ops
//! of the branch taken (put, delete, get each answer their own shape).

use crate::client::Client;
use crate::error::Error;
use crate::transport::Call;
use crate::types::{encode_base64, protocol, Entry, PutResult, RawEntry};
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

/// A condition of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compare {
    /// The key's version is this (0: absent).
    Version { key: String, version: u64 },
    /// The key exists, or not.
    Exists { key: String, exists: bool },
    /// The key's value is exactly this.
    Value { key: String, value: Bytes },
}

impl Compare {
    pub fn version(key: impl Into<String>, version: u64) -> Compare {
        Compare::Version {
            key: key.into(),
            version,
        }
    }

    pub fn exists(key: impl Into<String>) -> Compare {
        Compare::Exists {
            key: key.into(),
            exists: true,
        }
    }

    pub fn absent(key: impl Into<String>) -> Compare {
        Compare::Exists {
            key: key.into(),
            exists: false,
        }
    }

    pub fn value(key: impl Into<String>, value: impl Into<Bytes>) -> Compare {
        Compare::Value {
            key: key.into(),
            value: value.into(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Compare::Version { key, version } => json!({"key": key, "version": version}),
            Compare::Exists { key, exists } => json!({"key": key, "exists": exists}),
            Compare::Value { key, value } => json!({"key": key, "value": encode_base64(value)}),
        }
    }
}

/// An op of a branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Bytes,
        session: Option<String>,
    },
    Delete {
        key: String,
    },
    Get {
        key: String,
    },
}

impl Op {
    pub fn put(key: impl Into<String>, value: impl Into<Bytes>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            session: None,
        }
    }

    /// A put of an ephemeral key owned by `session`.
    pub fn put_owned(key: impl Into<String>, value: impl Into<Bytes>, session: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            session: Some(session.to_string()),
        }
    }

    pub fn delete(key: impl Into<String>) -> Op {
        Op::Delete { key: key.into() }
    }

    pub fn get(key: impl Into<String>) -> Op {
        Op::Get { key: key.into() }
    }

    fn json(&self) -> Value {
        match self {
            Op::Put {
                key,
                value,
                session,
            } => {
                json!({"op": "put", "key": key, "value": encode_base64(value), "session": session})
            }
            Op::Delete { key } => json!({"op": "delete", "key": key}),
            Op::Get { key } => json!({"op": "get", "key": key}),
        }
    }
}

/// A transaction: if every compare holds, `then`, else `otherwise`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub then: Vec<Op>,
    pub otherwise: Vec<Op>,
}

impl Txn {
    pub fn new() -> Txn {
        Txn::default()
    }

    pub fn when(mut self, compare: Compare) -> Txn {
        self.compares.push(compare);
        self
    }

    pub fn then(mut self, op: Op) -> Txn {
        self.then.push(op);
        self
    }

    pub fn otherwise(mut self, op: Op) -> Txn {
        self.otherwise.push(op);
        self
    }

    /// The request document.
    pub fn to_json(&self) -> Value {
        json!({
            "if": self.compares.iter().map(Compare::json).collect::<Vec<_>>(),
            "then": self.then.iter().map(Op::json).collect::<Vec<_>>(),
            "else": self.otherwise.iter().map(Op::json).collect::<Vec<_>>(),
        })
    }
}

/// One op's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnResult {
    Put(PutResult),
    Deleted(u64),
    /// The entry, or None when the key was absent.
    Get(Option<Entry>),
}

/// A transaction's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether the compares held (`then` ran) or not (`otherwise` ran).
    pub succeeded: bool,
    pub revision: u64,
    /// One result per op of the branch taken.
    pub results: Vec<TxnResult>,
}

#[derive(Deserialize)]
struct RawResponse {
    succeeded: bool,
    revision: u64,
    results: Vec<Value>,
}

#[derive(Deserialize)]
struct RawDeleted {
    deleted: u64,
}

fn decode_result(op: &Op, v: Value) -> Result<TxnResult, String> {
    match op {
        Op::Put { .. } => {
            let mut put: PutResult = serde_json::from_value(v).map_err(|e| e.to_string())?;
            put.created = put.version == 1;
            Ok(TxnResult::Put(put))
        }
        Op::Delete { .. } => {
            let d: RawDeleted = serde_json::from_value(v).map_err(|e| e.to_string())?;
            Ok(TxnResult::Deleted(d.deleted))
        }
        Op::Get { .. } if v.is_null() => Ok(TxnResult::Get(None)),
        Op::Get { .. } => {
            let raw: RawEntry = serde_json::from_value(v).map_err(|e| e.to_string())?;
            Ok(TxnResult::Get(Some(raw.decode()?)))
        }
    }
}

impl Client {
    /// Runs the transaction (a write: retried with its Idempotency-Key).
    pub async fn txn(&self, txn: &Txn) -> Result<TxnResponse, Error> {
        let body = serde_json::to_vec(&txn.to_json())
            .map_err(|e| Error::InvalidArgument(format!("encoding the transaction: {e}")))?;
        let call = Call::write(Method::POST, "/v1/txn".into(), Some(Bytes::from(body)));
        let answer = self.transport.execute(&call).await?;
        let raw: RawResponse = answer.json()?;
        let branch = if raw.succeeded {
            &txn.then
        } else {
            &txn.otherwise
        };
        if branch.len() != raw.results.len() {
            return Err(protocol(
                &answer.endpoint,
                format!(
                    "{} results for a branch of {} ops",
                    raw.results.len(),
                    branch.len()
                ),
            ));
        }
        let results = branch
            .iter()
            .zip(raw.results)
            .map(|(op, v)| decode_result(op, v).map_err(|m| protocol(&answer.endpoint, m)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TxnResponse {
            succeeded: raw.succeeded,
            revision: raw.revision,
            results,
        })
    }
}
