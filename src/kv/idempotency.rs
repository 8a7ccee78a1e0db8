//! Applying idempotent commands: each idempotency key's first reply is kept, with the
//! fingerprint of the request it answered, and given back to retries of that request
//! instead of applying them again; the key used for another request is refused
//! ([`Outcome::IdempotencyKeyReused`], 422) and changes nothing.
//!
//! **The clock.** Records live [`IDEMPOTENCY_RETENTION_MS`] on the idempotency clock
//! (`Meta::idempotency_clock_ms`), which the state machine keeps without reading a
//! clock of its own. Rule: only stamps of the leader move it, and only by the time
//! that leader's wall clock says passed between two of its stamps, at most
//! [`IDEMPOTENCY_CLOCK_STEP_MS_MAX`] per step:
//! - a stamp carries the proposer's ballot when it proposed as the leader
//!   (`Command::Idempotent::leader`, `Command::LeaderClock`); a follower's stamp
//!   (`leader: None`) is ignored;
//! - a ballot lower than the one driving the clock is ignored; a higher one takes the
//!   clock over from its first stamp, which only sets its base (clocks of two nodes are
//!   never compared, so skew between nodes moves nothing);
//! - the same ballot advances the clock by `stamp - previous stamp`, clamped to
//!   `0..=IDEMPOTENCY_CLOCK_STEP_MS_MAX` (a step of the leader's clock, a pause or a
//!   leaderless gap counts at most that much).
//!
//! So the clock never runs faster than the leader's real time, and slower only across
//! gaps: records are kept at least the retention. The leader proposes
//! `Command::LeaderClock` while records are held (`crate::server::clock`), so the clock
//! moves even when every write comes through followers. A record is stamped with the
//! clock when it is written; as the clock can lag real time by one step, a record is
//! retired only once the clock passed `stamp + retention + step`, by up to
//! [`IDEMPOTENCY_RETIRE_MAX`] per idempotent command and
//! [`IDEMPOTENCY_CLOCK_RETIRE_MAX`] per leader clock, oldest first through a time
//! index.
//!
//! **Records.** Format 2 (this file): format byte 2, then MessagePack of (stamp,
//! fingerprint, reply). Format 1 (the first release, `keyspace::IdempotencyRecord`,
//! format byte 1): (stamp, reply) with no fingerprint; such a record, left by a node
//! before its upgrade, is treated as matching a request whose command could have given
//! its reply (a put for a put's reply, a delete for a delete's, any command for a
//! failure) and as reused otherwise: never a replay of a reply the handler cannot
//! answer with. A retry answers the stored reply with its original revision.

use crate::kv::command::{Command, LeaderBallot};
use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::fingerprint::{self, Fingerprint};
use crate::kv::keyspace::{self, IdempotencyRecord, Meta, RECORD_FORMAT};
use crate::kv::outcome::{Outcome, Reply};
use serde::{Deserialize, Serialize};

/// How long a first reply is kept at least (API.md: 10 minutes).
pub const IDEMPOTENCY_RETENTION_MS: u64 = 10 * 60 * 1000;
/// Most the idempotency clock moves for one stamp of the leader.
pub const IDEMPOTENCY_CLOCK_STEP_MS_MAX: u64 = 15_000;
/// Records retired per idempotent command at most (bounds the work of one apply).
pub const IDEMPOTENCY_RETIRE_MAX: usize = 64;
/// Records retired per `LeaderClock` at most.
pub const IDEMPOTENCY_CLOCK_RETIRE_MAX: usize = 1024;
/// Longest idempotency key accepted.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 128;
/// Format byte of the records this release writes.
pub const RECORD_FORMAT_FINGERPRINTED: u8 = 2;
const _: () = assert!(RECORD_FORMAT_FINGERPRINTED != RECORD_FORMAT);
const _: () = assert!(IDEMPOTENCY_CLOCK_STEP_MS_MAX < IDEMPOTENCY_RETENTION_MS);

/// A stored record, either format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// The idempotency clock when it was written.
    pub stamp_ms: u64,
    /// None for a format 1 record.
    pub fingerprint: Option<Fingerprint>,
    pub reply: Reply,
}

#[derive(Serialize, Deserialize)]
struct Fingerprinted {
    stamp_ms: u64,
    fingerprint: u128,
    reply: Reply,
}

