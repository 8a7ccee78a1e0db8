//! `BlockCache`: a sharded LRU cache of data blocks with a byte capacity, shared by
//! every table of an engine and keyed by (table id, block offset).
//!
//! Tables opened with [`crate::ReadMode::Cached`] read a data block with one `pread`
//! of exactly that block (contents and trailer), check its crc once, and put it here;
//! later reads of the block are a hash lookup and an `Arc` clone. What the engine
//! holds is therefore what it asked for, counted in bytes, rather than whatever
//! the kernel's readahead and page reclaim left mapped.
//!
//! Layout: `SHARDS_MAX` shards (fewer for tiny capacities), each a `Mutex` over a hash
//! map into a slab of nodes threaded on a doubly linked recency list (head = most
//! recent). A key's shard is picked by a mixing hash, so concurrent readers of
//! different blocks rarely meet on one lock.
//!
//! Invariants (per shard, checked by the unit tests):
//! - `used` is the sum of the charges of the nodes in the map, and `used <= capacity`
//!   after every insert returns: inserting evicts from the tail until the new block
//!   fits, and a block larger than the whole shard is not cached at all;
//! - every node in the map is on the list exactly once, and free slots are not.
//!
//! The capacity can change while the cache is in use (`set_capacity`: the engine
//! gives the cache what its memory budget leaves once memtables are counted);
//! shrinking evicts at once. Memory held beside the cache can be charged to it
//! ([`crate::CacheCharge`], as a table's index and filter are while loaded): the
//! blocks then get the capacity less every live charge, at least 0. Invariant: the
//! shards' capacities always sum to that, rounded down to whole shards.
//!
//! A block's charge is its length plus `ENTRY_OVERHEAD_BYTES` (map slot, node, `Arc`
//! header), so a cache of tiny blocks also stays within its capacity. Capacity 0
//! caches nothing: every read goes to the file. Blocks of a closed table stay until
//! evicted; table ids are never reused (`new_table_id`), so they are never found.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Most shards a cache is split into (a power of two).
pub const SHARDS_MAX: usize = 16;
/// A shard holds at least this many bytes; smaller caches get fewer shards.
const SHARD_BYTES_MIN: u64 = 1 << 20;
/// Bytes charged per cached block on top of its length (bookkeeping).
pub const ENTRY_OVERHEAD_BYTES: u64 = 96;
/// The slab index meaning "no node".
const NIL: usize = usize::MAX;

/// (table id, file offset of the block).
type Key = (u64, u64);

/// What [`BlockCache::stats`] reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// What the blocks may hold, in bytes (the capacity less the charges).
    pub capacity_bytes: u64,
    /// Bytes held beside the blocks and charged to the cache (indexes and filters).
    pub charged_bytes: u64,
    /// Bytes charged for the blocks held now.
    pub used_bytes: u64,
    /// Blocks held now.
    pub blocks: u64,
    /// Lookups that found their block.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Blocks pushed out to make room.
    pub evictions: u64,
}

