//! `GET /v1/snapshot`: streams a backup (`docs/format-backup.md`) of the state this node
//! holds, without stopping writes.
//!
//! The node asked serves it (like etcd's `snapshot save`), after a read-index barrier by
//! default (`?consistency=linearizable`), so the backup holds every write acknowledged
//! before the request began; `?consistency=serializable` skips the barrier (a follower's
//! possibly older state). The backup is the storage snapshot readers see at that moment
//! (the last whole slot applied): writes go on while it streams, and none of them is in
//! it. A blocking task reads it chunk by chunk into a channel of
//! `BACKUP_PIECES_QUEUED_MAX` pieces (about 1 MiB each) that the response drains: a slow
//! client slows the reading, memory stays bounded, and a client that goes away stops it.
//! At most `BACKUPS_MAX` backups stream at once per node; one more answers 503.

use crate::http::auth::Caller;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use bytes::Bytes;

use crate::backup::writer::BackupWriter;
use crate::http::consensus::{read_barrier, wall_clock_ms};
use crate::http::validate::{consistency, Consistency, Query};
use crate::http::{ApiError, AppState};

/// Pieces (header, chunk frames, trailer) waiting for the client at most.
pub const BACKUP_PIECES_QUEUED_MAX: usize = 4;
/// Target bytes of one chunk of a backup.
pub const BACKUP_CHUNK_BYTES: usize = 1 << 20;
/// Backups one node streams at once at most.
pub const BACKUPS_MAX: usize = 2;

/// The node's `BACKUPS_MAX` places for streaming backups (one per node, in `AppState`).
#[derive(Debug, Default)]
pub struct BackupPlaces {
    running: Arc<AtomicUsize>,
}

impl BackupPlaces {
    /// One free place, held until the returned guard drops; `None` when all are taken.
    fn take(&self) -> Option<Place> {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < BACKUPS_MAX).then_some(n + 1)
            })
            .ok()
            .map(|_| Place(self.running.clone()))
    }
}

/// Holds one of the `BACKUPS_MAX` places until dropped.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `GET /v1/snapshot`.
pub async fn snapshot(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.cluster()?;
    let query = Query::of(&req)?;
    let mode = consistency(&query)?;
    let place = state.backups.take().ok_or_else(|| {
        ApiError::NotReady(format!(
            "{BACKUPS_MAX} backups are streaming from this node already"
        ))
    })?;
    if mode == Consistency::Linearizable {
        read_barrier(&state).await?;
    }
    let source = state.reader.snapshot(BACKUP_CHUNK_BYTES)?;
    let mut writer = BackupWriter::new(source, state.node.cluster_id(), wall_clock_ms());
    let header = writer.header();
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(BACKUP_PIECES_QUEUED_MAX);
    tokio::task::spawn_blocking(move || {
        let _place = place;
        loop {
            let piece = match writer.next_piece() {
                Ok(Some(p)) => Ok(p),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "a backup stream failed");
                    Err(std::io::Error::other(e.to_string()))
                }
            };
            let failed = piece.is_err();
            // An error here: the client went away; stop reading.
            if tx.blocking_send(piece).is_err() || failed {
                return;
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((crate::http::headers::REVISION, header.revision))
        .insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"concierge-{}.backup\"",
                header.revision
            ),
        ))
        .streaming(body))
}
