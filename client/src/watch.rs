//! Watches as a [`Stream`] of events that survives dropped connections and dead nodes.
//!
//! The stream keeps `next`, the first revision it has not delivered. A connection asks
//! for `from_revision = next` (a watch without a start pins `next` to the revision the
//! first answer reflects, plus one, so a reconnect before the first event loses
//! nothing). Events are held until their revision is whole (its last event carries
//! `id:`), then delivered and `next` moves past it; a connection lost mid-revision
//! drops the partial revision, and the next connection, to the next endpoint in the
//! list, sends it whole again. A connection silent for `watch_idle_timeout` (the server
//! sends a progress comment after 10 s of silence) is taken as dead.
//!
//! Invariant: delivered revisions strictly increase, and every revision at or above the
//! start that holds a matching event is delivered whole: no gap, no duplicate. A server
//! answer that would break this (an event below `next`, a revision ended without an id)
//! ends the stream with `Error::Protocol`. The stream ends only with an error: 410
//! `compacted`, a refusal (4xx), or no endpoint for `watch_reconnect_deadline`.

use crate::client::Client;
use crate::encode::query;
use crate::error::Error;
use crate::sse::{Frame, Parser};
use crate::types::decode_base64;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::time::Instant;

/// Largest SSE frame accepted: one event with a value at the server's 1 MiB default
/// in base64 fits many times over.
const FRAME_BYTES_MAX: usize = 16 << 20;

/// What a watch follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchOptions {
    key: Option<String>,
    prefix: Option<String>,
    from_revision: Option<u64>,
}

impl WatchOptions {
    /// One key.
    pub fn key(key: impl Into<String>) -> WatchOptions {
        WatchOptions {
            key: Some(key.into()),
            prefix: None,
            from_revision: None,
        }
    }

    /// Every key starting with `prefix` ("" for every key).
    pub fn prefix(prefix: impl Into<String>) -> WatchOptions {
        WatchOptions {
            key: None,
            prefix: Some(prefix.into()),
            from_revision: None,
        }
    }

    /// Start at this revision (events with `mod_revision >= revision`); default: the
    /// revision after the one the first connection reflects.
    pub fn from_revision(mut self, revision: u64) -> WatchOptions {
        self.from_revision = Some(revision);
        self
    }
}

/// A change's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Put,
    Delete,
}

/// One change of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub key: String,
    /// The new value of a put; None for a delete.
    pub value: Option<Bytes>,
    pub version: u64,
    pub create_revision: u64,
    /// The revision of the change (several events may share one).
    pub mod_revision: u64,
    pub session: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: EventKind,
    key: String,
    value: Option<String>,
    version: u64,
    create_revision: u64,
    mod_revision: u64,
    session: Option<String>,
}

/// Where a watch stands, shared with its handle.
#[derive(Clone, Debug, Default)]
struct Position {
    next: Option<u64>,
    endpoint: Option<String>,
    connections: u64,
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A watch: a stream of `Result<Event, Error>` (an `Err` is its last item).
pub struct WatchStream {
    inner: Pin<Box<dyn Stream<Item = Result<Event, Error>> + Send>>,
    position: Arc<Mutex<Position>>,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("position", &self.position())
            .finish()
    }
}

