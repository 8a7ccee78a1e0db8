//! The memtable's entry arena: versions copied into big chunks, addressed by pointer.
//!
//! Each version is laid out once, contiguously, in a chunk (1 MiB, or bigger for a
//! big entry):
//!
//! ```text
//! entry := seqno_kind:u64 (seqno << 8 | kind) key_len:u32 value_len:u32 key value
//! ```
//!
//! so a memtable insert costs one copy and no allocation (a chunk per ~8000 small
//! entries), the map holds 16-byte keys ([`EntryPtr`] plus an 8-byte key prefix in
//! `memtable.rs`) that keep its nodes small and cache-friendly, and freeing a memtable
//! frees a handful of chunks instead of a million boxes.
//!
//! Safety contract (why the `unsafe` here is sound):
//! - Chunks are anonymous mappings whose address is taken once, when mapped, and
//!   which are unmapped only when the `Arena` drops; they never move or shrink, so an
//!   `EntryPtr` into a chunk stays valid as long as its `Arena` lives.
//! - Bytes of an entry are written once, before its `EntryPtr` is handed out, and
//!   never again; no `&mut` to a chunk is ever formed, so writing a new entry does not
//!   alias readers of older ones. Writing requires `&mut Arena`.
//! - The memtable keeps every `EntryPtr` of an arena inside the same struct as the
//!   arena, behind the same `RwLock` (writes under the write lock publish the bytes to
//!   readers, who take the read lock), and never lets one escape: cursors copy bytes
//!   out. A probe `EntryPtr` points into a [`Probe`]'s buffer and is used only while
//!   that `Probe` is borrowed.

#![allow(unsafe_code)]

use sstable::Kind;
use std::ptr::NonNull;

/// Bytes of the fixed entry header.
pub const ENTRY_HEADER_BYTES: usize = 16;
const CHUNK_BYTES: usize = 1 << 20;

const _: () = assert!(ENTRY_HEADER_BYTES == 8 + 4 + 4);

/// Address of one entry (in an arena chunk or a probe buffer).
#[derive(Clone, Copy)]
pub struct EntryPtr(NonNull<u8>);

// SAFETY: an EntryPtr is a read-only view of bytes that are never written after the
// pointer is created (module doc); sharing or sending it across threads is as safe as
// sharing `&[u8]`, given the arena outlives it (guaranteed by the memtable).
unsafe impl Send for EntryPtr {}
// SAFETY: as above.
unsafe impl Sync for EntryPtr {}

impl EntryPtr {
    #[inline]
    fn header(&self) -> (u64, u32, u32) {
        let p = self.0.as_ptr();
        // SAFETY: `p` points at a complete entry (at least ENTRY_HEADER_BYTES long)
        // that is alive and immutable (module doc); unaligned reads need no alignment.
        unsafe {
            let tag = std::ptr::read_unaligned(p.cast::<u64>());
            let key_len = std::ptr::read_unaligned(p.add(8).cast::<u32>());
            let value_len = std::ptr::read_unaligned(p.add(12).cast::<u32>());
            (
                u64::from_le(tag),
                u32::from_le(key_len),
                u32::from_le(value_len),
            )
        }
    }

    /// Hints the CPU to start loading the entry's first cache lines (header, key and
    /// the start of the value): a walk in key order visits the arena in random order,
    /// and a miss per entry otherwise dominates flushing a memtable.
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let p = self.0.as_ptr().cast_const().cast::<i8>();
            // SAFETY: the `sse` target feature is enabled (cfg above; baseline on x86_64),
            // which is all `_mm_prefetch` requires. A prefetch never faults and reads
            // nothing architecturally; `wrapping_add` keeps the address computation
            // defined even past the chunk's end.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(128));
            }
        }
    }

    /// The seqno.
    #[inline]
    pub fn seqno(&self) -> u64 {
        self.header().0 >> 8
    }

    /// The kind.
    #[inline]
    pub fn kind(&self) -> Kind {
        if self.header().0 & 0xff == Kind::Delete as u64 {
            Kind::Delete
        } else {
            Kind::Put
        }
    }

    /// The user key.
    #[inline]
    pub fn key(&self) -> &[u8] {
        let (_, key_len, _) = self.header();
        // SAFETY: the entry holds `key_len` key bytes right after the header, alive
        // and immutable for as long as the arena (module doc).
        unsafe {
            std::slice::from_raw_parts(self.0.as_ptr().add(ENTRY_HEADER_BYTES), key_len as usize)
        }
    }

    /// The value (empty for a tombstone).
    #[inline]
    pub fn value(&self) -> &[u8] {
        let (_, key_len, value_len) = self.header();
        // SAFETY: as for `key`; the value follows the key.
        unsafe {
            std::slice::from_raw_parts(
                self.0.as_ptr().add(ENTRY_HEADER_BYTES + key_len as usize),
                value_len as usize,
            )
        }
    }

    /// Key and value bytes as one slice (they are contiguous).
    #[inline]
    pub fn key_and_value(&self) -> &[u8] {
        let (_, key_len, value_len) = self.header();
        // SAFETY: as for `key`; key and value are adjacent.
        unsafe {
            std::slice::from_raw_parts(
                self.0.as_ptr().add(ENTRY_HEADER_BYTES),
                key_len as usize + value_len as usize,
            )
        }
    }
}

