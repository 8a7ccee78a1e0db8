//! The manifest: the durable history of version edits, and the `CURRENT` pointer.
//!
//! Layout in the database directory:
//! - `manifest/`: a [`wal::Wal`] whose records are [`VersionEdit`]s. Every edit is
//!   appended `Durable` before the engine acts on it (installs the version, deletes
//!   files, truncates the WAL).
//! - `CURRENT`: 20 bytes `magic "CNCGCUR1" | snapshot_index:u64 | crc32:u32` (little-
//!   endian; the crc covers the first 16 bytes), naming the manifest record where the
//!   latest *snapshot edit* (the whole state) starts. It is published with
//!   `Fs::write_atomic`: write `CURRENT.tmp`, fsync, rename over `CURRENT`, fsync the
//!   directory. This is the "CURRENT-style pointer" choice.
//!
//! A new manifest is started on every open and whenever the edits since the last
//! snapshot pass `manifest_bytes_max`: append a snapshot edit (Durable), publish its
//! index in `CURRENT`, then drop the log segments wholly before it. A crash between
//! any two steps leaves a valid state: `CURRENT` names either the old snapshot (and
//! the edits after it, which include the new snapshot, replay to the same state) or
//! the new one.
//!
//! Recovery reads `CURRENT`, then replays from its index: the first record must be a
//! snapshot; later deltas apply in order (a later snapshot replaces the state); the
//! state replayed to is then checked as a whole (`ManifestState::check`).

use crate::edit::{EditKind, TableMeta, VersionEdit};
use crate::error::Error;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vfs::Fs;
use wal::{SyncMode, Wal};

const CURRENT_MAGIC: [u8; 8] = *b"CNCGCUR1";
const CURRENT_BYTES: usize = 20;
const _: () = assert!(CURRENT_BYTES == CURRENT_MAGIC.len() + 8 + 4);

/// Name of the pointer file.
pub const CURRENT_FILE: &str = "CURRENT";
/// Name of the manifest log directory.
pub const MANIFEST_DIR: &str = "manifest";
/// Manifest log segments are cut at this size, so old ones can be dropped.
const MANIFEST_SEGMENT_BYTES: u64 = 1 << 20;
/// Largest manifest record (a snapshot of every table).
const MANIFEST_RECORD_BYTES_MAX: u32 = 256 << 20;

/// The engine state a manifest replays to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestState {
    /// WAL records below this index are all in tables.
    pub log_index: u64,
    /// Next file number to hand out.
    pub next_file: u64,
    /// Largest seqno ever assigned, as of the last edit.
    pub last_seqno: u64,
    /// Writes with seqno <= this are in tables.
    pub flushed_seqno: u64,
    /// Live tables by number: (level, metadata).
    pub tables: BTreeMap<u64, (u8, TableMeta)>,
}

impl ManifestState {
    /// Applies one edit; errors when it removes a missing table or adds a present one.
    pub fn apply(&mut self, edit: &VersionEdit) -> Result<(), String> {
        if edit.kind == EditKind::Snapshot {
            self.tables.clear();
        }
        self.log_index = edit.log_index;
        self.next_file = edit.next_file;
        self.last_seqno = edit.last_seqno;
        self.flushed_seqno = edit.flushed_seqno;
        for (level, number) in &edit.removed {
            match self.tables.remove(number) {
                Some((l, _)) if l == *level => {}
                Some((l, _)) => {
                    return Err(format!(
                        "table {number} removed from level {level} but is in {l}"
                    ))
                }
                None => return Err(format!("table {number} removed but not live")),
            }
        }
        for (level, meta) in &edit.added {
            if self
                .tables
                .insert(meta.number, (*level, meta.clone()))
                .is_some()
            {
                return Err(format!("table {} added twice", meta.number));
            }
        }
        Ok(())
    }

