//! Damaged files never panic the engine and never yield wrong data:
//! - a WAL whose tail is truncated or bit-flipped opens and recovers a prefix of the
//!   batches (a flipped last record loses exactly that record);
//! - a table (`.sst`) or manifest (`manifest/`, `CURRENT`) with a flipped bit either
//!   fails to open, or fails the read that touches the damage, or, when the damage is
//!   somewhere harmless, returns exactly the right data.
//!
//! Every trial rebuilds the same database on a fresh `SimFs`, damages one spot and
//! opens it; a panic is caught and reported with the file and position.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{model_entries, small_options, Model, Rng};
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::{Db, Options, WriteBatch, WriteOptions};
use vfs::{CrashMode, Fs, SimFs};

const DB: &str = "/db";
const WAL_DIR_CANDIDATES: [&str; 4] = ["wal", "log", "journal", "."];

fn files_in(fs: &SimFs, dir: &Path, pred: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    fs.list_dir(dir)
        .map(|names| {
            names
                .into_iter()
                .filter(|n| pred(n))
                .map(|n| dir.join(n))
                .collect()
        })
        .unwrap_or_default()
}

/// The engine's WAL segments (`*.wal` outside `manifest/`), oldest first.
fn wal_segments(fs: &SimFs) -> Vec<PathBuf> {
    WAL_DIR_CANDIDATES
        .iter()
        .flat_map(|d| files_in(fs, &Path::new(DB).join(d), |n| n.ends_with(".wal")))
        .collect()
}

fn tables(fs: &SimFs) -> Vec<PathBuf> {
    files_in(fs, Path::new(DB), |n| n.ends_with(".sst"))
}

fn manifest_files(fs: &SimFs) -> Vec<PathBuf> {
    let mut files = files_in(fs, &Path::new(DB).join("manifest"), |_| true);
    files.extend(files_in(fs, Path::new(DB), |n| n == "CURRENT"));
    files
}

fn file_len(fs: &SimFs, path: &Path) -> usize {
    fs.read_all(path).unwrap().len()
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// Outcome of opening and reading a damaged database.
enum Outcome {
    /// Opened and every read matched one of the allowed states.
    Matched(usize),
    /// Open or some read returned an error (and nothing returned wrong data).
    Refused,
}

/// Opens the database and reads everything; every successful read must agree with
/// `models[n]` for one n in `allowed`. Panics (caught by the caller) on wrong data.
fn open_and_check(
    fs: &SimFs,
    opts: Options,
    models: &[Model],
    allowed: std::ops::RangeInclusive<usize>,
    keys: u64,
    what: &str,
) -> Outcome {
    let db = match Db::open(Arc::new(fs.clone()), Path::new(DB), opts) {
        Ok(db) => db,
        Err(_) => return Outcome::Refused,
    };
    let mut refused = false;
    let scanned: Result<Vec<_>, _> = match db.iter(Bound::Unbounded, Bound::Unbounded) {
        Ok(it) => it.collect(),
        Err(e) => Err(e),
    };
    let n = match scanned {
        Ok(entries) => {
            let n = allowed
                .clone()
                .rev()
                .find(|&n| model_entries(&models[n]) == entries);
            match n {
                Some(n) => Some(n),
                None => panic!(
                    "{what}: scan returned data matching no allowed state {allowed:?} ({} entries; full model has {})",
                    entries.len(),
                    models[*allowed.end()].len()
                ),
            }
        }
        Err(_) => {
            refused = true;
            None
        }
    };
    for i in 0..keys {
        match db.get(&key(i)) {
            Ok(got) => {
                let ok = match n {
                    Some(n) => got.as_ref() == models[n].get(&key(i)),
                    None => allowed
                        .clone()
                        .any(|n| got.as_ref() == models[n].get(&key(i))),
                };
                assert!(
                    ok,
                    "{what}: get(key{i:05}) returned {:?}, which no allowed state holds",
                    got.map(|v| String::from_utf8_lossy(&v).into_owned())
                );
            }
            Err(_) => refused = true,
        }
    }
    match (refused, n) {
        (false, Some(n)) => Outcome::Matched(n),
        _ => Outcome::Refused,
    }
}

/// Runs one trial, turning a panic into a failure that names the trial.
fn trial(what: &str, f: impl FnOnce()) {
    if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("{what}: {msg}");
    }
}