impl WatchStream {
    fn position(&self) -> Position {
        self.position
            .lock()
            .map(|p| p.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The endpoint serving the watch now (None before the first connection).
    pub fn endpoint(&self) -> Option<String> {
        self.position().endpoint
    }

    /// The first revision not yet delivered (None before the first connection of a
    /// watch without a start).
    pub fn next_revision(&self) -> Option<u64> {
        self.position().next
    }

    /// How many connections the watch has opened (1 + reconnects).
    pub fn connections(&self) -> u64 {
        self.position().connections
    }

    /// The next event, or the error that ends the watch (a stream that ends without
    /// one is a protocol error). Cancel-safe, as `StreamExt::next`.
    pub(crate) async fn next_event(&mut self) -> Result<Event, Error> {
        match self.next().await {
            Some(event) => event,
            None => Err(Error::Protocol {
                endpoint: String::new(),
                message: "a watch ended without an error".into(),
            }),
        }
    }
}

impl Stream for WatchStream {
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl Client {
    /// A watch (connects on the first poll).
    pub fn watch(&self, options: WatchOptions) -> WatchStream {
        let position = Arc::new(Mutex::new(Position {
            next: options.from_revision.map(|r| r.max(1)),
            ..Position::default()
        }));
        let driver = Driver::new(self.clone(), options, position.clone());
        let inner = futures_util::stream::unfold(driver, |mut d| async move {
            let item = d.next_event().await?;
            Some((item, d))
        });
        WatchStream {
            inner: Box::pin(inner),
            position,
        }
    }
}

/// The state behind a [`WatchStream`].
struct Driver {
    client: Client,
    options: WatchOptions,
    /// The endpoint in use, or to try next.
    index: usize,
    /// The first revision not delivered (invariant of the module).
    next: Option<u64>,
    body: Option<Body>,
    parser: Parser,
    /// Events of a revision whose last event has not arrived.
    partial: Vec<Event>,
    /// Whole revisions not yet handed out.
    ready: VecDeque<Event>,
    position: Arc<Mutex<Position>>,
    /// The error that ends the stream, handed out after the whole revisions before it.
    failure: Option<Error>,
    done: bool,
}

impl Driver {
    fn new(client: Client, options: WatchOptions, position: Arc<Mutex<Position>>) -> Driver {
        Driver {
            index: client.transport.preferred(),
            next: options.from_revision.map(|r| r.max(1)),
            client,
            options,
            body: None,
            parser: Parser::new(FRAME_BYTES_MAX),
            partial: Vec::new(),
            ready: VecDeque::new(),
            position,
            failure: None,
            done: false,
        }
    }

    fn publish(&self, endpoint: Option<String>, new_connection: bool) {
        let mut p = self.position.lock().unwrap_or_else(|p| p.into_inner());
        p.next = self.next;
        if endpoint.is_some() {
            p.endpoint = endpoint;
        }
        if new_connection {
            p.connections += 1;
        }
    }

    fn endpoint(&self) -> String {
        self.client.transport.endpoints[self.index].clone()
    }

    /// Leaves the connection: a partial revision will come again whole.
    fn disconnect(&mut self, why: &str) {
        tracing::debug!(endpoint = %self.endpoint(), why, "watch reconnects");
        self.body = None;
        self.parser.reset();
        self.partial.clear();
        self.index = (self.index + 1) % self.client.transport.endpoints.len();
    }

    /// Ends the stream with `e`, after the whole revisions already taken.
    fn fail(&mut self, e: Error) {
        self.failure = Some(e);
        self.body = None;
    }

    async fn next_event(&mut self) -> Option<Result<Event, Error>> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(Ok(e));
            }
            if let Some(e) = self.failure.take() {
                self.done = true;
                return Some(Err(e));
            }
            if self.done {
                return None;
            }
            if self.body.is_none() {
                if let Err(e) = self.connect().await {
                    self.fail(e);
                    continue;
                }
            }
            let Some(body) = self.body.as_mut() else {
                continue;
            };
            let idle = self.client.config().watch_idle_timeout;
            match tokio::time::timeout(idle, body.next()).await {
                Err(_) => self.disconnect("silent for the idle timeout"),
                Ok(None) => self.disconnect("the stream ended"),
                Ok(Some(Err(e))) => self.disconnect(&format!("the stream broke: {e}")),
                Ok(Some(Ok(chunk))) => {
                    self.parser.push(&chunk);
                    if let Err(e) = self.take_frames() {
                        let endpoint = self.endpoint();
                        self.fail(Error::Protocol {
                            endpoint,
                            message: e,
                        });
                    }
                }
            }
        }
    }

