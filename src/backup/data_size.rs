//! Bytes a directory tree takes on disk (the sum of its files' lengths): what
//! `concierge_db_size_bytes` reports for the storage engine's directory.
//!
//! Bounded: at most `DEPTH_MAX` levels and `FILES_MAX` entries are looked at (a data
//! directory holds a few hundred files); files that vanish while it walks (compaction
//! deletes tables) are skipped.

use std::path::Path;

const DEPTH_MAX: usize = 4;
const FILES_MAX: usize = 100_000;

/// The total length of the files under `dir` (0 when it does not exist).
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut seen = 0usize;
    walk(dir, 0, &mut seen)
}

fn walk(dir: &Path, depth: usize, seen: &mut usize) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        *seen += 1;
        if *seen > FILES_MAX {
            break;
        }
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            if depth < DEPTH_MAX {
                total += walk(&entry.path(), depth + 1, seen);
            }
        } else {
            total += meta.len();
        }
    }
    total
}
