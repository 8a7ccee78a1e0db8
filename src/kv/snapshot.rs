//! Snapshots of the applied state: streaming one out, installing one in.
//!
//! A snapshot is every record of the live area of the state readers see (the storage
//! snapshot pinned after the last whole slot: `kv::read`), in key order,
//! with the area byte stripped, cut into chunks of about `snapshot_chunk_bytes`:
//! ```text
//! chunk  = format:u8 (=1) pair*
//! pair   = key_len:u32 BE, key, value_len:u32 BE, value
//! ```
//! Installing stages the records in the other area; `finish_install` checks the staged
//! meta covers the promised slot and then switches the root record to the staged area
//! in one durable write. An install that never finishes leaves the live state
//! untouched; the next `begin_install` wipes the stage.
//!
//! `KvSnapshot` is what the node streams to a lagging peer: it implements the node's
//! `SnapshotSource` here, beside the type. A backup (`crate::backup`) reads the same
//! chunks from a `KvReader` (`KvReader::snapshot`), off the apply thread.

use crate::kv::error::KvError;
use crate::kv::keyspace::{self, Meta, Root, SessionRecord, ROOT_KEY};
use crate::kv::machine::{count_live_bytes, read_auth, KvStateMachine};
use crate::kv::read::{KvReader, MetaFigures, View};
use crate::node::SnapshotSource;
use crate::paxos::Slot;
use bytes::Bytes;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use storage::{WriteBatch, WriteOptions};

/// Format byte of a snapshot chunk.
pub const CHUNK_FORMAT: u8 = 1;
/// Largest key or value a chunk may carry (bounds what a peer can make us allocate).
pub const CHUNK_FIELD_BYTES_MAX: usize = 64 << 20;

/// A point-in-time view of the state, read out chunk by chunk.
pub struct KvSnapshot {
    view: View,
    chunk_bytes: usize,
    /// The last storage key sent; None before the first chunk.
    resume_after: Option<Vec<u8>>,
    done: bool,
}

impl KvSnapshot {
    /// The slot this snapshot covers (every slot <= it is in it).
    pub fn slot(&self) -> u64 {
        self.view.meta.applied_index
    }

    /// The meta record of the state this snapshot holds (its revision, history bounds).
    pub fn meta(&self) -> &Meta {
        &self.view.meta
    }

    /// The next chunk, or None after the last.
    pub fn next_chunk(&mut self) -> Result<Option<Bytes>, KvError> {
        if self.done {
            return Ok(None);
        }
        let prefix = self.view.area.prefix();
        let lower = match &self.resume_after {
            Some(k) => Bound::Excluded(k.as_slice()),
            None => Bound::Included(prefix.as_slice()),
        };
        let mut chunk = vec![CHUNK_FORMAT];
        let mut last = None;
        let chunk_bytes = self.chunk_bytes;
        self.view.scan(&prefix, lower, |k, v| {
            let stripped = k.get(1..).unwrap_or_default();
            chunk.extend_from_slice(&(stripped.len() as u32).to_be_bytes());
            chunk.extend_from_slice(stripped);
            chunk.extend_from_slice(&(v.len() as u32).to_be_bytes());
            chunk.extend_from_slice(&v);
            last = Some(k);
            Ok(chunk.len() < chunk_bytes)
        })?;
        match last {
            Some(k) => {
                self.resume_after = Some(k);
                Ok(Some(Bytes::from(chunk)))
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }
}

impl SnapshotSource for KvSnapshot {
    fn slot(&self) -> Slot {
        KvSnapshot::slot(self)
    }

    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        Ok(KvSnapshot::next_chunk(self)?)
    }
}

/// One (record key, value) pair borrowed from a chunk.
pub type PairRef<'c> = (&'c [u8], &'c [u8]);

/// Splits a chunk into its pairs, checking every length.
pub fn parse_chunk(chunk: &[u8]) -> Result<Vec<PairRef<'_>>, KvError> {
    fn bad(reason: String) -> KvError {
        KvError::BadSnapshot { reason }
    }
    fn take<'c>(rest: &mut &'c [u8]) -> Result<&'c [u8], KvError> {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| bad("chunk cut inside a length".into()))?;
        let len = u32::from_be_bytes(*len) as usize;
        if len > CHUNK_FIELD_BYTES_MAX || len > tail.len() {
            return Err(bad(format!("field of {len} bytes overruns the chunk")));
        }
        let (field, tail) = tail.split_at(len);
        *rest = tail;
        Ok(field)
    }
    let (&format, mut rest) = chunk
        .split_first()
        .ok_or_else(|| bad("empty chunk".into()))?;
    if format != CHUNK_FORMAT {
        return Err(bad(format!("unknown chunk format byte {format}")));
    }
    let mut pairs = Vec::new();
    while !rest.is_empty() {
        let k = take(&mut rest)?;
        let v = take(&mut rest)?;
        if k.is_empty() {
            return Err(bad("empty record key".into()));
        }
        pairs.push((k, v));
    }
    Ok(pairs)
}

