//! Snapshots: a fixed point-in-time view (a seqno plus a pinned super version).
//!
//! A snapshot registers its seqno in the [`SnapshotList`] so compaction keeps every
//! version some live snapshot can see (see `compaction.rs`), and it pins the
//! `SuperVersion` it was taken on, so reads go to exactly the memtables and tables of
//! that moment. Registration and the seqno load happen under the list's lock, which
//! compaction also takes to read the live seqnos: a compaction either sees the
//! snapshot or started before it, in which case its inputs only hold seqnos <= the
//! snapshot's and the newest of them (which it keeps) is what the snapshot sees.

use crate::db_iter::DbIter;
use crate::error::Error;
use crate::read_stats::ReadStats;
use crate::super_version::SuperVersion;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;

/// The seqnos of live snapshots, with counts.
#[derive(Debug, Default)]
pub struct SnapshotList {
    live: Mutex<BTreeMap<u64, usize>>,
}

impl SnapshotList {
    /// Registers a snapshot at the seqno `load()` returns (called under the lock).
    pub(crate) fn register(&self, load: impl FnOnce() -> u64) -> u64 {
        let mut live = self.live.lock();
        let seqno = load();
        *live.entry(seqno).or_insert(0) += 1;
        seqno
    }

    fn release(&self, seqno: u64) {
        let mut live = self.live.lock();
        if let Some(n) = live.get_mut(&seqno) {
            *n -= 1;
            if *n == 0 {
                live.remove(&seqno);
            }
        }
    }

    /// The live snapshot seqnos, ascending, and the seqno `load()` returns (under the lock).
    pub(crate) fn live_and(&self, load: impl FnOnce() -> u64) -> (Vec<u64>, u64) {
        let live = self.live.lock();
        (live.keys().copied().collect(), load())
    }

    /// Number of live snapshots.
    pub fn len(&self) -> usize {
        self.live.lock().values().sum()
    }
}

/// A consistent point-in-time view of the database; reads through it see exactly the
/// writes with seqno <= [`Snapshot::seqno`], whatever happens later.
pub struct Snapshot {
    seqno: u64,
    sv: Arc<SuperVersion>,
    list: Arc<SnapshotList>,
    stats: Arc<ReadStats>,
}

impl Snapshot {
    pub(crate) fn new(
        seqno: u64,
        sv: Arc<SuperVersion>,
        list: Arc<SnapshotList>,
        stats: Arc<ReadStats>,
    ) -> Snapshot {
        Snapshot {
            seqno,
            sv,
            list,
            stats,
        }
    }

    /// The seqno of the last write this snapshot sees.
    pub fn seqno(&self) -> u64 {
        self.seqno
    }

    /// The value of `key` in this snapshot.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.sv.get(key, self.seqno)
    }

    /// Iterates the live keys in `[lower, upper]` of this snapshot.
    pub fn iter(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<DbIter, Error> {
        DbIter::new(
            Arc::clone(&self.sv),
            self.seqno,
            (lower, upper),
            Arc::clone(&self.stats),
        )
    }

    /// Iterates the live keys starting with `prefix` in this snapshot.
    pub fn prefix_iter(&self, prefix: &[u8]) -> Result<DbIter, Error> {
        let end = crate::internal_key::prefix_successor(prefix);
        let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        self.iter(Bound::Included(prefix), upper)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.list.release(self.seqno);
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snapshot({})", self.seqno)
    }
}
