//! Applying key commands: put, sequential put, delete (a delete by prefix, whose size
//! the command does not bound, is `kv::chunked`).
//!
//! Each writes into the slot's overlay through `Ctx` and records one event per key it
//! changes (the events become the command's revision when it finishes). A put into a
//! session that does not exist, a version mismatch or an invalid key changes nothing.
//! Transactions (`txn`) reuse `apply_put` and `apply_delete_key` for their ops.

use crate::kv::command::SessionId;
use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::keyspace::{self, Event, EventKind, KeyRecord};
use crate::kv::outcome::{EntryMeta, Outcome};
use crate::kv::sessions;
use bytes::Bytes;

/// Longest key the state machine accepts (the HTTP edge checks the same).
pub const KEY_BYTES_MAX: usize = 1024;

fn key_is_valid(key: &str) -> bool {
    !key.is_empty() && key.len() <= KEY_BYTES_MAX && !key.chars().any(char::is_control)
}

pub(crate) fn apply_put(
    ctx: &mut Ctx<'_>,
    key: String,
    value: Bytes,
    expect_version: Option<u64>,
    session: Option<SessionId>,
) -> Result<Outcome, KvError> {
    if !key_is_valid(&key) {
        return Ok(Outcome::Rejected {
            reason: "invalid key".into(),
        });
    }
    if let Some(id) = session {
        if sessions::read(ctx, id)?.is_none() {
            return Ok(Outcome::SessionNotFound);
        }
    }
    let existing = ctx.read_key(&key)?;
    let current_version = existing.as_ref().map_or(0, |r| r.version);
    if let Some(expected) = expect_version {
        if expected != current_version {
            return Ok(Outcome::VersionMismatch { current_version });
        }
    }
    let rev = ctx.next_revision();
    let record = KeyRecord {
        value,
        version: current_version + 1,
        create_revision: existing.as_ref().map_or(rev, |r| r.create_revision),
        mod_revision: rev,
        session,
    };
    if let Some(old) = existing.as_ref().and_then(|r| r.session) {
        if Some(old) != session {
            ctx.overlay.delete(ctx.area.ephemeral_key(old, &key));
        }
    }
    if let Some(owner) = session {
        let ik = ctx.area.ephemeral_key(owner, &key);
        ctx.overlay.put(ik, Vec::new());
    }
    ctx.count_live(&key, Some(&record), existing.as_ref());
    let sk = ctx.area.key_key(&key);
    ctx.overlay.put(sk, keyspace::encode(&record));
    ctx.events.push(Event {
        kind: EventKind::Put,
        key: key.clone(),
        value: Some(record.value.clone()),
        version: record.version,
        create_revision: record.create_revision,
        mod_revision: rev,
        session,
    });
    Ok(Outcome::Put {
        entry: EntryMeta {
            key,
            version: record.version,
            create_revision: record.create_revision,
            mod_revision: rev,
            session,
        },
        created: existing.is_none(),
    })
}

/// Width of the number a sequential put appends.
pub const SEQUENCE_DIGITS: usize = 20;
/// Existing keys a sequential put skips at most before giving up.
pub const SEQUENCE_SKIP_MAX: u64 = 1024;

pub(crate) fn apply_put_sequential(
    ctx: &mut Ctx<'_>,
    prefix: String,
    value: Bytes,
    session: Option<SessionId>,
) -> Result<Outcome, KvError> {
    let counter_key = ctx.area.sequence_key(&prefix);
    let last: u64 = match ctx.overlay.get(&counter_key)? {
        Some(bytes) => keyspace::decode(&counter_key, &bytes)?,
        None => 0,
    };
    // Numbers whose key someone wrote by hand are skipped, never overwritten.
    let mut next = last;
    let key = loop {
        next += 1;
        if next - last > SEQUENCE_SKIP_MAX {
            return Ok(Outcome::Rejected {
                reason: format!("{SEQUENCE_SKIP_MAX} keys after {prefix:?}'s sequence exist"),
            });
        }
        let key = format!("{prefix}{next:0width$}", width = SEQUENCE_DIGITS);
        if ctx.read_key(&key)?.is_none() {
            break key;
        }
    };
    let outcome = apply_put(ctx, key, value, Some(0), session)?;
    if matches!(outcome, Outcome::Put { .. }) {
        ctx.overlay.put(counter_key, keyspace::encode(&next));
    }
    Ok(outcome)
}

pub(crate) fn apply_delete(
    ctx: &mut Ctx<'_>,
    key: String,
    expect_version: Option<u64>,
) -> Result<Outcome, KvError> {
    let existing = ctx.read_key(&key)?;
    let current_version = existing.as_ref().map_or(0, |r| r.version);
    if let Some(expected) = expect_version {
        if expected != current_version {
            return Ok(Outcome::VersionMismatch { current_version });
        }
    }
    match existing {
        None => Ok(Outcome::KeyNotFound),
        Some(record) => {
            ctx.delete_key(&key, &record);
            Ok(Outcome::Deleted { count: 1 })
        }
    }
}

/// Deletes `key` if it exists; returns how many keys went (0 or 1).
pub(crate) fn apply_delete_key(ctx: &mut Ctx<'_>, key: &str) -> Result<u64, KvError> {
    match ctx.read_key(key)? {
        Some(record) => {
            ctx.delete_key(key, &record);
            Ok(1)
        }
        None => Ok(0),
    }
}