/// A sharded LRU cache of blocks (see the module doc). `Send + Sync`.
#[derive(Debug)]
pub struct BlockCache {
    shards: Box<[Mutex<Shard>]>,
    /// What the blocks may hold now: the capacity less the charges, rounded down.
    capacity_bytes: AtomicU64,
    /// The capacity asked for and the live charges; held while the shards resize.
    sizing: Mutex<Sizing>,
    next_table_id: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizing {
    capacity: u64,
    pub(crate) charged: u64,
}

#[derive(Debug)]
struct Node {
    key: Key,
    block: Arc<[u8]>,
    charge: u64,
    prev: usize,
    next: usize,
}

#[derive(Debug)]
struct Shard {
    capacity: u64,
    used: u64,
    map: HashMap<Key, usize, BuildHasherDefault<KeyHasher>>,
    slab: Vec<Option<Node>>,
    free: Vec<usize>,
    /// Most recently used node, or `NIL`.
    head: usize,
    /// Least recently used node, or `NIL`.
    tail: usize,
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` (charges included); 0 caches nothing.
    pub fn new(capacity_bytes: u64) -> BlockCache {
        let mut shards = SHARDS_MAX;
        while shards > 1 && capacity_bytes / (shards as u64) < SHARD_BYTES_MIN {
            shards /= 2;
        }
        let per_shard = capacity_bytes / shards as u64;
        BlockCache {
            shards: (0..shards)
                .map(|_| Mutex::new(Shard::new(per_shard)))
                .collect(),
            capacity_bytes: AtomicU64::new(per_shard * shards as u64),
            sizing: Mutex::new(Sizing {
                capacity: capacity_bytes,
                charged: 0,
            }),
            next_table_id: AtomicU64::new(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// A table id no other table of this cache has had.
    pub fn new_table_id(&self) -> u64 {
        self.next_table_id.fetch_add(1, Ordering::Relaxed)
    }

    /// What the blocks may hold, in bytes: the capacity asked for less the live
    /// charges, rounded down to whole shards.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes.load(Ordering::Relaxed)
    }

    fn shard(&self, key: Key) -> MutexGuard<'_, Shard> {
        let i = (mix(key) >> 32) as usize & (self.shards.len() - 1);
        let shard = match self.shards.get(i) {
            Some(s) => s,
            None => unreachable!("shard index masked to the shard count"),
        };
        // A panic while holding a shard cannot leave it inconsistent in a way that
        // matters more than losing the cache; keep serving.
        shard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The block at `offset` of table `table`, made most recently used.
    pub fn get(&self, table: u64, offset: u64) -> Option<Arc<[u8]>> {
        let found = self.shard((table, offset)).get((table, offset));
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches `block` as the block at `offset` of table `table`, evicting the least
    /// recently used blocks of its shard until it fits (not cached if it never can).
    pub fn insert(&self, table: u64, offset: u64, block: Arc<[u8]>) {
        let evicted = self.shard((table, offset)).insert((table, offset), block);
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    /// Drops the block at `offset` of table `table`, if cached (its bytes on disk were
    /// found bad: the next reader must read and check them again).
    pub fn remove(&self, table: u64, offset: u64) {
        let mut shard = self.shard((table, offset));
        if let Some(&i) = shard.map.get(&(table, offset)) {
            shard.remove(i);
        }
    }

    /// Changes the capacity to `capacity_bytes` (less the live charges, rounded down
    /// to whole shards; the shard count `new` chose stays), evicting each shard's least
    /// recently used blocks until it fits.
    pub fn set_capacity(&self, capacity_bytes: u64) {
        self.resize(|s| s.capacity = capacity_bytes);
    }

    /// Bytes charged by the live [`crate::CacheCharge`]s.
    pub fn charged_bytes(&self) -> u64 {
        self.sizing().charged
    }

    fn sizing(&self) -> MutexGuard<'_, Sizing> {
        self.sizing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes the sizing with `f` and gives every shard its part of what is left.
    pub(crate) fn resize(&self, f: impl FnOnce(&mut Sizing)) {
        let mut sizing = self.sizing();
        f(&mut sizing);
        let blocks = sizing.capacity.saturating_sub(sizing.charged);
        let per_shard = blocks / self.shards.len() as u64;
        let mut evicted = 0;
        for shard in self.shards.iter() {
            let mut s = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            s.capacity = per_shard;
            while s.used > s.capacity && s.tail != NIL {
                let tail = s.tail;
                s.remove(tail);
                evicted += 1;
            }
        }
        self.capacity_bytes
            .store(per_shard * self.shards.len() as u64, Ordering::Relaxed);
        drop(sizing);
        if evicted > 0 {
            self.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
    }

    /// The cache's figures now.
    pub fn stats(&self) -> CacheStats {
        let (mut used_bytes, mut blocks) = (0, 0);
        for shard in self.shards.iter() {
            let s = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            used_bytes += s.used;
            blocks += s.map.len() as u64;
        }
        CacheStats {
            capacity_bytes: self.capacity_bytes(),
            charged_bytes: self.charged_bytes(),
            used_bytes,
            blocks,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

impl Shard {
    fn new(capacity: u64) -> Shard {
        Shard {
            capacity,
            used: 0,
            map: HashMap::default(),
            slab: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    fn node(&mut self, i: usize) -> &mut Node {
        match self.slab.get_mut(i).and_then(Option::as_mut) {
            Some(n) => n,
            None => unreachable!("list and map only name live slab slots"),
        }
    }

    fn get(&mut self, key: Key) -> Option<Arc<[u8]>> {
        let i = *self.map.get(&key)?;
        self.unlink(i);
        self.push_front(i);
        Some(Arc::clone(&self.node(i).block))
    }

    /// Returns how many blocks were evicted.
    fn insert(&mut self, key: Key, block: Arc<[u8]>) -> u64 {
        let charge = block.len() as u64 + ENTRY_OVERHEAD_BYTES;
        if charge > self.capacity {
            return 0;
        }
        if let Some(&i) = self.map.get(&key) {
            // Two readers missed on the same block and both read it: keep the first.
            self.unlink(i);
            self.push_front(i);
            return 0;
        }
        let mut evicted = 0;
        while self.used + charge > self.capacity && self.tail != NIL {
            self.remove(self.tail);
            evicted += 1;
        }
        let node = Node {
            key,
            block,
            charge,
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slab.get_mut(i) {
                    *slot = Some(node);
                }
                i
            }
            None => {
                self.slab.push(Some(node));
                self.slab.len() - 1
            }
        };
        self.map.insert(key, i);
        self.used += charge;
        self.push_front(i);
        debug_assert!(self.used <= self.capacity);
        evicted
    }

    fn remove(&mut self, i: usize) {
        self.unlink(i);
        let node = self.slab.get_mut(i).and_then(Option::take);
        if let Some(node) = node {
            self.map.remove(&node.key);
            self.used -= node.charge;
            self.free.push(i);
        }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = {
            let n = self.node(i);
            let links = (n.prev, n.next);
            n.prev = NIL;
            n.next = NIL;
            links
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.node(prev).next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.node(next).prev = prev;
        }
    }

    fn push_front(&mut self, i: usize) {
        let old = self.head;
        {
            let n = self.node(i);
            n.prev = NIL;
            n.next = old;
        }
        if old == NIL {
            self.tail = i;
        } else {
            self.node(old).prev = i;
        }
        self.head = i;
    }
}

/// A 64-bit mix of a key (splitmix64 finalizer over both words).
#[inline]
fn mix((table, offset): Key) -> u64 {
    let mut z = table.rotate_left(32) ^ offset;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The map's hasher: keys are two integers, mixed once (`write_u64` is all it sees).
#[derive(Default)]
struct KeyHasher {
    state: u64,
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        mix((self.state, 0))
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = self.state.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.state = self.state.rotate_left(29) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(len: usize, fill: u8) -> Arc<[u8]> {
        std::iter::repeat_n(fill, len).collect()
    }

    /// Walks a shard's list both ways and checks it against the map and `used`.
    fn check_shard(s: &Shard) {
        let mut seen = 0;
        let mut used = 0;
        let (mut i, mut prev) = (s.head, NIL);
        while i != NIL {
            let n = s.slab[i].as_ref().expect("listed node is live");
            assert_eq!(n.prev, prev);
            assert_eq!(s.map.get(&n.key), Some(&i));
            used += n.charge;
            seen += 1;
            prev = i;
            i = n.next;
        }
        assert_eq!(s.tail, prev);
        assert_eq!(seen, s.map.len());
        assert_eq!(used, s.used);
        assert!(s.used <= s.capacity, "{} > {}", s.used, s.capacity);
    }

    #[test]
    fn eviction_keeps_every_shard_within_capacity_and_drops_the_least_recent() {
        let cache = BlockCache::new(64 << 10); // below SHARD_BYTES_MIN: one shard
        assert_eq!(cache.shards.len(), 1);
        let charge = 4096 + ENTRY_OVERHEAD_BYTES;
        let fits = (64 << 10) / charge; // 15 blocks
        for off in 0..fits {
            cache.insert(1, off * 4096, block(4096, off as u8));
        }
        assert!(cache.get(1, 0).is_some(), "block 0 is now the most recent");
        cache.insert(1, fits * 4096, block(4096, 0xee));
        // Block 1 was the least recently used, so it went; block 0 stayed.
        assert!(cache.get(1, 4096).is_none());
        assert_eq!(cache.get(1, 0).as_deref(), Some(&block(4096, 0)[..]));
        let stats = cache.stats();
        assert_eq!(stats.blocks, fits);
        assert_eq!(stats.evictions, 1);
        assert!(stats.used_bytes <= stats.capacity_bytes);
        check_shard(&cache.shards[0].lock().unwrap());

        // Many more inserts of mixed sizes: never above capacity, list consistent.
        for n in 0..2000u64 {
            let len = 1 + (n * 7919 % 9000) as usize;
            cache.insert(2 + n % 5, n * 10_000, block(len, 1));
            let s = cache.shards[0].lock().unwrap();
            assert!(s.used <= s.capacity);
            if n % 97 == 0 {
                check_shard(&s);
            }
        }
    }

    #[test]
    fn set_capacity_shrinks_by_evicting_the_least_recent_and_can_grow_again() {
        let cache = BlockCache::new(4 << 20); // four shards of 1 MiB
        assert_eq!(cache.shards.len(), 4);
        for off in 0..800u64 {
            cache.insert(1, off * 4096, block(4096, off as u8));
        }
        let full = cache.stats();
        assert!(full.used_bytes > 3 << 20, "{full:?}");
        // Touch the last 50 so they are the most recent in their shards.
        for off in 750..800u64 {
            assert!(cache.get(1, off * 4096).is_some());
        }
        cache.set_capacity(1 << 20);
        let small = cache.stats();
        assert_eq!(small.capacity_bytes, 1 << 20);
        assert!(small.used_bytes <= 1 << 20, "{small:?}");
        assert_eq!(small.evictions, full.blocks - small.blocks);
        for s in cache.shards.iter() {
            check_shard(&s.lock().unwrap());
        }
        for off in 750..800u64 {
            assert!(
                cache.get(1, off * 4096).is_some(),
                "recent block {off} kept"
            );
        }
        cache.set_capacity(0);
        assert_eq!(cache.stats().used_bytes, 0);
        cache.insert(1, 0, block(4096, 1));
        assert!(cache.get(1, 0).is_none(), "capacity 0 caches nothing");
        cache.set_capacity(4 << 20);
        cache.insert(1, 0, block(4096, 1));
        assert!(cache.get(1, 0).is_some(), "grown again");
        assert_eq!(cache.stats().capacity_bytes, 4 << 20);
    }

    #[test]
    fn a_block_larger_than_a_shard_and_a_zero_capacity_cache_cache_nothing() {
        let cache = BlockCache::new(8 << 10);
        cache.insert(1, 0, block(16 << 10, 1));
        assert!(cache.get(1, 0).is_none());
        let none = BlockCache::new(0);
        none.insert(1, 0, block(10, 1));
        assert!(none.get(1, 0).is_none());
        assert_eq!(none.stats().used_bytes, 0);
        assert_eq!(none.stats().misses, 1);
    }

    #[test]
    fn large_caches_are_sharded_and_count_hits_and_misses() {
        let cache = BlockCache::new(64 << 20);
        assert_eq!(cache.shards.len(), SHARDS_MAX);
        let a = cache.new_table_id();
        let b = cache.new_table_id();
        assert_ne!(a, b);
        for off in 0..1000 {
            cache.insert(a, off * 4096, block(4096, 7));
        }
        for off in 0..1000 {
            assert!(cache.get(a, off * 4096).is_some());
            assert!(
                cache.get(b, off * 4096).is_none(),
                "other table, same offset"
            );
        }
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.blocks), (1000, 1000, 1000));
        assert_eq!(stats.used_bytes, 1000 * (4096 + ENTRY_OVERHEAD_BYTES));
        let counts: Vec<usize> = cache
            .shards
            .iter()
            .map(|s| s.lock().unwrap().map.len())
            .collect();
        assert!(
            counts.iter().all(|&c| c > 20),
            "keys spread over shards: {counts:?}"
        );
    }
}
