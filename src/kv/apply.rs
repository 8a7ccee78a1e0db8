//! Applying chosen slots: the deterministic heart of the state machine.
//!
//! [`KvStateMachine::apply_slot`] decodes each command of a slot, applies it to a
//! [`Pending`] overlay, and writes the overlay plus the new [`Meta`] (applied index,
//! revision) as one batch. Invariants:
//! - a command that fails (compare mismatch, missing session, undecodable) changes
//!   nothing and does not bump the revision;
//! - a command that changes the key space bumps the revision by exactly one, and its
//!   changes are recorded as that revision's history;
//! - session creation/close without keys changes sessions only, not the revision.

use crate::kv::command::Command;
use crate::kv::error::KvError;
use crate::kv::history;
use crate::kv::idempotency::{self, Idempotent};
use crate::kv::keyspace::{self, Area, Event, EventKind, KeyRecord, Meta, Root, ROOT_KEY};
use crate::kv::lease::{LeaseEffect, LeaseTable};
use crate::kv::outcome::{EntryMeta, Outcome, Reply};
use crate::kv::pending::Pending;
use crate::kv::read::KvReader;
use crate::kv::sessions;
use bytes::Bytes;
use std::ops::Bound;
use std::sync::Arc;
use storage::{Db, WriteBatch, WriteOptions};

/// Longest key the state machine accepts (the HTTP edge checks the same).
pub const KEY_BYTES_MAX: usize = 1024;

/// Limits of the state machine. Every replica must use the same values.
#[derive(Clone, Debug)]
pub struct KvOptions {
    /// History keeps at most this many revisions.
    pub history_revisions_max: u64,
    /// History keeps at most about this many encoded bytes (at least the newest revision).
    pub history_bytes_max: u64,
    /// Target size of one snapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Most bytes one slot may write (below the storage engine's batch limit, with room
    /// for the meta and history trimming); a command past it is refused.
    pub slot_batch_bytes_max: u64,
}

impl Default for KvOptions {
    fn default() -> Self {
        KvOptions {
            history_revisions_max: 10_000,
            history_bytes_max: 64 << 20,
            snapshot_chunk_bytes: 1 << 20,
            slot_batch_bytes_max: 12 << 20,
        }
    }
}

/// The state machine over a storage Db.
pub struct KvStateMachine {
    pub(crate) db: Db,
    /// The live area (the root record's).
    pub(crate) area: Area,
    /// Invariant: equal to the live area's meta record.
    pub(crate) meta: Meta,
    pub(crate) opts: KvOptions,
    pub(crate) leases: Arc<LeaseTable>,
    /// The slot of a snapshot being installed.
    pub(crate) installing: Option<u64>,
    /// Publishes the revision after every applied slot (watchers wait on it).
    pub(crate) revision_tx: tokio::sync::watch::Sender<u64>,
}

/// The live area named by the root record (the first area in a fresh Db).
pub(crate) fn read_area(db: &Db) -> Result<Area, KvError> {
    match db.get(ROOT_KEY)? {
        Some(bytes) => Area::from_root(keyspace::decode::<Root>(ROOT_KEY, &bytes)?),
        None => Ok(keyspace::AREA_FIRST),
    }
}

/// The mutable context of one slot being applied.
pub(crate) struct Ctx<'a> {
    pub area: Area,
    pub pending: Pending<'a>,
    pub meta: Meta,
    /// Changes of the command being applied; they become one revision.
    pub events: Vec<Event>,
    pub lease_effects: Vec<LeaseEffect>,
}

