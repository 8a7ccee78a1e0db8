//! The watch follower: one SSE stream (`GET /v1/watch?prefix=nemesis/`) from revision 1,
//! followed through faults by reconnecting to a random node with `Last-Event-ID` when
//! the stream ends, errs, or stays silent for [`STALL_MS`] (a partitioned or paused node
//! sends nothing). Every received event is kept in arrival order, so `checks.rs` can
//! verify order, gaps and duplicates across reconnects.

use crate::client::{Shared, PREFIX};
use crate::rng::Rng;
use base64::Engine;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Silence after which the follower reconnects elsewhere.
pub const STALL_MS: u64 = 3_000;
/// Deadline for a watch request's headers.
pub const CONNECT_MS: u64 = 2_000;
/// Pause before reconnecting.
pub const RECONNECT_PAUSE_MS: u64 = 100;
/// Bytes of one SSE line, at most (a value here is tens of bytes).
pub const LINE_BYTES_MAX: usize = 1 << 20;

/// One change as the watch reported it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    /// The event's `mod_revision`.
    pub revision: u64,
    /// "put" or "delete".
    pub kind: String,
    pub key: String,
    pub value: Option<String>,
    pub version: u64,
    /// The `id:` of the frame, if it carried one.
    pub id: Option<u64>,
    /// When it arrived (µs since time zero) and from which node (from 0).
    pub at_us: u64,
    pub node: usize,
}

/// Everything the follower saw.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct WatchLog {
    pub events: Vec<WatchEvent>,
    pub connections: u32,
    /// Connections that ended with an `event: error` frame, a refused request or a
    /// frame that does not parse.
    pub errors: Vec<String>,
    /// Set when a resume was answered 410 `compacted`.
    pub compacted: Option<String>,
    /// The last `id:` received.
    pub last_id: u64,
}

#[derive(Default)]
struct Frame {
    id: Option<u64>,
    event: Option<String>,
    data: String,
}

fn parse_event(data: &str, id: Option<u64>, at_us: u64, node: usize) -> Result<WatchEvent, String> {
    let v: serde_json::Value =
        serde_json::from_str(data).map_err(|e| format!("event data {data:?}: {e}"))?;
    let field = |name: &str| v.get(name).and_then(serde_json::Value::as_u64);
    let value = match v.get("value").and_then(serde_json::Value::as_str) {
        Some(b64) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| format!("event value {b64:?}: {e}"))?,
        ),
        None => None,
    };
    Ok(WatchEvent {
        revision: field("mod_revision").ok_or(format!("no mod_revision in {data}"))?,
        kind: v
            .get("type")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_string(),
        key: v
            .get("key")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("?")
            .to_string(),
        value,
        version: field("version").unwrap_or(0),
        id,
        at_us,
        node,
    })
}

enum End {
    Again,
    Stop,
}

/// Reads one connection until it ends, stalls or `stop` is set.
async fn follow_once(
    sh: &Shared,
    (node, base): (usize, String),
    log: &mut WatchLog,
    stop: &mut watch::Receiver<bool>,
    progress: &AtomicU64,
) -> End {
    let mut req = sh.http.get(format!("{base}/v1/watch?prefix={PREFIX}"));
    req = if log.last_id == 0 {
        sh.http
            .get(format!("{base}/v1/watch?prefix={PREFIX}&from_revision=1"))
    } else {
        req.header("Last-Event-ID", log.last_id.to_string())
    };
    log.connections += 1;
    let resp = match tokio::time::timeout(Duration::from_millis(CONNECT_MS), req.send()).await {
        Ok(Ok(r)) => r,
        _ => return End::Again,
    };
    let status = resp.status().as_u16();
    if status == 410 {
        let body = resp.text().await.unwrap_or_default();
        log.compacted = Some(body);
        return End::Stop;
    }
    if status != 200 {
        if status != 503 {
            log.errors
                .push(format!("n{}: watch answered {status}", node + 1));
        }
        return End::Again;
    }
    let mut stream = resp.bytes_stream();
    let mut line: Vec<u8> = Vec::new();
    let mut frame = Frame::default();
    loop {
        let chunk = tokio::select! {
            c = tokio::time::timeout(Duration::from_millis(STALL_MS), stream.next()) => c,
            _ = stop.changed() => return End::Stop,
        };
        let bytes = match chunk {
            Ok(Some(Ok(b))) => b,
            _ => return End::Again,
        };
        for &b in bytes.iter() {
            if b != b'\n' {
                if line.len() < LINE_BYTES_MAX {
                    line.push(b);
                }
                continue;
            }
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            line.clear();
            if text.is_empty() {
                let f = std::mem::take(&mut frame);
                if f.data.is_empty() {
                    continue;
                }
                if f.event.as_deref() == Some("error") {
                    log.errors
                        .push(format!("n{}: error event {}", node + 1, f.data));
                    return End::Again;
                }
                match parse_event(&f.data, f.id, sh.now_us(), node) {
                    Ok(ev) => {
                        log.events.push(ev);
                        if let Some(id) = f.id {
                            log.last_id = id;
                            progress.store(id, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        log.errors.push(format!("n{}: {e}", node + 1));
                        return End::Again;
                    }
                }
            } else if text.starts_with(':') {
                // A progress comment.
            } else if let Some(v) = text.strip_prefix("id:") {
                frame.id = v.trim().parse().ok();
            } else if let Some(v) = text.strip_prefix("event:") {
                frame.event = Some(v.trim().to_string());
            } else if let Some(v) = text.strip_prefix("data:") {
                if !frame.data.is_empty() {
                    frame.data.push('\n');
                }
                frame.data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
    }
}

/// Follows the prefix until `stop` turns true, publishing the last revision received
/// in `progress`.
pub async fn follow(
    sh: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    progress: Arc<AtomicU64>,
) -> WatchLog {
    let mut rng = Rng::new(sh.seed, 7);
    let mut log = WatchLog::default();
    while !*stop.borrow() {
        let target = sh.pool.pick(&mut rng);
        if let End::Stop = follow_once(&sh, target, &mut log, &mut stop, &progress).await {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)) => {}
            _ = stop.changed() => break,
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::parse_event;

    #[test]
    fn events_parse() {
        let ev = parse_event(
            r#"{"type":"put","key":"nemesis/k1","value":"YWI=","version":2,"create_revision":1,"mod_revision":7,"session":null}"#,
            Some(7),
            5,
            1,
        )
        .unwrap();
        assert_eq!(ev.revision, 7);
        assert_eq!(ev.value.as_deref(), Some("ab"));
        let del = parse_event(
            r#"{"type":"delete","key":"nemesis/k1","value":null,"version":0,"create_revision":1,"mod_revision":8,"session":null}"#,
            Some(8),
            5,
            1,
        )
        .unwrap();
        assert_eq!(del.kind, "delete");
        assert!(del.value.is_none());
    }
}
