//! `GET /v1/watch`: a Server-Sent Events stream of the changes to one key or a prefix.
//!
//! The stream reads the state machine's history revision by revision, from
//! `from_revision` (or after `Last-Event-ID`, or from the next revision), so events come
//! in revision order with no gaps and no duplicates. With nothing new it waits on the
//! applied-revision channel, and every `PROGRESS_EVERY` in which this stream sent
//! nothing (writes to keys it does not follow do not count) it sends a comment
//! `: progress <revision>`. A start older than the retained history is 410
//! `compacted`; a watcher that falls behind the history mid-stream gets an `error`
//! event naming the compaction and the stream ends.

use crate::http::headers::REVISION;
use crate::http::validate::{validate_key, Query};
use crate::http::{ApiError, AppState};
use crate::kv::read::HistoryRead;
use crate::kv::{Event, EventKind, KvReader};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bytes::Bytes;
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;

/// Silence after which a progress comment is sent.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Revisions read from the history per step.
const REVISIONS_PER_READ: usize = 64;
/// The largest revision a client may name (API.md: a revision is a number below 2^63).
pub const REVISION_MAX: u64 = (1 << 63) - 1;

/// A revision a client named in `what`: a decimal number up to [`REVISION_MAX`].
/// A revision this node has not reached is fine (the stream waits for it): a client
/// resuming on a follower that lags the node it came from names one.
fn parse_revision(what: &str, text: &str) -> Result<u64, ApiError> {
    match text.trim().parse::<u64>() {
        Ok(r) if r <= REVISION_MAX => Ok(r),
        _ => Err(ApiError::BadRequest(format!(
            "{what} {text:?} is not a revision (a number below 2^63)"
        ))),
    }
}

/// Which keys a watch follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Key(String),
    Prefix(String),
}

impl Filter {
    fn matches(&self, key: &str) -> bool {
        match self {
            Filter::Key(k) => k == key,
            Filter::Prefix(p) => key.starts_with(p.as_str()),
        }
    }
}

/// One event in the SSE format of API.md; `with_id` only for the last event of its
/// revision on this stream, so a resume from an `id:` never skips part of a revision.
pub fn event_frame(e: &Event, with_id: bool) -> String {
    let data = json!({
        "type": match e.kind { EventKind::Put => "put", EventKind::Delete => "delete" },
        "key": e.key,
        "value": e.value.as_ref().map(|v| base64::engine::general_purpose::STANDARD.encode(v)),
        "version": e.version,
        "create_revision": e.create_revision,
        "mod_revision": e.mod_revision,
        "session": e.session.map(|s| s.to_string()),
    });
    if with_id {
        format!("id: {}\ndata: {data}\n\n", e.mod_revision)
    } else {
        format!("data: {data}\n\n")
    }
}

/// The frames of one revision's events that match `filter`, the last one with the id.
fn revision_frames(filter: &Filter, events: &[Event]) -> String {
    let matching: Vec<&Event> = events.iter().filter(|e| filter.matches(&e.key)).collect();
    let last = matching.len().saturating_sub(1);
    matching
        .iter()
        .enumerate()
        .map(|(i, e)| event_frame(e, i == last))
        .collect()
}

struct Watcher {
    reader: KvReader,
    filter: Filter,
    /// The next revision to deliver.
    next: u64,
    revisions: watch::Receiver<u64>,
    /// When this stream last sent anything: progress counts its own silence, not the
    /// cluster's (writes to other keys are not activity of this watch).
    last_sent: tokio::time::Instant,
    done: bool,
}

impl Watcher {
    /// The next chunk of the stream, or None at its end.
    async fn step(&mut self) -> Option<Result<Bytes, actix_web::Error>> {
        loop {
            if self.done {
                return None;
            }
            self.revisions.borrow_and_update();
            let read = match self.reader.history(self.next, REVISIONS_PER_READ) {
                Ok(r) => r,
                Err(e) => {
                    self.done = true;
                    return Some(Err(actix_web::error::ErrorInternalServerError(
                        e.to_string(),
                    )));
                }
            };
            match read {
                HistoryRead::Compacted { compact_revision } => {
                    self.done = true;
                    let data = json!({
                        "error": "compacted",
                        "message": "the watcher fell behind the retained history",
                        "compact_revision": compact_revision,
                    });
                    return Some(Ok(Bytes::from(format!("event: error\ndata: {data}\n\n"))));
                }
                HistoryRead::Events {
                    revisions,
                    revision,
                } => {
                    if let Some((last, _)) = revisions.last() {
                        self.next = last + 1;
                        let frames: String = revisions
                            .iter()
                            .map(|(_, events)| revision_frames(&self.filter, events))
                            .collect();
                        if !frames.is_empty() {
                            self.last_sent = tokio::time::Instant::now();
                            return Some(Ok(Bytes::from(frames)));
                        }
                        continue;
                    }
                    let due = self.last_sent + PROGRESS_EVERY;
                    match tokio::time::timeout_at(due, self.revisions.changed()).await {
                        Ok(Ok(())) => continue,
                        Ok(Err(_)) => {
                            // The state machine is gone: the node is shutting down.
                            self.done = true;
                            return None;
                        }
                        Err(_) => {
                            self.last_sent = tokio::time::Instant::now();
                            return Some(Ok(Bytes::from(format!(": progress {revision}\n\n"))));
                        }
                    }
                }
            }
        }
    }
}

/// `GET /v1/watch?key=K | prefix=P [&from_revision=R]`.
pub async fn watch(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let filter = match (query.get("key")?, query.get("prefix")?) {
        (Some(k), None) => {
            validate_key(k)?;
            Filter::Key(k.to_string())
        }
        (None, Some(p)) => {
            // A prefix is checked as a key is, except that it may be empty (every key).
            if !p.is_empty() {
                validate_key(p)?;
            }
            Filter::Prefix(p.to_string())
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of key= and prefix=".into(),
            ))
        }
    };
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .map(|v| {
            let text = v.to_str().map_err(|_| {
                ApiError::BadRequest("Last-Event-ID is not a revision (not ASCII)".into())
            })?;
            parse_revision("Last-Event-ID", text)
        })
        .transpose()?;
    let from_revision = query
        .get("from_revision")?
        .map(|r| parse_revision("from_revision", r))
        .transpose()?;
    let meta = state.reader.meta()?;
    let next = match (last_event_id, from_revision) {
        (Some(id), _) => id + 1,
        (None, Some(r)) => r.max(1),
        (None, None) => meta.revision + 1,
    };
    if next <= meta.compact_revision {
        return Err(ApiError::Compacted {
            compact_revision: meta.compact_revision,
        });
    }
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header((REVISION, meta.revision))
        .streaming(changes(state.reader.clone(), filter, next)))
}

/// The SSE body of a watch following `filter` from revision `next`.
pub(crate) fn changes(
    reader: KvReader,
    filter: Filter,
    next: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    let watcher = Watcher {
        revisions: reader.subscribe(),
        reader,
        filter,
        next,
        last_sent: tokio::time::Instant::now(),
        done: false,
    };
    futures_util::stream::unfold(watcher, |mut w| async move {
        w.step().await.map(|item| (item, w))
    })
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