/// Writes `batches` durable batches (no flush: everything stays in the WAL), then
/// crashes so the files hold exactly what was synced.
fn build_wal_only(seed: u64, batches: usize) -> (SimFs, Vec<Model>) {
    let fs = SimFs::new();
    let opts = Options {
        write_buffer_bytes: 1 << 20,
        ..small_options()
    };
    let db = Db::open(Arc::new(fs.clone()), Path::new(DB), opts).unwrap();
    let mut rng = Rng::new(seed);
    let mut models = vec![Model::new()];
    for b in 0..batches {
        let mut model = models.last().unwrap().clone();
        let mut batch = WriteBatch::new();
        for _ in 0..1 + rng.below(4) {
            let k = key(rng.below(50));
            let v = format!("{b}:{}", "w".repeat(rng.below(60) as usize)).into_bytes();
            batch.put(&k, &v);
            model.insert(k, v);
        }
        db.write(&batch, WriteOptions { sync: true }).unwrap();
        models.push(model);
    }
    fs.crash(CrashMode::DropUnsynced);
    drop(db);
    (fs, models)
}

fn last_wal_segment(fs: &SimFs) -> PathBuf {
    let segs: Vec<_> = wal_segments(fs)
        .into_iter()
        .filter(|p| file_len(fs, p) > 0)
        .collect();
    segs.last()
        .cloned()
        .expect("the engine left no non-empty WAL segment after durable writes")
}

#[test]
fn truncated_wal_tail_recovers_a_prefix() {
    let (fs, models) = build_wal_only(1, 40);
    let wal = last_wal_segment(&fs);
    let len = file_len(&fs, &wal);
    let last = models.len() - 1;
    let mut cuts: Vec<usize> = (0..len.min(300)).map(|d| len - d).collect();
    let mut rng = Rng::new(2);
    cuts.extend((0..60).map(|_| rng.below(len as u64) as usize));
    for cut in cuts {
        let what = format!("WAL {} cut from {len} to {cut} bytes", wal.display());
        trial(&what, || {
            let (fs, _) = build_wal_only(1, 40);
            fs.truncate_durable(&wal, cut).unwrap();
            match open_and_check(&fs, small_options(), &models, 0..=last, 50, &what) {
                Outcome::Matched(n) => {
                    if cut == len {
                        assert_eq!(n, last, "{what}: nothing was cut yet batches were lost");
                    }
                }
                Outcome::Refused => {
                    panic!("{what}: a torn WAL tail must recover a prefix, not fail")
                }
            }
        });
    }
}

#[test]
fn bit_flip_in_last_wal_record_loses_only_that_record() {
    let (fs, models) = build_wal_only(3, 30);
    let wal = last_wal_segment(&fs);
    let len = file_len(&fs, &wal);
    let last = models.len() - 1;
    // The last 16 bytes belong to the last record (every record is longer than that).
    for back in 1..=16usize {
        for bit in [0u8, 3, 7] {
            let byte = len - back;
            let what = format!("WAL {} bit {bit} of byte {byte} (of {len})", wal.display());
            trial(&what, || {
                let (fs, _) = build_wal_only(3, 30);
                fs.flip_bit(&wal, byte, bit).unwrap();
                match open_and_check(&fs, small_options(), &models, 0..=last, 50, &what) {
                    Outcome::Matched(n) => {
                        assert_eq!(
                            n,
                            last - 1,
                            "{what}: expected exactly the last batch to be dropped"
                        )
                    }
                    Outcome::Refused => {
                        panic!("{what}: a corrupt last WAL record must be cut, not fail the open")
                    }
                }
            });
        }
    }
}

#[test]
fn bit_flip_anywhere_in_the_wal_is_a_prefix_or_an_error() {
    let (fs, models) = build_wal_only(4, 30);
    let wal = last_wal_segment(&fs);
    let len = file_len(&fs, &wal);
    let last = models.len() - 1;
    let mut rng = Rng::new(5);
    for _ in 0..120 {
        let byte = rng.below(len as u64) as usize;
        let bit = rng.below(8) as u8;
        let what = format!("WAL {} bit {bit} of byte {byte} (of {len})", wal.display());
        trial(&what, || {
            let (fs, _) = build_wal_only(4, 30);
            fs.flip_bit(&wal, byte, bit).unwrap();
            // Any outcome but wrong data (checked inside) or a panic is acceptable.
            let _ = open_and_check(&fs, small_options(), &models, 0..=last, 50, &what);
        });
    }
}

