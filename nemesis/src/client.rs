//! The workload: concurrent clients doing puts (plain and `?version=N`), linearizable
//! gets and deletes (plain and `?version=N`) on a few shared keys, each request to a
//! random node, every write with a value unique in the run.
//!
//! Each client records one [`Op`] per operation: invocation time before the first
//! byte is sent, completion time after the answer is read. A timeout, a dropped
//! connection or a 504 leaves the outcome unknown. A seeded fraction of writes carries
//! an `Idempotency-Key`; when such a write's outcome is unknown the client retries the
//! same request with the same key on random nodes (bounded in attempts and time) to
//! learn the answer, which then completes the operation (the interval only grows, so the
//! check stays sound). Every loop is bounded by the run's deadline.

use crate::history::{Call, Op, Outcome};
use crate::pool::Pool;
use crate::rng::Rng;
use reqwest::{Method, StatusCode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The prefix of every key the harness writes (and the watch follows).
pub const PREFIX: &str = "nemesis/";

/// Retries of one write with an unknown outcome, at most.
pub const RESOLVE_ATTEMPTS_MAX: u32 = 12;
/// Time spent retrying one write with an unknown outcome, at most.
pub const RESOLVE_MS_MAX: u64 = 10_000;
/// Pause between such retries.
pub const RESOLVE_PAUSE_MS: u64 = 250;

/// What every client shares.
#[derive(Debug)]
pub struct Shared {
    pub http: reqwest::Client,
    /// The nodes to talk to (slot, base URL): the current members.
    pub pool: Pool,
    pub keys: Vec<String>,
    /// Time zero of the run.
    pub t0: Instant,
    pub seed: u64,
    pub timeout: Duration,
    pub think_ms: u64,
    pub resolve_fraction: f64,
    /// The clients' read consistency: "linearizable", or "serializable" to check that
    /// the checker catches the stale reads that mode allows.
    pub reads: String,
    next_id: AtomicU64,
}

impl Shared {
    pub fn new(
        urls: Vec<String>,
        keys: usize,
        seed: u64,
        timeout: Duration,
        think_ms: u64,
        resolve_fraction: f64,
        reads: &str,
    ) -> Result<Shared, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(500))
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(Shared {
            http,
            pool: Pool::new(urls.into_iter().enumerate().collect()),
            keys: (0..keys).map(|k| format!("{PREFIX}k{k}")).collect(),
            t0: Instant::now(),
            seed,
            timeout,
            think_ms,
            resolve_fraction,
            reads: reads.to_string(),
            next_id: AtomicU64::new(1),
        })
    }

    /// Microseconds since time zero.
    pub fn now_us(&self) -> u64 {
        self.t0.elapsed().as_micros() as u64
    }

    /// A fresh operation id.
    pub fn op_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// An HTTP answer, or why there was none.
#[derive(Debug)]
pub enum Answer {
    Response {
        status: StatusCode,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    },
    None(String),
}

/// The path and query of `call` on `key`.
pub fn path_of(key: &str, call: &Call, reads: &str) -> (Method, String, Option<Vec<u8>>) {
    match call {
        Call::Get => (
            Method::GET,
            format!("/v1/keys/{key}?consistency={reads}"),
            None,
        ),
        Call::Put { value, if_version } => (
            Method::PUT,
            match if_version {
                Some(v) => format!("/v1/keys/{key}?version={v}"),
                None => format!("/v1/keys/{key}"),
            },
            Some(value.clone().into_bytes()),
        ),
        Call::Delete { if_version } => (
            Method::DELETE,
            match if_version {
                Some(v) => format!("/v1/keys/{key}?version={v}"),
                None => format!("/v1/keys/{key}"),
            },
            None,
        ),
    }
}

/// Sends one request to the node at `base`.
pub async fn send(
    sh: &Shared,
    base: &str,
    key: &str,
    call: &Call,
    idempotency_key: Option<&str>,
) -> Answer {
    let (method, path, body) = path_of(key, call, &sh.reads);
    let mut req = sh
        .http
        .request(method, format!("{base}{path}"))
        .timeout(sh.timeout);
    if let Some(k) = idempotency_key {
        req = req.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Answer::None(reason_of(&e)),
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    match resp.bytes().await {
        Ok(b) => Answer::Response {
            status,
            headers,
            body: b.to_vec(),
        },
        Err(e) => Answer::None(reason_of(&e)),
    }
}

fn reason_of(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "connection".into()
    }
}

