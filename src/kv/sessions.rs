//! Applying session commands: create, close, and the leader's expiry.
//!
//! A session is a record `s/<id>` with its TTL; its ephemeral keys are indexed under
//! `e/<id>/<key>`. Closing or expiring deletes the session and all its keys as one
//! revision (no revision when it owned no keys); as a session may own any number of
//! keys, those two are applied in chunks by `kv::chunked`. Deadlines are not
//! replicated: the leader keeps them ([`crate::kv::lease`]) and proposes
//! `ExpireSessions`.

use crate::kv::command::SessionId;
use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::keyspace::{self, SessionRecord};
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

pub(crate) fn create(
    ctx: &mut Ctx<'_>,
    id: SessionId,
    ttl_ms: u64,
    owner: Option<String>,
) -> Result<Outcome, KvError> {
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
        .put(sk, keyspace::encode(&SessionRecord { ttl_ms, owner }));
    ctx.lease_effects.push(LeaseEffect::Created { id, ttl_ms });
    Ok(Outcome::SessionCreated { id, ttl_ms })
}
