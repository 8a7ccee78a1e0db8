//! The log against a reference `Vec<Vec<u8>>`: random appends (both modes, sizes that
//! roll segments and records larger than a segment), reopens, prefix and suffix
//! truncations, with reads and iteration checked after every step. On `SimFs`, and
//! one fixed run on the real disk.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vfs::{Fs, RealFs, SimFs};
use wal::{Error, Options, SyncMode, Wal};

const OPTS: Options = Options {
    segment_bytes_max: 512,
    record_bytes_max: 4096,
    bytes_per_sync: 1 << 20,
    index_records: true,
};

#[derive(Debug, Clone)]
enum Op {
    Append { len: usize, durable: bool },
    AppendMany { lens: Vec<usize>, durable: bool },
    TooLarge,
    Sync,
    Reopen,
    TruncatePrefix { at: u16 },
    TruncateSuffix { at: u16 },
}

fn len_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..200, 1 => 200usize..1500]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (len_strategy(), any::<bool>()).prop_map(|(len, durable)| Op::Append { len, durable }),
        3 => (prop::collection::vec(len_strategy(), 0..6), any::<bool>())
            .prop_map(|(lens, durable)| Op::AppendMany { lens, durable }),
        1 => Just(Op::TooLarge),
        1 => Just(Op::Sync),
        2 => Just(Op::Reopen),
        2 => any::<u16>().prop_map(|at| Op::TruncatePrefix { at }),
        2 => any::<u16>().prop_map(|at| Op::TruncateSuffix { at }),
    ]
}

/// A payload that names its own position in the run, so misplaced records show.
fn payload(serial: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|k| (serial.wrapping_mul(31).wrapping_add(k as u64 * 7) % 251) as u8)
        .collect()
}

fn mode(durable: bool) -> SyncMode {
    if durable {
        SyncMode::Durable
    } else {
        SyncMode::Buffered
    }
}

/// The reference: record `first + k` is `records[k]`.
struct Model {
    first: u64,
    records: Vec<Vec<u8>>,
}

impl Model {
    fn next(&self) -> u64 {
        self.first + self.records.len() as u64
    }

    /// An index in `first..=next` picked by `at`.
    fn pick(&self, at: u16) -> u64 {
        self.first + u64::from(at) % (self.records.len() as u64 + 1)
    }
}

fn check(log: &Wal, model: &Model) {
    assert_eq!(log.first_index(), model.first, "first_index");
    assert_eq!(log.next_index(), model.next(), "next_index");
    for (k, want) in model.records.iter().enumerate() {
        assert_eq!(
            &log.read(model.first + k as u64).unwrap(),
            want,
            "read {}",
            model.first + k as u64
        );
    }
    assert!(matches!(
        log.read(model.next()),
        Err(Error::OutOfRange { .. })
    ));
    if model.first > 1 {
        assert!(matches!(
            log.read(model.first - 1),
            Err(Error::OutOfRange { .. })
        ));
    }
    let from = model.first + model.records.len() as u64 / 2;
    let got: Vec<(u64, Vec<u8>)> = log
        .iter_from(from)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let want: Vec<(u64, Vec<u8>)> = (from..model.next())
        .map(|i| (i, model.records[(i - model.first) as usize].clone()))
        .collect();
    assert_eq!(got, want, "iter_from({from})");
    assert!(log.iter_from(model.next() + 1).is_err());
}

