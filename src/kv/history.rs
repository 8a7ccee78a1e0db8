//! The bounded history of changes, kept for watches.
//!
//! Each revision's events are one record `h/<revision>`, or several for a command
//! applied in chunks (`kv::chunked`): part 0 at `h/<revision>`, part p at
//! `h/<revision>/<p>`, each holding one chunk's events, so no record (and no read of
//! one) is larger than a chunk. After a command's last part, if more than
//! `history_revisions_max` revisions or more than `history_bytes_max` bytes are held,
//! the oldest revisions are dropped (every part of each) until neither is, and at
//! least a batch of them ([`trim_batch`]), always keeping the newest revision: a trim
//! is one scan of the Db per batch of revisions, not one per put.
//! Invariant: between commands, history holds exactly revisions
//! `compact_revision + 1 ..= revision`; a watch from an older revision is answered
//! `compacted`. `compact` (`Command::Compact`) drops history below a revision on
//! request, like etcd's compaction. Inside a chunked command the parts written so far
//! belong to `revision + 1`, which no reader sees before the command ends (`kv::read`).

use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::keyspace::{self, Event};
use crate::kv::options::KvOptions;
use crate::kv::outcome::Outcome;
use std::ops::Bound;

/// History records read at once while dropping a revision.
const DROP_SCAN_RECORDS_MAX: usize = 64;
/// About the most history bytes read at once while dropping a revision.
const DROP_SCAN_BYTES_MAX: usize = 1 << 20;

/// Records `events` as part `part` of `revision` (no trimming).
pub(crate) fn append_part(ctx: &mut Ctx<'_>, revision: u64, part: u32, events: &[Event]) {
    let bytes = keyspace::encode(&events);
    ctx.meta.history_bytes += bytes.len() as u64;
    let hk = ctx.area.history_part_key(revision, part);
    ctx.overlay.put(hk, bytes);
}

/// The fewest revisions a trim drops when `held` revisions are held: each trim opens a
/// scan of the Db, and opening one cost more than the put that asked for it (a 3-node
/// put load dropping one revision per put: 7% of the leader's apply thread in perf). A
/// batch is at most one scan ([`DROP_SCAN_RECORDS_MAX`] records) and a sixteenth of what
/// is held, so a trim keeps at least 15/16 of what the limits allow.
pub(crate) fn trim_batch(held: u64) -> u64 {
    (DROP_SCAN_RECORDS_MAX as u64).min(held / 16)
}

/// Records `events` (if any) as part `part`, the last, of revision `ctx.meta.revision`
/// (already bumped) and trims.
pub(crate) fn append(
    ctx: &mut Ctx<'_>,
    events: &[Event],
    part: u32,
    opts: &KvOptions,
) -> Result<(), KvError> {
    let revision = ctx.meta.revision;
    if !events.is_empty() {
        append_part(ctx, revision, part, events);
    }
    let held = revision - ctx.meta.compact_revision;
    if held <= opts.history_revisions_max && ctx.meta.history_bytes <= opts.history_bytes_max {
        return Ok(());
    }
    // Over a limit: the count rule drops every revision up to `revision -
    // history_revisions_max`, the batch at least `trim_batch` of them; the cursor reads
    // that far at once. The bytes rule may drop more, read one at a time.
    let first_kept = revision
        .saturating_sub(opts.history_revisions_max)
        .saturating_add(1)
        .max(ctx.meta.compact_revision + 1 + trim_batch(held))
        .min(revision);
    let mut cursor = TrimCursor::new(first_kept);
    while ctx.meta.compact_revision + 1 < revision
        && (ctx.meta.compact_revision + 1 < first_kept
            || ctx.meta.history_bytes > opts.history_bytes_max)
    {
        let oldest = ctx.meta.compact_revision + 1;
        cursor.drop_revision(ctx, oldest)?;
        ctx.meta.compact_revision = oldest;
    }
    Ok(())
}

