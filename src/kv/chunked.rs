//! Applying the commands whose size the command itself does not bound: a prefix delete
//! (`DeletePrefix`), a session close (`CloseSession`) and a session expiry
//! (`ExpireSessions`), alone or (the first two) inside `Idempotent`. Each may delete
//! any number of keys, so each is applied in steps: [`step`] walks the keys in storage
//! key order from a [`CommandCursor`] and stops once the step's changes and events
//! pass a byte budget, returning where it stopped. `kv::apply` writes each step as one
//! storage batch with the cursor in the meta, so memory is bounded by the budget
//! whatever the command deletes, and a replay after a crash resumes at the cursor.
//!
//! Invariants:
//! - determinism: a step's work depends only on the stored state, the cursor and the
//!   budget, never on the batch it shares, so every replica and every replay cuts the
//!   same steps and reaches the same state and outcome;
//! - progress: a step does at least one key (or finishes), so a command always ends;
//! - reads go past the cursor only: the Db is walked from the last key done, never
//!   over the tombstones of earlier steps (no quadratic re-scan);
//! - a step's first part (the ballot check of an expiry, the idempotency check) runs
//!   only on a fresh cursor; what it writes goes out with the first step's batch.
//!
//! Every deleted key is an event of the command's one revision (`Meta::revision + 1`);
//! the caller records each step's events as one history part.

use crate::kv::command::{Command, LeaderBallot, SessionId};
use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::hub::inbox::event_bytes;
use crate::kv::idempotency;
use crate::kv::keyspace::{self, CommandCursor, KeyRecord};
use crate::kv::lease::LeaseEffect;
use crate::kv::outcome::Outcome;
use crate::kv::sessions;
use bytes::Bytes;
use std::ops::Bound;

/// Storage records one Db read of a step takes at most.
const SCAN_RECORDS_MAX: usize = 128;
/// About the most bytes one Db read of a step takes.
const SCAN_BYTES_MAX: usize = 256 << 10;

/// Where a step got.
#[derive(Debug)]
pub(crate) enum Step {
    /// The command is done; `parts` history parts of its revision were written by
    /// earlier steps (this step's events, if any, are the last part).
    Done { outcome: Outcome, parts: u32 },
    /// The budget is spent: write this step, then go on from the cursor.
    More(CommandCursor),
}

/// Whether `command` goes through [`step`].
pub(crate) fn is_chunked(command: &Command) -> bool {
    match command {
        Command::DeletePrefix { .. }
        | Command::CloseSession { .. }
        | Command::ExpireSessions { .. } => true,
        Command::Idempotent { inner, .. } => matches!(
            **inner,
            Command::DeletePrefix { .. } | Command::CloseSession { .. }
        ),
        _ => false,
    }
}

/// What a step costs so far: the overlay's bytes plus twice the events' (held in
/// memory, and again as their history part).
fn spent(ctx: &Ctx<'_>, events: u64) -> u64 {
    ctx.overlay.bytes().saturating_add(events.saturating_mul(2))
}

/// Event bytes of the last event recorded.
fn last_event_bytes(ctx: &Ctx<'_>) -> u64 {
    ctx.events.last().map_or(0, |e| event_bytes(e) as u64)
}

/// The upper bound of the keys starting with `prefix`.
fn upper_of(end: &Option<Vec<u8>>) -> Bound<&[u8]> {
    end.as_deref().map_or(Bound::Unbounded, Bound::Excluded)
}

/// Applies `command` from `cursor` (None: from its start) until it is done or the step
/// spent `budget` bytes.
pub(crate) fn step(
    ctx: &mut Ctx<'_>,
    command: &Command,
    cursor: Option<CommandCursor>,
    budget: u64,
) -> Result<Step, KvError> {
    let fresh = cursor.is_none();
    let cur = cursor.unwrap_or_default();
    match command {
        Command::DeletePrefix { prefix } => Ok(match delete_prefix(ctx, prefix, cur, budget)? {
            Walked::Done(c) => Step::Done {
                outcome: Outcome::Deleted { count: c.deleted },
                parts: c.parts,
            },
            Walked::More(c) => Step::More(c),
        }),
        Command::CloseSession { id } => {
            if fresh && sessions::read(ctx, *id)?.is_none() {
                return Ok(Step::Done {
                    outcome: Outcome::SessionNotFound,
                    parts: 0,
                });
            }
            Ok(match remove_sessions(ctx, &[*id], cur, budget)? {
                Walked::Done(c) => Step::Done {
                    outcome: Outcome::SessionClosed {
                        deleted_keys: c.deleted,
                    },
                    parts: c.parts,
                },
                Walked::More(c) => Step::More(c),
            })
        }
        Command::ExpireSessions { ids, ballot } => {
            if fresh {
                if let Some(refused) = check_expiry_ballot(ctx, *ballot) {
                    return Ok(Step::Done {
                        outcome: refused,
                        parts: 0,
                    });
                }
            }
            Ok(match remove_sessions(ctx, ids, cur, budget)? {
                Walked::Done(c) => Step::Done {
                    outcome: Outcome::SessionsExpired {
                        sessions: c.sessions,
                        deleted_keys: c.deleted,
                    },
                    parts: c.parts,
                },
                Walked::More(c) => Step::More(c),
            })
        }
        Command::Idempotent {
            key,
            stamp_ms,
            inner,
            leader,
        } if is_chunked(command) => {
            if fresh {
                if let Some(answer) = idempotency::begin(ctx, key, *stamp_ms, *leader, inner)? {
                    return Ok(Step::Done {
                        outcome: answer,
                        parts: 0,
                    });
                }
            }
            let inner_cursor = (!fresh).then_some(cur);
            match step(ctx, inner, inner_cursor, budget)? {
                Step::Done { outcome, parts } => {
                    let changed = parts > 0 || !ctx.events.is_empty();
                    idempotency::record(ctx, key, inner, &outcome, changed);
                    Ok(Step::Done { outcome, parts })
                }
                more => Ok(more),
            }
        }
        other => Err(KvError::corrupt(
            b"",
            format!("not a chunked command: {other:?}"),
        )),
    }
}