    /// Checks what must hold of the whole state, beyond each edit on its own: every
    /// table holds only flushed seqnos (`<= flushed_seqno <= last_seqno`: else its
    /// writes would be replayed from the WAL again, or their seqnos handed out again),
    /// and the next file number is above every live table's (else a new table would
    /// overwrite a live one).
    pub fn check(&self) -> Result<(), String> {
        if self.flushed_seqno > self.last_seqno {
            return Err(format!(
                "flushed seqno {} above last seqno {}",
                self.flushed_seqno, self.last_seqno
            ));
        }
        for (number, (_, meta)) in &self.tables {
            if meta.largest_seqno > self.flushed_seqno {
                return Err(format!(
                    "table {number} holds seqno {}, above the flushed seqno {}",
                    meta.largest_seqno, self.flushed_seqno
                ));
            }
            if *number >= self.next_file {
                return Err(format!(
                    "table {number} is live but the next file number is {}",
                    self.next_file
                ));
            }
        }
        Ok(())
    }

    /// The state as one snapshot edit.
    pub fn to_snapshot(&self) -> VersionEdit {
        VersionEdit {
            kind: EditKind::Snapshot,
            log_index: self.log_index,
            next_file: self.next_file,
            last_seqno: self.last_seqno,
            flushed_seqno: self.flushed_seqno,
            added: self.tables.values().map(|(l, m)| (*l, m.clone())).collect(),
            removed: Vec::new(),
        }
    }
}

/// The open manifest log.
pub struct Manifest {
    fs: Arc<dyn Fs>,
    db_dir: PathBuf,
    log: Wal,
    bytes_since_snapshot: u64,
    buf: Vec<u8>,
}

