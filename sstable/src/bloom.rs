//! The table's bloom filter over user keys: one filter for the whole table, split
//! into 64-byte lines so that every probe of one key touches a single cache line.
//!
//! ```text
//! filter := line{num_lines} num_probes:u8      line := 64 bytes (512 bits)
//! ```
//! `num_lines` is `(len - 1) / 64`; zero lines means "no filter" (every key may be
//! present). For a key with 64-bit hash `h` (see [`hash64`]): the line is
//! `((h >> 32) * num_lines) >> 32`; then with `x = h as u32`, each of the
//! `num_probes` probes sets or tests bit `x >> 23` of the line (bit `b` is bit
//! `b % 8` of byte `b / 8`) and steps `x = x * 0x9E37_79B9` (wrapping). This is
//! LevelDB's double hashing moved into one line (RocksDB's "fast local bloom"); at 10
//! bits per key and 6 probes it answers "maybe" for about 1% of absent keys.
//!
//! The hash is MurmurHash64A with a fixed seed: it is part of the format and must
//! never change for a given format version.

use crate::format::{BLOOM_LINE_BITS, BLOOM_LINE_BYTES, BLOOM_PROBES_MAX};

const PROBE_STEP: u32 = 0x9E37_79B9;
const HASH_SEED: u64 = 0x5353_5441_424c_4531; // "SSTABLE1"

/// MurmurHash64A (Austin Appleby, public domain) of `data`.
pub fn hash64(data: &[u8]) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = HASH_SEED ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The line a hash maps to, among `num_lines` (> 0).
#[inline]
fn line_of(hash: u64, num_lines: usize) -> usize {
    (((hash >> 32) * num_lines as u64) >> 32) as usize
}

/// Hashes per chunk of a [`BloomBuilder`] (64 KiB).
const HASH_CHUNK: usize = 8192;

/// Collects key hashes while a table is built, then lays out the filter.
///
/// The hashes are kept in fixed chunks, not one growing vector: a 64 MiB table has
/// about 550,000 keys, and a vector doubling past them would hold 8 MiB for 4.4 MB of
/// hashes (and both its old and new buffer while it grows). Chunks hold at most one
/// chunk more than they use, and never copy.
#[derive(Debug, Default)]
pub(crate) struct BloomBuilder {
    /// Every chunk but the last is full.
    chunks: Vec<Vec<u64>>,
}

impl BloomBuilder {
    /// Records one distinct user key.
    pub(crate) fn add_key(&mut self, key: &[u8]) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < HASH_CHUNK => chunk.push(hash64(key)),
            _ => {
                let mut chunk = Vec::with_capacity(HASH_CHUNK);
                chunk.push(hash64(key));
                self.chunks.push(chunk);
            }
        }
    }

    /// How many keys were recorded.
    fn len(&self) -> usize {
        self.chunks
            .last()
            .map_or(0, |last| (self.chunks.len() - 1) * HASH_CHUNK + last.len())
    }

    /// The filter's size in bytes for the keys so far.
    pub(crate) fn size_estimate(&self, bits_per_key: usize) -> usize {
        num_lines(self.len(), bits_per_key) * BLOOM_LINE_BYTES + 1
    }

    /// The filter block's contents.
    pub(crate) fn finish(&self, bits_per_key: usize) -> Vec<u8> {
        let lines = num_lines(self.len(), bits_per_key);
        let probes = num_probes(bits_per_key);
        let mut out = vec![0u8; lines * BLOOM_LINE_BYTES + 1];
        if lines > 0 {
            for &h in self.chunks.iter().flatten() {
                let base = line_of(h, lines) * BLOOM_LINE_BYTES;
                let mut x = h as u32;
                for _ in 0..probes {
                    let bit = (x >> (32 - BLOOM_LINE_BITS.trailing_zeros())) as usize;
                    if let Some(byte) = out.get_mut(base + bit / 8) {
                        *byte |= 1 << (bit % 8);
                    }
                    x = x.wrapping_mul(PROBE_STEP);
                }
            }
        }
        if let Some(last) = out.last_mut() {
            *last = if lines > 0 { probes } else { 0 };
        }
        out
    }
}

fn num_lines(keys: usize, bits_per_key: usize) -> usize {
    if keys == 0 || bits_per_key == 0 {
        return 0;
    }
    let bits = keys.saturating_mul(bits_per_key);
    bits.div_ceil(BLOOM_LINE_BITS as usize).max(1)
}

