//! Puts one [`Op`] on the wire as exactly one HTTP request, to Concierge's REST API or
//! to etcd's v3 JSON gateway, and classifies the answer as an [`Outcome`].
//!
//! Invariant: one call of [`Conn::send`] is one HTTP request: no retry, no failover,
//! no Idempotency-Key (a bench write is never resent). Each `Conn` owns one
//! connection ([`Http1`]), so `--clients` is the number of connections, and etcd and
//! Concierge are driven by the same client code. The body of every answer is read to
//! its end so the connection is reused.

use super::http1::Http1;
use super::rest::json_u64;
use super::schedule::{Outcome, Sender};
use super::workload::{KeyNames, Op, Workload};
use crate::endpoints::Access;
use base64::Engine;
use clap::ValueEnum;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The system measured.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Concierge's REST API (API.md).
    Concierge,
    /// etcd's v3 JSON gateway (POST /v3/kv/put, /v3/kv/range); put, get, mixed only.
    Etcd,
}

/// How reads are served.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Through the leader: sees every acknowledged write.
    Linearizable,
    /// From the local replica (etcd: `serializable: true`).
    Serializable,
}

/// Characters a key keeps in a URL path: `/` separates nothing in a key but is legal.
pub const KEY_IN_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// What every connection of a run shares.
#[derive(Debug)]
pub struct Setup {
    pub target: TargetKind,
    pub workload: Workload,
    pub names: KeyNames,
    pub consistency: Consistency,
    pub value_bytes: usize,
    pub timeout: Duration,
    /// The CA to trust and the client certificate (`--cacert`, `--cert`, `--key`).
    pub access: Access,
}

/// One connection to one endpoint, with its own generator and, for `cas`, the last
/// version it saw of each key.
pub struct Conn {
    setup: Arc<Setup>,
    http: Http1,
    rng: fastrand::Rng,
    value: Vec<u8>,
    /// The path and query of the request being built (reused).
    target: String,
    versions: HashMap<u64, u64>,
    /// When set, every request is this op (the prefill writes key `n`).
    prefill: bool,
}

impl Conn {
    pub fn new(setup: Arc<Setup>, endpoint: &str, seed: u64) -> Result<Conn, String> {
        let http = Http1::new(
            endpoint,
            setup.timeout,
            &setup.access.tls,
            setup.access.token.as_deref(),
        )?;
        let mut rng = fastrand::Rng::with_seed(seed);
        let value = (0..setup.value_bytes)
            .map(|_| rng.alphanumeric() as u8)
            .collect();
        Ok(Conn {
            setup,
            http,
            rng,
            value,
            target: String::new(),
            versions: HashMap::new(),
            prefill: false,
        })
    }

    /// This connection writes key `n` for request `n` (filling the keys before a run).
    pub fn for_prefill(mut self) -> Conn {
        self.prefill = true;
        self
    }

    async fn op(&mut self, op: Op) -> Outcome {
        match self.setup.target {
            TargetKind::Concierge => self.concierge(op).await,
            TargetKind::Etcd => self.etcd(op).await,
        }
    }

    /// Sets `self.target` to the key's path, then `query` when not empty.
    fn key_target(&mut self, key: u64, query: std::fmt::Arguments<'_>) {
        use std::fmt::Write;
        let name = self.setup.names.name(key);
        self.target.clear();
        // Writing to a String cannot fail.
        let _ = write!(
            self.target,
            "/v1/keys/{}{query}",
            utf8_percent_encode(&name, KEY_IN_PATH)
        );
    }

    async fn concierge(&mut self, op: Op) -> Outcome {
        const BYTES: &str = "application/octet-stream";
        let sent = match &op {
            Op::Put(key) => {
                self.key_target(*key, format_args!(""));
                self.http
                    .send("PUT", &self.target, Some((BYTES, &self.value)))
                    .await
            }
            Op::Get(key) => {
                let consistency = match self.setup.consistency {
                    Consistency::Linearizable => "linearizable",
                    Consistency::Serializable => "serializable",
                };
                self.key_target(*key, format_args!("?consistency={consistency}"));
                self.http.send("GET", &self.target, None).await
            }
            Op::Cas(key) => {
                let version = self.versions.get(key).copied().unwrap_or(0);
                self.key_target(*key, format_args!("?version={version}"));
                self.http
                    .send("PUT", &self.target, Some((BYTES, &self.value)))
                    .await
            }
            Op::Txn(keys) => {
                let b64 = base64::engine::general_purpose::STANDARD;
                let value = b64.encode(&self.value);
                let then: Vec<serde_json::Value> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "op": "put", "key": self.setup.names.name(*k), "value": value,
                        })
                    })
                    .collect();
                let body = serde_json::json!({ "then": then }).to_string();
                self.http
                    .send(
                        "POST",
                        "/v1/txn",
                        Some(("application/json", body.as_bytes())),
                    )
                    .await
            }
        };
        let answer = match sent {
            Ok(answer) => answer,
            Err(failure) => return Outcome::Error(failure.kind().into()),
        };
        match (&op, answer.status) {
            (Op::Cas(key), 200 | 201) => match json_u64(&answer.body, "version") {
                Some(v) => {
                    self.versions.insert(*key, v);
                    Outcome::Ok
                }
                None => Outcome::Error("bad answer".into()),
            },
            (Op::Cas(key), 412) => match json_u64(&answer.body, "current_version") {
                Some(v) => {
                    self.versions.insert(*key, v);
                    Outcome::Conflict
                }
                None => Outcome::Error("bad answer".into()),
            },
            (_, 200 | 201) => Outcome::Ok,
            (_, 404) => Outcome::Error("not found".into()),
            (_, status) => Outcome::Error(format!("http {status}")),
        }
    }

    async fn etcd(&mut self, op: Op) -> Outcome {
        let b64 = base64::engine::general_purpose::STANDARD;
        let (path, body, is_get) = match &op {
            Op::Put(key) => (
                "/v3/kv/put",
                serde_json::json!({
                    "key": b64.encode(self.setup.names.name(*key)),
                    "value": b64.encode(&self.value),
                }),
                false,
            ),
            Op::Get(key) => (
                "/v3/kv/range",
                serde_json::json!({
                    "key": b64.encode(self.setup.names.name(*key)),
                    "serializable": self.setup.consistency == Consistency::Serializable,
                }),
                true,
            ),
            Op::Cas(_) | Op::Txn(_) => return Outcome::Error("not supported by etcd".into()),
        };
        let body = body.to_string();
        let sent = self
            .http
            .send("POST", path, Some(("application/json", body.as_bytes())))
            .await;
        match sent {
            Ok(answer) if answer.status == 200 && is_get => {
                match serde_json::from_slice::<serde_json::Value>(&answer.body) {
                    Ok(v) if v["kvs"].as_array().is_some_and(|kvs| !kvs.is_empty()) => Outcome::Ok,
                    Ok(_) => Outcome::Error("not found".into()),
                    Err(_) => Outcome::Error("bad answer".into()),
                }
            }
            Ok(answer) if answer.status == 200 => Outcome::Ok,
            Ok(answer) => Outcome::Error(format!("http {}", answer.status)),
            Err(failure) => Outcome::Error(failure.kind().into()),
        }
    }
}

impl Sender for Conn {
    fn send(&mut self, n: u64) -> impl Future<Output = Outcome> + Send {
        let op = if self.prefill {
            Op::Put(n)
        } else {
            self.setup.workload.next(&mut self.rng)
        };
        self.op(op)
    }
}