fn write_header(out: &mut [u8], key: &[u8], value: &[u8], seqno: u64, kind: Kind) {
    let tag = (seqno << 8) | kind as u64;
    out[..8].copy_from_slice(&tag.to_le_bytes());
    out[8..12].copy_from_slice(&(key.len() as u32).to_le_bytes());
    out[12..16].copy_from_slice(&(value.len() as u32).to_le_bytes());
}

/// One chunk: an anonymous mapping of its own, so freeing a memtable gives its bytes
/// back to the system at once (see `new_chunk`).
struct Chunk {
    /// The mapping's first byte, taken once when it was made.
    ptr: NonNull<u8>,
    /// The mapping's length, kept here: `MmapMut` tells it only through `Deref`, which
    /// would form a reference over bytes that `ptr` writes and `EntryPtr`s read.
    len: usize,
    /// Owns the mapping (unmapped on drop); never touched after `ptr` was taken.
    _map: memmap2::MmapMut,
}

/// Maps a fresh chunk of `len` zeroed bytes.
///
/// Chunks are mapped rather than taken from `malloc`: after glibc frees its first big
/// block it raises its mmap threshold, and later chunks come from its heap, which
/// keeps freed memory mapped. A flushed memtable's bytes then stay in the process's
/// resident set, and the next memtables grow beside them (measured: peak RSS of
/// db_bench's main sequence at 1,000,000 entries, 200 MB with heap chunks, 150 MB with
/// mapped ones). Running out of memory aborts, as any Rust allocation does.
fn new_chunk(len: usize) -> Chunk {
    // Populated: the kernel zeroes the chunk's pages in one call instead of one fault
    // per page as the entries reach them.
    let Ok(mut map) = memmap2::MmapOptions::new().len(len).populate().map_anon() else {
        out_of_memory(len)
    };
    let Some(ptr) = NonNull::new(map.as_mut_ptr()) else {
        out_of_memory(len)
    };
    Chunk {
        ptr,
        len,
        _map: map,
    }
}

/// Aborts as a failed allocation of `len` bytes does.
fn out_of_memory(len: usize) -> ! {
    match std::alloc::Layout::array::<u8>(len) {
        Ok(layout) => std::alloc::handle_alloc_error(layout),
        Err(e) => panic!("an arena chunk of {len} bytes: {e}"),
    }
}

/// Append-only storage of entries (see the module doc).
#[derive(Default)]
pub struct Arena {
    chunks: Vec<Chunk>,
    /// Bytes used in the last chunk.
    used: usize,
    /// Bytes of all entries.
    entry_bytes: usize,
}

// SAFETY: the arena owns its chunks (like a Vec<Box<[u8]>>); it is mutated only
// through `&mut self`. (`MmapMut` is Send and Sync itself; the raw `ptr` is the reason
// these impls are needed.)
unsafe impl Send for Arena {}
// SAFETY: `&Arena` gives no access to chunk bytes at all.
unsafe impl Sync for Arena {}

