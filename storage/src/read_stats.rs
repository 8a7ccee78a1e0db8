//! `ReadStats`: what the engine's iterators stepped over without returning.
//!
//! Every version an iterator passes without yielding it (a tombstone, an older
//! version of a key, a version newer than its snapshot) is work the caller does not
//! see; a scan that keeps stepping over the same tombstones is quadratic. The count is
//! kept per iterator and added here when the iterator is dropped (one atomic add per
//! iterator, none per entry), as RocksDB's `internal_delete_skipped_count` does.

use std::sync::atomic::{AtomicU64, Ordering};

/// Engine-wide read counters.
#[derive(Debug, Default)]
pub struct ReadStats {
    hidden: AtomicU64,
}

impl ReadStats {
    /// Adds `n` entries an iterator stepped over.
    pub(crate) fn add_hidden(&self, n: u64) {
        if n > 0 {
            self.hidden.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Entries stepped over without being returned, by every iterator dropped so far.
    pub fn hidden_entries(&self) -> u64 {
        self.hidden.load(Ordering::Relaxed)
    }
}
