//! Damaged segment files: a truncated or bit-flipped tail recovers to a prefix; a
//! flipped bit with valid records after it, or in a sealed segment, or a missing
//! segment is `Error::Corrupt` naming the file and offset. Never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use vfs::{Fs, SimFs};
use wal::format::{le_u32, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use wal::{Error, Options, SyncMode, Wal};

const OPTS: Options = Options {
    segment_bytes_max: 400,
    record_bytes_max: 1024,
    bytes_per_sync: 1 << 20,
    index_records: true,
};
const DIR: &str = "/wal";

fn payloads() -> Vec<Vec<u8>> {
    (0..42u32)
        .map(|k| (0..10 + (k * 37) % 80).map(|b| (b * 3 + k) as u8).collect())
        .collect()
}

/// A fresh file system holding a synced multi-segment log of `payloads()`.
fn build() -> SimFs {
    let fs = SimFs::new();
    let log = Wal::open(Arc::new(fs.clone()), Path::new(DIR), OPTS).unwrap();
    for p in payloads() {
        log.append(&p, SyncMode::Buffered).unwrap();
    }
    log.sync().unwrap();
    fs
}

/// Segment paths, oldest first.
fn segments(fs: &SimFs) -> Vec<PathBuf> {
    fs.list_dir(Path::new(DIR))
        .unwrap()
        .iter()
        .map(|n| Path::new(DIR).join(n))
        .collect()
}

/// `(offset, total bytes)` of each record in a segment, by walking the headers.
fn records_in(fs: &SimFs, path: &Path) -> Vec<(u64, u64)> {
    let bytes = fs.read_all(path).unwrap();
    let mut at = SEGMENT_HEADER_BYTES as usize;
    let mut out = Vec::new();
    while at < bytes.len() {
        let total = RECORD_HEADER_BYTES + u64::from(le_u32(&bytes, at));
        out.push((at as u64, total));
        at += total as usize;
    }
    out
}

fn open(fs: &SimFs) -> Result<Wal, Error> {
    Wal::open(Arc::new(fs.clone()), Path::new(DIR), OPTS)
}

/// Every record the log holds, checking they are the first ones appended.
fn assert_prefix(log: &Wal) -> usize {
    let all = payloads();
    let got: Vec<Vec<u8>> = log
        .iter_from(log.first_index())
        .unwrap()
        .map(|r| r.unwrap().1)
        .collect();
    assert_eq!(log.first_index(), 1);
    assert!(got.len() <= all.len());
    assert_eq!(got[..], all[..got.len()]);
    got.len()
}

fn assert_corrupt(got: Result<Wal, Error>, segment: &Path, offset: u64, what: &str) {
    match got {
        Err(Error::Corrupt {
            segment: s,
            offset: o,
            reason,
        }) => {
            assert_eq!((s.as_path(), o), (segment, offset), "{what}: {reason}");
        }
        Err(e) => panic!(
            "{what}: want Corrupt at {}:{offset}, got {e}",
            segment.display()
        ),
        Ok(_) => panic!(
            "{what}: want Corrupt at {}:{offset}, opened fine",
            segment.display()
        ),
    }
}

#[test]
fn the_fixture_spans_several_segments() {
    let fs = build();
    let segs = segments(&fs);
    assert!(segs.len() >= 4, "{} segments", segs.len());
    assert!(records_in(&fs, segs.last().unwrap()).len() >= 3);
    assert_eq!(assert_prefix(&open(&fs).unwrap()), payloads().len());
}

#[test]
fn a_truncated_tail_recovers_to_a_prefix() {
    let segs = segments(&build());
    let last = segs.last().unwrap();
    let recs = records_in(&build(), last);
    let before = payloads().len() - recs.len();
    let len = build().read_all(last).unwrap().len();
    for cut in 0..len {
        let fs = build();
        fs.truncate_durable(last, cut).unwrap();
        let log = open(&fs).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let whole = recs
            .iter()
            .filter(|(at, total)| at + total <= cut as u64)
            .count();
        assert_eq!(assert_prefix(&log), before + whole, "cut at {cut}");
        // The cut log takes appends and reopens without losing them.
        let i = log.append(b"new", SyncMode::Durable).unwrap();
        drop(log);
        let log = open(&fs).unwrap();
        assert_eq!(log.read(i).unwrap(), b"new");
        assert_eq!(log.stats().recovered_tail_bytes, 0);
    }
}

#[test]
fn a_flipped_bit_in_the_last_record_is_a_torn_tail() {
    let fs = build();
    let last = segments(&fs).pop().unwrap();
    let &(at, total) = records_in(&fs, &last).last().unwrap();
    for byte in at..at + total {
        let fs = build();
        fs.flip_bit(&last, byte as usize, (byte % 8) as u8).unwrap();
        let log = open(&fs).unwrap_or_else(|e| panic!("flip at {byte}: {e}"));
        assert_eq!(assert_prefix(&log), payloads().len() - 1, "flip at {byte}");
        assert_eq!(log.stats().recovered_tail_bytes, total);
    }
}

#[test]
fn a_flipped_bit_before_valid_records_is_corruption() {
    let fs = build();
    let last = segments(&fs).pop().unwrap();
    let recs = records_in(&fs, &last);
    for &(at, total) in &recs[..recs.len() - 1] {
        for byte in at..at + total {
            let fs = build();
            fs.flip_bit(&last, byte as usize, (byte % 8) as u8).unwrap();
            assert_corrupt(open(&fs), &last, at, &format!("flip at {byte}"));
        }
    }
}

#[test]
fn any_flipped_bit_in_a_sealed_segment_is_corruption() {
    let fs = build();
    let segs = segments(&fs);
    for seg in &segs[..segs.len() - 1] {
        for (at, total) in records_in(&fs, seg) {
            for byte in [at, at + 5, at + 9, at + total - 1] {
                let fs = build();
                fs.flip_bit(seg, byte as usize, 3).unwrap();
                assert_corrupt(
                    open(&fs),
                    seg,
                    at,
                    &format!("{} flip at {byte}", seg.display()),
                );
            }
        }
        for byte in 0..SEGMENT_HEADER_BYTES {
            let fs = build();
            fs.flip_bit(seg, byte as usize, 0).unwrap();
            assert_corrupt(
                open(&fs),
                seg,
                0,
                &format!("{} header flip at {byte}", seg.display()),
            );
        }
        // A sealed segment cut short is not a torn tail either.
        let fs = build();
        let len = fs.read_all(seg).unwrap().len();
        fs.truncate_durable(seg, len - 1).unwrap();
        let &(at, _) = records_in(&build(), seg).last().unwrap();
        assert_corrupt(open(&fs), seg, at, "sealed segment cut short");
    }
}

#[test]
fn a_missing_segment_is_corruption() {
    let fs = build();
    let segs = segments(&fs);
    fs.remove_file(&segs[1]).unwrap();
    assert_corrupt(open(&fs), &segs[2], 0, "gap between segments");
}

#[test]
fn random_damage_never_panics_and_never_invents_records() {
    let mut state = 0x1234_5678u64;
    let mut rand = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let (mut opened, mut corrupt) = (0, 0);
    for _ in 0..300 {
        let fs = build();
        let segs = segments(&fs);
        for _ in 0..1 + rand(3) {
            let seg = &segs[rand(segs.len() as u64) as usize];
            let len = fs.read_all(seg).unwrap().len() as u64;
            fs.flip_bit(seg, rand(len) as usize, rand(8) as u8).unwrap();
        }
        match open(&fs) {
            Ok(log) => {
                assert_prefix(&log);
                opened += 1;
            }
            Err(Error::Corrupt { .. }) => corrupt += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(
        opened > 0 && corrupt > 0,
        "opened {opened}, corrupt {corrupt}"
    );
}

#[test]
fn damage_after_open_is_reported_by_read() {
    let fs = build();
    let log = open(&fs).unwrap();
    let first = segments(&fs)[0].clone();
    let (at, _) = records_in(&fs, &first)[1];
    fs.flip_bit(&first, at as usize + RECORD_HEADER_BYTES as usize, 1)
        .unwrap();
    match log.read(2) {
        Err(Error::Corrupt {
            segment, offset, ..
        }) => assert_eq!((segment, offset), (first, at)),
        other => panic!("want Corrupt, got {other:?}"),
    }
    let mut it = log.iter_from(1).unwrap();
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none(), "the iterator stops after an error");
}

mod arbitrary_bytes {
    use super::*;
    use proptest::prelude::*;
    use wal::format::{encode_segment_header, segment_file_name};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever the bytes after a valid header (or instead of it), open either
        /// succeeds with records that read back, or reports corruption. No panic, and no
        /// allocation sized by a garbage length.
        #[test]
        fn open_survives_any_segment_content(
            body in prop::collection::vec(any::<u8>(), 0..600),
            with_header in any::<bool>(),
            two_segments in any::<bool>(),
        ) {
            let fs = SimFs::new();
            let dir = Path::new(DIR);
            fs.create_dir_all(dir).unwrap();
            let mut bytes = if with_header { encode_segment_header(1).to_vec() } else { Vec::new() };
            bytes.extend_from_slice(&body);
            fs.write_atomic(&dir.join(segment_file_name(1)), &bytes).unwrap();
            if two_segments {
                fs.write_atomic(&dir.join(segment_file_name(2)), &encode_segment_header(2)).unwrap();
            }
            match open(&fs) {
                Ok(log) => {
                    for item in log.iter_from(log.first_index()).unwrap() {
                        item.unwrap();
                    }
                    log.append(b"still works", SyncMode::Durable).unwrap();
                }
                Err(Error::Corrupt { .. }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
}
