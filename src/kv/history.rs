//! The bounded history of changes, kept for watches.
//!
//! Each revision's events are one record `h/<revision>`. After appending, the oldest
//! records are dropped while more than `history_revisions_max` revisions or more than
//! `history_bytes_max` bytes are held, always keeping the newest revision. Invariant:
//! history holds exactly revisions `compact_revision + 1 ..= revision`; a watch from an
//! older revision is answered `compacted`.

use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::keyspace::{self, Event};
use crate::kv::options::KvOptions;

/// Records `events` as revision `ctx.meta.revision` (already bumped) and trims.
pub(crate) fn append(ctx: &mut Ctx<'_>, events: &[Event], opts: &KvOptions) -> Result<(), KvError> {
    let revision = ctx.meta.revision;
    let bytes = keyspace::encode(&events);
    ctx.meta.history_bytes += bytes.len() as u64;
    let hk = ctx.area.history_key(revision);
    ctx.overlay.put(hk, bytes);
    while ctx.meta.compact_revision + 1 < revision
        && (revision - ctx.meta.compact_revision > opts.history_revisions_max
            || ctx.meta.history_bytes > opts.history_bytes_max)
    {
        let oldest = ctx.meta.compact_revision + 1;
        let hk = ctx.area.history_key(oldest);
        let len = ctx.overlay.get(&hk)?.map_or(0, |b| b.len() as u64);
        ctx.overlay.delete(hk);
        ctx.meta.history_bytes = ctx.meta.history_bytes.saturating_sub(len);
        ctx.meta.compact_revision = oldest;
    }
    Ok(())
}
