//! Fuzzes the storage engine's decoders of its own files, through `Db::open`: manifest
//! records (version edits) and `CURRENT`, and WAL records (write batches), all carried
//! by checksum-valid log records, so the bytes reach the decoders and the checks behind
//! them (edit fields, table metadata against the table files, seqno ranges, batch ops).
//!
//! Each run starts from the same small database (two tables, a few writes in the WAL),
//! appends the input's records to its manifest and WAL logs, maybe points `CURRENT`
//! elsewhere, and opens it. Beyond "no panic, no hang, no huge allocation":
//! - a database that opens answers reads (values or errors), takes a write that reads
//!   back, and opens again after a flush, a full compaction and a restart.

#![no_main]

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use storage::records::{encode_current, EditKind, TableMeta, VersionEdit};
use storage::{Db, Options, WriteBatch, WriteOptions};
use vfs::{Fs, SimFs};
use wal::{SyncMode, Wal};

const DB: &str = "/db";
const SYNC: WriteOptions = WriteOptions { sync: true };

fn opts() -> Options {
    Options {
        write_buffer_bytes: 8 << 10,
        block_bytes: 256,
        table_target_bytes: 2 << 10,
        level_base_bytes: 8 << 10,
        ..Options::default()
    }
}

/// The database every run starts from (built once, forked per run).
fn base() -> &'static SimFs {
    static BASE: OnceLock<SimFs> = OnceLock::new();
    BASE.get_or_init(|| {
        let fs = SimFs::new();
        let db = Db::open(Arc::new(fs.clone()), Path::new(DB), opts()).unwrap();
        for round in 0..2u8 {
            for i in 0..40u8 {
                let key = [b'k', i % 20, round];
                db.put(&key, &[i; 30], SYNC).unwrap();
            }
            db.delete(&[b'k', 3, 0], SYNC).unwrap();
            db.flush().unwrap();
        }
        db.put(b"wal", b"only in the wal", SYNC).unwrap();
        drop(db);
        fs
    })
}

#[derive(Debug, Arbitrary)]
struct Table {
    level: u8,
    number: u8,
    file_bytes: u64,
    entries: u64,
    smallest_seqno: u64,
    largest_seqno: u64,
    smallest_key: Vec<u8>,
    largest_key: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
enum Record {
    /// Arbitrary bytes as the record's payload.
    Raw(Vec<u8>),
    /// A version edit, encoded by the engine's own encoder (fields may be nonsense).
    Edit {
        kind: u8,
        log_index: u64,
        next_file: u64,
        last_seqno: u64,
        flushed_seqno: u64,
        added: Vec<Table>,
        removed: Vec<(u8, u8)>,
    },
    /// A write batch at an arbitrary first seqno.
    Batch {
        first_seqno: u64,
        ops: Vec<(bool, Vec<u8>, Vec<u8>)>,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    manifest: Vec<Record>,
    wal: Vec<Record>,
    /// Rewrite `CURRENT` to name this manifest record.
    current: Option<u8>,
    /// Damage one byte of a table file: (which table, offset, xor).
    table_damage: Option<(u8, u16, u8)>,
    probes: Vec<Vec<u8>>,
}

fn encode(record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    match record {
        Record::Raw(bytes) => out.extend_from_slice(bytes),
        Record::Edit {
            kind,
            log_index,
            next_file,
            last_seqno,
            flushed_seqno,
            added,
            removed,
        } => {
            let edit = VersionEdit {
                kind: if kind % 2 == 0 {
                    EditKind::Snapshot
                } else {
                    EditKind::Delta
                },
                log_index: *log_index,
                next_file: *next_file,
                last_seqno: *last_seqno,
                flushed_seqno: *flushed_seqno,
                added: added
                    .iter()
                    .map(|t| {
                        let meta = TableMeta {
                            number: u64::from(t.number),
                            file_bytes: t.file_bytes,
                            entries: t.entries,
                            smallest_seqno: t.smallest_seqno,
                            largest_seqno: t.largest_seqno,
                            smallest_key: t.smallest_key.clone(),
                            largest_key: t.largest_key.clone(),
                        };
                        (t.level % 8, meta)
                    })
                    .collect(),
                removed: removed
                    .iter()
                    .map(|(level, number)| (level % 8, u64::from(*number)))
                    .collect(),
            };
            edit.encode(&mut out);
        }
        Record::Batch { first_seqno, ops } => {
            let mut b = WriteBatch::new();
            for (put, key, value) in ops.iter().take(32) {
                if *put {
                    b.put(key, value);
                } else {
                    b.delete(key);
                }
            }
            b.encode_record(*first_seqno, &mut out);
        }
    }
    out
}

fn append(fs: &SimFs, log: &str, records: &[Record]) -> u64 {
    let log = Wal::open(
        Arc::new(fs.clone()),
        &Path::new(DB).join(log),
        wal::Options {
            record_bytes_max: 1 << 20,
            segment_bytes_max: 1 << 20,
        },
    )
    .unwrap();
    for r in records.iter().take(16) {
        log.append(&encode(r), SyncMode::Durable).unwrap();
    }
    log.first_index()
}

fn write_current(fs: &SimFs, index: u64) {
    fs.write_atomic(&Path::new(DB).join("CURRENT"), &encode_current(index))
        .unwrap();
}

fn read_all(db: &Db, probes: &[Vec<u8>]) {
    for p in probes.iter().take(8) {
        let _ = db.get(p);
    }
    if let Ok(it) = db.iter(Bound::Unbounded, Bound::Unbounded) {
        for item in it.take(1000) {
            if item.is_err() {
                break;
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let fs = base().fork();
    let first = append(&fs, "manifest", &input.manifest);
    append(&fs, "wal", &input.wal);
    if let Some(at) = input.current {
        write_current(&fs, first + u64::from(at));
    }
    if let Some((which, at, with)) = input.table_damage {
        let mut tables = fs.list_dir(Path::new(DB)).unwrap();
        tables.retain(|n| n.ends_with(".sst"));
        if !tables.is_empty() {
            let path = Path::new(DB).join(&tables[which as usize % tables.len()]);
            let _ = fs.flip_bit(&path, at as usize, with.trailing_zeros() as u8);
        }
    }
    let Ok(db) = Db::open(Arc::new(fs.clone()), Path::new(DB), opts()) else {
        return;
    };
    read_all(&db, &input.probes);
    match db.put(b"fuzz-probe", b"written after open", SYNC) {
        Ok(_) => assert_eq!(
            db.get(b"fuzz-probe").unwrap().as_deref(),
            Some(&b"written after open"[..]),
            "a write that returned Ok does not read back"
        ),
        Err(storage::Error::SeqnosExhausted { .. }) => {}
        Err(e) => panic!("a database that opened refuses a write: {e}"),
    }
    let _ = db.flush();
    let _ = db.compact_all();
    read_all(&db, &input.probes);
    drop(db);
    let db = Db::open(Arc::new(fs.clone()), Path::new(DB), opts())
        .unwrap_or_else(|e| panic!("a database that opened does not open again: {e}"));
    read_all(&db, &input.probes);
});
