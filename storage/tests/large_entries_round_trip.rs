//! Entries far larger than a block, a write buffer or a WAL segment survive flush,
//! compaction, reopen and a power loss; over-limit keys and batches are refused with
//! `TooLarge` and leave the database usable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{model_entries, scan, small_options, Model};
use std::path::Path;
use std::sync::Arc;
use storage::{Db, Error, Options, WriteBatch, WriteOptions, KEY_BYTES_MAX};
use vfs::{CrashMode, SimFs};

fn value(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn options() -> Options {
    // 4 KiB buffers and 16 KiB WAL segments: most entries here are larger than both.
    Options {
        batch_bytes_max: 4 << 20,
        ..small_options()
    }
}

#[test]
fn large_entries_survive_flush_compaction_reopen_and_power_loss() {
    let fs = SimFs::new();
    let open = || Db::open(Arc::new(fs.clone()), Path::new("/db"), options()).unwrap();
    let db = open();
    let mut model = Model::new();
    let sizes = [
        0usize,
        1,
        511,
        512,
        513,
        4095,
        4096,
        4097,
        16 << 10,
        (16 << 10) + 1,
        100 << 10,
        1 << 20,
    ];
    for (i, &len) in sizes.iter().enumerate() {
        let k = format!("big{i:02}").into_bytes();
        let v = value(i as u8, len);
        db.put(&k, &v, WriteOptions { sync: i % 2 == 0 }).unwrap();
        model.insert(k, v);
        // Small neighbours so tables hold both kinds.
        let k = format!("big{i:02}-small").into_bytes();
        db.put(&k, b"s", WriteOptions::default()).unwrap();
        model.insert(k, b"s".to_vec());
    }
    // A long key too.
    let long_key = vec![b'k'; 64 << 10];
    db.put(&long_key, b"long key", WriteOptions::default())
        .unwrap();
    model.insert(long_key.clone(), b"long key".to_vec());
    // One batch holding several large values.
    let mut batch = WriteBatch::new();
    for i in 0..4u8 {
        let k = format!("batch{i}").into_bytes();
        let v = value(100 + i, 300 << 10);
        batch.put(&k, &v);
        model.insert(k, v);
    }
    db.write(&batch, WriteOptions { sync: true }).unwrap();
    assert_eq!(scan(&db), model_entries(&model), "before flush");
    db.flush().unwrap();
    assert_eq!(scan(&db), model_entries(&model), "after flush");
    db.compact_all().unwrap();
    assert_eq!(scan(&db), model_entries(&model), "after compaction");
    for (k, v) in &model {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(v), "get after compaction");
    }
    // Overwrite some large values in the memtable, make them durable, lose power.
    for i in [3usize, 9, 11] {
        let k = format!("big{i:02}").into_bytes();
        let v = value(200, sizes[i] + 7);
        db.put(&k, &v, WriteOptions::default()).unwrap();
        model.insert(k, v);
    }
    db.sync_wal().unwrap();
    fs.crash(CrashMode::TearUnsynced { seed: 9 });
    drop(db);
    let db = open();
    assert_eq!(scan(&db), model_entries(&model), "after power loss");
    drop(db);
    let db = open();
    assert_eq!(scan(&db), model_entries(&model), "after a clean reopen");
}

#[test]
fn over_limit_key_and_batch_are_refused_and_the_database_stays_usable() {
    let fs = SimFs::new();
    let db = Db::open(Arc::new(fs.clone()), Path::new("/db"), options()).unwrap();
    db.put(b"before", b"1", WriteOptions { sync: true })
        .unwrap();

    let huge_key = vec![b'k'; KEY_BYTES_MAX + 1];
    let r = db.put(&huge_key, b"v", WriteOptions::default());
    assert!(
        matches!(r, Err(Error::TooLarge { .. })),
        "key over KEY_BYTES_MAX: {r:?}"
    );

    let mut batch = WriteBatch::new();
    for i in 0..5u8 {
        batch.put(&[b'b', i], &value(i, 1 << 20));
    }
    let r = db.write(&batch, WriteOptions { sync: true });
    assert!(
        matches!(r, Err(Error::TooLarge { .. })),
        "batch over batch_bytes_max: {r:?}"
    );
    assert_eq!(
        db.get(&[b'b', 0]).unwrap(),
        None,
        "a refused batch must leave no trace"
    );

    // Refusals are not failures: the engine keeps working, before and after reopen.
    db.put(b"after", b"2", WriteOptions { sync: true }).unwrap();
    drop(db);
    let db = Db::open(Arc::new(fs), Path::new("/db"), options()).unwrap();
    let got = scan(&db);
    assert_eq!(
        got,
        vec![
            (b"after".to_vec(), b"2".to_vec()),
            (b"before".to_vec(), b"1".to_vec())
        ]
    );
}
