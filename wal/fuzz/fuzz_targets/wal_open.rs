//! Fuzzes opening a log directory: recovery's scan of every segment (headers, record
//! headers, lengths, checksums, the torn-tail search), then reads, an append and a
//! reopen.
//!
//! The input describes a log (segments of records, encoded with valid checksums by
//! `wal::format`) and damage to its files (xor a byte, cut a file, append bytes, zero
//! a range, rename a segment), or, in raw mode, whole segment files as given. The
//! properties, beyond "no panic, no hang, no huge allocation":
//! - an undamaged log opens with exactly its records;
//! - a record none of whose bytes were damaged reads back exactly as written;
//! - a log that opens takes an append, and opens again with that record at its end.

#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use vfs::{Fs, SimFs};
use wal::format::{encode_record, encode_segment_header, payload_crc, segment_file_name};
use wal::{Options, SyncMode, Wal};

const DIR: &str = "/wal";
const OPTS: Options = Options {
    segment_bytes_max: 512,
    record_bytes_max: 300,
    bytes_per_sync: 1 << 20,
};

#[derive(Debug, Arbitrary)]
enum Damage {
    Xor { segment: u8, at: u16, with: u8 },
    Cut { segment: u8, to: u16 },
    Append { segment: u8, bytes: Vec<u8> },
    Zero { segment: u8, at: u16, len: u8 },
    Rename { segment: u8, first: u64 },
}

#[derive(Debug, Arbitrary)]
enum Input {
    /// Segments of records (each segment's records follow the previous segment's).
    Log {
        first: u8,
        segments: Vec<Vec<Vec<u8>>>,
        damage: Vec<Damage>,
    },
    /// Segment files as raw bytes, named by their first index.
    Raw(Vec<(u64, Vec<u8>)>),
}

struct File {
    name: String,
    bytes: Vec<u8>,
    /// (index, offset, end, payload) of each record written to it.
    records: Vec<(u64, usize, usize, Vec<u8>)>,
    damaged: Vec<(usize, usize)>,
}

fuzz_target!(|input: Input| {
    let fs = SimFs::new();
    let dir = Path::new(DIR);
    fs.create_dir_all(dir).unwrap();
    match input {
        Input::Raw(files) => {
            for (first, bytes) in files.into_iter().take(4) {
                fs.write_atomic(&dir.join(segment_file_name(first)), &bytes)
                    .unwrap();
            }
            let _ = check_open(&fs, None);
        }
        Input::Log {
            first,
            segments,
            damage,
        } => {
            let first = u64::from(first) + 1;
            let mut files = build(first, segments);
            let mut expected = BTreeMap::new();
            for f in &files {
                for (index, _, _, payload) in &f.records {
                    expected.insert(*index, payload.clone());
                }
            }
            let undamaged = damage.is_empty();
            for d in damage.into_iter().take(8) {
                apply(&mut files, d);
            }
            for f in &files {
                fs.write_atomic(&dir.join(&f.name), &f.bytes).unwrap();
            }
            // Records whose bytes all survived must read back as written.
            let intact: BTreeMap<u64, Vec<u8>> = files
                .iter()
                .filter(|f| segment_file_name(f.records.first().map_or(0, |r| r.0)) == f.name)
                .flat_map(|f| {
                    f.records
                        .iter()
                        .filter(|(_, at, end, _)| {
                            *end <= f.bytes.len()
                                && f.damaged.iter().all(|&(a, b)| b <= *at || a >= *end)
                        })
                        .map(|(i, _, _, p)| (*i, p.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            let opened = check_open(&fs, Some(&intact));
            if undamaged {
                let got = opened.unwrap_or_else(|e| panic!("an undamaged log failed to open: {e}"));
                assert_eq!(got, expected, "an undamaged log opened with other records");
            }
        }
    }
});

/// Encodes the segments; the last one may be empty, earlier empty ones are dropped.
fn build(first: u64, segments: Vec<Vec<Vec<u8>>>) -> Vec<File> {
    let mut files = Vec::new();
    let mut index = first;
    let n = segments.len().min(4);
    for (k, records) in segments.into_iter().take(4).enumerate() {
        if records.is_empty() && k + 1 < n {
            continue;
        }
        let mut bytes = encode_segment_header(index).to_vec();
        let name = segment_file_name(index);
        let mut written = Vec::new();
        for payload in records.into_iter().take(16) {
            let mut payload = payload;
            payload.truncate(OPTS.record_bytes_max as usize);
            let at = bytes.len();
            encode_record(&mut bytes, index, &payload, payload_crc(&payload));
            written.push((index, at, bytes.len(), payload));
            index += 1;
        }
        files.push(File {
            name,
            bytes,
            records: written,
            damaged: Vec::new(),
        });
    }
    files
}

fn apply(files: &mut [File], d: Damage) {
    let pick = |s: u8| (s as usize) % files.len().max(1);
    if files.is_empty() {
        return;
    }
    match d {
        Damage::Xor { segment, at, with } => {
            let f = &mut files[pick(segment)];
            let at = at as usize;
            if let Some(b) = f.bytes.get_mut(at) {
                *b ^= with;
                f.damaged.push((at, at + 1));
            }
        }
        Damage::Cut { segment, to } => {
            let f = &mut files[pick(segment)];
            let to = (to as usize).min(f.bytes.len());
            f.damaged.push((to, usize::MAX));
            f.bytes.truncate(to);
        }
        Damage::Append { segment, bytes } => {
            let f = &mut files[pick(segment)];
            let at = f.bytes.len();
            f.bytes.extend(bytes.into_iter().take(600));
            f.damaged.push((at, usize::MAX));
        }
        Damage::Zero { segment, at, len } => {
            let f = &mut files[pick(segment)];
            let at = (at as usize).min(f.bytes.len());
            let end = (at + len as usize).min(f.bytes.len());
            f.bytes[at..end].fill(0);
            f.damaged.push((at, end));
        }
        Damage::Rename { segment, first } => {
            let f = &mut files[pick(segment)];
            f.name = segment_file_name(first);
        }
    }
}

/// Opens the log; if it opens: every record reads (or fails with an error), intact
/// ones read back as written, an append works and survives a reopen. Returns the
/// records read, or the open error.
fn check_open(fs: &SimFs, intact: Option<&BTreeMap<u64, Vec<u8>>>) -> Result<BTreeMap<u64, Vec<u8>>, wal::Error> {
    let log = Wal::open(Arc::new(fs.clone()), Path::new(DIR), OPTS)?;
    let (first, next) = (log.first_index(), log.next_index());
    assert!(first >= 1 && first <= next, "index range {first}..{next}");
    let mut got = BTreeMap::new();
    for item in log.iter_from(first).unwrap() {
        let (index, payload) = item.unwrap_or_else(|e| panic!("a record of an opened log: {e}"));
        assert_eq!(log.read(index).unwrap(), payload);
        if let Some(want) = intact.and_then(|m| m.get(&index)) {
            assert_eq!(&payload, want, "intact record {index} changed");
        }
        got.insert(index, payload);
    }
    assert_eq!(got.len() as u64, next - first, "iteration skipped records");
    let appended = log.append(b"appended after open", SyncMode::Durable).unwrap();
    assert_eq!(appended, next);
    drop(log);
    let log = Wal::open(Arc::new(fs.clone()), Path::new(DIR), OPTS)
        .unwrap_or_else(|e| panic!("a log that opened and took an append does not reopen: {e}"));
    assert_eq!(log.next_index(), next + 1);
    assert_eq!(log.read(next).unwrap(), b"appended after open");
    Ok(got)
}