fn header_u64(h: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn json_u64(v: &serde_json::Value, field: &str) -> Option<u64> {
    v.get(field)?.as_u64()
}

/// Turns an answer into an outcome, holding it to the contract.
pub fn classify(call: &Call, answer: &Answer) -> Outcome {
    let (status, headers, body) = match answer {
        // No connection was made, so the request was never sent: certainly not applied.
        Answer::None(reason) if reason == "connect" => return Outcome::NotApplied { status: 0 },
        Answer::None(reason) => {
            return Outcome::Unknown {
                reason: reason.clone(),
            }
        }
        Answer::Response {
            status,
            headers,
            body,
        } => (*status, headers, body),
    };
    let code = status.as_u16();
    let text = || {
        String::from_utf8_lossy(body)
            .chars()
            .take(300)
            .collect::<String>()
    };
    let unexpected = || Outcome::Unexpected {
        status: code,
        body: text(),
    };
    let json = || serde_json::from_slice::<serde_json::Value>(body).ok();
    let error_code = || json().and_then(|j| j.get("error")?.as_str().map(str::to_string));
    match code {
        // 408: the server's deadline for the request head passed before it read the
        // request (a node stopped with the request in its socket); no handler ran.
        408 | 503 => return Outcome::NotApplied { status: code },
        504 => {
            return Outcome::Unknown {
                reason: "504".into(),
            }
        }
        _ => {}
    }
    match call {
        Call::Get => match code {
            200 => match (
                header_u64(headers, "x-concierge-version"),
                header_u64(headers, "x-concierge-mod-revision"),
                String::from_utf8(body.clone()),
            ) {
                (Some(version), Some(mod_revision), Ok(value)) => Outcome::Found {
                    value,
                    version,
                    mod_revision,
                },
                _ => unexpected(),
            },
            404 if error_code().as_deref() == Some("key_not_found") => Outcome::NotFound,
            _ => unexpected(),
        },
        Call::Put { .. } => match (code, json()) {
            (200 | 201, Some(j)) => match (json_u64(&j, "version"), json_u64(&j, "mod_revision")) {
                (Some(version), Some(mod_revision)) if (code == 201) == (version == 1) => {
                    Outcome::Written {
                        version,
                        mod_revision,
                    }
                }
                _ => unexpected(),
            },
            (412, Some(j)) => match json_u64(&j, "current_version") {
                Some(current_version) => Outcome::Mismatch { current_version },
                None => unexpected(),
            },
            _ => unexpected(),
        },
        Call::Delete { .. } => match (code, json()) {
            (200, Some(j)) => match (json_u64(&j, "deleted"), json_u64(&j, "revision")) {
                (Some(1), Some(revision)) => Outcome::Deleted { revision },
                _ => unexpected(),
            },
            (404, _) if error_code().as_deref() == Some("key_not_found") => Outcome::NotFound,
            (412, Some(j)) => match json_u64(&j, "current_version") {
                Some(current_version) => Outcome::Mismatch { current_version },
                None => unexpected(),
            },
            _ => unexpected(),
        },
    }
}

/// Performs `call` on `key` through `target` (slot, base URL) and records it; with
/// `idempotency_key`, retries an unknown outcome on random members to learn it.
pub async fn perform(
    sh: &Shared,
    rng: &mut Rng,
    client: u32,
    target: (usize, String),
    key: &str,
    call: Call,
    idempotency_key: Option<String>,
) -> Op {
    let (node, base) = target;
    let id = sh.op_id();
    let invoke_us = sh.now_us();
    let mut outcome = classify(
        &call,
        &send(sh, &base, key, &call, idempotency_key.as_deref()).await,
    );
    let mut complete_us = sh.now_us();
    let mut attempts = 1;
    if let Some(ikey) = &idempotency_key {
        let started = Instant::now();
        while matches!(outcome, Outcome::Unknown { .. })
            && attempts < RESOLVE_ATTEMPTS_MAX
            && started.elapsed() < Duration::from_millis(RESOLVE_MS_MAX)
        {
            tokio::time::sleep(Duration::from_millis(RESOLVE_PAUSE_MS)).await;
            attempts += 1;
            let (_, again_base) = sh.pool.pick(rng);
            let again = send(sh, &again_base, key, &call, Some(ikey)).await;
            let o = classify(&call, &again);
            complete_us = sh.now_us();
            match o {
                // The retry was not applied; the first attempt may still be.
                Outcome::NotApplied { .. } => {}
                o => outcome = o,
            }
        }
    }
    let complete_us = match outcome {
        Outcome::Unknown { .. } | Outcome::Unexpected { .. } => None,
        _ => Some(complete_us),
    };
    let op = Op {
        id,
        client,
        node,
        key: key.to_string(),
        call,
        invoke_us,
        complete_us,
        outcome,
        attempts,
    };
    op.assert_valid();
    op
}

/// One client's loop until `deadline`: returns its operations.
pub async fn run_client(sh: Arc<Shared>, client: u32, deadline: Instant) -> Vec<Op> {
    let mut rng = Rng::new(sh.seed, 1000 + u64::from(client));
    let mut seen_version: HashMap<usize, u64> = HashMap::new();
    let mut ops = Vec::new();
    let mut seq = 0u64;
    while Instant::now() < deadline {
        seq += 1;
        let k = rng.index(sh.keys.len());
        let key = sh.keys.get(k).cloned().unwrap_or_default();
        let target = sh.pool.pick(&mut rng);
        let guess = {
            let v = seen_version.get(&k).copied().unwrap_or(0);
            match rng.below(10) {
                0 => v + 1,
                1 => v.saturating_sub(1),
                _ => v,
            }
        };
        let value = format!("c{client}-{seq}");
        let roll = rng.below(100);
        let call = if roll < 35 {
            Call::Get
        } else if roll < 60 {
            Call::Put {
                value,
                if_version: None,
            }
        } else if roll < 80 {
            Call::Put {
                value,
                if_version: Some(guess),
            }
        } else if roll < 90 {
            Call::Delete { if_version: None }
        } else {
            Call::Delete {
                if_version: Some(guess.max(1)),
            }
        };
        let ikey = (call.is_write() && rng.chance(sh.resolve_fraction))
            .then(|| format!("nemesis-{}-{client}-{seq}", sh.seed));
        let op = perform(&sh, &mut rng, client, target, &key, call, ikey).await;
        match &op.outcome {
            Outcome::Found { version, .. } | Outcome::Written { version, .. } => {
                seen_version.insert(k, *version);
            }
            Outcome::Mismatch { current_version } => {
                seen_version.insert(k, *current_version);
            }
            Outcome::NotFound | Outcome::Deleted { .. } => {
                seen_version.insert(k, 0);
            }
            _ => {}
        }
        ops.push(op);
        if sh.think_ms > 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(sh.think_ms + 1))).await;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::{classify, Answer};
    use crate::history::{Call, Outcome};
    use reqwest::header::{HeaderMap, HeaderValue};
    use reqwest::StatusCode;

    fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Answer {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        Answer::Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: h,
            body: body.as_bytes().to_vec(),
        }
    }

    fn put() -> Call {
        Call::Put {
            value: "v".into(),
            if_version: None,
        }
    }

    #[test]
    fn answers_map_to_outcomes_per_the_contract() {
        assert_eq!(
            classify(&put(), &Answer::None("connect".into())),
            Outcome::NotApplied { status: 0 }
        );
        assert!(matches!(
            classify(&put(), &Answer::None("timeout".into())),
            Outcome::Unknown { .. }
        ));
        assert!(matches!(
            classify(&put(), &answer(504, &[], "")),
            Outcome::Unknown { .. }
        ));
        assert_eq!(
            classify(&put(), &answer(503, &[], r#"{"error":"no_quorum"}"#)),
            Outcome::NotApplied { status: 503 }
        );
        assert_eq!(
            classify(&put(), &answer(408, &[], "")),
            Outcome::NotApplied { status: 408 }
        );
        assert_eq!(
            classify(
                &put(),
                &answer(201, &[], r#"{"version":1,"mod_revision":7}"#)
            ),
            Outcome::Written {
                version: 1,
                mod_revision: 7
            }
        );
        // 201 is for a create only.
        assert!(matches!(
            classify(
                &put(),
                &answer(201, &[], r#"{"version":2,"mod_revision":7}"#)
            ),
            Outcome::Unexpected { .. }
        ));
        assert_eq!(
            classify(
                &put(),
                &answer(
                    412,
                    &[],
                    r#"{"error":"version_mismatch","current_version":3}"#
                )
            ),
            Outcome::Mismatch { current_version: 3 }
        );
        assert!(matches!(
            classify(&put(), &answer(500, &[], "{}")),
            Outcome::Unexpected { .. }
        ));
        let get = Call::Get;
        assert_eq!(
            classify(
                &get,
                &answer(
                    200,
                    &[
                        ("x-concierge-version", "2"),
                        ("x-concierge-mod-revision", "9")
                    ],
                    "abc"
                )
            ),
            Outcome::Found {
                value: "abc".into(),
                version: 2,
                mod_revision: 9
            }
        );
        assert_eq!(
            classify(&get, &answer(404, &[], r#"{"error":"key_not_found"}"#)),
            Outcome::NotFound
        );
        // A 404 that is not about the key (an unknown route) breaks the contract.
        assert!(matches!(
            classify(&get, &answer(404, &[], r#"{"error":"not_found"}"#)),
            Outcome::Unexpected { .. }
        ));
        let delete = Call::Delete {
            if_version: Some(1),
        };
        assert_eq!(
            classify(&delete, &answer(200, &[], r#"{"deleted":1,"revision":12}"#)),
            Outcome::Deleted { revision: 12 }
        );
    }
}