impl Arena {
    /// Copies an entry in and returns its address.
    pub fn push(&mut self, key: &[u8], value: &[u8], seqno: u64, kind: Kind) -> EntryPtr {
        assert!(key.len() <= u32::MAX as usize && value.len() <= u32::MAX as usize);
        assert!(seqno < 1 << 56, "seqno {seqno} does not fit the entry tag");
        let need = ENTRY_HEADER_BYTES + key.len() + value.len();
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.len - self.used >= need);
        if !fits {
            self.chunks.push(new_chunk(need.max(CHUNK_BYTES)));
            self.used = 0;
        }
        let chunk = &self.chunks[self.chunks.len() - 1];
        let mut header = [0u8; ENTRY_HEADER_BYTES];
        write_header(&mut header, key, value, seqno, kind);
        // SAFETY: `used + need <= chunk.len`, so every write is inside the chunk; the
        // range is fresh (no EntryPtr points into it yet), so nobody reads it now.
        let dst = unsafe {
            let dst = chunk.ptr.as_ptr().add(self.used);
            std::ptr::copy_nonoverlapping(header.as_ptr(), dst, ENTRY_HEADER_BYTES);
            std::ptr::copy_nonoverlapping(key.as_ptr(), dst.add(ENTRY_HEADER_BYTES), key.len());
            std::ptr::copy_nonoverlapping(
                value.as_ptr(),
                dst.add(ENTRY_HEADER_BYTES + key.len()),
                value.len(),
            );
            NonNull::new_unchecked(dst)
        };
        self.used += need;
        self.entry_bytes += need;
        EntryPtr(dst)
    }

    /// Bytes of all entries pushed.
    pub fn entry_bytes(&self) -> usize {
        self.entry_bytes
    }
}

/// Keys up to this long are probed from an inline buffer (no allocation).
const PROBE_INLINE_BYTES: usize = 64;

/// An entry laid out in its own buffer, to search the map with.
pub struct Probe {
    inline: [u8; ENTRY_HEADER_BYTES + PROBE_INLINE_BYTES],
    heap: Vec<u8>,
}

impl Probe {
    /// A probe for `(key, seqno)`.
    pub fn new(key: &[u8], seqno: u64) -> Probe {
        let mut p = Probe {
            inline: [0u8; ENTRY_HEADER_BYTES + PROBE_INLINE_BYTES],
            heap: Vec::new(),
        };
        let buf: &mut [u8] = if key.len() <= PROBE_INLINE_BYTES {
            &mut p.inline[..ENTRY_HEADER_BYTES + key.len()]
        } else {
            p.heap.resize(ENTRY_HEADER_BYTES + key.len(), 0);
            &mut p.heap
        };
        write_header(buf, key, &[], seqno, Kind::Put);
        buf[ENTRY_HEADER_BYTES..].copy_from_slice(key);
        p
    }

    /// The probe's address; valid while `self` is borrowed and not moved.
    pub fn entry(&self) -> EntryPtr {
        let ptr = if self.heap.is_empty() {
            self.inline.as_ptr()
        } else {
            self.heap.as_ptr()
        };
        // SAFETY: neither buffer's pointer is null; the entry is complete in it.
        EntryPtr(unsafe { NonNull::new_unchecked(ptr.cast_mut()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_across_chunks() {
        let mut a = Arena::default();
        let mut ptrs = Vec::new();
        for i in 0..30_000u64 {
            let key = format!("key{i}");
            let value = vec![i as u8; (i % 100) as usize];
            let kind = if i % 7 == 0 { Kind::Delete } else { Kind::Put };
            ptrs.push((
                a.push(key.as_bytes(), &value, i + 1, kind),
                key,
                value,
                kind,
            ));
        }
        let big = vec![9u8; 3 << 20];
        let p = a.push(b"big", &big, 5, Kind::Put);
        for (i, (p, key, value, kind)) in ptrs.iter().enumerate() {
            assert_eq!(p.key(), key.as_bytes());
            assert_eq!(p.value(), value.as_slice());
            assert_eq!(p.seqno(), i as u64 + 1);
            assert_eq!(p.kind(), *kind);
        }
        assert_eq!(p.value().len(), 3 << 20);
        assert_eq!(p.key_and_value().len(), 3 + (3 << 20));
        let probe = Probe::new(b"k", 77);
        assert_eq!(
            (probe.entry().key(), probe.entry().seqno()),
            (&b"k"[..], 77)
        );
    }
}
