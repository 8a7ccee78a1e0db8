//! `WatchStream`: one watch's changes in revision order, with no gap and no duplicate:
//! first from the history (a start in the past), then live from the hub.
//!
//! Opening registers the watcher with the hub first, at revision M; everything up to M
//! is in the history and every matching revision above M arrives in the inbox. The
//! stream reads the history from its start while `next <= M` (bounded reads: at most
//! [`HISTORY_PIECES_PER_READ`] pieces and about [`HISTORY_BYTES_PER_READ`] bytes; a
//! revision of a command applied in chunks is several pieces and may span reads),
//! then drains the inbox, skipping revisions below `next` (those the history already
//! gave). When the inbox overflowed (a slow reader) or the state jumped (a snapshot
//! install), the stream resyncs: the hub empties the inbox and names a new M, and the
//! stream reads the history from `next` to M again. If the history no longer holds
//! `next`, the stream ends with [`WatchItem::Compacted`].
//!
//! A watch that sent nothing for [`PROGRESS_EVERY`] (its own silence: changes of keys it
//! does not follow do not count) yields [`WatchItem::Progress`]. Invariant: `next` is
//! the lowest revision not yet delivered nor known to hold nothing for this watch
//! (`next_part` saying how much of it was).

use crate::kv::error::KvError;
use crate::kv::hub::{Batch, Drained, Filter, Subscription, TooManyWatchers};
use crate::kv::keyspace::Event;
use crate::kv::read::{KvReader, PiecesRead};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Silence after which a watch reports progress.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Most history pieces (a revision, or one part of a big command's revision) one
/// history read decodes.
pub const HISTORY_PIECES_PER_READ: usize = 64;
/// About the most event bytes one history read decodes (at least one piece; a piece is
/// at most one chunk of a command, about `slot_batch_bytes_max`).
pub const HISTORY_BYTES_PER_READ: usize = 4 << 20;
/// About the most event bytes one item carries (at least one revision).
pub const ITEM_BYTES_MAX: usize = 1 << 20;

/// What a watch yields next.
#[derive(Debug)]
pub enum WatchItem {
    /// The events this watch matches, in revision order: whole revisions, but a
    /// revision stored in several parts may come in several batches, all but the last
    /// with `complete` false.
    Events(Vec<Batch>),
    /// Nothing sent for [`PROGRESS_EVERY`]; the node has applied through this revision.
    Progress(u64),
    /// The history no longer holds the next revision (older ones were dropped through
    /// this one); the stream ends.
    Compacted(u64),
}

/// One watch's stream of changes.
pub struct WatchStream {
    reader: KvReader,
    sub: Subscription,
    /// The next revision to deliver.
    next: u64,
    /// The part of revision `next` the history read goes on from (0 but inside a
    /// revision stored in several parts).
    next_part: u32,
    /// The last matching event read from a part that did not end its revision: sent
    /// with the next part's (the revision's last event for this watch carries its id).
    held: Option<Arc<Event>>,
    /// While set, read the history until `next` passes it.
    catch_up_to: Option<u64>,
    /// The highest revision this stream read through (delivered, or known to hold
    /// nothing for it); progress never reports less.
    seen: u64,
    /// When this stream last yielded anything.
    last_sent: Instant,
    done: bool,
}

impl WatchStream {
    /// A watch following `filter` from revision `next` (events with `mod_revision >=
    /// next`).
    pub fn open(reader: &KvReader, filter: Filter, next: u64) -> Result<Self, TooManyWatchers> {
        let (sub, at) = reader.hub().subscribe(filter)?;
        let next = next.max(1);
        Ok(WatchStream {
            reader: reader.clone(),
            sub,
            next,
            next_part: 0,
            held: None,
            catch_up_to: (next <= at).then_some(at),
            seen: 0,
            last_sent: Instant::now(),
            done: false,
        })
    }

    /// The next item, or None once the stream ended.
    pub async fn next_item(&mut self) -> Option<Result<WatchItem, KvError>> {
        let item = self.step().await;
        match &item {
            Some(Ok(WatchItem::Compacted(_))) | Some(Err(_)) | None => self.done = true,
            Some(Ok(_)) => self.last_sent = Instant::now(),
        }
        item
    }

    async fn step(&mut self) -> Option<Result<WatchItem, KvError>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(mark) = self.catch_up_to {
                if self.next > mark {
                    self.catch_up_to = None;
                    continue;
                }
                match self.read_history(mark) {
                    Ok(Some(item)) => return Some(Ok(item)),
                    Ok(None) => {
                        // Nothing of ours in that stretch; let other streams run.
                        tokio::task::yield_now().await;
                        continue;
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            let progress_at = self.sub.revision();
            match self.sub.drain(ITEM_BYTES_MAX) {
                Drained::Lagged => {
                    self.catch_up_to = Some(self.sub.resync());
                    continue;
                }
                Drained::Batches(batches) => {
                    let fresh: Vec<Batch> = batches
                        .into_iter()
                        .filter(|b| b.revision >= self.next)
                        .collect();
                    if let Some(last) = fresh.last() {
                        self.next = last.revision + 1;
                        self.seen = last.revision;
                        return Some(Ok(WatchItem::Events(fresh)));
                    }
                }
            }
            let due = self.last_sent + PROGRESS_EVERY;
            tokio::select! {
                biased; // a queued event goes before a progress comment
                () = self.sub.woken() => {}
                () = tokio::time::sleep_until(due) => {
                    return Some(Ok(WatchItem::Progress(progress_at.max(self.seen))));
                }
            }
        }
    }

    /// One bounded history read from `next` (part `next_part`): the matching events,
    /// None if there were none, or `Compacted`. A revision stored in several parts may
    /// end between two reads; the last matching event of a part that does not end its
    /// revision is held back (`held`) until the next part says whether it is the
    /// revision's last for this watch, which alone carries the revision's id.
    fn read_history(&mut self, mark: u64) -> Result<Option<WatchItem>, KvError> {
        let read = self.reader.history_pieces(
            self.next,
            self.next_part,
            HISTORY_PIECES_PER_READ,
            HISTORY_BYTES_PER_READ,
        )?;
        let pieces = match read {
            PiecesRead::Compacted { compact_revision } => {
                return Ok(Some(WatchItem::Compacted(compact_revision)));
            }
            PiecesRead::Pieces { pieces, .. } => pieces,
        };
        if pieces.is_empty() {
            // Storage holds every published revision, so this cannot happen while
            // `next <= mark`; go live rather than spin.
            tracing::warn!(
                next = self.next,
                mark,
                "history ends before the hub's revision"
            );
            self.catch_up_to = None;
            return Ok(None);
        }
        let mut batches: Vec<Batch> = Vec::new();
        for piece in pieces {
            let filter = self.sub.filter();
            let mut events: Vec<Arc<Event>> = self.held.take().into_iter().collect();
            events.extend(
                piece
                    .events
                    .into_iter()
                    .filter(|e| filter.matches(&e.key))
                    .map(Arc::new),
            );
            if piece.last {
                self.next = piece.revision + 1;
                self.next_part = 0;
                self.seen = piece.revision;
            } else {
                self.held = events.pop();
                self.next = piece.revision;
                self.next_part = piece.part + 1;
            }
            if !events.is_empty() {
                batches.push(Batch {
                    revision: piece.revision,
                    events,
                    complete: piece.last,
                });
            }
        }
        Ok((!batches.is_empty()).then_some(WatchItem::Events(batches)))
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
