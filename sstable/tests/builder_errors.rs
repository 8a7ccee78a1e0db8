//! The builder refuses bad input with typed errors and latches after I/O failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sstable::{BuildOptions, Error, Kind, Table, TableBuilder};
use vfs::{Fs, SimFs};

fn builder(fs: &SimFs, opts: BuildOptions) -> TableBuilder {
    fs.create_dir_all(Path::new("/t")).unwrap();
    TableBuilder::new(fs.create(Path::new("/t/x.sst")).unwrap(), opts)
}

#[test]
fn out_of_order_entries_are_refused_and_the_table_stays_usable() {
    let fs = SimFs::new();
    let mut b = builder(&fs, BuildOptions::default());
    b.add(b"b", 5, Kind::Put, b"1").unwrap();
    for (key, seqno) in [(&b"a"[..], 9), (b"b", 5), (b"b", 6)] {
        match b.add(key, seqno, Kind::Put, b"x") {
            Err(Error::OutOfOrder {
                prev_key,
                prev_seqno,
                key: k,
                seqno: s,
            }) => {
                assert_eq!((prev_key.as_slice(), prev_seqno), (&b"b"[..], 5));
                assert_eq!((k.as_slice(), s), (key, seqno));
            }
            other => panic!("expected OutOfOrder for ({key:?}, {seqno}), got {other:?}"),
        }
    }
    b.add(b"b", 4, Kind::Delete, b"").unwrap();
    b.add(b"c", 100, Kind::Put, b"3").unwrap();
    let info = b.finish().unwrap();
    assert_eq!(info.entries, 3);
    let t = Table::open(&fs, Path::new("/t/x.sst")).unwrap();
    assert_eq!(t.get(b"b", 4).unwrap().unwrap().kind, Kind::Delete);
}

#[test]
fn oversized_keys_are_refused() {
    let fs = SimFs::new();
    let mut b = builder(&fs, BuildOptions::default());
    let key = vec![b'k'; sstable::format::KEY_BYTES_MAX + 1];
    assert!(matches!(
        b.add(&key, 1, Kind::Put, b""),
        Err(Error::TooLarge { what: "key", .. })
    ));
}

#[test]
fn a_failed_write_poisons_the_builder() {
    let fs = SimFs::new();
    let opts = BuildOptions {
        block_bytes: 64,
        ..Default::default()
    };
    let mut b = builder(&fs, opts);
    fs.fail_writes(true);
    let mut first_err = None;
    // The builder buffers; keep adding until a flush reaches the file.
    for i in 0..100_000u32 {
        if let Err(e) = b.add(&i.to_be_bytes(), 1, Kind::Put, &[0u8; 64]) {
            first_err = Some(e);
            break;
        }
    }
    assert!(matches!(first_err, Some(Error::Io { .. })), "{first_err:?}");
    fs.fail_writes(false);
    assert!(matches!(
        b.add(b"\xff\xff\xff\xff\xff", 1, Kind::Put, b""),
        Err(Error::Poisoned)
    ));
    assert!(matches!(b.finish(), Err(Error::Poisoned)));
}

#[test]
fn a_failed_sync_fails_finish() {
    let fs = SimFs::new();
    let mut b = builder(&fs, BuildOptions::default());
    b.add(b"k", 1, Kind::Put, b"v").unwrap();
    fs.fail_sync_after(0);
    assert!(matches!(b.finish(), Err(Error::Io { .. })));
}

#[test]
fn finish_makes_the_table_durable() {
    let fs = SimFs::new();
    let mut b = builder(&fs, BuildOptions::default());
    for i in 0..1000u32 {
        b.add(&i.to_be_bytes(), u64::from(i), Kind::Put, b"value")
            .unwrap();
    }
    assert!(b.estimated_bytes() > 1000 * 9);
    let info = b.finish().unwrap();
    fs.sync_dir(Path::new("/t")).unwrap();
    fs.crash(vfs::CrashMode::DropUnsynced);
    let t = Table::open(&fs, Path::new("/t/x.sst")).unwrap();
    assert_eq!(t.info(), &info);
    assert_eq!(
        t.get(&7u32.to_be_bytes(), 7).unwrap().unwrap().value,
        b"value"
    );
}

#[test]
#[should_panic(expected = "invalid sstable BuildOptions")]
fn invalid_options_are_a_programmer_error() {
    let fs = SimFs::new();
    let _ = builder(
        &fs,
        BuildOptions {
            restart_interval: 0,
            ..Default::default()
        },
    );
}