impl Ctx<'_> {
    /// The revision the current command's changes get.
    pub fn next_revision(&self) -> u64 {
        self.meta.revision + 1
    }

    /// A key's record as the slot leaves it so far.
    pub fn read_key(&self, key: &str) -> Result<Option<KeyRecord>, KvError> {
        let sk = self.area.key_key(key);
        match self.pending.get(&sk)? {
            Some(bytes) => Ok(Some(keyspace::decode(&sk, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Deletes a key (and its ephemeral index entry) and records the event.
    pub fn delete_key(&mut self, key: &str, record: &KeyRecord) {
        self.pending.delete(self.area.key_key(key));
        if let Some(owner) = record.session {
            self.pending.delete(self.area.ephemeral_key(owner, key));
        }
        self.events.push(Event {
            kind: EventKind::Delete,
            key: key.to_string(),
            value: None,
            version: 0,
            create_revision: record.create_revision,
            mod_revision: self.next_revision(),
            session: record.session,
        });
    }

    /// Closes the current command: if it changed keys, they become the next revision.
    fn finish_command(&mut self, opts: &KvOptions) -> Result<(), KvError> {
        if self.events.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.events);
        self.meta.revision += 1;
        history::append(self, &events, opts)
    }
}

fn key_is_valid(key: &str) -> bool {
    !key.is_empty() && key.len() <= KEY_BYTES_MAX && !key.chars().any(char::is_control)
}

pub(crate) fn apply_put(
    ctx: &mut Ctx<'_>,
    key: String,
    value: Bytes,
    expect_version: Option<u64>,
    session: Option<crate::kv::SessionId>,
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
            ctx.pending.delete(ctx.area.ephemeral_key(old, &key));
        }
    }
    if let Some(owner) = session {
        let ik = ctx.area.ephemeral_key(owner, &key);
        ctx.pending.put(ik, Vec::new());
    }
    let sk = ctx.area.key_key(&key);
    ctx.pending.put(sk, keyspace::encode(&record));
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

fn apply_put_sequential(
    ctx: &mut Ctx<'_>,
    prefix: String,
    value: Bytes,
    session: Option<crate::kv::SessionId>,
) -> Result<Outcome, KvError> {
    let counter_key = ctx.area.sequence_key(&prefix);
    let last: u64 = match ctx.pending.get(&counter_key)? {
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
        ctx.pending.put(counter_key, keyspace::encode(&next));
    }
    Ok(outcome)
}

fn apply_delete(
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

fn apply_delete_prefix(ctx: &mut Ctx<'_>, prefix: String) -> Result<Outcome, KvError> {
    let found = ctx.pending.scan_prefix(&ctx.area.key_key(&prefix))?;
    let mut count = 0;
    for (sk, bytes) in found {
        let record: KeyRecord = keyspace::decode(&sk, &bytes)?;
        let key = keyspace::user_key(&sk)?;
        ctx.delete_key(&key, &record);
        count += 1;
    }
    Ok(Outcome::Deleted { count })
}

/// Applies one decoded command to the slot's context.
fn apply_command(ctx: &mut Ctx<'_>, command: Command) -> Result<Outcome, KvError> {
    match command {
        Command::Put {
            key,
            value,
            expect_version,
            session,
        } => apply_put(ctx, key, value, expect_version, session),
        Command::PutSequential {
            prefix,
            value,
            session,
        } => apply_put_sequential(ctx, prefix, value, session),
        Command::Delete {
            key,
            expect_version,
        } => apply_delete(ctx, key, expect_version),
        Command::DeletePrefix { prefix } => apply_delete_prefix(ctx, prefix),
        Command::Txn {
            compares,
            success,
            failure,
        } => crate::kv::txn::apply_txn(ctx, compares, success, failure),
        Command::Idempotent {
            key,
            stamp_ms,
            inner,
        } => {
            if matches!(
                *inner,
                Command::Idempotent { .. } | Command::ExpireSessions { .. }
            ) {
                return Ok(Outcome::Rejected {
                    reason: "this command cannot be made idempotent".into(),
                });
            }
            match idempotency::begin(ctx, &key, stamp_ms, inner)? {
                Idempotent::Replay(reply) => Ok(Outcome::Replayed(Box::new(reply))),
                Idempotent::Apply(inner) => {
                    let outcome = apply_command(ctx, *inner)?;
                    // The revision this command ends at: bumped iff it changed keys.
                    let revision = ctx.meta.revision + u64::from(!ctx.events.is_empty());
                    idempotency::record(ctx, &key, stamp_ms, &outcome, revision);
                    Ok(outcome)
                }
            }
        }
        Command::CreateSession { id, ttl_ms } => sessions::create(ctx, id, ttl_ms),
        Command::CloseSession { id } => sessions::close(ctx, id),
        Command::ExpireSessions { ids, ballot } => sessions::expire(ctx, &ids, ballot),
    }
}

impl KvStateMachine {
    /// Opens the state machine over `db`, resuming at the stored applied index.
    pub fn open(db: Db, opts: KvOptions, leases: Arc<LeaseTable>) -> Result<Self, KvError> {
        let area = read_area(&db)?;
        let meta_key = area.meta_key();
        let meta = match db.get(&meta_key)? {
            Some(bytes) => keyspace::decode::<Meta>(&meta_key, &bytes)?,
            None => Meta::default(),
        };
        let (revision_tx, _) = tokio::sync::watch::channel(meta.revision);
        let sm = KvStateMachine {
            db,
            area,
            meta,
            opts,
            leases,
            installing: None,
            revision_tx,
        };
        sm.reload_leases()?;
        Ok(sm)
    }

    /// A reader over the same Db.
    pub fn reader(&self) -> KvReader {
        KvReader::new(self.db.clone(), self.revision_tx.subscribe())
    }

    /// The last applied slot (0 = none).
    pub fn applied_index(&self) -> u64 {
        self.meta.applied_index
    }

    /// The current cluster revision.
    pub fn revision(&self) -> u64 {
        self.meta.revision
    }

    /// Applies slot `slot` (must be `applied_index() + 1`); returns one encoded
    /// [`Reply`] per command.
    pub fn apply_slot(&mut self, slot: u64, commands: &[Bytes]) -> Result<Vec<Bytes>, KvError> {
        if slot != self.meta.applied_index + 1 {
            return Err(KvError::OutOfOrder {
                applied: self.meta.applied_index,
                slot,
            });
        }
        let mut ctx = Ctx {
            area: self.area,
            pending: Pending::new(&self.db),
            meta: self.meta.clone(),
            events: Vec::new(),
            lease_effects: Vec::new(),
        };
        let mut replies = Vec::with_capacity(commands.len());
        for bytes in commands {
            let outcome = match Command::decode(bytes) {
                Ok(command) => {
                    let mark = ctx.pending.mark();
                    let meta_before = ctx.meta.clone();
                    let (events_len, effects_len) = (ctx.events.len(), ctx.lease_effects.len());
                    let outcome = apply_command(&mut ctx, command)?;
                    let events_bytes: u64 = ctx.events[events_len..]
                        .iter()
                        .map(|e| {
                            (e.key.len() + e.value.as_ref().map_or(0, |v| v.len()) + 48) as u64
                        })
                        .sum();
                    if ctx.pending.bytes() + events_bytes > self.opts.slot_batch_bytes_max {
                        // Deterministic on every replica: the command's writes would not
                        // fit the slot's storage batch, so it is refused, not applied.
                        ctx.pending.rollback(mark);
                        ctx.meta = meta_before;
                        ctx.events.truncate(events_len);
                        ctx.lease_effects.truncate(effects_len);
                        Outcome::Rejected {
                            reason: format!(
                                "the command's changes exceed {} bytes; split it (e.g. delete smaller prefixes)",
                                self.opts.slot_batch_bytes_max
                            ),
                        }
                    } else {
                        outcome
                    }
                }
                Err(e) => {
                    tracing::warn!(slot, error = %e, "skipping an undecodable command");
                    Outcome::Rejected {
                        reason: e.to_string(),
                    }
                }
            };
            ctx.finish_command(&self.opts)?;
            let reply = match outcome {
                // A retry gets the first answer, revision included.
                Outcome::Replayed(first) => *first,
                outcome => Reply {
                    revision: ctx.meta.revision,
                    outcome,
                },
            };
            replies.push(reply.encode());
        }
        ctx.meta.applied_index = slot;
        let Ctx {
            mut pending,
            meta,
            lease_effects,
            ..
        } = ctx;
        pending.put(self.area.meta_key(), keyspace::encode(&meta));
        self.db
            .write(&pending.into_batch(), WriteOptions { sync: false })?;
        self.meta = meta;
        self.leases.apply_effects(lease_effects);
        self.revision_tx.send_replace(self.meta.revision);
        Ok(replies)
    }

    /// Makes everything applied so far durable.
    pub fn sync(&self) -> Result<(), KvError> {
        Ok(self.db.sync_wal()?)
    }

    /// Deletes every record of `area` (in batches of a bounded size).
    pub(crate) fn wipe(&self, area: Area) -> Result<(), KvError> {
        const WIPE_BATCH_KEYS_MAX: usize = 4096;
        let lower = area.prefix();
        let upper = keyspace::prefix_end(&lower);
        let upper = match &upper {
            Some(u) => Bound::Excluded(u.as_slice()),
            None => Bound::Unbounded,
        };
        loop {
            let mut batch = WriteBatch::default();
            for item in self.db.iter(Bound::Included(lower.as_slice()), upper)? {
                let (k, _) = item?;
                batch.delete(&k);
                if batch.len() >= WIPE_BATCH_KEYS_MAX {
                    break;
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            self.db.write(&batch, WriteOptions { sync: false })?;
        }
    }

    /// Rebuilds the lease table from the stored sessions (every deadline restarts).
    pub(crate) fn reload_leases(&self) -> Result<(), KvError> {
        let all = self.reader().sessions()?;
        self.leases
            .load(all.into_iter().map(|(id, r)| (id, r.ttl_ms)).collect());
        Ok(())
    }
}
