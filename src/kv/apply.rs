//! Applying chosen slots: the deterministic heart of the state machine.
//!
//! [`KvStateMachine::apply_slot`] decodes each command of a slot, applies it to a
//! [`SlotOverlay`], and writes the overlay plus the new [`Meta`] (applied index,
//! revision) as one batch. A slot whose commands together outgrow
//! `slot_batch_bytes_max` goes to the Db in several batches, split between commands;
//! each batch's meta counts the commands of the slot already written
//! (`slot_commands_done`), so a replay after a crash skips exactly those. A command
//! whose size the command does not bound (a prefix delete, a session close or expiry:
//! `kv::chunked`) is split too, within itself: each chunk of about the cap is one
//! batch whose meta holds the command's cursor (`command_cursor`), so a replay resumes
//! it there; it still is one revision. Readers see none of a slot before its last
//! batch is written (`kv::read` pins the state between slots). Invariants:
//! - the change cap holds each command alone, never the slot: commands of one slot
//!   never refuse each other, and no batch exceeds the cap plus the meta (and one
//!   key's changes, for a chunk);
//! - a command that fails (compare mismatch, missing session, undecodable) changes
//!   nothing and does not bump the revision;
//! - a command that changes the key space bumps the revision by exactly one, and its
//!   changes are recorded as that revision's history (in several parts for a chunked
//!   command);
//! - session creation/close without keys changes sessions only, not the revision;
//! - a command of bounded size whose changes still exceed the slot batch (a huge
//!   transaction), or a transaction whose gets return more than `TXN_GET_BYTES_MAX` of
//!   values, is refused whole (rolled back); a chunked command never is for its size.

use crate::kv::chunked::{self, Step};
use crate::kv::command::Command;
use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::history;
use crate::kv::hub::Hub;
use crate::kv::idempotency;
use crate::kv::keys;
use crate::kv::keyspace;
use crate::kv::keyspace::{CommandCursor, Meta};
use crate::kv::machine::KvStateMachine;
use crate::kv::options::KvOptions;
use crate::kv::outcome::{Outcome, Reply, TXN_GET_BYTES_MAX};
use crate::kv::overlay::{Mark, SlotOverlay};
use crate::kv::read::MetaFigures;
use crate::kv::sessions;
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use storage::WriteOptions;

/// Closes the current command: if it changed keys, they become the next revision.
/// `parts`: history parts of that revision earlier chunks wrote (0 but for a command
/// applied in chunks, whose events went to the history chunk by chunk and whose
/// watchers are in `ctx.lagged`, not in `ctx.published`).
fn finish_command(
    ctx: &mut Ctx<'_>,
    opts: &KvOptions,
    parts: u32,
    hub: &Hub,
) -> Result<(), KvError> {
    if ctx.events.is_empty() && parts == 0 {
        return Ok(());
    }
    let events = std::mem::take(&mut ctx.events);
    ctx.meta.revision += 1;
    history::append(ctx, &events, parts, opts)?;
    if parts == 0 {
        ctx.published.push((ctx.meta.revision, events));
    } else {
        hub.matching(&events, &mut ctx.lagged);
    }
    Ok(())
}

/// Applies one decoded command to the slot's context.
fn apply_command(ctx: &mut Ctx<'_>, command: Command) -> Result<Outcome, KvError> {
    match command {
        Command::Put {
            key,
            value,
            expect_version,
            session,
        } => keys::apply_put(ctx, key, value, expect_version, session),
        Command::PutSequential {
            prefix,
            value,
            session,
        } => keys::apply_put_sequential(ctx, prefix, value, session),
        Command::Delete {
            key,
            expect_version,
        } => keys::apply_delete(ctx, key, expect_version),
        // `apply_slot` steps through these itself (`apply_chunked`); here, whole.
        Command::DeletePrefix { .. }
        | Command::CloseSession { .. }
        | Command::ExpireSessions { .. } => chunked::whole(ctx, &command),
        Command::Txn {
            compares,
            success,
            failure,
        } => crate::kv::txn::apply_txn(ctx, compares, success, failure),
        Command::Idempotent {
            key,
            stamp_ms,
            inner,
            leader,
        } => idempotency::apply(ctx, &key, stamp_ms, leader, *inner, apply_command),
        Command::CreateSession { id, ttl_ms, owner } => sessions::create(ctx, id, ttl_ms, owner),
        Command::Auth(command) => crate::kv::auth::apply::apply(ctx, command),
        Command::LeaderClock { ballot, stamp_ms } => {
            idempotency::apply_leader_clock(ctx, ballot, stamp_ms)
        }
        Command::Compact { revision } => history::compact(ctx, revision),
    }
}

/// What a command's rollback restores besides the overlay.
struct Saved {
    mark: Mark,
    meta: Meta,
    events: usize,
    effects: usize,
}

