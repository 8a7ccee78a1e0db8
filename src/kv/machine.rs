//! `KvStateMachine`: the replicated key-value state machine over a storage `Db`, and
//! its implementation of the node's `StateMachine` trait.
//!
//! This file holds the state (the Db, the live area, the meta, the lease table) and
//! what opens, reads and syncs it; applying a slot is `apply.rs`, a membership change
//! `membership.rs`, snapshots are `snapshot.rs` (each adds methods to `KvStateMachine`,
//! and none is imported here).
//! Invariant: `meta` equals the live area's stored meta record between calls, except
//! that a stored meta without `live_bytes` (written before it existed) is counted on
//! open or install and stored with the next slot. From
//! `node` it imports the `StateMachine` trait and its `SnapshotSource`, nothing else.

use crate::kv::auth::{AuthState, AuthTable};
use crate::kv::error::KvError;
use crate::kv::hub::{Hub, WatchLimits};
use crate::kv::keyspace::{self, Area, KeyRecord, Meta, Root, SessionRecord, ROOT_KEY};
use crate::kv::lease::LeaseTable;
use crate::kv::options::KvOptions;
use crate::kv::read::{KvReader, MetaFigures, Pinned, View};
use crate::node::{SnapshotSource, StateMachine};
use crate::paxos::{Change, Slot};
use bytes::Bytes;
use std::io;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use storage::{Db, WriteBatch, WriteOptions};

/// The state machine over a storage Db.
pub struct KvStateMachine {
    pub(crate) db: Db,
    /// The live area (the root record's).
    pub(crate) area: Area,
    /// Invariant: equal to the live area's meta record.
    pub(crate) meta: Meta,
    pub(crate) opts: KvOptions,
    pub(crate) leases: Arc<LeaseTable>,
    /// The applied access-control state, as requests read it (republished after each
    /// slot that changed it, on open and after an install).
    pub(crate) auth: Arc<AuthTable>,
    /// The slot of a snapshot being installed.
    pub(crate) installing: Option<u64>,
    /// The live watchers: every written slot's events are published to it.
    pub(crate) hub: Arc<Hub>,
    /// What readers read: the state after the last whole slot (re-pinned after each).
    pub(crate) pinned: Arc<Pinned>,
    /// The most bytes a slot's overlay held at once, over every slot applied.
    pub(crate) overlay_peak_bytes: AtomicU64,
    /// The batch buffer slots write through, between slots (`SlotOverlay::into_spare`).
    pub(crate) spare_batch: storage::WriteBatch,
    /// Chunks of chunked commands written (each one storage batch).
    pub(crate) chunks_written: AtomicU64,
    /// History records read by trims (`kv::history`), all slots so far.
    pub(crate) history_records_read: AtomicU64,
    /// Tests: called with `chunks_written` after each chunk reaches the Db.
    #[cfg(test)]
    pub(crate) chunk_hook: std::sync::Mutex<Option<ChunkHook>>,
}

/// Tests: what runs after each chunk of a chunked command is written.
#[cfg(test)]
pub(crate) type ChunkHook = Box<dyn FnMut(u64) + Send>;

/// The live area named by the root record (the first area in a fresh Db).
pub(crate) fn read_area(db: &Db) -> Result<Area, KvError> {
    match db.get(ROOT_KEY)? {
        Some(bytes) => Area::from_root(keyspace::decode::<Root>(ROOT_KEY, &bytes)?),
        None => Ok(keyspace::AREA_FIRST),
    }
}

/// The access-control record of `area` (the default when none is stored).
pub(crate) fn read_auth(db: &Db, area: Area) -> Result<AuthState, KvError> {
    let sk = area.auth_key();
    match db.get(&sk)? {
        Some(bytes) => keyspace::decode(&sk, &bytes),
        None => Ok(AuthState::default()),
    }
}

/// The live bytes of `area` counted from its key records (for a meta written before
/// `Meta::live_bytes` existed; every replica counts the same state, so the same sum).
pub(crate) fn count_live_bytes(db: &Db, area: Area) -> Result<u64, KvError> {
    let prefix = area.key_key("");
    let mut total = 0u64;
    for item in db.prefix_iter(&prefix)? {
        let (sk, bytes) = item?;
        let record: KeyRecord = keyspace::decode(&sk, &bytes)?;
        total += (sk.len() - prefix.len() + record.value.len()) as u64;
    }
    Ok(total)
}

impl KvStateMachine {
    /// Opens the state machine over `db`, resuming at the stored applied index.
    pub fn open(db: Db, opts: KvOptions, leases: Arc<LeaseTable>) -> Result<Self, KvError> {
        let area = read_area(&db)?;
        let meta_key = area.meta_key();
        let mut meta = match db.get(&meta_key)? {
            Some(bytes) => keyspace::decode::<Meta>(&meta_key, &bytes)?,
            None => Meta::default(),
        };
        // Readers see the meta as stored, counted or not.
        let stored = MetaFigures::of(&meta);
        if meta.live_bytes.is_none() {
            meta.live_bytes = Some(count_live_bytes(&db, area)?);
        }
        let hub = Hub::new(WatchLimits::default(), meta.revision);
        let pinned = Pinned::new(&db, stored);
        let sm = KvStateMachine {
            db,
            area,
            meta,
            opts,
            leases,
            auth: AuthTable::new(),
            installing: None,
            hub,
            pinned,
            overlay_peak_bytes: AtomicU64::new(0),
            spare_batch: storage::WriteBatch::new(),
            chunks_written: AtomicU64::new(0),
            history_records_read: AtomicU64::new(0),
            #[cfg(test)]
            chunk_hook: std::sync::Mutex::new(None),
        };
        sm.reload_leases()?;
        sm.reload_auth()?;
        Ok(sm)
    }

