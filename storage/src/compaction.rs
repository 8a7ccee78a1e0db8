//! Leveled compaction: choosing what to compact, and the merge that rewrites it.
//!
//! Picking (LevelDB/RocksDB style): level 0 scores `tables / l0_compaction_trigger`;
//! level i >= 1 scores `bytes / (level_base_bytes * level_multiplier^(i-1))`; the best
//! score >= 1 wins. A level-0 compaction takes every level-0 table plus the level-1
//! tables it overlaps; a level-i compaction takes one table (round robin through the
//! key space via a per-level pointer) plus the overlapping tables of level i+1. When
//! nothing in the output level overlaps (and level-0 inputs are disjoint) the tables
//! just move down by a manifest edit.
//!
//! The merge keeps, for each user key, the newest version in each *stripe*: the
//! seqnos between two consecutive live snapshots (and above the newest one). A
//! snapshot at `s` sees the newest version with seqno <= `s`, which is the newest of
//! its stripe, so it is kept; every other version is invisible to all readers. A
//! tombstone in the oldest stripe is dropped too (with all it shadows) when the output
//! is the bottommost level for the key range of ALL inputs (output-level inputs can
//! reach beyond the first level's range): no older version can exist below it.
//!
//! Outputs are cut at `table_target_bytes`, only between user keys, so no key's
//! versions straddle two tables of a level.

use crate::edit::TableMeta;
use crate::error::Error;
use crate::merge_iter::{MergeIter, Source};
use crate::options::Options;
use crate::rate_limit::RateLimiter;
use crate::scan_cursor::ScanCursor;
use crate::table_file::{remove_tables, TableWriter};
use crate::version::{TableHandle, Version};
use sstable::Kind;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vfs::Fs;

/// One compaction: input tables per level, where the output goes.
#[derive(Debug)]
pub struct Compaction {
    /// Input tables by level, levels ascending; level-0 tables newest first, others by key.
    pub inputs: Vec<(usize, Vec<Arc<TableHandle>>)>,
    /// Level the outputs go to.
    pub output_level: usize,
    /// True when no level below the output holds keys in the input range.
    pub bottommost: bool,
    /// True when the inputs only move to `output_level` unchanged.
    pub trivial_move: bool,
}

impl Compaction {
    /// Every input as (level, number), for the edit removing them.
    pub fn removed(&self) -> Vec<(u8, u64)> {
        self.inputs
            .iter()
            .flat_map(|(level, ts)| ts.iter().map(move |t| (*level as u8, t.meta.number)))
            .collect()
    }

    /// Number of input tables.
    pub fn input_count(&self) -> usize {
        self.inputs.iter().map(|(_, ts)| ts.len()).sum()
    }

    /// The largest key of the inputs of the first level (for the round-robin pointer).
    pub fn largest_of_first_level(&self) -> Option<Vec<u8>> {
        let (_, ts) = self.inputs.first()?;
        ts.iter().map(|t| t.meta.largest_key.clone()).max()
    }

    /// The level compacted from.
    pub fn level(&self) -> usize {
        self.inputs.first().map_or(0, |(l, _)| *l)
    }
}

fn key_range(tables: &[Arc<TableHandle>]) -> Option<(Vec<u8>, Vec<u8>)> {
    let lo = tables.iter().map(|t| &t.meta.smallest_key).min()?;
    let hi = tables.iter().map(|t| &t.meta.largest_key).max()?;
    Some((lo.clone(), hi.clone()))
}

fn is_bottommost(v: &Version, output_level: usize, lo: &[u8], hi: &[u8]) -> bool {
    v.levels[output_level + 1..]
        .iter()
        .all(|level| level.iter().all(|t| !t.overlaps(lo, hi)))
}

fn pairwise_disjoint(tables: &[Arc<TableHandle>]) -> bool {
    let mut sorted: Vec<&Arc<TableHandle>> = tables.iter().collect();
    sorted.sort_by(|a, b| a.meta.smallest_key.cmp(&b.meta.smallest_key));
    sorted
        .windows(2)
        .all(|w| w[0].meta.largest_key < w[1].meta.smallest_key)
}