fn save(ctx: &Ctx<'_>) -> Saved {
    Saved {
        mark: ctx.overlay.mark(),
        meta: ctx.meta.clone(),
        events: ctx.events.len(),
        effects: ctx.lease_effects.len(),
    }
}

fn rollback(ctx: &mut Ctx<'_>, saved: Saved) {
    ctx.overlay.rollback(saved.mark);
    ctx.meta = saved.meta;
    ctx.events.truncate(saved.events);
    ctx.lease_effects.truncate(saved.effects);
}

/// Bytes the events recorded since `from` add to the history.
fn events_bytes(ctx: &Ctx<'_>, from: usize) -> u64 {
    ctx.events[from..]
        .iter()
        .map(|e| (e.key.len() + e.value.as_ref().map_or(0, |v| v.len()) + 48) as u64)
        .sum()
}

/// Reply given for a command of a half-applied slot that a previous run of this node
/// applied before it stopped (nobody waits for it: proposals do not survive a restart).
const APPLIED_BEFORE_RESTART: &str = "applied before this node restarted; its reply is gone";

impl KvStateMachine {
    /// Writes the slot's commands so far as one batch, with a meta saying how many of
    /// slot `applied_index + 1` are done, and starts the overlay empty.
    fn write_part(&self, ctx: &mut Ctx<'_>, done: usize) -> Result<(), KvError> {
        ctx.meta.slot_commands_done = u32::try_from(done).unwrap_or(u32::MAX);
        ctx.overlay
            .put(self.area.meta_key(), keyspace::encode(&ctx.meta));
        let batch = ctx.overlay.take_batch();
        self.db.write(batch, WriteOptions { sync: false })?;
        Ok(())
    }