    /// Handles every whole frame buffered.
    fn take_frames(&mut self) -> Result<(), String> {
        while let Some(frame) = self.parser.next_frame()? {
            match frame {
                Frame::Comment(_) => {}
                Frame::Event {
                    event: Some(name), ..
                } => {
                    // `error`: the server ended this watch (it fell behind the retained
                    // history). Reconnecting learns whether the history still holds
                    // `next` (a 410 ends the stream).
                    self.disconnect(&format!("the server sent an {name:?} event"));
                    return Ok(());
                }
                Frame::Event {
                    id,
                    event: None,
                    data,
                } => self.take_event(id, &data)?,
            }
        }
        Ok(())
    }

    fn take_event(&mut self, id: Option<u64>, data: &str) -> Result<(), String> {
        let raw: RawEvent = serde_json::from_str(data).map_err(|e| format!("event: {e}"))?;
        let event = Event {
            value: raw.value.as_deref().map(decode_base64).transpose()?,
            kind: raw.kind,
            key: raw.key,
            version: raw.version,
            create_revision: raw.create_revision,
            mod_revision: raw.mod_revision,
            session: raw.session,
        };
        let revision = event.mod_revision;
        let next = self.next.unwrap_or(0);
        if revision < next {
            return Err(format!(
                "event of revision {revision} on a stream resumed at {next}"
            ));
        }
        if let Some(first) = self.partial.first() {
            if first.mod_revision != revision {
                return Err(format!(
                    "revision {} ended without an id before revision {revision}",
                    first.mod_revision
                ));
            }
        }
        self.partial.push(event);
        if let Some(id) = id {
            if id != revision {
                return Err(format!("id {id} on an event of revision {revision}"));
            }
            self.ready.extend(self.partial.drain(..));
            self.next = Some(revision + 1);
            self.publish(None, false);
        }
        Ok(())
    }