/// The level with the best compaction score >= 1, if any.
pub fn best_level(v: &Version, opts: &Options) -> Option<usize> {
    let last = v.levels.len() - 1;
    let mut best: Option<(f64, usize)> = None;
    let l0 = v.levels[0].len() as f64 / opts.l0_compaction_trigger as f64;
    if l0 >= 1.0 {
        best = Some((l0, 0));
    }
    for level in 1..last {
        let score = v.level_bytes(level) as f64 / opts.level_target_bytes(level) as f64;
        if score >= 1.0 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, level));
        }
    }
    best.map(|(_, level)| level)
}

/// Picks the next compaction, if any level needs one. `pointers[level]` is the largest
/// key compacted last time from that level (empty: start from the beginning).
pub fn pick(v: &Version, opts: &Options, pointers: &[Vec<u8>]) -> Option<Compaction> {
    let level = best_level(v, opts)?;
    let output_level = level + 1;
    let first: Vec<Arc<TableHandle>> = if level == 0 {
        v.levels[0].clone()
    } else {
        let tables = &v.levels[level];
        let pointer = pointers.get(level).map_or(&[][..], Vec::as_slice);
        let at = if pointer.is_empty() {
            0
        } else {
            tables
                .iter()
                .position(|t| t.meta.smallest_key.as_slice() > pointer)
                .unwrap_or(0)
        };
        vec![Arc::clone(tables.get(at)?)]
    };
    let (lo, hi) = key_range(&first)?;
    let next = v.overlapping(output_level, &lo, &hi);
    let trivial_move = next.is_empty() && (level > 0 || pairwise_disjoint(&first));
    // Over the range of EVERY input: an output-level input can reach beyond `[lo, hi]`,
    // and a tombstone there may still shadow an older version deeper down.
    let (lo, hi) = match key_range(&next) {
        Some((next_lo, next_hi)) => (lo.min(next_lo), hi.max(next_hi)),
        None => (lo, hi),
    };
    let bottommost = is_bottommost(v, output_level, &lo, &hi);
    let mut inputs = vec![(level, first)];
    if !next.is_empty() {
        inputs.push((output_level, next));
    }
    Some(Compaction {
        inputs,
        output_level,
        bottommost,
        trivial_move,
    })
}

/// A compaction of every table into one sorted run at the deepest non-empty level
/// (at least level 1); None when there is nothing to do.
pub fn pick_all(v: &Version) -> Option<Compaction> {
    let deepest = (1..v.levels.len())
        .rev()
        .find(|&l| !v.levels[l].is_empty())
        .unwrap_or(1);
    let inputs: Vec<(usize, Vec<Arc<TableHandle>>)> = v
        .levels
        .iter()
        .enumerate()
        .filter(|(_, ts)| !ts.is_empty())
        .map(|(l, ts)| (l, ts.clone()))
        .collect();
    let only_deepest = inputs.len() == 1 && inputs[0].0 == deepest;
    if inputs.is_empty() || only_deepest {
        return None;
    }
    Some(Compaction {
        inputs,
        output_level: deepest,
        bottommost: true,
        trivial_move: false,
    })
}

/// Decides which versions of a stream in engine order survive (see the module doc).
pub struct VersionFilter {
    snapshots: Vec<u64>,
    drop_tombstones: bool,
    key: Vec<u8>,
    has_key: bool,
    last_stripe: usize,
}

impl VersionFilter {
    /// A filter for live snapshot seqnos `snapshots` (ascending). With
    /// `drop_tombstones`, oldest-stripe tombstones and what they shadow go too.
    pub fn new(snapshots: Vec<u64>, drop_tombstones: bool) -> VersionFilter {
        debug_assert!(snapshots.windows(2).all(|w| w[0] < w[1]));
        VersionFilter {
            snapshots,
            drop_tombstones,
            key: Vec::new(),
            has_key: false,
            last_stripe: 0,
        }
    }