/// Runs `ops` against the log and the model; returns the most segments seen at once.
fn run(fs: Arc<dyn Fs>, dir: &Path, ops: &[Op]) -> usize {
    let mut log = Wal::open(fs.clone(), dir, OPTS).unwrap();
    let mut model = Model {
        first: 1,
        records: Vec::new(),
    };
    let mut serial = 0u64;
    let mut segments_max = 0;
    check(&log, &model);
    for op in ops {
        match op {
            Op::Append { len, durable } => {
                serial += 1;
                let p = payload(serial, *len);
                assert_eq!(log.append(&p, mode(*durable)).unwrap(), model.next());
                model.records.push(p);
            }
            Op::AppendMany { lens, durable } => {
                let ps: Vec<Vec<u8>> = lens
                    .iter()
                    .map(|&len| {
                        serial += 1;
                        payload(serial, len)
                    })
                    .collect();
                let range = log
                    .append_many(ps.iter().map(Vec::as_slice), mode(*durable))
                    .unwrap();
                assert_eq!(range, model.next()..model.next() + ps.len() as u64);
                model.records.extend(ps);
            }
            Op::TooLarge => {
                let big = vec![1u8; OPTS.record_bytes_max as usize + 1];
                assert!(matches!(
                    log.append(&big, SyncMode::Durable),
                    Err(Error::TooLarge { .. })
                ));
                let batch = [b"ok".as_slice(), big.as_slice()];
                assert!(matches!(
                    log.append_many(batch, SyncMode::Buffered),
                    Err(Error::TooLarge { .. })
                ));
            }
            Op::Sync => log.sync().unwrap(),
            Op::Reopen => {
                drop(log);
                log = Wal::open(fs.clone(), dir, OPTS).unwrap();
                assert_eq!(
                    log.stats().recovered_tail_bytes,
                    0,
                    "clean reopen cuts nothing"
                );
            }
            Op::TruncatePrefix { at } => {
                let at = model.pick(*at);
                log.truncate_prefix(at).unwrap();
                let first = log.first_index();
                assert!(
                    first >= model.first && first <= at.max(model.first),
                    "first {first} after prefix {at}"
                );
                model.records.drain(..(first - model.first) as usize);
                model.first = first;
            }
            Op::TruncateSuffix { at } => {
                let at = model.pick(*at);
                log.truncate_suffix(at).unwrap();
                model.records.truncate((at - model.first) as usize);
                if model.first > 1 {
                    assert!(matches!(
                        log.truncate_suffix(model.first - 1),
                        Err(Error::OutOfRange { .. })
                    ));
                }
            }
        }
        check(&log, &model);
        segments_max = segments_max.max(log.segment_count());
    }
    drop(log);
    let log = Wal::open(fs, dir, OPTS).unwrap();
    check(&log, &model);
    segments_max
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_reference_on_simfs(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let fs = SimFs::new();
        run(Arc::new(fs), Path::new("/wal"), &ops);
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn log_matches_reference_on_real_disk() {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "wal-model-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    )));
    let mut ops = Vec::new();
    for k in 0..120usize {
        ops.push(match k % 17 {
            3 => Op::Reopen,
            5 => Op::TruncatePrefix {
                at: (k * 13) as u16,
            },
            8 => Op::TruncateSuffix {
                at: (k * 29) as u16,
            },
            11 => Op::AppendMany {
                lens: vec![k % 50, 600, 3],
                durable: k % 2 == 0,
            },
            13 => Op::Sync,
            _ => Op::Append {
                len: (k * 37) % 700,
                durable: k % 3 == 0,
            },
        });
    }
    let segments_max = run(RealFs::shared(), &dir.0, &ops);
    assert!(
        segments_max > 2,
        "the run should roll segments, saw at most {segments_max}"
    );
}

#[test]
fn an_iterator_sees_records_rewritten_under_it() {
    let fs = Arc::new(SimFs::new());
    let log = Wal::open(fs, Path::new("/wal"), OPTS).unwrap();
    for k in 0..10u8 {
        log.append(&[k; 40], SyncMode::Buffered).unwrap();
    }
    let mut it = log.iter_from(1).unwrap();
    assert_eq!(it.next().unwrap().unwrap(), (1, vec![0; 40]));
    // Overwrite records 3.. while the iterator holds read-ahead bytes of the old ones.
    log.truncate_suffix(3).unwrap();
    for k in 0..8u8 {
        log.append(&[100 + k; 40], SyncMode::Buffered).unwrap();
    }
    let rest: Vec<(u64, Vec<u8>)> = it.map(Result::unwrap).collect();
    let want: Vec<(u64, Vec<u8>)> = (2..=10).map(|i| (i, log.read(i).unwrap())).collect();
    assert_eq!(rest, want);
    assert_eq!(rest[1], (3, vec![100; 40]));
}