/// `bits_per_key * ln 2`, rounded, within 1..=BLOOM_PROBES_MAX.
fn num_probes(bits_per_key: usize) -> u8 {
    let k = (bits_per_key * 69 + 50) / 100;
    k.clamp(1, usize::from(BLOOM_PROBES_MAX)) as u8
}

/// A filter read from a table: the bit lines and the probe count, validated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BloomParams {
    pub(crate) num_lines: usize,
    pub(crate) num_probes: u8,
}

impl BloomParams {
    /// Checks a filter block's contents; `Err` names what is wrong.
    pub(crate) fn parse(contents: &[u8]) -> Result<BloomParams, &'static str> {
        let Some((&num_probes, lines)) = contents.split_last() else {
            return Err("empty filter block");
        };
        if lines.len() % BLOOM_LINE_BYTES != 0 {
            return Err("filter length is not whole lines plus one byte");
        }
        let num_lines = lines.len() / BLOOM_LINE_BYTES;
        if num_lines > 0 && (num_probes == 0 || num_probes > BLOOM_PROBES_MAX) {
            return Err("filter probe count out of range");
        }
        Ok(BloomParams {
            num_lines,
            num_probes,
        })
    }

    /// False only if `key` is certainly not in the table. `lines` is the filter's
    /// contents without the probe byte.
    #[inline]
    pub(crate) fn may_contain(&self, lines: &[u8], key: &[u8]) -> bool {
        if self.num_lines == 0 {
            return true;
        }
        let h = hash64(key);
        let base = line_of(h, self.num_lines) * BLOOM_LINE_BYTES;
        let Some(line) = lines.get(base..base + BLOOM_LINE_BYTES) else {
            return true;
        };
        let mut x = h as u32;
        for _ in 0..self.num_probes {
            let bit = (x >> (32 - BLOOM_LINE_BITS.trailing_zeros())) as usize;
            match line.get(bit / 8) {
                Some(byte) if byte & (1 << (bit % 8)) == 0 => return false,
                _ => {}
            }
            x = x.wrapping_mul(PROBE_STEP);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(keys: impl Iterator<Item = Vec<u8>>, bits_per_key: usize) -> (Vec<u8>, BloomParams) {
        let mut b = BloomBuilder::default();
        for k in keys {
            b.add_key(&k);
        }
        let f = b.finish(bits_per_key);
        let p = BloomParams::parse(&f).unwrap();
        (f, p)
    }

    #[test]
    fn every_added_key_may_be_present() {
        // Past two chunks of hashes: keys in every chunk are laid out.
        let n = 2 * HASH_CHUNK as u32 + 1000;
        let (f, p) = build((0..n).map(|i| i.to_be_bytes().to_vec()), 10);
        for i in 0..n {
            assert!(
                p.may_contain(&f, &i.to_be_bytes()),
                "false negative for {i}"
            );
        }
    }

    #[test]
    fn false_positive_rate_is_about_one_percent_at_ten_bits() {
        let (f, p) = build(
            (0u64..100_000).map(|i| format!("present-{i}").into_bytes()),
            10,
        );
        let absent = 100_000;
        let hits = (0u64..absent)
            .filter(|i| p.may_contain(&f, format!("absent-{i}").as_bytes()))
            .count();
        let rate = hits as f64 / absent as f64;
        assert!(rate < 0.02, "false positive rate {rate}");
    }

    #[test]
    fn no_keys_or_no_bits_means_no_filter() {
        let (f, p) = build(std::iter::empty(), 10);
        assert_eq!(f, vec![0]);
        assert!(p.may_contain(&f, b"anything"));
        let (f, p) = build(std::iter::once(b"k".to_vec()), 0);
        assert!(p.may_contain(&f, b"other"));
    }

    #[test]
    fn malformed_filters_are_rejected() {
        assert!(BloomParams::parse(&[]).is_err());
        assert!(BloomParams::parse(&[0; 10]).is_err());
        let mut f = vec![0; 65];
        f[64] = 0;
        assert!(BloomParams::parse(&f).is_err());
        f[64] = 31;
        assert!(BloomParams::parse(&f).is_err());
        f[64] = 6;
        assert!(BloomParams::parse(&f).is_ok());
    }

    #[test]
    fn hash_is_stable() {
        // The hash is part of the on-disk format: pin a few values.
        assert_ne!(hash64(b"a"), hash64(b"b"));
        assert_ne!(hash64(b"12345678"), hash64(b"123456789"));
        let pinned = [hash64(b""), hash64(b"a"), hash64(b"hello, world")];
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u64; 3] = [
        2_621_681_800_437_280_039,
        18_244_910_494_827_300_875,
        9_588_828_312_239_068_414,
    ];
}
