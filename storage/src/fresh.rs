//! Telling a new database from one that lost its `CURRENT` file.
//!
//! A directory without `CURRENT` is started as a new database, and a new database's
//! cleanup deletes every table its (empty) manifest does not name. So a directory
//! that lost `CURRENT` (a bad copy, an operator's mistake, a damaged disk) must be
//! refused, not emptied: open fails with [`Error::MissingCurrent`] naming what it
//! found, before it writes anything.
//!
//! What a new database may hold before its first `CURRENT` exists is exactly what a
//! crash during its first open leaves (`recovery.rs` step 1): the `LOCK` file, and a
//! manifest log with nothing in it but empty creation snapshots. The WAL directory
//! and every table are created only after `CURRENT` is published. So any of these
//! means a database lived here:
//! - a table file (`<n>.sst`);
//! - a segment in the WAL directory;
//! - a manifest record other than an empty creation snapshot (checked once the
//!   manifest log is open, see [`check_manifest`]).

use crate::edit::{EditKind, VersionEdit};
use crate::error::Error;
use crate::version::parse_table_file_name;
use std::io;
use std::path::Path;
use vfs::Fs;
use wal::Wal;

/// Table names listed in the error before "and N more".
const NAMES_SHOWN_MAX: usize = 5;

/// Fails with `MissingCurrent` when `dir` (which has no `CURRENT`) holds tables or a
/// WAL. Reads only: call it before anything is created or written.
pub(crate) fn check_files(fs: &dyn Fs, dir: &Path, wal_dir: &Path) -> Result<(), Error> {
    let mut found = Vec::new();
    let names = fs
        .list_dir(dir)
        .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
    let tables: Vec<&String> = names
        .iter()
        .filter(|n| parse_table_file_name(n).is_some())
        .collect();
    if !tables.is_empty() {
        let shown: Vec<&str> = tables
            .iter()
            .take(NAMES_SHOWN_MAX)
            .map(|n| n.as_str())
            .collect();
        let more = tables.len() - shown.len();
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        found.push(format!(
            "{} table file(s) ({}{tail})",
            tables.len(),
            shown.join(", ")
        ));
    }
    match fs.list_dir(wal_dir) {
        Ok(names) => {
            let segments = names
                .iter()
                .filter(|n| wal::format::parse_segment_file_name(n).is_some())
                .count();
            if segments > 0 {
                found.push(format!(
                    "a write-ahead log ({segments} segment(s) in {})",
                    wal_dir.display()
                ));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("listing {}", wal_dir.display()), e)),
    }
    refuse(dir, found)
}

/// Fails with `MissingCurrent` when the manifest log of `dir` (which has no
/// `CURRENT`) holds anything but empty creation snapshots.
pub(crate) fn check_manifest(log: &Wal, dir: &Path) -> Result<(), Error> {
    let mut used = 0u64;
    let mut unreadable = None;
    let iter = log
        .iter_from(log.first_index())
        .map_err(|e| Error::wal("reading the manifest of a directory without CURRENT", e))?;
    for item in iter {
        match item {
            Ok((_, bytes)) => match VersionEdit::decode(&bytes) {
                Ok(edit) if is_creation(&edit) => {}
                Ok(_) => used += 1,
                Err(reason) => {
                    unreadable.get_or_insert(reason);
                }
            },
            Err(e) => {
                unreadable.get_or_insert(e.to_string());
            }
        }
    }
    let mut found = Vec::new();
    if used > 0 {
        found.push(format!("{used} manifest record(s) naming tables or seqnos"));
    }
    if let Some(reason) = unreadable {
        found.push(format!("an unreadable manifest record ({reason})"));
    }
    refuse(dir, found)
}

/// The snapshot a new database's first open writes: no tables, nothing written yet.
fn is_creation(edit: &VersionEdit) -> bool {
    edit.kind == EditKind::Snapshot
        && edit.added.is_empty()
        && edit.removed.is_empty()
        && edit.last_seqno == 0
        && edit.flushed_seqno == 0
}

fn refuse(dir: &Path, found: Vec<String>) -> Result<(), Error> {
    if found.is_empty() {
        return Ok(());
    }
    Err(Error::MissingCurrent {
        dir: dir.display().to_string(),
        found: found.join("; "),
    })
}