    /// True when the version must be written out. Returns also whether it starts a
    /// new user key (where an output table may be cut).
    #[inline]
    pub fn keep(&mut self, key: &[u8], seqno: u64, kind: Kind) -> (bool, bool) {
        let stripe = self.snapshots.partition_point(|&s| s < seqno);
        let new_key = !self.has_key || key != self.key.as_slice();
        if new_key {
            self.key.clear();
            self.key.extend_from_slice(key);
            self.has_key = true;
        } else if stripe == self.last_stripe {
            return (false, false);
        }
        self.last_stripe = stripe;
        let keep = !(self.drop_tombstones && kind == Kind::Delete && stripe == 0);
        (keep, new_key)
    }
}

/// What a compaction job needs from the engine.
pub struct JobContext<'a> {
    /// The file system.
    pub fs: &'a Arc<dyn Fs>,
    /// The database directory.
    pub dir: &'a Path,
    /// Engine options.
    pub opts: &'a Options,
    /// Hands out a new file number.
    pub new_file_number: &'a dyn Fn() -> u64,
    /// Set when the engine shuts down: the job stops and removes its outputs.
    pub shutdown: &'a AtomicBool,
    /// The engine's compaction rate limiter, if any.
    pub limiter: Option<&'a Arc<RateLimiter>>,
}

