//! `SlotOverlay`: the writes of one slot in progress, an overlay over the Db.
//!
//! Commands of one slot apply in order and each must see the writes of those before it,
//! yet they must reach the Db as atomic batches of whole commands with the meta that
//! says how far the slot got. `SlotOverlay` answers reads from its own writes first,
//! then from the Db, and turns into a `WriteBatch` when a batch is due. (Not to be
//! confused with `node::pending::Pending`, the node's proposals waiting to be applied.)
//! It counts the most bytes it ever held ([`SlotOverlay::peak_bytes`]): the memory
//! bound of applying a slot is checked against that count.
//!
//! The batch it writes into is one buffer, reused batch after batch and handed from
//! slot to slot (`new` takes the last slot's, `into_spare` gives it back): allocating
//! a slot's batch afresh was 7% of the apply thread under a put load (perf, 3 nodes,
//! 64 clients), the allocator mapping new pages for it every time. A buffer grown
//! past [`SPARE_BATCH_BYTES_MAX`] by a big slot is not kept.

use crate::kv::error::KvError;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;
use storage::{Db, WriteBatch};

/// The largest batch buffer kept for the next slot.
pub const SPARE_BATCH_BYTES_MAX: usize = 1 << 20;

/// One (storage key, value) pair.
pub type Pair = (Vec<u8>, Vec<u8>);

/// One write's key and what the overlay held for it before (None = nothing).
type Undo = (Vec<u8>, Option<Option<Vec<u8>>>);

/// A point to roll the buffered writes back to.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    undo_len: usize,
    bytes: u64,
}

/// Buffered writes (None = delete) over a Db.
pub struct SlotOverlay<'a> {
    db: &'a Db,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// For each write, the key and what `writes` held for it before.
    undo: Vec<Undo>,
    /// Approximate encoded size of the buffered writes.
    bytes: u64,
    /// The most `bytes` ever was.
    peak: u64,
    /// What `take_batch` fills (its buffer reused; see the module doc).
    batch: WriteBatch,
}

fn entry_bytes(key: &[u8], value: &Option<Vec<u8>>) -> u64 {
    (key.len() + value.as_ref().map_or(0, Vec::len) + 16) as u64
}

impl<'a> SlotOverlay<'a> {
    /// An empty overlay over `db`, filling `spare`'s buffer (an earlier overlay's,
    /// from `into_spare`, or a new batch).
    pub fn new(db: &'a Db, spare: WriteBatch) -> Self {
        SlotOverlay {
            db,
            writes: BTreeMap::new(),
            undo: Vec::new(),
            bytes: 0,
            peak: 0,
            batch: spare,
        }
    }

