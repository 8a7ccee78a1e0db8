//! The requests the harness makes itself, outside the workload: waiting for readiness,
//! asking who leads, probing for recovery with writes, the final reads and the final
//! listing. Each loop is bounded in time; every write and read it makes is recorded in
//! the history like a client's, so the checker covers it.

use crate::checks::Listed;
use crate::client::{self, Shared, PREFIX};
use crate::cluster::Cluster;
use crate::history::{Call, Op, Outcome, PROBE_CLIENT};
use crate::rng::Rng;
use base64::Engine;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a recovery probe, a final read or the listing keeps trying, ms.
pub const PROBE_MS_MAX: u64 = 60_000;

/// Waits until every node of `targets` (slot, base URL) answers /ready 200; Err(slot)
/// names the first that did not within `limit`.
pub async fn wait_ready(
    sh: &Shared,
    targets: &[(usize, String)],
    limit: Duration,
) -> Result<(), usize> {
    let start = Instant::now();
    for (i, base) in targets {
        let i = *i;
        loop {
            let url = format!("{base}/ready");
            let ok = sh
                .http
                .get(url)
                .timeout(Duration::from_millis(500))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ok {
                break;
            }
            if start.elapsed() > limit {
                return Err(i);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// The leader's slot as some running, unpaused member reports it.
pub async fn leader(sh: &Shared, cluster: &Cluster) -> Option<usize> {
    for (i, node) in cluster.nodes.iter().enumerate() {
        if !node.is_running() || node.is_paused() || !node.is_member() {
            continue;
        }
        let url = format!("{}/v1/cluster", cluster.url(i));
        let Ok(resp) = sh
            .http
            .get(url)
            .timeout(Duration::from_millis(300))
            .send()
            .await
        else {
            continue;
        };
        let Ok(v) = resp.json::<serde_json::Value>().await else {
            continue;
        };
        if let Some(id) = v.get("leader_id").and_then(serde_json::Value::as_u64) {
            if let Some(slot) = cluster.slot_of(id) {
                return Some(slot);
            }
        }
    }
    None
}

/// Writes to the probe key through random nodes until one write is acknowledged;
/// every attempt goes into the history. Returns the attempts and the time from `start`
/// to the acknowledgement.
pub async fn probe_write(
    sh: Arc<Shared>,
    seed_stream: u64,
    tag: &'static str,
    start: Instant,
) -> (Vec<Op>, Option<Duration>) {
    let mut rng = Rng::new(sh.seed, seed_stream);
    let mut ops = Vec::new();
    let sh = &*sh;
    let rng = &mut rng;
    let key = format!("{PREFIX}probe");
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(PROBE_MS_MAX) {
        n += 1;
        let call = Call::Put {
            value: format!("probe-{tag}-{n}"),
            if_version: None,
        };
        let target = sh.pool.pick(rng);
        let op = client::perform(sh, rng, PROBE_CLIENT, target, &key, call, None).await;
        let ok = matches!(op.outcome, Outcome::Written { .. });
        ops.push(op);
        if ok {
            return (ops, Some(start.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (ops, None)
}

/// Reads each key (and the probe key) with a linearizable get until answered.
pub async fn final_reads(sh: &Shared, rng: &mut Rng, ops: &mut Vec<Op>) -> Vec<Op> {
    let mut keys = sh.keys.clone();
    keys.push(format!("{PREFIX}probe"));
    let mut out = Vec::new();
    for key in keys {
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(PROBE_MS_MAX) {
            let target = sh.pool.pick(rng);
            let op = client::perform(sh, rng, PROBE_CLIENT, target, &key, Call::Get, None).await;
            let done = op.outcome.is_definite();
            ops.push(op.clone());
            if done {
                out.push(op);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    out
}

/// The final listing of the prefix and its revision.
pub async fn listing(sh: &Shared, rng: &mut Rng) -> Option<(Vec<Listed>, u64)> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(PROBE_MS_MAX) {
        let (_, base) = sh.pool.pick(rng);
        let url = format!("{base}/v1/keys?prefix={PREFIX}&limit=10000");
        if let Ok(resp) = sh.http.get(url).timeout(sh.timeout).send().await {
            if resp.status().as_u16() == 200 {
                let v: serde_json::Value = resp.json().await.ok()?;
                let revision = v.get("revision")?.as_u64()?;
                let mut out = Vec::new();
                for e in v.get("entries")?.as_array()? {
                    let value = base64::engine::general_purpose::STANDARD
                        .decode(e.get("value")?.as_str()?)
                        .ok()?;
                    out.push(Listed {
                        key: e.get("key")?.as_str()?.to_string(),
                        value: String::from_utf8_lossy(&value).into_owned(),
                        version: e.get("version")?.as_u64()?,
                        mod_revision: e.get("mod_revision")?.as_u64()?,
                    });
                }
                return Some((out, revision));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
