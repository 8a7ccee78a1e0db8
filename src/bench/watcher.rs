//! One watcher of a `watch` run: an SSE stream (`GET /v1/watch`, API.md) read as raw
//! bytes, each event's revision noted in its [`Seen`] and its delivery latency (from
//! the time stamped in the value by the writer to now) sent, in batches, to a shared
//! [`Sink`].
//!
//! A stream that breaks or that the server ends (an `event:` frame) is reopened at the
//! revision after the highest received, and counted; a refused request is counted by
//! its kind and retried after a pause. The watcher stops when told to ([`Phase::Stop`])
//! or once it has received the revision it is told to drain to.
//!
//! Invariant: the buffer of an unfinished frame stays within `FRAME_BYTES_MAX`; a
//! longer one is a broken stream, never unbounded memory.

use super::progress::Progress;
use super::rest::transport_kind;
use super::schedule::{Clock, TokioClock};
use super::seen::Seen;
use super::timeline::Recorder;
use base64::Engine;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use reqwest::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Largest unfinished frame kept (an event with a 1 MiB value in base64 fits).
const FRAME_BYTES_MAX: usize = 4 << 20;
/// Latencies a watcher keeps before it adds them to its sink.
const BATCH: usize = 256;
/// Pause before asking again after a refusal.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Where the run is, as the watchers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The writer is writing.
    Run,
    /// The writer is done: stop once this revision has come.
    Drain(u64),
    /// Stop now.
    Stop,
}

/// Where some watchers put their latencies (one lock per batch).
pub struct Sink {
    pub latency_us: Histogram<u64>,
    pub timeline: Option<Recorder>,
}

/// What a watcher shares with the run.
pub struct Shared {
    pub clock: Arc<TokioClock>,
    pub progress: Arc<Progress>,
    /// Watchers whose first stream was accepted.
    pub connected: AtomicU64,
}

/// What one watcher found.
#[derive(Debug, Default)]
pub struct WatcherResult {
    pub seen: Seen,
    /// Streams accepted (1 + reopened ones).
    pub streams: u64,
    /// Requests refused or failed, by kind (`http 503`, `connect`, ...).
    pub refusals: BTreeMap<String, u64>,
    /// Events whose value held no time stamp (not written by this run's writer).
    pub unstamped: u64,
    /// When the last event came.
    pub last_event_at: Duration,
}

/// One watcher's connection settings.
pub struct Watcher {
    pub http: reqwest::Client,
    /// `{base}/v1/watch?key=..` or `?prefix=..`, without `from_revision`.
    pub url: String,
    pub from: u64,
    pub sink: Arc<Mutex<Sink>>,
    pub shared: Arc<Shared>,
}

#[derive(Deserialize)]
struct RawEvent {
    mod_revision: u64,
    value: Option<String>,
}

/// The time stamp at the start of a value: microseconds since the run's start, as the
/// writer's [`stamp`] wrote it.
fn stamp_of(value: &str) -> Option<Duration> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    let digits = bytes.get(..STAMP_DIGITS)?;
    let text = std::str::from_utf8(digits).ok()?;
    text.parse::<u64>().ok().map(Duration::from_micros)
}

/// Digits of a time stamp.
pub const STAMP_DIGITS: usize = 20;

/// A value of `len` bytes (at least the stamp's digits) stamped with `at`.
pub fn stamp(at: Duration, len: usize) -> Vec<u8> {
    let mut v = format!("{:0w$}", at.as_micros(), w = STAMP_DIGITS).into_bytes();
    v.resize(len.max(STAMP_DIGITS), b'.');
    v
}

/// Why a stream stopped being read.
enum Ended {
    /// Reopen it.
    Broken,
    /// The run told the watcher to stop.
    Done,
}

struct State {
    result: WatcherResult,
    batch: Vec<(Duration, Duration)>,
}

impl Watcher {
    /// Runs until told to stop; returns what it received.
    pub async fn run(self, mut phase: watch::Receiver<Phase>) -> WatcherResult {
        let mut st = State {
            result: WatcherResult {
                seen: Seen::new(self.from),
                ..WatcherResult::default()
            },
            batch: Vec::with_capacity(BATCH),
        };
        loop {
            if self.finished(&st, *phase.borrow()) {
                break;
            }
            match self.stream(&mut st, &mut phase).await {
                Ended::Done => break,
                Ended::Broken => {}
            }
        }
        self.flush(&mut st);
        st.result
    }

    fn finished(&self, st: &State, phase: Phase) -> bool {
        match phase {
            Phase::Run => false,
            Phase::Drain(to) => st.result.seen.highest().is_some_and(|h| h >= to),
            Phase::Stop => true,
        }
    }