/// Applies `Command::Compact`: drops the history of every revision below `revision`, so
/// history holds `revision ..= current` (`compact_revision` becomes `revision - 1`).
/// Refused, changing nothing, when `revision` is above the current revision (etcd:
/// "required revision is a future revision") or at or below the oldest revision held
/// (etcd: "required revision has been compacted"). At most `history_revisions_max`
/// revisions are ever held, so one compaction deletes a bounded number of records.
pub(crate) fn compact(ctx: &mut Ctx<'_>, revision: u64) -> Result<Outcome, KvError> {
    let current = ctx.meta.revision;
    let oldest = ctx.meta.compact_revision + 1;
    if revision > current {
        return Ok(Outcome::Rejected {
            reason: format!(
                "required revision {revision} is a future revision (current revision {current})"
            ),
        });
    }
    if revision <= oldest {
        return Ok(Outcome::Rejected {
            reason: format!(
                "required revision {revision} has been compacted: history starts at revision \
                 {oldest} (compact_revision {})",
                ctx.meta.compact_revision
            ),
        });
    }
    let mut cursor = TrimCursor::new(revision);
    let mut dropped = 0;
    while ctx.meta.compact_revision + 1 < revision {
        let next = ctx.meta.compact_revision + 1;
        cursor.drop_revision(ctx, next)?;
        ctx.meta.compact_revision = next;
        dropped += 1;
    }
    Ok(Outcome::Compacted {
        compact_revision: ctx.meta.compact_revision,
        dropped,
    })
}

/// The history records of the revisions a trim drops, read in key (so revision) order
/// a bounded batch at a time by one cursor, however many revisions it drops: a seek
/// per dropped revision cost 6 to 11 µs each, the cursor under 4
/// (`cargo bench --bench history_trim`). It reads no record of a revision it keeps: a
/// put that drops one revision reads that revision's record, not a batch of the
/// records after it (reading 64 records, values and all, to drop one was half the
/// apply thread's time under a put load).
struct TrimCursor {
    /// Records read and not yet dropped, in key order.
    batch: std::collections::VecDeque<(Vec<u8>, Vec<u8>)>,
    /// The last key read; None before the first read.
    after: Option<Vec<u8>>,
    /// The first revision not read: records read stop before its first key.
    upper_revision: u64,
    /// The records below `upper_revision` were all read.
    exhausted: bool,
}

impl TrimCursor {
    /// A cursor that reads the records of revisions below `first_kept`, and further
    /// only as `drop_revision` asks for more.
    fn new(first_kept: u64) -> TrimCursor {
        TrimCursor {
            batch: std::collections::VecDeque::new(),
            after: None,
            upper_revision: first_kept,
            exhausted: false,
        }
    }

    /// The next record not yet dropped, reading a batch when none is left.
    fn peek(&mut self, ctx: &mut Ctx<'_>, from_revision: u64) -> Result<Option<u64>, KvError> {
        if self.batch.is_empty() && !self.exhausted {
            let first = ctx.area.history_key(from_revision);
            let upper = ctx.area.history_key(self.upper_revision);
            let from = self
                .after
                .as_deref()
                .map_or(Bound::Included(first.as_slice()), Bound::Excluded);
            let found = ctx.overlay.scan_bounded(
                from,
                Bound::Excluded(upper.as_slice()),
                DROP_SCAN_RECORDS_MAX,
                DROP_SCAN_BYTES_MAX,
            )?;
            ctx.history_records_read += found.len() as u64;
            let read: usize = found.iter().map(|(k, v)| k.len() + v.len()).sum();
            self.exhausted = found.len() < DROP_SCAN_RECORDS_MAX && read < DROP_SCAN_BYTES_MAX;
            if let Some((last, _)) = found.last() {
                self.after = Some(last.clone());
            }
            self.batch.extend(found);
        }
        match self.batch.front() {
            Some((hk, _)) => Ok(Some(keyspace::history_part_of(hk)?.0)),
            None => Ok(None),
        }
    }

    /// Deletes every part of `revision`'s history (the oldest held: records are read
    /// from it on).
    fn drop_revision(&mut self, ctx: &mut Ctx<'_>, revision: u64) -> Result<(), KvError> {
        if revision >= self.upper_revision {
            self.upper_revision = revision + 1;
            self.exhausted = false;
        }
        while self.peek(ctx, revision)? == Some(revision) {
            if let Some((hk, bytes)) = self.batch.pop_front() {
                ctx.meta.history_bytes = ctx.meta.history_bytes.saturating_sub(bytes.len() as u64);
                ctx.overlay.delete(hk);
            }
        }
        Ok(())
    }
}