    /// The value of `key` as the slot's writes so far leave it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.db.get(key)?),
        }
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.bytes += entry_bytes(&key, &value);
        let before = self.writes.insert(key.clone(), value);
        if let Some(old) = &before {
            self.bytes = self.bytes.saturating_sub(entry_bytes(&key, old));
        }
        self.peak = self.peak.max(self.bytes);
        self.undo.push((key, before));
    }

    /// Buffers a put.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.write(key, Some(value));
    }

    /// Buffers a delete.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.write(key, None);
    }

    /// Approximate encoded size of the buffered writes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The most bytes the overlay held at once since it was made (batches taken
    /// included).
    pub fn peak_bytes(&self) -> u64 {
        self.peak
    }

    /// Approximate bytes buffered since `mark` (writes since then, net of overwrites).
    pub fn bytes_since(&self, mark: Mark) -> u64 {
        self.bytes.saturating_sub(mark.bytes)
    }

    /// The current point, to roll back to with [`SlotOverlay::rollback`].
    pub fn mark(&self) -> Mark {
        Mark {
            undo_len: self.undo.len(),
            bytes: self.bytes,
        }
    }

    /// Undoes every write made since `mark`.
    pub fn rollback(&mut self, mark: Mark) {
        while self.undo.len() > mark.undo_len {
            let Some((key, before)) = self.undo.pop() else {
                break;
            };
            match before {
                Some(v) => {
                    self.writes.insert(key, v);
                }
                None => {
                    self.writes.remove(&key);
                }
            }
        }
        self.bytes = mark.bytes;
    }

    /// Up to `count_max` live pairs with keys in `[lower, upper)`, in key order, merging
    /// the Db with the slot's writes.
    pub fn scan_range(
        &self,
        lower: &[u8],
        upper: &[u8],
        count_max: usize,
    ) -> Result<Vec<Pair>, KvError> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        // Overlay deletes may hide Db entries: read enough Db entries to still find
        // `count_max` live ones.
        let deletes_in_range = self
            .writes
            .range::<[u8], _>((Bound::Included(lower), Bound::Excluded(upper)))
            .filter(|(_, v)| v.is_none())
            .count();
        let db_max = count_max + deletes_in_range;
        for item in self
            .db
            .iter(Bound::Included(lower), Bound::Excluded(upper))?
            .take(db_max)
        {
            let (k, v) = item?;
            if !self.writes.contains_key(&k) {
                merged.insert(k, v);
            }
        }
        for (k, v) in self
            .writes
            .range::<[u8], _>((Bound::Included(lower), Bound::Excluded(upper)))
        {
            if let Some(v) = v {
                merged.insert(k.clone(), v.clone());
            }
        }
        Ok(merged.into_iter().take(count_max).collect())
    }

    /// Live pairs with keys in `(from, upper)` in key order, merging the Db with the
    /// slot's writes: at most `count_max` of them, and no more once they hold
    /// `bytes_max` bytes (always one if any). The Db is walked lazily, so memory is what
    /// is returned, whatever the range holds.
    pub fn scan_bounded(
        &self,
        from: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        count_max: usize,
        bytes_max: usize,
    ) -> Result<Vec<Pair>, KvError> {
        let mut db = self.db.iter(from, upper)?;
        // `DbIter` has a cursor-style `next` of its own: take the `Iterator` one.
        let mut db_pull = move || Iterator::next(&mut db).transpose();
        let mut ours = self.writes.range::<[u8], _>((from, upper));
        let mut db_next = db_pull()?;
        let mut our_next = ours.next();
        let mut out: Vec<Pair> = Vec::new();
        let mut bytes = 0usize;
        while out.len() < count_max && (out.is_empty() || bytes < bytes_max) {
            let pick = match (&db_next, &our_next) {
                (None, None) => break,
                (Some((dk, _)), Some((ok, _))) => dk.as_slice().cmp(ok.as_slice()),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
            };
            let pair = if pick == Ordering::Less {
                let pair = db_next.take();
                db_next = db_pull()?;
                pair
            } else {
                // Ours wins a tie: the Db's entry is older.
                if pick == Ordering::Equal {
                    db_next = db_pull()?;
                }
                let pair = our_next.and_then(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())));
                our_next = ours.next();
                pair
            };
            if let Some((k, v)) = pair {
                bytes = bytes.saturating_add(k.len() + v.len());
                out.push((k, v));
            }
        }
        Ok(out)
    }

    /// True when nothing was buffered.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Turns the buffered writes into a batch and starts empty again (earlier marks are
    /// void). The batch is the overlay's until the next `take_batch`.
    pub fn take_batch(&mut self) -> &WriteBatch {
        self.undo.clear();
        self.batch.clear();
        // `bytes` counts every entry's key and value plus 16, more than its encoding
        // (kind and two varints): the batch never regrows as it fills.
        self.batch.reserve(usize::try_from(self.bytes).unwrap_or(0));
        self.bytes = 0;
        for (k, v) in std::mem::take(&mut self.writes) {
            match v {
                Some(v) => self.batch.put(&k, &v),
                None => self.batch.delete(&k),
            }
        }
        &self.batch
    }

    /// The batch buffer, for the next slot's overlay: empty, and a new one if this
    /// one grew past [`SPARE_BATCH_BYTES_MAX`].
    pub fn into_spare(mut self) -> WriteBatch {
        if self.batch.capacity_bytes() > SPARE_BATCH_BYTES_MAX {
            return WriteBatch::new();
        }
        self.batch.clear();
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::Arc;

    fn db() -> Db {
        let fs = Arc::new(vfs::SimFs::new());
        Db::open(fs, Path::new("/kv"), storage::Options::default())
            .unwrap_or_else(|e| panic!("open: {e}"))
    }

    #[test]
    fn the_batch_buffer_passes_from_slot_to_slot_unless_a_slot_grew_it_too_big() {
        let db = db();
        let mut overlay = SlotOverlay::new(&db, WriteBatch::new());
        overlay.put(b"a".to_vec(), vec![1; 100]);
        overlay.delete(b"b".to_vec());
        let batch = overlay.take_batch();
        assert_eq!(batch.len(), 2);
        let room = batch.capacity_bytes();
        assert!(room >= batch.encoded_bytes());
        let spare = overlay.into_spare();
        assert!(spare.is_empty());
        assert_eq!(spare.capacity_bytes(), room, "the buffer is kept");

        // The next slot writes through the same buffer and sees none of the last.
        let mut overlay = SlotOverlay::new(&db, spare);
        overlay.put(b"c".to_vec(), vec![2; 10]);
        let batch = overlay.take_batch();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.capacity_bytes(), room, "no new allocation");

        // A slot that grew the buffer past the cap hands on a new one.
        let mut overlay = SlotOverlay::new(&db, overlay.into_spare());
        overlay.put(b"d".to_vec(), vec![3; SPARE_BATCH_BYTES_MAX + 1]);
        assert!(overlay.take_batch().capacity_bytes() > SPARE_BATCH_BYTES_MAX);
        assert_eq!(overlay.into_spare().capacity_bytes(), 0);
    }
}
