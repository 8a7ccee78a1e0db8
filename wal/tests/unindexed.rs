//! A log that keeps no record offsets (`Options::index_records` false): it replays in
//! order from its first record, and from any segment's first record, across segments
//! and reopens, exactly as an indexed log does; every call that needs an offset is
//! `Error::Unindexed`, never a panic or a wrong record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use vfs::SimFs;
use wal::{Error, Options, SyncMode, Wal};

const DIR: &str = "/wal";

fn opts(index_records: bool) -> Options {
    Options {
        segment_bytes_max: 400,
        record_bytes_max: 1024,
        bytes_per_sync: 1 << 20,
        index_records,
    }
}

fn payloads() -> Vec<Vec<u8>> {
    (0..60u32)
        .map(|k| (0..10 + (k * 37) % 80).map(|b| (b * 3 + k) as u8).collect())
        .collect()
}

fn replay(log: &Wal, from: u64) -> Vec<(u64, Vec<u8>)> {
    log.iter_from(from).unwrap().map(Result::unwrap).collect()
}

#[test]
fn an_unindexed_log_replays_what_an_indexed_one_does() {
    let fs = SimFs::new();
    let log = Wal::open(Arc::new(fs.clone()), Path::new(DIR), opts(false)).unwrap();
    let written = payloads();
    for (k, p) in written.iter().enumerate() {
        // Some one at a time, some in groups: both paths count their records.
        if k % 3 == 0 {
            log.append(p, SyncMode::Buffered).unwrap();
        } else {
            log.append_many([p.as_slice()], SyncMode::Queued).unwrap();
        }
    }
    log.sync().unwrap();
    assert!(
        log.segment_count() > 3,
        "the fixture spans several segments"
    );
    let want: Vec<(u64, Vec<u8>)> = (1..).zip(written.iter().cloned()).collect();
    assert_eq!(replay(&log, log.first_index()), want, "while open");
    drop(log);

    // Reopened either way, the same records; the indexed log is the reference.
    let unindexed = Wal::open(Arc::new(fs.clone()), Path::new(DIR), opts(false)).unwrap();
    assert_eq!(replay(&unindexed, unindexed.first_index()), want);
    drop(unindexed);
    let indexed = Wal::open(Arc::new(fs.clone()), Path::new(DIR), opts(true)).unwrap();
    assert_eq!(replay(&indexed, 1), want);
    drop(indexed);

    let log = Wal::open(Arc::new(fs), Path::new(DIR), opts(false)).unwrap();
    // Every call that needs an offset says so.
    assert!(matches!(log.read(5), Err(Error::Unindexed { index: 5 })));
    assert!(matches!(
        log.truncate_suffix(10),
        Err(Error::Unindexed { index: 10 })
    ));
    let next = log.next_index();
    assert!(log.iter_from(next).unwrap().next().is_none());
    // From a segment's first record it replays the rest; from inside one, it refuses.
    let mut segment_starts = Vec::new();
    for i in 1..=want.len() as u64 {
        match log.iter_from(i) {
            Ok(it) => {
                let got: Vec<_> = it.map(Result::unwrap).collect();
                assert_eq!(got, want[(i - 1) as usize..].to_vec(), "from {i}");
                segment_starts.push(i);
            }
            Err(e) => assert!(matches!(e, Error::Unindexed { index } if index == i), "{e}"),
        }
    }
    assert_eq!(segment_starts.len(), log.segment_count());

    // Dropping old segments leaves the rest replayable from the new first record, and
    // appends after a reopen continue the count.
    log.truncate_prefix(segment_starts[2]).unwrap();
    let first = log.first_index();
    assert_eq!(first, segment_starts[2]);
    let index = log.append(b"after", SyncMode::Durable).unwrap();
    assert_eq!(index, want.len() as u64 + 1);
    let got = replay(&log, first);
    assert_eq!(got.len() as u64, index - first + 1);
    assert_eq!(got.last(), Some(&(index, b"after".to_vec())));
    assert_eq!(got[..got.len() - 1], want[(first - 1) as usize..]);
}