    /// The applied access-control state, shared with the HTTP layer.
    pub fn auth(&self) -> Arc<AuthTable> {
        Arc::clone(&self.auth)
    }

    /// Republishes the stored access-control record to the auth table.
    pub(crate) fn reload_auth(&self) -> Result<(), KvError> {
        self.auth.set(read_auth(&self.db, self.area)?);
        Ok(())
    }

    /// Replaces the watch hub's limits (before any reader is taken: readers taken
    /// earlier keep the old hub, which is never published to again).
    pub fn with_watch_limits(mut self, limits: WatchLimits) -> Self {
        self.hub = Hub::new(limits, self.meta.revision);
        self
    }

    /// A reader over the same Db, its watchers served by this machine's hub.
    pub fn reader(&self) -> KvReader {
        KvReader::new(Arc::clone(&self.pinned), Arc::clone(&self.hub))
    }

    /// The most bytes one slot's overlay of writes held at once, over every slot this
    /// machine applied (the memory bound of applying: about one change cap).
    pub fn overlay_peak_bytes(&self) -> u64 {
        self.overlay_peak_bytes.load(Ordering::Relaxed)
    }

    /// Chunks of chunked commands (big prefix deletes, session closes and expiries)
    /// this machine wrote.
    pub fn chunks_written(&self) -> u64 {
        self.chunks_written.load(Ordering::Relaxed)
    }

    /// History records the trims of every slot this machine applied read: a trim reads
    /// the revisions it drops and no more.
    pub fn history_records_read(&self) -> u64 {
        self.history_records_read.load(Ordering::Relaxed)
    }

    /// The last applied slot (0 = none).
    pub fn applied_index(&self) -> u64 {
        self.meta.applied_index
    }

    /// The current cluster revision.
    pub fn revision(&self) -> u64 {
        self.meta.revision
    }

    /// Makes everything applied so far durable.
    pub fn sync(&self) -> Result<(), KvError> {
        Ok(self.db.sync_wal()?)
    }

    /// Deletes every record of `area` (in batches of a bounded size). Each batch resumes
    /// after the last key deleted, never from the start of the area: an iterator from
    /// the start would step over every tombstone written so far, which made wiping N
    /// keys cost O(N^2 / batch) (a snapshot install of a large store never finished).
    pub(crate) fn wipe(&self, area: Area) -> Result<(), KvError> {
        const WIPE_BATCH_KEYS_MAX: usize = 4096;
        let lower = area.prefix();
        let upper = keyspace::prefix_end(&lower);
        let upper = match &upper {
            Some(u) => Bound::Excluded(u.as_slice()),
            None => Bound::Unbounded,
        };
        let mut after: Option<Vec<u8>> = None;
        loop {
            let mut batch = WriteBatch::default();
            let from = match &after {
                Some(k) => Bound::Excluded(k.as_slice()),
                None => Bound::Included(lower.as_slice()),
            };
            let mut last = None;
            for item in self.db.iter(from, upper)? {
                let (k, _) = item?;
                batch.delete(&k);
                last = Some(k);
                if batch.len() >= WIPE_BATCH_KEYS_MAX {
                    break;
                }
            }
            let Some(last) = last else {
                return Ok(());
            };
            self.db.write(&batch, WriteOptions { sync: false })?;
            after = Some(last.to_vec());
        }
    }

    /// Rebuilds the lease table from the stored sessions (every deadline restarts). It
    /// reads the stored state as it is, a half-applied command included (after a
    /// restart inside one, whose replay then removes what it removes).
    pub(crate) fn reload_leases(&self) -> Result<(), KvError> {
        let view = View::at(self.pinned.get())?;
        let prefix = view.area.sessions_prefix();
        let mut all = Vec::new();
        view.scan(&prefix, Bound::Included(&prefix), |sk, bytes| {
            let record: SessionRecord = keyspace::decode(&sk, &bytes)?;
            all.push((keyspace::session_id_of(&sk)?, record.ttl_ms));
            Ok(true)
        })?;
        self.leases.load(all);
        Ok(())
    }
}

impl StateMachine for KvStateMachine {
    fn applied_index(&self) -> Slot {
        KvStateMachine::applied_index(self)
    }

    fn apply(&mut self, slot: Slot, commands: &[Bytes]) -> io::Result<Vec<Bytes>> {
        Ok(self.apply_slot(slot, commands)?)
    }

    fn apply_membership_change(&mut self, slot: Slot, change: &Change) -> io::Result<()> {
        Ok(KvStateMachine::apply_membership_change(self, slot, change)?)
    }

    fn membership_changes(&self) -> io::Result<Vec<(Slot, Change)>> {
        Ok(KvStateMachine::membership_changes(self)?)
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(KvStateMachine::sync(self)?)
    }

    fn snapshot(&self) -> io::Result<Box<dyn SnapshotSource>> {
        Ok(Box::new(KvStateMachine::snapshot(self)?))
    }

    fn begin_install(&mut self, slot: Slot) -> io::Result<()> {
        Ok(KvStateMachine::begin_install(self, slot)?)
    }

    fn install_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        Ok(KvStateMachine::install_chunk(self, chunk)?)
    }

    fn finish_install(&mut self) -> io::Result<()> {
        Ok(KvStateMachine::finish_install(self)?)
    }
}