/// The stored bytes of a record (always format 2).
pub(crate) fn encode_record(stamp_ms: u64, fingerprint: Fingerprint, reply: Reply) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT_FINGERPRINTED];
    let body = Fingerprinted {
        stamp_ms,
        fingerprint: fingerprint.0,
        reply,
    };
    if let Err(e) = rmp_serde::encode::write(&mut out, &body) {
        unreachable!("encoding a record into memory failed: {e}");
    }
    out
}

/// Decodes a record of either format stored under `storage_key`.
pub(crate) fn decode_record(storage_key: &[u8], bytes: &[u8]) -> Result<Record, KvError> {
    match bytes.split_first() {
        Some((&RECORD_FORMAT_FINGERPRINTED, body)) => {
            let r: Fingerprinted = rmp_serde::from_slice(body).map_err(|e| {
                KvError::corrupt(storage_key, format!("undecodable idempotency record: {e}"))
            })?;
            Ok(Record {
                stamp_ms: r.stamp_ms,
                fingerprint: Some(Fingerprint(r.fingerprint)),
                reply: r.reply,
            })
        }
        Some((&RECORD_FORMAT, _)) => {
            let r: IdempotencyRecord = keyspace::decode(storage_key, bytes)?;
            Ok(Record {
                stamp_ms: r.stamp_ms,
                fingerprint: None,
                reply: r.reply,
            })
        }
        Some((b, _)) => Err(KvError::corrupt(
            storage_key,
            format!("unknown idempotency record format byte {b}"),
        )),
        None => Err(KvError::corrupt(storage_key, "empty record".into())),
    }
}

/// Applies one stamp of the clock rule (see the module doc). Returns false when the
/// stamp was ignored (a stale leader's).
pub(crate) fn advance_clock(meta: &mut Meta, ballot: LeaderBallot, stamp_ms: u64) -> bool {
    let ballot = (ballot.round, ballot.node);
    if ballot < meta.idempotency_clock_ballot {
        return false;
    }
    if ballot > meta.idempotency_clock_ballot {
        meta.idempotency_clock_ballot = ballot;
        meta.idempotency_leader_stamp_ms = stamp_ms;
        return true;
    }
    let step = stamp_ms
        .saturating_sub(meta.idempotency_leader_stamp_ms)
        .min(IDEMPOTENCY_CLOCK_STEP_MS_MAX);
    meta.idempotency_clock_ms = meta.idempotency_clock_ms.saturating_add(step);
    meta.idempotency_leader_stamp_ms = meta.idempotency_leader_stamp_ms.max(stamp_ms);
    true
}

/// Records stamped before this are past their window.
fn horizon(meta: &Meta) -> u64 {
    meta.idempotency_clock_ms
        .saturating_sub(IDEMPOTENCY_RETENTION_MS + IDEMPOTENCY_CLOCK_STEP_MS_MAX)
}

/// Retires up to `max` records past the horizon, oldest first; returns how many.
fn retire(ctx: &mut Ctx<'_>, max: usize) -> Result<u64, KvError> {
    let horizon = horizon(&ctx.meta);
    let prefix = ctx.area.idempotency_time_prefix();
    // The scan is bounded by the records old enough to go (and the cap).
    let mut end = prefix.clone();
    end.extend_from_slice(&horizon.to_be_bytes());
    let old = ctx.overlay.scan_range(&prefix, &end, max)?;
    let mut retired = 0;
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
            if decode_record(&rk, &bytes)?.stamp_ms < horizon {
                ctx.overlay.delete(rk);
                retired += 1;
            }
        }
    }
    Ok(retired)
}

/// Whether `outcome` is a reply `command` could have been given (for format 1 records,
/// which carry no fingerprint).
fn reply_fits(command: &Command, outcome: &Outcome) -> bool {
    match outcome {
        Outcome::VersionMismatch { .. }
        | Outcome::KeyNotFound
        | Outcome::SessionNotFound
        | Outcome::Rejected { .. } => true,
        Outcome::Put { .. } => {
            matches!(command, Command::Put { .. } | Command::PutSequential { .. })
        }
        Outcome::Deleted { .. } => {
            matches!(
                command,
                Command::Delete { .. } | Command::DeletePrefix { .. }
            )
        }
        Outcome::Txn { .. } => matches!(command, Command::Txn { .. }),
        Outcome::SessionCreated { .. } => matches!(command, Command::CreateSession { .. }),
        Outcome::SessionClosed { .. } => matches!(command, Command::CloseSession { .. }),
        _ => false,
    }
}

