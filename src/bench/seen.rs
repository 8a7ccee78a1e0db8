//! The revisions one watcher of a `watch` run received, checked against the writes the
//! writer had acknowledged: each watcher must see every one of them, once, in order.
//!
//! A bitmap from the run's first revision (one bit per revision, whatever wrote it),
//! so a thousand watchers of a run of a million revisions hold 125 KB each.
//! Invariant: `count` is the number of distinct revisions in the map; a revision seen
//! again is a duplicate (not counted twice), one below the highest seen so far is out
//! of order, one past `REVISIONS_MAX` of the start is not tracked (counted apart).

/// The most revisions after the start a watcher tracks (512 KiB of bits).
pub const REVISIONS_MAX: u64 = 1 << 22;

/// What one watcher received.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    from: u64,
    bits: Vec<u64>,
    highest: Option<u64>,
    pub count: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Revisions before the start or past `REVISIONS_MAX` of it.
    pub untracked: u64,
}

/// A watcher's events against the acknowledged writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Check {
    /// Acknowledged writes it received.
    pub delivered: u64,
    /// Acknowledged writes it never received: gaps.
    pub missed: u64,
    /// Revisions it received that no acknowledged write of this run made (a write
    /// whose answer was lost, or another client writing the watched keys).
    pub unacknowledged: u64,
}

impl Seen {
    /// Tracks revisions from `from` (the first revision the watch asked for).
    pub fn new(from: u64) -> Seen {
        Seen {
            from,
            ..Seen::default()
        }
    }

    /// The highest revision received, if any.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Notes one received revision.
    pub fn add(&mut self, revision: u64) {
        let Some(offset) = revision
            .checked_sub(self.from)
            .filter(|o| *o < REVISIONS_MAX)
        else {
            self.untracked += 1;
            return;
        };
        let (word, bit) = ((offset / 64) as usize, offset % 64);
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        if self.bits[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.bits[word] |= 1 << bit;
        self.count += 1;
        if self.highest.is_some_and(|h| revision < h) {
            self.out_of_order += 1;
        }
        self.highest = self.highest.max(Some(revision));
    }

    /// Whether `revision` was received.
    pub fn contains(&self, revision: u64) -> bool {
        let Some(offset) = revision.checked_sub(self.from) else {
            return false;
        };
        let word = usize::try_from(offset / 64).unwrap_or(usize::MAX);
        self.bits
            .get(word)
            .is_some_and(|w| w & (1 << (offset % 64)) != 0)
    }

    /// Checks the revisions received against `acknowledged` (distinct revisions).
    pub fn check(&self, acknowledged: &[u64]) -> Check {
        let delivered = acknowledged.iter().filter(|r| self.contains(**r)).count() as u64;
        Check {
            delivered,
            missed: acknowledged.len() as u64 - delivered,
            unacknowledged: self.count - delivered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_duplicates_and_disorder_are_counted_apart() {
        let mut s = Seen::new(10);
        for r in [10, 12, 13, 12, 11, 15, 9] {
            s.add(r);
        }
        assert_eq!(s.count, 5);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.out_of_order, 1, "11 after 13");
        assert_eq!(s.untracked, 1, "9 is before the start");
        assert_eq!(s.highest(), Some(15));
        // 14 was acknowledged and never came; 11 came but no write of ours made it.
        let c = s.check(&[10, 12, 13, 14, 15]);
        assert_eq!(
            c,
            Check {
                delivered: 4,
                missed: 1,
                unacknowledged: 1
            }
        );
        assert!(!s.contains(14) && s.contains(15) && !s.contains(3));
    }

    #[test]
    fn a_revision_far_past_the_start_is_not_tracked() {
        let mut s = Seen::new(1);
        s.add(1 + REVISIONS_MAX);
        s.add(u64::MAX);
        assert_eq!((s.count, s.untracked), (0, 2));
        assert!(s.bits.is_empty());
    }
}