/// Merges the inputs of `c` into new tables (fsynced, not yet in the manifest).
/// Returns None if the job stopped for shutdown.
pub fn run(
    c: &Compaction,
    snapshots: Vec<u64>,
    ctx: &JobContext<'_>,
) -> Result<Option<Vec<TableMeta>>, Error> {
    // Inputs are read with checked positioned reads, never through the map: what is
    // read here is written again under a fresh checksum (`scan_cursor.rs`).
    let mut sources = Vec::new();
    for (level, tables) in &c.inputs {
        if *level == 0 {
            sources.extend(
                tables
                    .iter()
                    .map(|t| Source::Scan(ScanCursor::new(vec![Arc::clone(t)]))),
            );
        } else {
            sources.push(Source::Scan(ScanCursor::new(tables.clone())));
        }
    }
    let mut merge = MergeIter::new(sources);
    merge.seek_to_first()?;
    let mut filter = VersionFilter::new(snapshots, c.bottommost);
    let mut outputs: Vec<TableMeta> = Vec::new();
    let mut writer: Option<TableWriter> = None;
    let mut written: Vec<u64> = Vec::new();
    let mut steps = 0u64;
    let result = (|| -> Result<bool, Error> {
        while merge.valid() {
            steps += 1;
            if steps.is_multiple_of(4096) && ctx.shutdown.load(Ordering::Acquire) {
                return Ok(false);
            }
            let cur = merge.current();
            let (keep, new_key) = filter.keep(cur.key(), cur.seqno(), cur.kind());
            if keep {
                if new_key
                    && writer
                        .as_ref()
                        .is_some_and(|w| w.estimated_bytes() >= ctx.opts.table_target_bytes)
                {
                    if let Some(w) = writer.take() {
                        outputs.push(w.finish()?);
                    }
                }
                if writer.is_none() {
                    let number = (ctx.new_file_number)();
                    written.push(number);
                    let limiter = ctx.limiter.cloned();
                    writer = Some(TableWriter::create(
                        ctx.fs, ctx.dir, number, ctx.opts, limiter,
                    )?);
                }
                if let Some(w) = writer.as_mut() {
                    w.add(cur.key(), cur.seqno(), cur.kind(), cur.value())?;
                }
            }
            merge.next()?;
        }
        if let Some(w) = writer.take() {
            outputs.push(w.finish()?);
        }
        Ok(true)
    })();
    match result {
        Ok(true) => Ok(Some(outputs)),
        Ok(false) => {
            drop(writer);
            remove_tables(ctx.fs, ctx.dir, written);
            Ok(None)
        }
        Err(e) => {
            drop(writer);
            remove_tables(ctx.fs, ctx.dir, written);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_filter(f: &mut VersionFilter, versions: &[(&str, u64, Kind)]) -> Vec<(String, u64)> {
        versions
            .iter()
            .filter(|(k, s, kind)| f.keep(k.as_bytes(), *s, *kind).0)
            .map(|(k, s, _)| (k.to_string(), *s))
            .collect()
    }

    #[test]
    fn without_snapshots_only_the_newest_version_survives() {
        let mut f = VersionFilter::new(vec![], false);
        let got = run_filter(
            &mut f,
            &[
                ("a", 9, Kind::Put),
                ("a", 5, Kind::Put),
                ("b", 7, Kind::Delete),
                ("b", 2, Kind::Put),
            ],
        );
        assert_eq!(got, vec![("a".into(), 9), ("b".into(), 7)]);
    }

    #[test]
    fn versions_visible_to_snapshots_survive() {
        // Snapshots at 4 and 6: stripes (..=4], (4..=6], (6..).
        let mut f = VersionFilter::new(vec![4, 6], false);
        let got = run_filter(
            &mut f,
            &[
                ("a", 9, Kind::Put),
                ("a", 8, Kind::Put),
                ("a", 6, Kind::Put),
                ("a", 5, Kind::Put),
                ("a", 3, Kind::Put),
                ("a", 1, Kind::Put),
            ],
        );
        assert_eq!(got, vec![("a".into(), 9), ("a".into(), 6), ("a".into(), 3)]);
    }

    #[test]
    fn bottom_tombstones_drop_only_in_the_oldest_stripe() {
        let mut f = VersionFilter::new(vec![5], true);
        let got = run_filter(
            &mut f,
            &[
                ("a", 8, Kind::Delete),
                ("a", 3, Kind::Put),
                ("b", 4, Kind::Delete),
                ("b", 2, Kind::Put),
                ("c", 9, Kind::Put),
            ],
        );
        // a@8 is above the snapshot (kept: hides a@3 from the latest view); a@3 is what
        // the snapshot sees. b's tombstone is in the oldest stripe: it and b@2 go.
        assert_eq!(got, vec![("a".into(), 8), ("a".into(), 3), ("c".into(), 9)]);
    }
}

#[cfg(test)]
mod pick_tests {
    use super::*;
    use crate::version::test_tables::{fs, table};

    fn opts() -> Options {
        Options {
            l0_compaction_trigger: 2,
            level_base_bytes: 10_000,
            level_multiplier: 10,
            ..Options::default()
        }
    }

    #[test]
    fn nothing_to_do_below_the_triggers() {
        let (fs, dir) = fs();
        let t = table(&fs, &dir, 1, &["a", "b"], 1, 10);
        let v = Version::empty(4).apply(&[], vec![(0, t)]).unwrap();
        assert!(pick(&v, &opts(), &[]).is_none());
    }

    #[test]
    fn level_0_takes_all_its_tables_and_the_overlapping_level_1() {
        let (fs, dir) = fs();
        let l0a = table(&fs, &dir, 1, &["b", "k"], 10, 10);
        let l0b = table(&fs, &dir, 2, &["c", "d"], 20, 10);
        let l1a = table(&fs, &dir, 3, &["a"], 1, 10);
        let l1b = table(&fs, &dir, 4, &["j", "m"], 2, 10);
        let l1c = table(&fs, &dir, 5, &["x"], 3, 10);
        let v = Version::empty(4)
            .apply(&[], vec![(0, l0a), (0, l0b), (1, l1a), (1, l1b), (1, l1c)])
            .unwrap();
        let c = pick(&v, &opts(), &[]).unwrap();
        assert_eq!(c.output_level, 1);
        assert!(!c.trivial_move);
        assert!(c.bottommost);
        let mut removed = c.removed();
        removed.sort();
        assert_eq!(removed, vec![(0, 1), (0, 2), (1, 4)]);
    }

    #[test]
    fn disjoint_inputs_without_overlap_move_trivially_and_deeper_data_is_not_bottom() {
        let (fs, dir) = fs();
        let l0a = table(&fs, &dir, 1, &["a", "b"], 10, 10);
        let l0b = table(&fs, &dir, 2, &["c", "d"], 20, 10);
        let l2 = table(&fs, &dir, 3, &["b"], 1, 10);
        let v = Version::empty(4)
            .apply(&[], vec![(0, l0a), (0, l0b), (2, l2)])
            .unwrap();
        let c = pick(&v, &opts(), &[]).unwrap();
        assert!(c.trivial_move);
        assert!(!c.bottommost, "level 2 holds b");
    }

    #[test]
    fn bottommost_covers_the_range_of_the_output_level_inputs_too() {
        // Level 0 [b, d] picks level 1 [c, x]; level 2 holds x, outside [b, d] but
        // inside the level-1 input, whose tombstone for x must survive.
        let (fs, dir) = fs();
        let l0a = table(&fs, &dir, 1, &["b", "c"], 10, 10);
        let l0b = table(&fs, &dir, 2, &["c", "d"], 20, 10);
        let l1 = table(&fs, &dir, 3, &["c", "x"], 5, 10);
        let l2 = table(&fs, &dir, 4, &["x"], 1, 10);
        let v = Version::empty(4)
            .apply(&[], vec![(0, l0a), (0, l0b), (1, l1), (2, l2)])
            .unwrap();
        let c = pick(&v, &opts(), &[]).unwrap();
        assert_eq!(c.input_count(), 3);
        assert!(
            !c.bottommost,
            "level 2 holds x, inside the level-1 input's range"
        );
    }

    #[test]
    fn oversized_levels_compact_round_robin() {
        let (fs, dir) = fs();
        let big = 3000;
        let t1 = table(&fs, &dir, 1, &["a"], 1, big);
        let t2 = table(&fs, &dir, 2, &["c"], 2, big);
        let t3 = table(&fs, &dir, 3, &["e"], 3, big);
        let t4 = table(&fs, &dir, 4, &["g"], 4, big);
        let under = table(&fs, &dir, 5, &["c", "d"], 1, 10);
        let v = Version::empty(4)
            .apply(&[], vec![(1, t1), (1, t2), (1, t3), (1, t4), (2, under)])
            .unwrap();
        assert_eq!(best_level(&v, &opts()), Some(1));
        let c = pick(&v, &opts(), &[]).unwrap();
        assert_eq!(c.removed(), vec![(1, 1)]);
        assert!(c.trivial_move);
        let pointers = vec![Vec::new(), b"a".to_vec()];
        let c = pick(&v, &opts(), &pointers).unwrap();
        assert_eq!(c.removed(), vec![(1, 2), (2, 5)]);
        assert!(!c.trivial_move);
        let pointers = vec![Vec::new(), b"g".to_vec()];
        assert_eq!(
            pick(&v, &opts(), &pointers).unwrap().removed(),
            vec![(1, 1)],
            "wraps around"
        );
    }

    #[test]
    fn pick_all_gathers_every_level_into_the_deepest() {
        let (fs, dir) = fs();
        let a = table(&fs, &dir, 1, &["a"], 5, 1);
        let b = table(&fs, &dir, 2, &["b"], 1, 1);
        let v = Version::empty(4).apply(&[], vec![(0, a), (2, b)]).unwrap();
        let c = pick_all(&v).unwrap();
        assert_eq!(c.output_level, 2);
        assert_eq!(c.input_count(), 2);
        let only = Version::empty(4)
            .apply(&[], vec![(2, table(&fs, &dir, 3, &["z"], 9, 1))])
            .unwrap();
        assert!(pick_all(&only).is_none());
    }
}
