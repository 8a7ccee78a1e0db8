//! Applying idempotent commands: each idempotency key's first reply is kept and given
//! back to retries instead of applying them again.
//!
//! Records live `IDEMPOTENCY_RETENTION_MS` measured on the proposers' clocks as
//! carried in the commands (the state machine reads no clock): the meta keeps the
//! highest stamp seen, and each idempotent command retires up to
//! `IDEMPOTENCY_RETIRE_MAX` records older than that minus the retention, oldest first
//! through a time index. A retry answers the stored reply (with its original revision)
//! and changes nothing else.

use crate::kv::command::Command;
use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::keyspace::{self, IdempotencyRecord};
use crate::kv::outcome::{Outcome, Reply};

/// How long a first reply is kept (API.md: 10 minutes).
pub const IDEMPOTENCY_RETENTION_MS: u64 = 10 * 60 * 1000;
/// Records retired per idempotent command at most (bounds the work of one apply).
pub const IDEMPOTENCY_RETIRE_MAX: usize = 64;
/// Longest idempotency key accepted.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 128;

/// What applying an idempotent command produced.
pub(crate) enum Idempotent {
    /// A retry: the stored reply, nothing applied.
    Replay(Reply),
    /// First time: apply `inner`, then [`record`] its reply.
    Apply(Box<Command>),
}

fn retire(ctx: &mut Ctx<'_>) -> Result<(), KvError> {
    let horizon = ctx
        .meta
        .idempotency_clock_ms
        .saturating_sub(IDEMPOTENCY_RETENTION_MS);
    let prefix = ctx.area.idempotency_time_prefix();
    // The scan is bounded by the records old enough to go (and the cap).
    let mut end = prefix.clone();
    end.extend_from_slice(&horizon.to_be_bytes());
    let old = ctx
        .overlay
        .scan_range(&prefix, &end, IDEMPOTENCY_RETIRE_MAX)?;
    for (tk, _) in old {
        let key = tk
            .get(prefix.len() + 8..)
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or_else(|| KvError::corrupt(&tk, "bad idempotency time index key".into()))?
            .to_string();
        ctx.overlay.delete(tk);
        let rk = ctx.area.idempotency_key(&key);
        // Only if the record is still the one this index entry points at.
        if let Some(bytes) = ctx.overlay.get(&rk)? {
            let rec: IdempotencyRecord = keyspace::decode(&rk, &bytes)?;
            if rec.stamp_ms < horizon {
                ctx.overlay.delete(rk);
            }
        }
    }
    Ok(())
}

/// Looks an idempotency key up (retiring old records first).
pub(crate) fn begin(
    ctx: &mut Ctx<'_>,
    key: &str,
    stamp_ms: u64,
    inner: Box<Command>,
) -> Result<Idempotent, KvError> {
    ctx.meta.idempotency_clock_ms = ctx.meta.idempotency_clock_ms.max(stamp_ms);
    retire(ctx)?;
    let rk = ctx.area.idempotency_key(key);
    if let Some(bytes) = ctx.overlay.get(&rk)? {
        let rec: IdempotencyRecord = keyspace::decode(&rk, &bytes)?;
        let horizon = ctx
            .meta
            .idempotency_clock_ms
            .saturating_sub(IDEMPOTENCY_RETENTION_MS);
        if rec.stamp_ms >= horizon {
            return Ok(Idempotent::Replay(rec.reply));
        }
    }
    Ok(Idempotent::Apply(inner))
}

/// Stores the first reply to `key`.
pub(crate) fn record(
    ctx: &mut Ctx<'_>,
    key: &str,
    stamp_ms: u64,
    outcome: &Outcome,
    revision: u64,
) {
    let rec = IdempotencyRecord {
        stamp_ms,
        reply: Reply {
            revision,
            outcome: outcome.clone(),
        },
    };
    let rk = ctx.area.idempotency_key(key);
    ctx.overlay.put(rk, keyspace::encode(&rec));
    let tk = ctx.area.idempotency_time_key(stamp_ms, key);
    ctx.overlay.put(tk, Vec::new());
}
