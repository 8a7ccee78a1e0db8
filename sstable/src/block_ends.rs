//! Where each data block of a loaded table ends: the block handles, in 4 bytes per
//! block rather than the index entry's 12 (or a decoded entry's 40).
//!
//! Data blocks lie back to back from offset 0 (`open::validate` checks it), so block
//! `i` starts where block `i - 1` ends and the end offsets alone give every handle.
//! Ends below 4 GiB (every table the engine writes: they are cut at 64 MiB by
//! default) are held as `u32`, larger ones as `u64`.
//!
//! Invariant: ends are strictly increasing, and each block spans at least its trailer.

use crate::format::{Handle, BLOCK_TRAILER_LEN};

/// The end offset (trailer included) of each data block, in order.
#[derive(Debug)]
pub(crate) enum BlockEnds {
    Narrow(Box<[u32]>),
    Wide(Box<[u64]>),
}

impl BlockEnds {
    /// Holds `ends` (validated: increasing, each block longer than its trailer).
    pub(crate) fn new(ends: Vec<u64>) -> BlockEnds {
        let narrow: Option<Box<[u32]>> = ends.iter().map(|&e| u32::try_from(e).ok()).collect();
        match narrow {
            Some(narrow) => BlockEnds::Narrow(narrow),
            None => BlockEnds::Wide(ends.into_boxed_slice()),
        }
    }

    /// Number of blocks.
    pub(crate) fn len(&self) -> usize {
        match self {
            BlockEnds::Narrow(e) => e.len(),
            BlockEnds::Wide(e) => e.len(),
        }
    }

    /// Heap bytes held.
    pub(crate) fn memory_bytes(&self) -> usize {
        match self {
            BlockEnds::Narrow(e) => std::mem::size_of_val(&**e),
            BlockEnds::Wide(e) => std::mem::size_of_val(&**e),
        }
    }

    fn end(&self, i: usize) -> Option<u64> {
        match self {
            BlockEnds::Narrow(e) => e.get(i).map(|&x| u64::from(x)),
            BlockEnds::Wide(e) => e.get(i).copied(),
        }
    }

    /// The handle of block `i`, if there is one.
    #[inline]
    pub(crate) fn handle(&self, i: usize) -> Option<Handle> {
        let end = self.end(i)?;
        let start = match i.checked_sub(1) {
            Some(prev) => self.end(prev)?,
            None => 0,
        };
        let len = end
            .checked_sub(start)?
            .checked_sub(BLOCK_TRAILER_LEN as u64)?;
        Some(Handle {
            offset: start,
            len: u32::try_from(len).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handles(ends: &BlockEnds) -> Vec<Handle> {
        (0..ends.len()).map_while(|i| ends.handle(i)).collect()
    }

    #[test]
    fn handles_follow_from_the_ends_narrow_or_wide() {
        let t = BLOCK_TRAILER_LEN as u64;
        let narrow = BlockEnds::new(vec![100 + t, 250 + 2 * t]);
        assert!(matches!(narrow, BlockEnds::Narrow(_)));
        let want = vec![
            Handle {
                offset: 0,
                len: 100,
            },
            Handle {
                offset: 100 + t,
                len: 150,
            },
        ];
        assert_eq!(handles(&narrow), want);
        assert_eq!(narrow.memory_bytes(), 8);
        assert_eq!(narrow.handle(2), None);

        let big = 5u64 << 30;
        let wide = BlockEnds::new(vec![big, big + 10 + t]);
        assert!(matches!(wide, BlockEnds::Wide(_)));
        assert_eq!(
            wide.handle(1),
            Some(Handle {
                offset: big,
                len: 10
            })
        );
        // The first block's contents do not fit a handle's u32 length.
        assert_eq!(wide.handle(0), None);
    }
}
