//! `CacheCharge`: memory held beside a [`BlockCache`] and charged to it, as a loaded
//! table's index and filter are (`loaded.rs`), so that one budget bounds both.
//!
//! Invariant: while a charge lives, the cache's blocks have `bytes` less room; dropping
//! it gives the room back, once.

use std::sync::Arc;

use crate::block_cache::BlockCache;

/// Memory charged to a [`BlockCache`].
#[derive(Debug)]
pub struct CacheCharge {
    cache: Arc<BlockCache>,
    bytes: u64,
}

impl CacheCharge {
    /// Charges `bytes` held elsewhere to `cache` until the charge drops: its blocks
    /// give up that much room at once (evicting), and get it back then.
    pub fn new(cache: &Arc<BlockCache>, bytes: u64) -> CacheCharge {
        cache.resize(|s| s.charged = s.charged.saturating_add(bytes));
        CacheCharge {
            cache: Arc::clone(cache),
            bytes,
        }
    }

    /// The bytes charged.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for CacheCharge {
    fn drop(&mut self) {
        let bytes = self.bytes;
        self.cache
            .resize(|s| s.charged = s.charged.saturating_sub(bytes));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_charge_takes_room_from_the_blocks_until_it_drops() {
        let cache = Arc::new(BlockCache::new(64 << 10));
        let block: Arc<[u8]> = vec![1u8; 4000].into();
        for off in 0..15u64 {
            cache.insert(1, off, Arc::clone(&block));
        }
        let full = cache.stats();
        assert_eq!(full.blocks, 15);
        let charge = CacheCharge::new(&cache, 32 << 10);
        let charged = cache.stats();
        assert_eq!(charged.charged_bytes, 32 << 10);
        assert_eq!(charged.capacity_bytes, 32 << 10);
        assert!(charged.used_bytes <= charged.capacity_bytes, "{charged:?}");
        assert!(charged.blocks < 15, "evicted at once: {charged:?}");
        // More than the whole capacity: the blocks get nothing, never less than 0.
        let more = CacheCharge::new(&cache, 1 << 20);
        assert_eq!(cache.stats().capacity_bytes, 0);
        assert_eq!(cache.stats().used_bytes, 0);
        drop(more);
        drop(charge);
        let back = cache.stats();
        assert_eq!((back.capacity_bytes, back.charged_bytes), (64 << 10, 0));
        // Resizing keeps the live charges.
        let _charge = CacheCharge::new(&cache, 16 << 10);
        cache.set_capacity(128 << 10);
        assert_eq!(cache.stats().capacity_bytes, 112 << 10);
    }
}
