//! Records that pass their checksums but carry impossible values are `Corrupt` at
//! open, never a panic later and never a silent wrong answer. A checksum only says
//! the bytes are the ones written; a bug, a tool or an attacker can write bad ones.
//!
//! Each test builds a small database, then appends a well-formed, checksummed record
//! (through the `wal` crate) to its WAL or manifest, or rewrites the manifest, and
//! opens it again.

use crate::batch::KEY_BYTES_MAX;
use crate::edit::{EditKind, VersionEdit};
use crate::internal_key::SEQNO_MAX;
use crate::manifest::Manifest;
use crate::{Db, Error, Options, WriteBatch, WriteOptions};
use std::path::Path;
use std::sync::Arc;
use vfs::{Fs, SimFs};
use wal::{SyncMode, Wal};

const SYNC: WriteOptions = WriteOptions { sync: true };

fn dir() -> &'static Path {
    Path::new("/db")
}

fn opts() -> Options {
    Options {
        write_buffer_bytes: 16 << 10,
        block_bytes: 512,
        ..Options::default()
    }
}

/// A database with one table and a few writes in its WAL; closed.
fn build() -> SimFs {
    let fs = SimFs::new();
    let db = Db::open(Arc::new(fs.clone()), dir(), opts()).unwrap();
    for i in 0..100u32 {
        db.put(format!("t{i:04}").as_bytes(), b"table", SYNC)
            .unwrap();
    }
    db.flush().unwrap();
    for i in 0..10u32 {
        db.put(format!("w{i:04}").as_bytes(), b"wal", SYNC).unwrap();
    }
    fs
}

fn append_to_log(fs: &SimFs, log_dir: &str, record: &[u8]) {
    let log = Wal::open(
        Arc::new(fs.clone()),
        &dir().join(log_dir),
        wal::Options {
            record_bytes_max: 64 << 20,
            ..wal::Options::default()
        },
    )
    .unwrap();
    log.append(record, SyncMode::Durable).unwrap();
}

fn assert_open_is_corrupt(fs: &SimFs, what: &str) {
    match Db::open(Arc::new(fs.clone()), dir(), opts()) {
        Err(e) => assert!(
            e.is_corruption(),
            "{what}: open failed but not as corruption: {e}"
        ),
        Ok(_) => panic!("{what}: opened"),
    }
}

#[test]
fn wal_batch_with_seqnos_past_the_entry_tag_is_corrupt() {
    let mut batch = WriteBatch::new();
    batch.put(b"x", b"1");
    batch.put(b"y", b"2");
    batch.put(b"z", b"3");
    let mut record = Vec::new();
    for (first, what) in [
        (1u64 << 56, "first seqno 2^56"),
        (u64::MAX - 5, "first seqno near u64::MAX"),
        (SEQNO_MAX - 1, "seqnos straddling SEQNO_MAX"),
    ] {
        let fs = build();
        batch.encode_record(first, &mut record);
        append_to_log(&fs, "wal", &record);
        assert_open_is_corrupt(&fs, what);
    }
}

#[test]
fn wal_batch_with_a_key_over_the_limit_is_corrupt() {
    let fs = build();
    let mut batch = WriteBatch::new();
    batch.put(&vec![b'k'; KEY_BYTES_MAX + 1], b"v");
    let mut record = Vec::new();
    batch.encode_record(1_000, &mut record);
    append_to_log(&fs, "wal", &record);
    assert_open_is_corrupt(&fs, "a key over KEY_BYTES_MAX");
}

/// The manifest's state after `build`, as a delta edit that changes nothing.
fn current_state_edit(fs: &SimFs) -> VersionEdit {
    let fs: Arc<dyn Fs> = Arc::new(fs.clone());
    let (_, state) = Manifest::open(&fs, dir()).unwrap();
    let mut edit = state.unwrap().to_snapshot();
    edit.kind = EditKind::Delta;
    edit.added.clear();
    edit
}

#[test]
fn manifest_last_seqno_past_the_entry_tag_is_corrupt() {
    for last in [SEQNO_MAX, 1 << 60, u64::MAX] {
        let fs = build();
        let mut edit = current_state_edit(&fs);
        edit.last_seqno = last;
        let mut record = Vec::new();
        edit.encode(&mut record);
        append_to_log(&fs, "manifest", &record);
        assert_open_is_corrupt(&fs, &format!("manifest last seqno {last}"));
    }
}

#[test]
fn writes_past_the_last_seqno_fail_without_a_panic() {
    let fs = build();
    let mut edit = current_state_edit(&fs);
    edit.last_seqno = SEQNO_MAX - 3;
    let mut record = Vec::new();
    edit.encode(&mut record);
    append_to_log(&fs, "manifest", &record);
    let db = Db::open(Arc::new(fs.clone()), dir(), opts()).unwrap();
    assert_eq!(db.put(b"a", b"1", SYNC).unwrap(), SEQNO_MAX - 2);
    let mut two = WriteBatch::new();
    two.put(b"b", b"2");
    two.put(b"c", b"3");
    assert!(matches!(
        db.write(&two, SYNC),
        Err(Error::SeqnosExhausted { .. })
    ));
    assert_eq!(db.put(b"b", b"2", SYNC).unwrap(), SEQNO_MAX - 1);
    assert!(matches!(
        db.put(b"c", b"3", SYNC),
        Err(Error::SeqnosExhausted { .. })
    ));
    // Nothing was latched: reads answer, and the refused writes left no trace.
    assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(db.get(b"c").unwrap(), None);
    assert_eq!(db.get(b"t0005").unwrap(), Some(b"table".to_vec()));
}

#[test]
fn table_seqnos_that_disagree_with_the_manifest_are_corrupt() {
    // The table's own seqnos differ from what the manifest says about it.
    let fs = build();
    let shared: Arc<dyn Fs> = Arc::new(fs.clone());
    let (mut manifest, state) = Manifest::open(&shared, dir()).unwrap();
    let mut state = state.unwrap();
    let (_, meta) = state.tables.values_mut().next().unwrap();
    meta.largest_seqno += 1_000;
    manifest.write_snapshot(&state).unwrap();
    drop(manifest);
    assert_open_is_corrupt(&fs, "table largest seqno above the file's");

    // The table holds seqnos above the manifest's last seqno: new writes would reuse them.
    let fs = build();
    let shared: Arc<dyn Fs> = Arc::new(fs.clone());
    let (mut manifest, state) = Manifest::open(&shared, dir()).unwrap();
    let mut state = state.unwrap();
    state.last_seqno = 5;
    state.flushed_seqno = 5;
    manifest.write_snapshot(&state).unwrap();
    drop(manifest);
    assert_open_is_corrupt(&fs, "table seqnos above the manifest's last seqno");
}

#[test]
fn manifest_next_file_at_the_end_of_the_range_is_corrupt() {
    // Found by the storage_open fuzz target: with next_file = u64::MAX the database
    // opened, its next flush wrote table u64::MAX and wrapped next_file to 0, and the
    // manifest it wrote then named a table at or above the next file number: the
    // database did not open again.
    for next_file in [u64::MAX, 1 << 63] {
        let fs = build();
        let mut edit = current_state_edit(&fs);
        edit.next_file = next_file;
        let mut record = Vec::new();
        edit.encode(&mut record);
        append_to_log(&fs, "manifest", &record);
        assert_open_is_corrupt(&fs, &format!("next file number {next_file}"));
    }
}
