//! `Ctx`: the mutable context of one slot being applied, shared by every module that
//! applies part of a command (`apply`, `keys`, `sessions`, `txn`, `idempotency`,
//! `history`).
//!
//! It holds the slot's overlay of writes over the Db, the meta as the slot leaves it
//! so far, the events of the command being applied (they become one revision when the
//! command finishes) and the lease effects to hand the lease table once the slot is
//! written. Invariant: the overlay reaches the Db only as whole batches with the meta
//! saying how far the slot got (`kv::apply`); readers see none of it before the slot
//! ends (`kv::read`). This file imports none of the modules that use it.

use crate::kv::error::KvError;
use crate::kv::hub::index::WatcherId;
use crate::kv::keyspace::{self, Area, Event, EventKind, KeyRecord, Meta};
use crate::kv::lease::LeaseEffect;
use crate::kv::overlay::SlotOverlay;
use std::collections::HashSet;

/// The mutable context of one slot being applied.
pub(crate) struct Ctx<'a> {
    pub area: Area,
    pub overlay: SlotOverlay<'a>,
    pub meta: Meta,
    /// Changes of the command being applied; they become one revision.
    pub events: Vec<Event>,
    /// The slot's finished revisions and their events, published to the watch hub
    /// once the slot is written.
    pub published: Vec<(u64, Vec<Event>)>,
    pub lease_effects: Vec<LeaseEffect>,
    /// Watchers some event of a chunked command matched: their events are not kept
    /// for the hub (they could be any number); the hub marks these watchers lagged
    /// and they read the revision from the history.
    pub lagged: HashSet<WatcherId>,
    /// Some command of the slot changed the auth record: the machine republishes it.
    pub auth_touched: bool,
    /// History records the slot's trims read (`kv::history`).
    pub history_records_read: u64,
}

impl Ctx<'_> {
    /// The revision the current command's changes get.
    pub fn next_revision(&self) -> u64 {
        self.meta.revision + 1
    }

    /// A key's record as the slot leaves it so far.
    pub fn read_key(&self, key: &str) -> Result<Option<KeyRecord>, KvError> {
        let sk = self.area.key_key(key);
        match self.overlay.get(&sk)? {
            Some(bytes) => Ok(Some(keyspace::decode(&sk, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Counts a key's record coming (`added`) or going (`removed`) in the live bytes.
    pub fn count_live(
        &mut self,
        key: &str,
        added: Option<&KeyRecord>,
        removed: Option<&KeyRecord>,
    ) {
        let size = |r: &KeyRecord| (key.len() + r.value.len()) as u64;
        if let Some(live) = self.meta.live_bytes.as_mut() {
            *live = live
                .saturating_add(added.map_or(0, size))
                .saturating_sub(removed.map_or(0, size));
        }
    }

    /// Deletes a key (and its ephemeral index entry) and records the event.
    pub fn delete_key(&mut self, key: &str, record: &KeyRecord) {
        self.count_live(key, None, Some(record));
        self.overlay.delete(self.area.key_key(key));
        if let Some(owner) = record.session {
            self.overlay.delete(self.area.ephemeral_key(owner, key));
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
}