pub fn encode_current(index: u64) -> [u8; CURRENT_BYTES] {
    let mut out = [0u8; CURRENT_BYTES];
    out[..8].copy_from_slice(&CURRENT_MAGIC);
    out[8..16].copy_from_slice(&index.to_le_bytes());
    let crc = crc32fast::hash(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_current(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() != CURRENT_BYTES {
        return Err(format!("{} bytes, expected {CURRENT_BYTES}", bytes.len()));
    }
    if bytes[..8] != CURRENT_MAGIC {
        return Err("bad magic".into());
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[16..]);
    if u32::from_le_bytes(crc) != crc32fast::hash(&bytes[..16]) {
        return Err("checksum mismatch".into());
    }
    let mut index = [0u8; 8];
    index.copy_from_slice(&bytes[8..16]);
    Ok(u64::from_le_bytes(index))
}

impl Manifest {
    /// True when `db_dir` holds a database (its `CURRENT` exists).
    pub fn exists(fs: &dyn Fs, db_dir: &Path) -> bool {
        fs.exists(&db_dir.join(CURRENT_FILE))
    }

    /// Opens the manifest of `db_dir` and replays it; None for the state when there
    /// is no `CURRENT` yet (a new database).
    pub fn open(
        fs: &Arc<dyn Fs>,
        db_dir: &Path,
    ) -> Result<(Manifest, Option<ManifestState>), Error> {
        let dir = db_dir.join(MANIFEST_DIR);
        let opts = wal::Options {
            segment_bytes_max: MANIFEST_SEGMENT_BYTES,
            record_bytes_max: MANIFEST_RECORD_BYTES_MAX,
            ..wal::Options::default()
        };
        let log = Wal::open(Arc::clone(fs), &dir, opts)
            .map_err(|e| Error::wal(format!("opening manifest {}", dir.display()), e))?;
        let manifest = Manifest {
            fs: Arc::clone(fs),
            db_dir: db_dir.to_path_buf(),
            log,
            bytes_since_snapshot: 0,
            buf: Vec::new(),
        };
        if !Manifest::exists(fs.as_ref(), db_dir) {
            return Ok((manifest, None));
        }
        let current = db_dir.join(CURRENT_FILE);
        let bytes = fs
            .read_all(&current)
            .map_err(|e| Error::io(format!("reading {}", current.display()), e))?;
        let start =
            decode_current(&bytes).map_err(|r| Error::corrupt(current.display().to_string(), r))?;
        let state = manifest.replay(start)?;
        Ok((manifest, Some(state)))
    }

    /// The manifest log itself (to inspect it when `CURRENT` is missing).
    pub fn log(&self) -> &Wal {
        &self.log
    }

    fn replay(&self, start: u64) -> Result<ManifestState, Error> {
        let ctx = |index: u64| format!("manifest record {index}");
        let iter = self.log.iter_from(start).map_err(|e| {
            Error::wal(
                format!("reading the manifest from record {start} (named by CURRENT)"),
                e,
            )
        })?;
        let mut state = ManifestState::default();
        let mut first = true;
        for item in iter {
            let (index, bytes) = item.map_err(|e| Error::wal("reading the manifest", e))?;
            let edit = VersionEdit::decode_in(&bytes, &ctx(index))?;
            if first && edit.kind != EditKind::Snapshot {
                return Err(Error::corrupt(
                    ctx(index),
                    "CURRENT names a record that is not a snapshot",
                ));
            }
            first = false;
            state
                .apply(&edit)
                .map_err(|r| Error::corrupt(ctx(index), r))?;
        }
        if first {
            return Err(Error::corrupt(
                "manifest",
                format!("no record at index {start} named by CURRENT"),
            ));
        }
        state
            .check()
            .map_err(|r| Error::corrupt(format!("manifest replayed from record {start}"), r))?;
        Ok(state)
    }

    /// Appends `edit` durably. Returns true when the manifest has grown past
    /// `bytes_max` since its last snapshot (the caller then writes a snapshot).
    pub fn append(&mut self, edit: &VersionEdit, bytes_max: u64) -> Result<bool, Error> {
        self.buf.clear();
        edit.encode(&mut self.buf);
        self.log
            .append(&self.buf, SyncMode::Durable)
            .map_err(|e| Error::wal("appending a manifest edit", e))?;
        self.bytes_since_snapshot += self.buf.len() as u64;
        Ok(self.bytes_since_snapshot > bytes_max)
    }

    /// Starts a new manifest from `state`: snapshot record, `CURRENT`, drop old segments.
    pub fn write_snapshot(&mut self, state: &ManifestState) -> Result<(), Error> {
        self.buf.clear();
        state.to_snapshot().encode(&mut self.buf);
        let index = self
            .log
            .append(&self.buf, SyncMode::Durable)
            .map_err(|e| Error::wal("appending a manifest snapshot", e))?;
        let current = self.db_dir.join(CURRENT_FILE);
        self.fs
            .write_atomic(&current, &encode_current(index))
            .map_err(|e| Error::io(format!("publishing {}", current.display()), e))?;
        self.bytes_since_snapshot = 0;
        self.log
            .truncate_prefix(index)
            .map_err(|e| Error::wal("dropping old manifest segments", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vfs::{CrashMode, SimFs};

    fn meta(number: u64, lo: &[u8], hi: &[u8]) -> TableMeta {
        TableMeta {
            number,
            file_bytes: 100,
            entries: 1,
            smallest_seqno: 1,
            largest_seqno: 2,
            smallest_key: lo.to_vec(),
            largest_key: hi.to_vec(),
        }
    }

    fn delta(added: Vec<(u8, TableMeta)>, removed: Vec<(u8, u64)>, next_file: u64) -> VersionEdit {
        VersionEdit {
            kind: EditKind::Delta,
            log_index: next_file,
            next_file,
            last_seqno: next_file * 10,
            flushed_seqno: next_file * 5,
            added,
            removed,
        }
    }

    #[test]
    fn current_codec_rejects_damage() {
        let bytes = encode_current(77);
        assert_eq!(decode_current(&bytes), Ok(77));
        for i in 0..CURRENT_BYTES {
            let mut b = bytes;
            b[i] ^= 0x10;
            assert!(decode_current(&b).is_err(), "flip at {i}");
        }
        assert!(decode_current(&bytes[..19]).is_err());
    }

    #[test]
    fn replays_snapshot_then_edits_across_reopen_and_power_loss() {
        let sim = Arc::new(SimFs::new());
        let fs: Arc<dyn Fs> = sim.clone();
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        let (mut m, state) = Manifest::open(&fs, dir).unwrap();
        assert!(state.is_none());
        let mut st = ManifestState {
            next_file: 2,
            ..ManifestState::default()
        };
        m.write_snapshot(&st).unwrap();
        let e1 = delta(vec![(0, meta(2, b"a", b"c"))], vec![], 3);
        let e2 = delta(
            vec![(1, meta(3, b"a", b"c")), (1, meta(4, b"d", b"f"))],
            vec![(0, 2)],
            5,
        );
        for e in [&e1, &e2] {
            m.append(e, 1 << 20).unwrap();
            st.apply(e).unwrap();
        }
        drop(m);
        sim.crash(CrashMode::DropUnsynced);
        let (mut m, got) = Manifest::open(&fs, dir).unwrap();
        assert_eq!(got.as_ref(), Some(&st));
        assert_eq!(st.tables.keys().copied().collect::<Vec<_>>(), vec![3, 4]);
        // A new snapshot replaces the history.
        m.write_snapshot(&st).unwrap();
        drop(m);
        let (_, got) = Manifest::open(&fs, dir).unwrap();
        assert_eq!(got, Some(st));
    }

    /// Writes a snapshot of `st` and then `edits`, and opens the manifest again.
    fn replay_of(st: &ManifestState, edits: &[VersionEdit]) -> Result<ManifestState, Error> {
        let fs: Arc<dyn Fs> = Arc::new(SimFs::new());
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        let (mut m, _) = Manifest::open(&fs, dir).unwrap();
        m.write_snapshot(st).unwrap();
        for e in edits {
            m.append(e, 1 << 20).unwrap();
        }
        drop(m);
        Manifest::open(&fs, dir).map(|(_, state)| state.unwrap())
    }

    #[test]
    fn a_replayed_state_must_be_consistent_not_just_each_edit() {
        // Found by the storage_open fuzz target: each edit decodes, but the state they
        // replay to has a table above the flushed seqno (its writes would be replayed
        // from the WAL again, or their seqnos handed out again), or a next file number
        // that is not above every live table (a new table would overwrite a live one).
        let mut st = ManifestState {
            log_index: 5,
            next_file: 10,
            last_seqno: 41,
            flushed_seqno: 41,
            ..ManifestState::default()
        };
        let mut table = meta(3, b"a", b"z");
        table.largest_seqno = 41;
        st.tables.insert(3, (0, table));
        assert_eq!(replay_of(&st, &[]).unwrap(), st);
        let scalars = |log_index, next_file, last_seqno, flushed_seqno| VersionEdit {
            kind: EditKind::Delta,
            log_index,
            next_file,
            last_seqno,
            flushed_seqno,
            added: Vec::new(),
            removed: Vec::new(),
        };
        for (edit, what) in [
            (scalars(5, 10, 41, 0), "flushed seqno below a table's"),
            (scalars(5, 10, 7, 7), "last seqno below a table's"),
            (scalars(5, 3, 41, 41), "next file not above a live table"),
        ] {
            match replay_of(&st, &[edit]) {
                Err(e) => assert!(e.is_corruption(), "{what}: {e}"),
                Ok(got) => panic!("{what}: replayed to {got:?}"),
            }
        }
    }

    #[test]
    fn bad_edits_are_corruption() {
        let mut st = ManifestState::default();
        assert!(st.apply(&delta(vec![], vec![(0, 9)], 10)).is_err());
        st.apply(&delta(vec![(0, meta(1, b"a", b"b"))], vec![], 10))
            .unwrap();
        assert!(st
            .apply(&delta(vec![(0, meta(1, b"a", b"b"))], vec![], 10))
            .is_err());
        assert!(st.apply(&delta(vec![], vec![(2, 1)], 10)).is_err());
    }

    #[test]
    fn damaged_current_is_an_error_not_a_panic() {
        let fs: Arc<dyn Fs> = Arc::new(SimFs::new());
        let dir = Path::new("/db");
        fs.create_dir_all(dir).unwrap();
        let (mut m, _) = Manifest::open(&fs, dir).unwrap();
        m.write_snapshot(&ManifestState {
            next_file: 2,
            ..ManifestState::default()
        })
        .unwrap();
        drop(m);
        fs.write_atomic(&dir.join(CURRENT_FILE), b"garbage")
            .unwrap();
        assert!(matches!(
            Manifest::open(&fs, dir),
            Err(Error::Corrupt { .. })
        ));
        fs.write_atomic(&dir.join(CURRENT_FILE), &encode_current(999))
            .unwrap();
        assert!(Manifest::open(&fs, dir).is_err());
    }
}
