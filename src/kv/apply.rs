//! Applying chosen slots: the deterministic heart of the state machine.
//!
//! [`KvStateMachine::apply_slot`] decodes each command of a slot, applies it to a
//! [`SlotOverlay`], and writes the overlay plus the new [`Meta`] (applied index,
//! revision) as one batch. Invariants:
//! - a command that fails (compare mismatch, missing session, undecodable) changes
//!   nothing and does not bump the revision;
//! - a command that changes the key space bumps the revision by exactly one, and its
//!   changes are recorded as that revision's history;
//! - session creation/close without keys changes sessions only, not the revision;
//! - a command whose changes exceed the slot batch, or a transaction whose gets return
//!   more than `TXN_GET_BYTES_MAX` of values, is refused whole (rolled back).

use crate::kv::command::Command;
use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::history;
use crate::kv::idempotency;
use crate::kv::keys;
use crate::kv::keyspace;
use crate::kv::machine::KvStateMachine;
use crate::kv::options::KvOptions;
use crate::kv::outcome::{Outcome, Reply, TXN_GET_BYTES_MAX};
use crate::kv::overlay::SlotOverlay;
use crate::kv::sessions;
use bytes::Bytes;
use storage::WriteOptions;

/// Closes the current command: if it changed keys, they become the next revision.
fn finish_command(ctx: &mut Ctx<'_>, opts: &KvOptions) -> Result<(), KvError> {
    if ctx.events.is_empty() {
        return Ok(());
    }
    let events = std::mem::take(&mut ctx.events);
    ctx.meta.revision += 1;
    history::append(ctx, &events, opts)
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
        Command::DeletePrefix { prefix } => keys::apply_delete_prefix(ctx, prefix),
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
        Command::CreateSession { id, ttl_ms } => sessions::create(ctx, id, ttl_ms),
        Command::CloseSession { id } => sessions::close(ctx, id),
        Command::ExpireSessions { ids, ballot } => sessions::expire(ctx, &ids, ballot),
        Command::LeaderClock { ballot, stamp_ms } => {
            idempotency::apply_leader_clock(ctx, ballot, stamp_ms)
        }
    }
}

impl KvStateMachine {
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
            overlay: SlotOverlay::new(&self.db),
            meta: self.meta.clone(),
            events: Vec::new(),
            lease_effects: Vec::new(),
        };
        let mut replies = Vec::with_capacity(commands.len());
        for bytes in commands {
            let outcome = match Command::decode(bytes) {
                Ok(command) => {
                    let mark = ctx.overlay.mark();
                    let meta_before = ctx.meta.clone();
                    let (events_len, effects_len) = (ctx.events.len(), ctx.lease_effects.len());
                    let outcome = apply_command(&mut ctx, command)?;
                    let events_bytes: u64 = ctx.events[events_len..]
                        .iter()
                        .map(|e| {
                            (e.key.len() + e.value.as_ref().map_or(0, |v| v.len()) + 48) as u64
                        })
                        .sum();
                    let refusal = if ctx.overlay.bytes() + events_bytes
                        > self.opts.slot_batch_bytes_max
                    {
                        // Deterministic on every replica: the command's writes would not
                        // fit the slot's storage batch, so it is refused, not applied.
                        Some(format!(
                            "the command's changes exceed {} bytes; split it (e.g. delete smaller prefixes)",
                            self.opts.slot_batch_bytes_max
                        ))
                    } else if outcome.get_bytes() > TXN_GET_BYTES_MAX {
                        // The reply would carry more values than an answer may: refused
                        // whole, like an oversized change, before anyone answers with it.
                        Some(format!(
                            "the transaction's gets return {} bytes of values, over the {TXN_GET_BYTES_MAX} a reply may hold; nothing was applied: read the keys separately",
                            outcome.get_bytes()
                        ))
                    } else {
                        None
                    };
                    match refusal {
                        Some(reason) => {
                            ctx.overlay.rollback(mark);
                            ctx.meta = meta_before;
                            ctx.events.truncate(events_len);
                            ctx.lease_effects.truncate(effects_len);
                            Outcome::Rejected { reason }
                        }
                        None => outcome,
                    }
                }
                Err(e) => {
                    tracing::warn!(slot, error = %e, "skipping an undecodable command");
                    Outcome::Rejected {
                        reason: e.to_string(),
                    }
                }
            };
            finish_command(&mut ctx, &self.opts)?;
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
            mut overlay,
            meta,
            lease_effects,
            ..
        } = ctx;
        overlay.put(self.area.meta_key(), keyspace::encode(&meta));
        self.db
            .write(&overlay.into_batch(), WriteOptions { sync: false })?;
        self.meta = meta;
        self.leases.apply_effects(lease_effects);
        self.revision_tx.send_replace(self.meta.revision);
        Ok(replies)
    }
}
