//! `GET /v1/watch`: a Server-Sent Events stream of the changes to one key or a prefix.
//!
//! The handler checks the request (a key or a prefix as keys are checked; revisions
//! below 2^63), answers 410 `compacted` for a start older than the retained history,
//! and opens a [`WatchStream`] (`kv::watch`: history first, then live events from the
//! hub, in revision order with no gaps and no duplicates). This file only turns its
//! items into SSE: one `data:` frame per event, `id: <revision>` on the last event of
//! each revision (so a resume never skips part of a revision), `: progress <revision>`
//! comments after [`PROGRESS_EVERY`] of this stream's silence, and an `error` event
//! when the watcher fell behind the retained history, which ends the stream.

use crate::http::auth::Caller;
use crate::http::headers::REVISION;
use crate::http::validate::{validate_key, Query};
use crate::http::{ApiError, AppState};
use crate::kv::auth::Grants;
pub use crate::kv::hub::Filter;
use crate::kv::hub::{Batch, TooManyWatchers};
pub use crate::kv::watch::PROGRESS_EVERY;
use crate::kv::watch::{WatchItem, WatchStream};
use crate::kv::{Event, EventKind};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bytes::Bytes;
use serde_json::json;

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

/// The frames of revisions, the last event of each with the id (a batch that does not
/// end its revision has no id: a later batch ends it).
/// The frames of `batches`, with only the events `grants` may read; the `id:` line goes
/// on the last event shown of a complete batch.
fn batch_frames(batches: &[Batch], grants: &Grants) -> String {
    let mut out = String::new();
    for b in batches {
        let shown: Vec<&std::sync::Arc<Event>> = b
            .events
            .iter()
            .filter(|e| grants.can_read(&e.key))
            .collect();
        let last = shown.len().saturating_sub(1);
        for (i, e) in shown.into_iter().enumerate() {
            out.push_str(&event_frame(e, b.complete && i == last));
        }
    }
    out
}

/// The SSE text of one item.
fn item_frames(item: &WatchItem, grants: &Grants) -> String {
    match item {
        WatchItem::Events(batches) => batch_frames(batches, grants),
        WatchItem::Progress(revision) => format!(": progress {revision}\n\n"),
        WatchItem::Compacted(compact_revision) => {
            let data = json!({
                "error": "compacted",
                "message": "the watcher fell behind the retained history",
                "compact_revision": compact_revision,
            });
            format!("event: error\ndata: {data}\n\n")
        }
    }
}

/// The SSE body of a watch.
pub(crate) fn changes(
    stream: WatchStream,
    grants: Grants,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    futures_util::stream::unfold((stream, grants), |(mut s, grants)| async move {
        let item = match s.next_item().await? {
            Ok(item) => Ok(Bytes::from(item_frames(&item, &grants))),
            Err(e) => {
                tracing::error!(error = %e, "watch history read failed");
                Err(actix_web::error::ErrorInternalServerError(e.to_string()))
            }
        };
        Some((item, (s, grants)))
    })
}

/// `GET /v1/watch?key=K | prefix=P [&from_revision=R]`.
pub async fn watch(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let query = Query::of(&req)?;
    let filter = match (query.get("key")?, query.get("prefix")?) {
        (Some(k), None) => {
            validate_key(k)?;
            caller.read(k)?;
            Filter::Key(k.to_string())
        }
        (None, Some(p)) => {
            // A prefix is checked as a key is, except that it may be empty (every key).
            if !p.is_empty() {
                validate_key(p)?;
            }
            // A prefix the token can read nothing of is refused; else events are filtered.
            caller.read_some(p)?;
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
    let stream = WatchStream::open(&state.reader, filter, next).map_err(
        |TooManyWatchers { watchers_max }| {
            ApiError::NotReady(format!(
                "this node already serves its limit of {watchers_max} watchers; retry later or on another node"
            ))
        },
    )?;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header((REVISION, meta.revision))
        .streaming(changes(stream, caller.0)))
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