    /// Opens a stream at `next` on the first endpoint that takes it.
    async fn connect(&mut self) -> Result<(), Error> {
        let config = self.client.config().clone();
        let n = self.client.transport.endpoints.len();
        let deadline = Instant::now() + config.watch_reconnect_deadline;
        let mut backoff = config.backoff_min;
        let mut failed_in_round = 0;
        loop {
            let endpoint = self.endpoint();
            let error = match self.open(&endpoint, config.attempt_timeout).await {
                Ok(()) => return Ok(()),
                Err((error, false)) => return Err(error),
                Err((error, true)) => error,
            };
            if Instant::now() >= deadline {
                return Err(error);
            }
            tracing::debug!(%endpoint, %error, "watch fails over");
            self.index = (self.index + 1) % n;
            failed_in_round += 1;
            if failed_in_round >= n {
                failed_in_round = 0;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.backoff_max);
            }
        }
    }

    /// One connection attempt; the error says whether another endpoint may do better.
    async fn open(
        &mut self,
        endpoint: &str,
        head_timeout: std::time::Duration,
    ) -> Result<(), (Error, bool)> {
        let mut pairs = Vec::new();
        if let Some(k) = &self.options.key {
            pairs.push(("key", k.clone()));
        }
        if let Some(p) = &self.options.prefix {
            pairs.push(("prefix", p.clone()));
        }
        if let Some(n) = self.next {
            pairs.push(("from_revision", n.to_string()));
        }
        let url = format!("{endpoint}/v1/watch{}", query(&pairs));
        // No total timeout: the stream is meant to last. Only its head is bounded.
        let sent = tokio::time::timeout(head_timeout, self.client.transport.http.get(&url).send());
        let unreachable = |message: String| {
            (
                Error::Unreachable {
                    message: format!("{endpoint}: {message}"),
                },
                true,
            )
        };
        let resp = match sent.await {
            Err(_) => return Err(unreachable("no answer to the watch request".into())),
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        if status != 200 {
            let body = match tokio::time::timeout(head_timeout, resp.bytes()).await {
                Ok(Ok(b)) => b,
                _ => Bytes::new(),
            };
            let error = Error::from_answer(status, &body, endpoint);
            // Another node may take it: 5xx (503: its watch limit, no leader), 408.
            let retry = status >= 500 || status == 408;
            return Err((error, retry));
        }
        if self.next.is_none() {
            // The stream starts after the revision this answer reflects.
            let revision = resp
                .headers()
                .get("x-concierge-revision")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    (
                        Error::Protocol {
                            endpoint: endpoint.to_string(),
                            message: "a watch answer without X-Concierge-Revision".into(),
                        },
                        false,
                    )
                })?;
            self.next = Some(revision + 1);
        }
        self.body = Some(Box::pin(resp.bytes_stream()));
        self.publish(Some(endpoint.to_string()), true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(key: &str, revision: u64, with_id: bool) -> String {
        let data = serde_json::json!({
            "type": "put", "key": key, "value": "dg==", "version": 1,
            "create_revision": revision, "mod_revision": revision, "session": null,
        });
        if with_id {
            format!("id: {revision}\ndata: {data}\n\n")
        } else {
            format!("data: {data}\n\n")
        }
    }

    fn driver(from: u64) -> Driver {
        let client =
            Client::connect(["127.0.0.1:1", "127.0.0.1:2"]).unwrap_or_else(|e| panic!("{e}"));
        let options = WatchOptions::prefix("").from_revision(from);
        Driver::new(client, options, Arc::default())
    }

    fn keys(d: &Driver) -> Vec<(String, u64)> {
        d.ready
            .iter()
            .map(|e| (e.key.clone(), e.mod_revision))
            .collect()
    }

    #[test]
    fn a_revision_is_delivered_only_whole_and_a_cut_one_comes_again_whole() {
        let mut d = driver(5);
        d.parser.push(frame("a", 5, true).as_bytes());
        d.parser.push(frame("b", 6, false).as_bytes());
        assert_eq!(d.take_frames(), Ok(()));
        assert_eq!(keys(&d), [("a".to_string(), 5)]);
        assert_eq!(d.next, Some(6));
        // The connection breaks inside revision 6: its first event is not delivered.
        d.disconnect("test");
        assert_eq!(d.index, 1);
        d.parser.push(frame("b", 6, false).as_bytes());
        d.parser.push(frame("c", 6, true).as_bytes());
        assert_eq!(d.take_frames(), Ok(()));
        assert_eq!(
            keys(&d),
            [
                ("a".to_string(), 5),
                ("b".to_string(), 6),
                ("c".to_string(), 6)
            ]
        );
        assert_eq!(d.next, Some(7));
    }

    #[test]
    fn answers_that_would_repeat_or_split_a_revision_are_refused() {
        // Below the resume point: a duplicate.
        let mut d = driver(7);
        d.parser.push(frame("a", 6, true).as_bytes());
        assert!(d.take_frames().is_err());
        // A revision that ends without its id before the next one begins.
        let mut d = driver(1);
        d.parser.push(frame("a", 2, false).as_bytes());
        d.parser.push(frame("b", 3, true).as_bytes());
        assert!(d.take_frames().is_err());
        // An id that is not the event's revision.
        let mut d = driver(1);
        d.parser
            .push(format!("id: 9\n{}", &frame("a", 2, false)).as_bytes());
        assert!(d.take_frames().is_err());
        // The server's error event: the driver leaves the connection, delivers nothing.
        let mut d = driver(1);
        d.parser.push(frame("a", 2, false).as_bytes());
        d.parser.push(b"event: error\ndata: {}\n\n");
        assert_eq!(d.take_frames(), Ok(()));
        assert!(d.ready.is_empty() && d.partial.is_empty());
    }
}