    /// Writes one chunk of a chunked command: its events become the next history part of
    /// the command's revision (their watchers join `ctx.lagged`), the cursor goes into
    /// the meta, and the overlay goes to the Db ([`Self::write_part`]). Returns the
    /// cursor to go on from.
    fn write_chunk(
        &self,
        ctx: &mut Ctx<'_>,
        index: usize,
        mut cursor: CommandCursor,
    ) -> Result<CommandCursor, KvError> {
        let events = std::mem::take(&mut ctx.events);
        if !events.is_empty() {
            history::append_part(ctx, ctx.meta.revision + 1, cursor.parts, &events);
            cursor.parts += 1;
            self.hub.matching(&events, &mut ctx.lagged);
        }
        drop(events);
        ctx.meta.command_cursor = Some(cursor.clone());
        self.overlay_peak_bytes
            .fetch_max(ctx.overlay.peak_bytes(), Ordering::Relaxed);
        self.write_part(ctx, index)?;
        let written = self.chunks_written.fetch_add(1, Ordering::Relaxed) + 1;
        #[cfg(test)]
        if let Some(hook) = self
            .chunk_hook
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            hook(written);
        }
        #[cfg(not(test))]
        let _ = written;
        Ok(cursor)
    }

    /// Applies a command whose size the command does not bound ([`chunked`]). It is
    /// tried like any other, on the slot's batch; when one step within the change cap
    /// does not finish it, it is applied in steps, each written as its own batch with
    /// the cursor in the meta ([`Self::write_chunk`]): from the cursor `resume` a
    /// previous run stored, or from its start on an empty batch (the slot's earlier
    /// commands are written first). A step's work depends only on the stored state and
    /// the cursor, so replicas and replays cut the same steps. Returns the outcome and
    /// how many history parts earlier steps wrote.
    fn apply_chunked(
        &self,
        ctx: &mut Ctx<'_>,
        command: &Command,
        index: usize,
        resume: Option<CommandCursor>,
    ) -> Result<(Outcome, u32), KvError> {
        let budget = self.opts.slot_batch_bytes_max;
        let mut cursor = resume;
        if cursor.is_none() {
            let alone = ctx.overlay.is_empty();
            let saved = save(ctx);
            match chunked::step(ctx, command, None, budget)? {
                Step::Done { outcome, parts } => return Ok((outcome, parts)),
                // Begun on an empty batch: the same step a replay takes; keep it.
                Step::More(c) if alone => cursor = Some(self.write_chunk(ctx, index, c)?),
                Step::More(_) => {
                    rollback(ctx, saved);
                    self.write_part(ctx, index)?;
                }
            }
        }
        loop {
            match chunked::step(ctx, command, cursor.take(), budget)? {
                Step::Done { outcome, parts } => {
                    ctx.meta.command_cursor = None;
                    return Ok((outcome, parts));
                }
                Step::More(c) => cursor = Some(self.write_chunk(ctx, index, c)?),
            }
        }
    }

    /// Applies one command within the change cap: a command whose own changes exceed it
    /// is refused (rolled back); one that fits alone but not with the slot's earlier
    /// commands first sends those to the Db ([`Self::write_part`]) and is applied again
    /// on the empty overlay (the same state, so the same outcome on every replica).
    fn apply_capped(
        &self,
        ctx: &mut Ctx<'_>,
        command: Command,
        index: usize,
    ) -> Result<Outcome, KvError> {
        let cap = self.opts.slot_batch_bytes_max;
        // The earlier commands' events are already in the overlay (finish_command).
        let earlier = ctx.overlay.bytes();
        let saved = save(ctx);
        let mark = saved.mark;
        let outcome = apply_command(ctx, command.clone())?;
        let events = events_bytes(ctx, saved.events);
        if ctx.overlay.bytes_since(mark) + events > cap {
            // Deterministic on every replica: the command's writes would not fit one
            // storage batch, so it is refused, not applied.
            rollback(ctx, saved);
            return Ok(Outcome::Rejected {
                reason: format!(
                    "the command's changes exceed {cap} bytes; split it (e.g. delete smaller prefixes)"
                ),
            });
        }
        if outcome.get_bytes() > TXN_GET_BYTES_MAX {
            // The reply would carry more values than an answer may: refused whole, like
            // an oversized change, before anyone answers with it.
            let reason = format!(
                "the transaction's gets return {} bytes of values, over the {TXN_GET_BYTES_MAX} a reply may hold; nothing was applied: read the keys separately",
                outcome.get_bytes()
            );
            rollback(ctx, saved);
            return Ok(Outcome::Rejected { reason });
        }
        if earlier == 0 || ctx.overlay.bytes() + events <= cap {
            return Ok(outcome);
        }
        rollback(ctx, saved);
        self.write_part(ctx, index)?;
        apply_command(ctx, command)
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
            overlay: SlotOverlay::new(&self.db, std::mem::take(&mut self.spare_batch)),
            meta: self.meta.clone(),
            events: Vec::new(),
            published: Vec::new(),
            lease_effects: Vec::new(),
            lagged: HashSet::new(),
            auth_touched: false,
            history_records_read: 0,
        };
        let done = usize::try_from(self.meta.slot_commands_done).unwrap_or(usize::MAX);
        if done > commands.len() {
            return Err(KvError::corrupt(
                &self.area.meta_key(),
                format!(
                    "meta says {done} commands of slot {slot} are applied; it has {}",
                    commands.len()
                ),
            ));
        }
        let mut replies = Vec::with_capacity(commands.len());
        for _ in 0..done {
            let reply = Reply {
                revision: self.meta.revision,
                outcome: Outcome::Rejected {
                    reason: APPLIED_BEFORE_RESTART.into(),
                },
            };
            replies.push(reply.encode());
        }
        for (index, bytes) in commands.iter().enumerate().skip(done) {
            let mut parts = 0;
            // A cursor in the meta belongs to the first command not done.
            let resume = ctx.meta.command_cursor.take();
            let outcome = match Command::decode(bytes) {
                Ok(command) if chunked::is_chunked(&command) => {
                    let (outcome, written) =
                        self.apply_chunked(&mut ctx, &command, index, resume)?;
                    parts = written;
                    outcome
                }
                _ if resume.is_some() => {
                    return Err(KvError::corrupt(
                        &self.area.meta_key(),
                        format!(
                            "meta holds a cursor for command {index} of slot {slot}, which is not applied in chunks"
                        ),
                    ));
                }
                Ok(command) => self.apply_capped(&mut ctx, command, index)?,
                Err(e) => {
                    tracing::warn!(slot, error = %e, "skipping an undecodable command");
                    Outcome::Rejected {
                        reason: e.to_string(),
                    }
                }
            };
            finish_command(&mut ctx, &self.opts, parts, &self.hub)?;
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
        ctx.meta.slot_commands_done = 0;
        let Ctx {
            mut overlay,
            meta,
            lease_effects,
            published,
            lagged,
            auth_touched,
            history_records_read,
            ..
        } = ctx;
        self.history_records_read
            .fetch_add(history_records_read, Ordering::Relaxed);
        overlay.put(self.area.meta_key(), keyspace::encode(&meta));
        self.overlay_peak_bytes
            .fetch_max(overlay.peak_bytes(), Ordering::Relaxed);
        self.db
            .write(overlay.take_batch(), WriteOptions { sync: false })?;
        self.spare_batch = overlay.into_spare();
        self.meta = meta;
        self.leases.apply_effects(lease_effects);
        if auth_touched {
            self.reload_auth()?;
        }
        // Readers see the slot whole, and only now.
        self.pinned.repin(&self.db, MetaFigures::of(&self.meta));
        // Only now that readers see it: a watcher may read it from the history.
        self.hub.publish(published, &lagged, self.meta.revision);
        Ok(replies)
    }
}
