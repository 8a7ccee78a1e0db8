//! Puts one [`Op`] on the wire as exactly one HTTP request, to Concierge's REST API or
//! to etcd's v3 JSON gateway, and classifies the answer as an [`Outcome`].
//!
//! Invariant: one call of [`Conn::send`] is one HTTP request: no retry, no failover,
//! no Idempotency-Key (a bench write is never resent). Each `Conn` owns one
//! connection (a reqwest client with a pool of one), so `--clients` is the number of
//! connections. The body of every answer is read to its end so the connection is
//! reused.

use super::schedule::{Outcome, Sender};
use super::workload::{KeyNames, Op, Workload};
use crate::endpoints::Access;
use base64::Engine;
use clap::ValueEnum;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
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
    /// `http://host:port`, no trailing slash.
    base: String,
    http: reqwest::Client,
    rng: fastrand::Rng,
    value: Vec<u8>,
    versions: HashMap<u64, u64>,
    /// When set, every request is this op (the prefill writes key `n`).
    prefill: bool,
}

/// An HTTP client for one connection: every request fails as `timeout` after
/// `timeout`; `https://` endpoints are checked, and the token sent, as `access` says.
pub fn http_client(timeout: Duration, access: &Access) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .pool_max_idle_per_host(1);
    access
        .apply(builder)?
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

/// An endpoint as a base URL: `host:port` gets `http://`.
pub fn base_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    }
}

impl Conn {
    pub fn new(setup: Arc<Setup>, endpoint: &str, seed: u64) -> Result<Conn, String> {
        let http = http_client(setup.timeout, &setup.access)?;
        let mut rng = fastrand::Rng::with_seed(seed);
        let value = (0..setup.value_bytes)
            .map(|_| rng.alphanumeric() as u8)
            .collect();
        Ok(Conn {
            setup,
            base: base_url(endpoint),
            http,
            rng,
            value,
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

    fn key_url(&self, key: u64) -> String {
        let name = self.setup.names.name(key);
        format!(
            "{}/v1/keys/{}",
            self.base,
            utf8_percent_encode(&name, KEY_IN_PATH)
        )
    }

    async fn concierge(&mut self, op: Op) -> Outcome {
        let request = match &op {
            Op::Put(key) => self.http.put(self.key_url(*key)).body(self.value.clone()),
            Op::Get(key) => {
                let consistency = match self.setup.consistency {
                    Consistency::Linearizable => "linearizable",
                    Consistency::Serializable => "serializable",
                };
                self.http
                    .get(self.key_url(*key))
                    .query(&[("consistency", consistency)])
            }
            Op::Cas(key) => {
                let version = self.versions.get(key).copied().unwrap_or(0);
                self.http
                    .put(self.key_url(*key))
                    .query(&[("version", version)])
                    .body(self.value.clone())
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
                self.http
                    .request(Method::POST, format!("{}/v1/txn", self.base))
                    .json(&serde_json::json!({ "then": then }))
            }
        };
        let (status, body) = match exchange(request).await {
            Ok(answer) => answer,
            Err(kind) => return Outcome::Error(kind),
        };
        match (&op, status) {
            (Op::Cas(key), StatusCode::OK | StatusCode::CREATED) => {
                match json_u64(&body, "version") {
                    Some(v) => {
                        self.versions.insert(*key, v);
                        Outcome::Ok
                    }
                    None => Outcome::Error("bad answer".into()),
                }
            }
            (Op::Cas(key), StatusCode::PRECONDITION_FAILED) => {
                match json_u64(&body, "current_version") {
                    Some(v) => {
                        self.versions.insert(*key, v);
                        Outcome::Conflict
                    }
                    None => Outcome::Error("bad answer".into()),
                }
            }
            (_, StatusCode::OK | StatusCode::CREATED) => Outcome::Ok,
            (_, StatusCode::NOT_FOUND) => Outcome::Error("not found".into()),
            (_, status) => Outcome::Error(format!("http {}", status.as_u16())),
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
        let request = self.http.post(format!("{}{path}", self.base)).json(&body);
        match exchange(request).await {
            Ok((StatusCode::OK, body)) if is_get => {
                match serde_json::from_slice::<serde_json::Value>(&body) {
                    Ok(v) if v["kvs"].as_array().is_some_and(|kvs| !kvs.is_empty()) => Outcome::Ok,
                    Ok(_) => Outcome::Error("not found".into()),
                    Err(_) => Outcome::Error("bad answer".into()),
                }
            }
            Ok((StatusCode::OK, _)) => Outcome::Ok,
            Ok((status, _)) => Outcome::Error(format!("http {}", status.as_u16())),
            Err(kind) => Outcome::Error(kind),
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

/// Sends one request and reads its whole answer; Err is the error's kind.
pub async fn exchange(request: reqwest::RequestBuilder) -> Result<(StatusCode, Vec<u8>), String> {
    let response = request.send().await.map_err(|e| transport_kind(&e))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| transport_kind(&e))?;
    Ok((status, body.to_vec()))
}

/// A transport failure's kind, as the report counts it.
pub fn transport_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// A u64 field of a JSON object.
pub fn json_u64(body: &[u8], field: &str) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get(field)?
        .as_u64()
}