/// Applies the non-idempotent command inside an idempotent one.
pub(crate) type ApplyInner = fn(&mut Ctx<'_>, Command) -> Result<Outcome, KvError>;

/// The first half of `Command::Idempotent`: moves the clock (a leader's stamp), retires
/// old records, and answers a retry (the first reply), a reused key or an inner command
/// that cannot be made idempotent. None: apply `inner`, then [`record`] its outcome.
pub(crate) fn begin(
    ctx: &mut Ctx<'_>,
    key: &str,
    stamp_ms: u64,
    leader: Option<LeaderBallot>,
    inner: &Command,
) -> Result<Option<Outcome>, KvError> {
    if matches!(
        inner,
        Command::Idempotent { .. } | Command::ExpireSessions { .. } | Command::LeaderClock { .. }
    ) {
        return Ok(Some(Outcome::Rejected {
            reason: "this command cannot be made idempotent".into(),
        }));
    }
    if let Some(ballot) = leader {
        advance_clock(&mut ctx.meta, ballot, stamp_ms);
    }
    retire(ctx, IDEMPOTENCY_RETIRE_MAX)?;
    let fingerprint = fingerprint::of(inner);
    let rk = ctx.area.idempotency_key(key);
    if let Some(bytes) = ctx.overlay.get(&rk)? {
        let rec = decode_record(&rk, &bytes)?;
        if rec.stamp_ms >= horizon(&ctx.meta) {
            let same = match rec.fingerprint {
                Some(f) => f == fingerprint,
                None => reply_fits(inner, &rec.reply.outcome),
            };
            return Ok(Some(if same {
                Outcome::Replayed(Box::new(rec.reply))
            } else {
                Outcome::IdempotencyKeyReused
            }));
        }
    }
    Ok(None)
}

/// The second half of `Command::Idempotent`: keeps `outcome`, what `inner` gave, as the
/// key's first reply. `changed`: whether `inner` changed keys (then its revision is the
/// next one, which its finish takes).
pub(crate) fn record(
    ctx: &mut Ctx<'_>,
    key: &str,
    inner: &Command,
    outcome: &Outcome,
    changed: bool,
) {
    let revision = ctx.meta.revision + u64::from(changed);
    let stamp_ms = ctx.meta.idempotency_clock_ms;
    let reply = Reply {
        revision,
        outcome: outcome.clone(),
    };
    let rk = ctx.area.idempotency_key(key);
    ctx.overlay
        .put(rk, encode_record(stamp_ms, fingerprint::of(inner), reply));
    let tk = ctx.area.idempotency_time_key(stamp_ms, key);
    ctx.overlay.put(tk, Vec::new());
}

/// Applies `Command::Idempotent` whole: [`begin`], then `inner` through `apply_inner`,
/// then [`record`].
pub(crate) fn apply(
    ctx: &mut Ctx<'_>,
    key: &str,
    stamp_ms: u64,
    leader: Option<LeaderBallot>,
    inner: Command,
    apply_inner: ApplyInner,
) -> Result<Outcome, KvError> {
    if let Some(answer) = begin(ctx, key, stamp_ms, leader, &inner)? {
        return Ok(answer);
    }
    let outcome = apply_inner(ctx, inner.clone())?;
    let changed = !ctx.events.is_empty();
    record(ctx, key, &inner, &outcome, changed);
    Ok(outcome)
}

/// Applies `Command::LeaderClock`.
pub(crate) fn apply_leader_clock(
    ctx: &mut Ctx<'_>,
    ballot: LeaderBallot,
    stamp_ms: u64,
) -> Result<Outcome, KvError> {
    if !advance_clock(&mut ctx.meta, ballot, stamp_ms) {
        let (round, node) = ctx.meta.idempotency_clock_ballot;
        return Ok(Outcome::Rejected {
            reason: format!(
                "clock of ballot ({}, {}) older than ({round}, {node})",
                ballot.round, ballot.node
            ),
        });
    }
    let retired = retire(ctx, IDEMPOTENCY_CLOCK_RETIRE_MAX)?;
    Ok(Outcome::ClockAdvanced { retired })
}

#[cfg(test)]
#[path = "idempotency_tests.rs"]
mod tests;