impl KvReader {
    /// A snapshot of the state readers see now (the last whole slot applied), read
    /// without the apply thread: a backup streams it while writes go on. Chunks hold
    /// about `chunk_bytes` each.
    pub fn snapshot(&self, chunk_bytes: usize) -> Result<KvSnapshot, KvError> {
        Ok(KvSnapshot {
            view: View::of(self.pinned())?,
            chunk_bytes: chunk_bytes.max(1),
            resume_after: None,
            done: false,
        })
    }
}

impl KvStateMachine {
    /// A snapshot of the applied state as of now.
    pub fn snapshot(&self) -> Result<KvSnapshot, KvError> {
        Ok(KvSnapshot {
            view: View::of(&self.pinned)?,
            chunk_bytes: self.opts.snapshot_chunk_bytes.max(1),
            resume_after: None,
            done: false,
        })
    }

    /// Starts staging a snapshot covering slots <= `slot` (discarding any earlier stage).
    pub fn begin_install(&mut self, slot: u64) -> Result<(), KvError> {
        self.wipe(self.area.other())?;
        self.installing = Some(slot);
        Ok(())
    }

    /// Stages one chunk of the snapshot being installed.
    pub fn install_chunk(&mut self, chunk: &[u8]) -> Result<(), KvError> {
        if self.installing.is_none() {
            return Err(KvError::BadSnapshot {
                reason: "chunk without begin_install".into(),
            });
        }
        let stage = self.area.other().prefix();
        let mut batch = WriteBatch::default();
        for (k, v) in parse_chunk(chunk)? {
            let mut key = stage.clone();
            key.extend_from_slice(k);
            batch.put(&key, v);
        }
        if !batch.is_empty() {
            self.db.write(&batch, WriteOptions { sync: false })?;
        }
        Ok(())
    }

    /// Makes the staged snapshot the live state; afterwards `applied_index() == slot`.
    pub fn finish_install(&mut self) -> Result<(), KvError> {
        let slot = self.installing.take().ok_or_else(|| KvError::BadSnapshot {
            reason: "finish without begin_install".into(),
        })?;
        let stage = self.area.other();
        let meta_key = stage.meta_key();
        let meta: Meta = match self.db.get(&meta_key)? {
            Some(bytes) => keyspace::decode(&meta_key, &bytes)?,
            None => {
                return Err(KvError::BadSnapshot {
                    reason: "the snapshot carried no meta record".into(),
                })
            }
        };
        if meta.applied_index != slot {
            return Err(KvError::BadSnapshot {
                reason: format!(
                    "the snapshot's meta says applied index {}, the install promised {slot}",
                    meta.applied_index
                ),
            });
        }
        // Decode what the switch needs (the sessions, for the lease table) BEFORE it:
        // a failure after the switch would report the install failed while the
        // staged state is already the live one.
        let staged = View {
            snap: Arc::new(self.db.snapshot()),
            area: stage,
            meta: meta.clone(),
        };
        let prefix = stage.sessions_prefix();
        let mut sessions = Vec::new();
        staged.scan(&prefix, Bound::Included(&prefix), |sk, bytes| {
            let record: SessionRecord = keyspace::decode(&sk, &bytes)?;
            sessions.push((keyspace::session_id_of(&sk)?, record.ttl_ms));
            Ok(true)
        })?;
        drop(staged);
        let auth = read_auth(&self.db, stage)?;
        let mut meta = meta;
        // Readers see the meta as sent, counted or not.
        let stored = MetaFigures::of(&meta);
        if meta.live_bytes.is_none() {
            // Sent by a node from before `live_bytes` existed.
            meta.live_bytes = Some(count_live_bytes(&self.db, stage)?);
        }
        let root = Root { area: stage.0 };
        self.db.put(
            ROOT_KEY,
            &keyspace::encode(&root),
            WriteOptions { sync: true },
        )?;
        let old = self.area;
        self.area = stage;
        self.meta = meta;
        self.leases.load(sessions);
        self.auth.set(auth);
        // Readers see the new state from here on (the hub's jump sends watchers to it).
        self.pinned.repin(&self.db, stored);
        self.hub.jump(self.meta.revision);
        self.wipe(old)?;
        // Unpins the old area's records, so compaction can drop them.
        self.pinned.repin(&self.db, stored);
        Ok(())
    }
}
