//! Applying session commands: create, close, and the leader's expiry.
//!
//! A session is a record `s/<id>` with its TTL; its ephemeral keys are indexed under
//! `e/<id>/<key>`. Closing or expiring deletes the session and all its keys as one
//! revision (no revision when it owned no keys). Deadlines are not replicated: the
//! leader keeps them ([`crate::kv::lease`]) and proposes `ExpireSessions`.

use crate::kv::command::{LeaderBallot, SessionId};
use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::keyspace::{self, KeyRecord, SessionRecord};
use crate::kv::lease::LeaseEffect;
use crate::kv::outcome::Outcome;

/// Shortest session TTL accepted (API.md: 1000..=300000 ms).
pub const SESSION_TTL_MS_MIN: u64 = 1_000;
/// Longest session TTL accepted.
pub const SESSION_TTL_MS_MAX: u64 = 300_000;

/// A session's record as the slot leaves it so far.
pub(crate) fn read(ctx: &Ctx<'_>, id: SessionId) -> Result<Option<SessionRecord>, KvError> {
    let sk = ctx.area.session_key(id);
    match ctx.overlay.get(&sk)? {
        Some(bytes) => Ok(Some(keyspace::decode(&sk, &bytes)?)),
        None => Ok(None),
    }
}

pub(crate) fn create(ctx: &mut Ctx<'_>, id: SessionId, ttl_ms: u64) -> Result<Outcome, KvError> {
    if !(SESSION_TTL_MS_MIN..=SESSION_TTL_MS_MAX).contains(&ttl_ms) {
        return Ok(Outcome::Rejected {
            reason: format!("ttl_ms {ttl_ms} outside {SESSION_TTL_MS_MIN}..={SESSION_TTL_MS_MAX}"),
        });
    }
    if read(ctx, id)?.is_some() {
        return Ok(Outcome::Rejected {
            reason: format!("session {id} exists"),
        });
    }
    let sk = ctx.area.session_key(id);
    ctx.overlay
        .put(sk, keyspace::encode(&SessionRecord { ttl_ms }));
    ctx.lease_effects.push(LeaseEffect::Created { id, ttl_ms });
    Ok(Outcome::SessionCreated { id, ttl_ms })
}

/// Deletes a live session and its ephemeral keys; returns how many keys went.
fn remove(ctx: &mut Ctx<'_>, id: SessionId) -> Result<u64, KvError> {
    let index = ctx.overlay.scan_prefix(&ctx.area.ephemeral_prefix(id))?;
    let mut deleted = 0;
    for (ik, _) in index {
        let key = keyspace::ephemeral_user_key(&ik)?;
        ctx.overlay.delete(ik);
        if let Some(record) = ctx.read_key(&key)? {
            let record: KeyRecord = record;
            if record.session == Some(id) {
                ctx.delete_key(&key, &record);
                deleted += 1;
            }
        }
    }
    let sk = ctx.area.session_key(id);
    ctx.overlay.delete(sk);
    ctx.lease_effects.push(LeaseEffect::Removed { id });
    Ok(deleted)
}

pub(crate) fn close(ctx: &mut Ctx<'_>, id: SessionId) -> Result<Outcome, KvError> {
    if read(ctx, id)?.is_none() {
        return Ok(Outcome::SessionNotFound);
    }
    let deleted_keys = remove(ctx, id)?;
    Ok(Outcome::SessionClosed { deleted_keys })
}

pub(crate) fn expire(
    ctx: &mut Ctx<'_>,
    ids: &[SessionId],
    ballot: LeaderBallot,
) -> Result<Outcome, KvError> {
    let seen = ctx.meta.expire_ballot;
    if (ballot.round, ballot.node) < seen {
        return Ok(Outcome::Rejected {
            reason: format!(
                "expiry from ballot ({}, {}) older than ({}, {})",
                ballot.round, ballot.node, seen.0, seen.1
            ),
        });
    }
    ctx.meta.expire_ballot = (ballot.round, ballot.node);
    let mut sessions = 0;
    let mut deleted_keys = 0;
    for &id in ids {
        if read(ctx, id)?.is_some() {
            sessions += 1;
            deleted_keys += remove(ctx, id)?;
        }
    }
    Ok(Outcome::SessionsExpired {
        sessions,
        deleted_keys,
    })
}