/// A database whose data lives in several tables on two levels, no WAL tail.
fn build_tables() -> (SimFs, Model) {
    let fs = SimFs::new();
    let db = Db::open(Arc::new(fs.clone()), Path::new(DB), small_options()).unwrap();
    let mut model = Model::new();
    for round in 0..3u64 {
        for i in 0..300u64 {
            if (i + round) % 7 == 0 {
                db.delete(&key(i), WriteOptions::default()).unwrap();
                model.remove(&key(i));
            } else {
                let v = format!("r{round}-{i}-{}", "t".repeat((i % 30) as usize)).into_bytes();
                db.put(&key(i), &v, WriteOptions::default()).unwrap();
                model.insert(key(i), v);
            }
        }
        if round == 1 {
            db.compact_all().unwrap();
        }
    }
    db.flush().unwrap();
    db.sync_wal().unwrap();
    fs.crash(CrashMode::DropUnsynced);
    drop(db);
    (fs, model)
}

/// Flips one bit at a time in the files `pick` lists (on a fresh build each trial:
/// background compactions make file numbers vary, so a spot is named by the file's
/// position in the list and a fraction of its length). Returns (refused, harmless).
fn flip_trials(
    pick: fn(&SimFs) -> Vec<PathBuf>,
    per_file: u64,
    tail_bytes: u64,
    seed: u64,
    label: &str,
) -> (usize, usize) {
    let (fs, model) = build_tables();
    let models = vec![model];
    let files = pick(&fs).len();
    assert!(files > 0, "{label}: nothing to damage");
    let mut rng = Rng::new(seed);
    let (mut refused, mut matched) = (0, 0);
    for file_index in 0..files {
        // Spots as (from the start: fraction in millionths) or (from the end: bytes back).
        let mut spots: Vec<(bool, u64)> = (0..per_file)
            .map(|_| (true, rng.below(1_000_000)))
            .collect();
        spots.extend((1..=tail_bytes).map(|b| (false, b)));
        for (from_start, at) in spots {
            let bit = rng.below(8) as u8;
            let mut outcome = None;
            let (fs, _) = build_tables();
            let list = pick(&fs);
            let Some(file) = list.get(file_index) else {
                continue;
            };
            let len = file_len(&fs, file);
            if len == 0 || (!from_start && at as usize > len) {
                continue;
            }
            let byte = if from_start {
                (at as usize * len) / 1_000_000
            } else {
                len - at as usize
            };
            let what = format!(
                "{label} {} bit {bit} of byte {byte} (of {len})",
                file.display()
            );
            trial(&what, || {
                fs.flip_bit(file, byte, bit).unwrap();
                outcome = Some(open_and_check(
                    &fs,
                    small_options(),
                    &models,
                    0..=0,
                    320,
                    &what,
                ));
            });
            match outcome {
                Some(Outcome::Refused) => refused += 1,
                Some(Outcome::Matched(_)) => matched += 1,
                None => {}
            }
        }
    }
    (refused, matched)
}

#[test]
fn damaged_table_is_an_error_never_wrong_data() {
    let (refused, matched) = flip_trials(tables, 60, 48, 11, "table");
    println!("damaged tables: {refused} refused, {matched} harmless");
    assert!(refused > 0, "no table damage was ever detected");
}

#[test]
fn damaged_manifest_is_an_error_never_wrong_data() {
    let (fs, _) = build_tables();
    let files = manifest_files(&fs);
    assert!(
        files.iter().any(|f| f.ends_with("CURRENT")),
        "expected a CURRENT file: {files:?}"
    );
    let (refused, matched) = flip_trials(manifest_files, 80, 24, 12, "manifest");
    println!("damaged manifest: {refused} refused, {matched} harmless");
    assert!(refused > 0, "no manifest damage was ever detected");
}
