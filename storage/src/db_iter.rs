//! `DbIter`: the user-facing iterator over a key range at a snapshot.
//!
//! It sits on a [`MergeIter`] of every memtable and level and turns versions into a
//! view: it skips versions newer than its snapshot seqno, shows only the newest
//! remaining version of each user key, and hides keys whose newest version is a
//! tombstone. It pins its `SuperVersion`, so the memtables and tables it reads stay
//! alive (and their files on disk) however long it lives, whatever compaction does.
//!
//! Invariant: when `valid`, the merge is positioned at a `Put` that is the newest
//! version of its user key with seqno <= `snapshot`, and its key is within bounds.
//! Stepping copies the current key into one reused buffer; nothing is allocated per
//! entry by the cursor API (the `Iterator` impl returns owned pairs, so it does).

use crate::error::Error;
use crate::merge_iter::MergeIter;
use crate::read_stats::ReadStats;
use crate::super_version::SuperVersion;
use sstable::Kind;
use std::ops::Bound;
use std::sync::Arc;

/// A cursor (`valid`/`key`/`value`/`next`/`seek`) over the live keys of a range at a
/// snapshot, in key order; also an `Iterator` of owned `(key, value)` pairs.
pub struct DbIter {
    merge: MergeIter,
    snapshot: u64,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    valid: bool,
    /// The user key whose older versions are being skipped.
    skip: Vec<u8>,
    /// An error met by the `Iterator` impl while stepping, returned on the next call.
    pending: Option<Error>,
    /// Versions stepped over without being returned (added to `stats` on drop).
    hidden: u64,
    stats: Arc<ReadStats>,
    /// Keeps the memtables and tables alive (the merge's sources reference them).
    _pin: Arc<SuperVersion>,
}

impl Drop for DbIter {
    fn drop(&mut self) {
        self.stats.add_hidden(self.hidden);
    }
}

impl DbIter {
    /// An iterator over `[lower, upper]` of `sv` at `snapshot`, positioned at the first
    /// live key of the range.
    pub(crate) fn new(
        sv: Arc<SuperVersion>,
        snapshot: u64,
        (lower, upper): (Bound<&[u8]>, Bound<&[u8]>),
        stats: Arc<ReadStats>,
    ) -> Result<DbIter, Error> {
        let merge = MergeIter::new(sv.sources());
        let mut it = DbIter {
            merge,
            snapshot,
            lower: lower.map(<[u8]>::to_vec),
            upper: upper.map(<[u8]>::to_vec),
            valid: false,
            skip: Vec::new(),
            pending: None,
            hidden: 0,
            stats,
            _pin: sv,
        };
        it.seek_to_first()?;
        Ok(it)
    }

    /// The snapshot seqno this iterator reads at.
    pub fn seqno(&self) -> u64 {
        self.snapshot
    }

    /// True when positioned at a key.
    #[inline]
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current key. Panics if not `valid()`.
    #[inline]
    pub fn key(&self) -> &[u8] {
        assert!(self.valid, "DbIter::key on an invalid iterator");
        self.merge.current().key()
    }

    /// The current value. Panics if not `valid()`.
    #[inline]
    pub fn value(&self) -> &[u8] {
        assert!(self.valid, "DbIter::value on an invalid iterator");
        self.merge.current().value()
    }

    /// Moves to the next live key (invalid past the end of the range). Panics if not
    /// `valid()`.
    #[inline]
    #[allow(
        clippy::should_implement_trait,
        reason = "a fallible cursor step; the Iterator impl yields owned pairs"
    )]
    pub fn next(&mut self) -> Result<(), Error> {
        assert!(self.valid, "DbIter::next on an invalid iterator");
        self.skip.clear();
        self.skip.extend_from_slice(self.merge.current().key());
        self.step_merge()?;
        self.find_live(true)
    }

    /// Moves to the first live key >= `key` (and >= the lower bound).
    pub fn seek(&mut self, key: &[u8]) -> Result<(), Error> {
        let below_lower = match &self.lower {
            Bound::Included(l) | Bound::Excluded(l) => key <= l.as_slice(),
            Bound::Unbounded => false,
        };
        if below_lower {
            return self.seek_to_first();
        }
        self.valid = false;
        self.merge.seek(key)?;
        self.find_live(false)
    }

    /// Moves to the first live key of the range.
    pub fn seek_to_first(&mut self) -> Result<(), Error> {
        self.valid = false;
        match &self.lower {
            Bound::Included(l) => self.merge.seek(l)?,
            Bound::Excluded(l) => {
                self.merge.seek(l)?;
                self.skip.clear();
                self.skip.extend_from_slice(l);
                return self.find_live(true);
            }
            Bound::Unbounded => self.merge.seek_to_first()?,
        }
        self.find_live(false)
    }

    fn step_merge(&mut self) -> Result<(), Error> {
        self.merge.next().inspect_err(|_| self.valid = false)
    }

    /// Advances the merge to the newest visible put of a key not equal to `skip`
    /// (when `skipping`), hiding tombstoned keys, stopping at the upper bound.
    fn find_live(&mut self, mut skipping: bool) -> Result<(), Error> {
        self.valid = false;
        while self.merge.valid() {
            let cur = self.merge.current();
            let key = cur.key();
            let past_upper = match &self.upper {
                Bound::Included(u) => key > u.as_slice(),
                Bound::Excluded(u) => key >= u.as_slice(),
                Bound::Unbounded => false,
            };
            if past_upper {
                return Ok(());
            }
            if cur.seqno() > self.snapshot || (skipping && key == self.skip.as_slice()) {
                self.hidden += 1;
                self.step_merge()?;
                continue;
            }
            match cur.kind() {
                Kind::Put => {
                    self.valid = true;
                    return Ok(());
                }
                Kind::Delete => {
                    self.skip.clear();
                    self.skip.extend_from_slice(key);
                    skipping = true;
                    self.hidden += 1;
                    self.step_merge()?;
                }
            }
        }
        Ok(())
    }
}

impl Iterator for DbIter {
    type Item = Result<(Vec<u8>, Vec<u8>), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.take() {
            return Some(Err(e));
        }
        if !self.valid {
            return None;
        }
        let item = (self.key().to_vec(), self.value().to_vec());
        if let Err(e) = DbIter::next(self) {
            self.pending = Some(e);
        }
        Some(Ok(item))
    }
}