    /// Opens one stream and reads it until it breaks or the watcher is done.
    async fn stream(&self, st: &mut State, phase: &mut watch::Receiver<Phase>) -> Ended {
        let from = st.result.seen.highest().map_or(self.from, |h| h + 1);
        let request = self
            .http
            .get(format!("{}&from_revision={from}", self.url))
            .send();
        let response = tokio::select! {
            r = request => r,
            _ = wait_for_stop(phase) => return Ended::Done,
        };
        let response = match response {
            Ok(r) if r.status() == StatusCode::OK => r,
            other => {
                let kind = match other {
                    Ok(r) => format!("http {}", r.status().as_u16()),
                    Err(e) => transport_kind(&e),
                };
                *st.result.refusals.entry(kind).or_default() += 1;
                tokio::select! {
                    _ = tokio::time::sleep(RETRY_PAUSE) => return Ended::Broken,
                    _ = wait_for_stop(phase) => return Ended::Done,
                }
            }
        };
        st.result.streams += 1;
        if st.result.streams == 1 {
            self.shared.connected.fetch_add(1, Ordering::Relaxed);
        }
        let mut body = response.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            tokio::select! {
                chunk = body.next() => match chunk {
                    Some(Ok(bytes)) => {
                        buf.extend_from_slice(&bytes);
                        if !self.take_frames(st, &mut buf) {
                            return Ended::Broken;
                        }
                    }
                    Some(Err(_)) | None => return Ended::Broken,
                },
                changed = phase.changed() => {
                    if changed.is_err() {
                        return Ended::Done;
                    }
                }
            }
            if self.finished(st, *phase.borrow()) {
                return Ended::Done;
            }
        }
    }

    /// Handles every whole frame in `buf`; false when the stream must be reopened.
    fn take_frames(&self, st: &mut State, buf: &mut Vec<u8>) -> bool {
        let mut start = 0;
        let mut open = true;
        while let Some(end) = find_frame_end(&buf[start..]) {
            let frame = &buf[start..start + end];
            start += end + 2;
            if !self.take_frame(st, frame) {
                open = false;
                break;
            }
        }
        buf.drain(..start);
        open && buf.len() <= FRAME_BYTES_MAX
    }

    /// One frame; false when the server ended the stream or sent what is not SSE.
    fn take_frame(&self, st: &mut State, frame: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(frame) else {
            return false;
        };
        let mut data = None;
        for line in text.lines() {
            if line.starts_with("event:") {
                // `event: error`: the server ended this watch.
                return false;
            }
            if let Some(d) = line.strip_prefix("data:") {
                data = Some(d.trim_start());
            }
        }
        let Some(data) = data else {
            return true; // a comment (progress)
        };
        let Ok(event) = serde_json::from_str::<RawEvent>(data) else {
            return false;
        };
        let now = self.shared.clock.now();
        st.result.seen.add(event.mod_revision);
        st.result.last_event_at = now;
        match event.value.as_deref().and_then(stamp_of) {
            Some(at) => st.batch.push((now, now.saturating_sub(at))),
            None => st.result.unstamped += 1,
        }
        if st.batch.len() >= BATCH {
            self.flush(st);
        }
        true
    }

    fn flush(&self, st: &mut State) {
        if st.batch.is_empty() {
            return;
        }
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        for &(at, latency) in &st.batch {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            sink.latency_us.saturating_record(us.max(1));
            if let Some(r) = sink.timeline.as_mut() {
                r.record(at, latency);
            }
        }
        drop(sink);
        self.shared.progress.add_ok(st.batch.len() as u64);
        st.batch.clear();
    }
}

/// Where the first frame of `buf` ends (the index of its blank line's `\n\n`).
fn find_frame_end(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n")
}

/// Returns once the run says stop (or is gone).
async fn wait_for_stop(phase: &mut watch::Receiver<Phase>) {
    // An Err means the run dropped its sender: stop too.
    let _ = phase.wait_for(|p| *p == Phase::Stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_from_the_events_base64_value() {
        let v = stamp(Duration::from_micros(1_234_567), 64);
        assert_eq!(v.len(), 64);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&v);
        assert_eq!(stamp_of(&b64), Some(Duration::from_micros(1_234_567)));
        assert_eq!(stamp(Duration::ZERO, 4).len(), STAMP_DIGITS);
        assert_eq!(stamp_of("aGVsbG8="), None);
        assert_eq!(stamp_of("not base64!"), None);
    }

    #[test]
    fn frames_end_at_a_blank_line() {
        assert_eq!(find_frame_end(b"id: 3\ndata: {}\n\nda"), Some(14));
        assert_eq!(find_frame_end(b"data: {}\n"), None);
    }
}