/// Applies a chunked `command` whole, in memory (for a caller that bounds nothing:
/// `kv::apply` steps through these commands itself).
pub(crate) fn whole(ctx: &mut Ctx<'_>, command: &Command) -> Result<Outcome, KvError> {
    let mut cursor = None;
    loop {
        match step(ctx, command, cursor, u64::MAX)? {
            Step::Done { outcome, .. } => return Ok(outcome),
            Step::More(c) => cursor = Some(c),
        }
    }
}

/// Where a walk got.
enum Walked {
    Done(CommandCursor),
    More(CommandCursor),
}

/// An expiry from a ballot older than the last one applied is refused; otherwise the
/// ballot is recorded.
fn check_expiry_ballot(ctx: &mut Ctx<'_>, ballot: LeaderBallot) -> Option<Outcome> {
    let seen = ctx.meta.expire_ballot;
    if (ballot.round, ballot.node) < seen {
        return Some(Outcome::Rejected {
            reason: format!(
                "expiry from ballot ({}, {}) older than ({}, {})",
                ballot.round, ballot.node, seen.0, seen.1
            ),
        });
    }
    ctx.meta.expire_ballot = (ballot.round, ballot.node);
    None
}

/// Deletes the keys starting with `prefix` after the cursor.
fn delete_prefix(
    ctx: &mut Ctx<'_>,
    prefix: &str,
    mut cur: CommandCursor,
    budget: u64,
) -> Result<Walked, KvError> {
    let first = ctx.area.key_key(prefix);
    let end = keyspace::prefix_end(&first);
    let mut events = 0u64;
    loop {
        let from = cur
            .after
            .as_deref()
            .map_or(Bound::Included(first.as_slice()), Bound::Excluded);
        let found =
            ctx.overlay
                .scan_bounded(from, upper_of(&end), SCAN_RECORDS_MAX, SCAN_BYTES_MAX)?;
        if found.is_empty() {
            return Ok(Walked::Done(cur));
        }
        for (sk, bytes) in found {
            let record: KeyRecord = keyspace::decode(&sk, &bytes)?;
            let key = keyspace::user_key(&sk)?;
            ctx.delete_key(&key, &record);
            events += last_event_bytes(ctx);
            cur.deleted += 1;
            cur.after = Some(Bytes::from(sk));
            if spent(ctx, events) >= budget {
                return Ok(Walked::More(cur));
            }
        }
    }
}

/// Removes the sessions `ids[cur.session_index..]` (those that exist) with their
/// ephemeral keys, from the cursor.
fn remove_sessions(
    ctx: &mut Ctx<'_>,
    ids: &[SessionId],
    mut cur: CommandCursor,
    budget: u64,
) -> Result<Walked, KvError> {
    let mut events = 0u64;
    while let Some(&id) = usize::try_from(cur.session_index)
        .ok()
        .and_then(|i| ids.get(i))
    {
        // A session in progress (a cursor inside it) exists: its record goes last.
        if cur.after.is_some() || sessions::read(ctx, id)?.is_some() {
            let prefix = ctx.area.ephemeral_prefix(id);
            let end = keyspace::prefix_end(&prefix);
            loop {
                let from = cur
                    .after
                    .as_deref()
                    .map_or(Bound::Included(prefix.as_slice()), Bound::Excluded);
                let found = ctx.overlay.scan_bounded(
                    from,
                    upper_of(&end),
                    SCAN_RECORDS_MAX,
                    SCAN_BYTES_MAX,
                )?;
                if found.is_empty() {
                    break;
                }
                for (ik, _) in found {
                    let key = keyspace::ephemeral_user_key(&ik)?;
                    ctx.overlay.delete(ik.clone());
                    // The index may name a key another session or a plain put took over.
                    if let Some(record) = ctx.read_key(&key)? {
                        if record.session == Some(id) {
                            ctx.delete_key(&key, &record);
                            events += last_event_bytes(ctx);
                            cur.deleted += 1;
                        }
                    }
                    cur.after = Some(Bytes::from(ik));
                    if spent(ctx, events) >= budget {
                        return Ok(Walked::More(cur));
                    }
                }
            }
            ctx.overlay.delete(ctx.area.session_key(id));
            ctx.lease_effects.push(LeaseEffect::Removed { id });
            cur.sessions += 1;
        }
        cur.session_index = cur.session_index.saturating_add(1);
        cur.after = None;
    }
    Ok(Walked::Done(cur))
}
