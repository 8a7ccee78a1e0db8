//! Rebuilding the state of a NEW cluster from snapshot chunks (a backup's body), into an
//! empty storage Db: the state `concierge snapshot restore` writes into each member's
//! data directory.
//!
//! The chunks are those of `kv::snapshot` (records of the live area, area byte stripped).
//! They are written into the first area, the root record names it, and the meta is
//! rewritten for a cluster whose acceptor logs start empty:
//! - `applied_index = 0`: the new cluster's slot 1 is the first applied on top of the
//!   restored state, so slot numbering matches the empty acceptor logs; the revision,
//!   the history bounds and the idempotency clock are kept (revisions continue).
//! - `expire_ballot` and `idempotency_clock_ballot` (ballots of the OLD cluster's
//!   leaders) are reset to (0, 0): ballots restart in the new cluster, and a kept value
//!   would make every expiry of its leaders look stale (sessions would live forever)
//!   and freeze its idempotency clock.
//!
//! - The membership changes of the old cluster are dropped: the new cluster's members
//!   are the ones it is restored into.
//!
//! Invariants checked: exactly one meta record; no half-applied command in it (a backup
//! holds whole slots only); every record decodes as its kind (keys, sessions) so a
//! restored directory opens (the access-control record included, kept as it was); nothing is written to a Db that already holds state.

use crate::kv::error::KvError;
use crate::kv::keyspace::{self, KeyRecord, Meta, Root, SessionRecord, AREA_FIRST, ROOT_KEY};
use crate::kv::snapshot::parse_chunk;
use storage::{Db, WriteBatch, WriteOptions};

/// Most bytes written in one storage batch while restoring.
const RESTORE_BATCH_BYTES_MAX: usize = 4 << 20;

/// What a restore wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The meta as restored (applied index 0, the backup's revision).
    pub meta: Meta,
    pub keys: u64,
    pub sessions: u64,
    pub records: u64,
}

/// Writes snapshot chunks into an empty Db, then the rewritten meta and the root.
pub struct Restorer<'d> {
    db: &'d Db,
    batch: WriteBatch,
    batch_bytes: usize,
    meta: Option<Meta>,
    keys: u64,
    sessions: u64,
    records: u64,
}

fn bad(reason: String) -> KvError {
    KvError::BadSnapshot { reason }
}

impl<'d> Restorer<'d> {
    /// Starts a restore into `db`, which must hold nothing.
    pub fn new(db: &'d Db) -> Result<Restorer<'d>, KvError> {
        let mut all = db.iter(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)?;
        if let Some(item) = Iterator::next(&mut all) {
            let (k, _) = item?;
            return Err(bad(format!(
                "the store to restore into is not empty (it holds {:?})",
                String::from_utf8_lossy(&k)
            )));
        }
        Ok(Restorer {
            db,
            batch: WriteBatch::default(),
            batch_bytes: 0,
            meta: None,
            keys: 0,
            sessions: 0,
            records: 0,
        })
    }

    /// Adds one chunk's records.
    pub fn add_chunk(&mut self, chunk: &[u8]) -> Result<(), KvError> {
        for (k, v) in parse_chunk(chunk)? {
            let mut key = AREA_FIRST.prefix();
            key.extend_from_slice(k);
            match k.first() {
                Some(&keyspace::META_KIND) if k.len() == 1 => {
                    if self.meta.is_some() {
                        return Err(bad("the snapshot holds two meta records".into()));
                    }
                    self.meta = Some(keyspace::decode(&key, v)?);
                    continue; // written last, rewritten
                }
                Some(&keyspace::KEY_PREFIX) => {
                    keyspace::decode::<KeyRecord>(&key, v)?;
                    self.keys += 1;
                }
                Some(&keyspace::SESSION_PREFIX) => {
                    keyspace::decode::<SessionRecord>(&key, v)?;
                    self.sessions += 1;
                }
                // The old cluster's membership changes: the new cluster starts from its
                // own first membership (slot numbering restarts too).
                Some(&keyspace::MEMBERSHIP_KIND) if k.len() == 1 => continue,
                // Access control is kept as it was: the restored cluster enforces it.
                Some(&keyspace::AUTH_KIND) if k.len() == 1 => {
                    keyspace::decode::<crate::kv::auth::AuthState>(&key, v)?;
                }
                _ => {}
            }
            self.records += 1;
            self.batch_bytes += key.len() + v.len();
            self.batch.put(&key, v);
            if self.batch_bytes >= RESTORE_BATCH_BYTES_MAX {
                self.flush_batch()?;
            }
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), KvError> {
        if !self.batch.is_empty() {
            self.db.write(&self.batch, WriteOptions { sync: false })?;
        }
        self.batch = WriteBatch::default();
        self.batch_bytes = 0;
        Ok(())
    }

    /// Writes the rewritten meta and the root, durably.
    pub fn finish(mut self) -> Result<Restored, KvError> {
        self.flush_batch()?;
        let mut meta = self
            .meta
            .take()
            .ok_or_else(|| bad("the snapshot carried no meta record".into()))?;
        if meta.command_cursor.is_some() || meta.slot_commands_done != 0 {
            return Err(bad(format!(
                "the snapshot holds part of slot {} (a backup holds whole slots only)",
                meta.applied_index + 1
            )));
        }
        meta.applied_index = 0;
        meta.expire_ballot = (0, 0);
        meta.idempotency_clock_ballot = (0, 0);
        meta.idempotency_leader_stamp_ms = 0;
        let mut batch = WriteBatch::default();
        batch.put(&AREA_FIRST.meta_key(), &keyspace::encode(&meta));
        batch.put(ROOT_KEY, &keyspace::encode(&Root { area: AREA_FIRST.0 }));
        self.db.write(&batch, WriteOptions { sync: true })?;
        self.db.flush()?;
        Ok(Restored {
            meta,
            keys: self.keys,
            sessions: self.sessions,
            records: self.records,
        })
    }
}
