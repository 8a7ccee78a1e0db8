//! Where each record of a segment starts: the index's one entry per record.
//!
//! A log holds every record's offset in memory for as long as the record is in the
//! log, so this is the index's whole cost: 4 bytes per record (offsets inside a
//! segment, which `Options::validate` keeps under 4 GiB), in fixed chunks of 16,384
//! rather than one growing vector, so that memory follows the count (a vector
//! doubling past 500,000 records would hold twice what it uses, and both its old and
//! new buffer while it grows) and growing never copies.
//!
//! A log opened with `Options::index_records` false keeps no offsets at all, only the
//! count ([`Offsets::Counted`]): its records are only ever read in order from a
//! segment's start (`segment.rs` walks their headers), which is all a log replayed
//! whole at open needs (the storage engine's), and its memory then does not grow with
//! the records it holds.
//!
//! Invariant: every chunk but the last is full (so the count follows from the chunks).

/// Offsets per chunk (64 KiB).
const CHUNK: usize = 16 * 1024;

/// The start offsets of a segment's records, in record order, or only their count.
#[derive(Debug)]
pub(crate) enum Offsets {
    Kept { chunks: Vec<Vec<u32>> },
    Counted(usize),
}

impl Default for Offsets {
    fn default() -> Offsets {
        Offsets::new(true)
    }
}

impl Offsets {
    /// No records yet; `keep`: keep their offsets, or only count them.
    pub fn new(keep: bool) -> Offsets {
        if keep {
            Offsets::Kept { chunks: Vec::new() }
        } else {
            Offsets::Counted(0)
        }
    }

    /// True when each record's offset is kept.
    pub fn is_kept(&self) -> bool {
        matches!(self, Offsets::Kept { .. })
    }

    /// How many records.
    pub fn len(&self) -> usize {
        match self {
            Offsets::Kept { chunks } => chunks
                .last()
                .map_or(0, |last| (chunks.len() - 1) * CHUNK + last.len()),
            Offsets::Counted(n) => *n,
        }
    }

    /// Where record `k` starts, if there is one and offsets are kept.
    pub fn get(&self, k: usize) -> Option<u64> {
        match self {
            Offsets::Kept { chunks } => {
                let chunk = chunks.get(k / CHUNK)?;
                chunk.get(k % CHUNK).map(|&o| u64::from(o))
            }
            Offsets::Counted(_) => None,
        }
    }

    /// Appends the next record's offset; `None` (nothing appended) if it does not fit
    /// in 32 bits.
    #[must_use]
    pub fn push(&mut self, offset: u64) -> Option<()> {
        let offset = u32::try_from(offset).ok()?;
        match self {
            Offsets::Kept { chunks } => match chunks.last_mut() {
                Some(chunk) if chunk.len() < CHUNK => chunk.push(offset),
                _ => {
                    let mut chunk = Vec::with_capacity(CHUNK);
                    chunk.push(offset);
                    chunks.push(chunk);
                }
            },
            Offsets::Counted(n) => *n += 1,
        }
        Some(())
    }

    /// Keeps the first `n` offsets.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len() {
            return;
        }
        match self {
            Offsets::Kept { chunks } => {
                chunks.truncate(n.div_ceil(CHUNK));
                if let Some(last) = chunks.last_mut() {
                    last.truncate(n - (n - 1) / CHUNK * CHUNK);
                }
            }
            Offsets::Counted(count) => *count = n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(n: usize) -> Offsets {
        let mut o = Offsets::default();
        for k in 0..n {
            o.push(k as u64 * 10)
                .unwrap_or_else(|| panic!("offset {k} fits"));
        }
        o
    }

    #[test]
    fn offsets_read_back_across_chunks() {
        let n = 2 * CHUNK + 5;
        let o = filled(n);
        assert_eq!(o.len(), n);
        for k in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, n - 1] {
            assert_eq!(o.get(k), Some(k as u64 * 10), "offset {k}");
        }
        assert_eq!(o.get(n), None);
    }

    #[test]
    fn truncating_keeps_a_prefix_at_and_around_chunk_edges() {
        for keep in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK] {
            let mut o = filled(2 * CHUNK + 5);
            o.truncate(keep);
            assert_eq!(o.len(), keep);
            assert_eq!(o.get(keep), None, "keep {keep}: nothing past the cut");
            if keep > 0 {
                assert_eq!(o.get(keep - 1), Some((keep as u64 - 1) * 10));
            }
            // Appending after a cut continues from there.
            assert_eq!(o.push(7), Some(()));
            assert_eq!(o.get(keep), Some(7), "keep {keep}");
            assert_eq!(o.len(), keep + 1);
        }
    }

    #[test]
    fn a_counted_index_holds_the_count_and_no_offsets() {
        let mut o = Offsets::new(false);
        for k in 0..3 * CHUNK {
            assert_eq!(o.push(k as u64 * 10), Some(()));
        }
        assert!(!o.is_kept());
        assert_eq!(o.len(), 3 * CHUNK);
        assert_eq!(o.get(0), None, "no offset is kept");
        o.truncate(5);
        assert_eq!(o.len(), 5);
        assert!(
            matches!(o, Offsets::Counted(5)),
            "and no memory per record: {o:?}"
        );
    }

    #[test]
    fn an_offset_past_4_gib_is_refused() {
        let mut o = filled(3);
        assert_eq!(o.push(u64::from(u32::MAX)), Some(()));
        assert_eq!(o.push(1 << 32), None);
        assert_eq!(o.len(), 4);
    }
}

#[cfg(test)]
mod limit_tests {
    use crate::{Options, SEGMENT_BYTES_LIMIT};

    #[test]
    fn segments_are_limited_to_what_32_bit_offsets_reach() {
        let at_limit = Options {
            segment_bytes_max: SEGMENT_BYTES_LIMIT,
            ..Options::default()
        };
        assert!(at_limit.validate().is_ok());
        let past = Options {
            segment_bytes_max: SEGMENT_BYTES_LIMIT + 1,
            ..Options::default()
        };
        assert!(past.validate().is_err(), "a segment past 4 GiB is refused");
    }
}
