//! The cost of trimming many revisions of watch history in one command: a state machine
//! holding `HISTORY_TRIM_REVISIONS` revisions (default 10,000) reopens with
//! `history_revisions_max = 1`, and its next put drops all of them but the newest.
//! Timed: that one slot, against the same put with nothing to trim; with the history in
//! the memtable and again after a full compaction (in tables). Each case is run a few
//! times on a fresh in-memory file system; the median is printed.
//!
//! `cargo bench --bench history_trim` (HISTORY_TRIM_REVISIONS=N to change the count).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use concierge::kv::{Command, KvOptions, KvStateMachine, LeaseTable};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 5;
const COMMANDS_PER_SLOT: usize = 100;

fn open(fs: &Arc<vfs::SimFs>, opts: KvOptions) -> KvStateMachine {
    let fs: Arc<dyn vfs::Fs> = fs.clone();
    let db = storage::Db::open(fs, Path::new("/kv"), storage::Options::default()).unwrap();
    KvStateMachine::open(db, opts, LeaseTable::new()).unwrap()
}

fn put(key: &str) -> Bytes {
    Command::Put {
        key: key.into(),
        value: Bytes::from_static(b"0123456789abcdef"),
        expect_version: None,
        session: None,
    }
    .encode()
}

fn apply(sm: &mut KvStateMachine, commands: &[Bytes]) {
    let slot = sm.applied_index() + 1;
    sm.apply_slot(slot, commands).unwrap();
}

/// One run: writes `revisions` revisions, reopens keeping `kept` of them (compacted into
/// tables first when `compact`), and times the next put's slot.
fn run(revisions: usize, kept: u64, compact: bool) -> Duration {
    let fs = Arc::new(vfs::SimFs::new());
    let all = KvOptions {
        history_revisions_max: revisions as u64 + 10,
        ..KvOptions::default()
    };
    let mut sm = open(&fs, all);
    let mut written = 0;
    while written < revisions {
        let n = COMMANDS_PER_SLOT.min(revisions - written);
        let slot: Vec<Bytes> = (written..written + n)
            .map(|i| put(&format!("k/{}", i % 1000)))
            .collect();
        apply(&mut sm, &slot);
        written += n;
    }
    drop(sm);
    if compact {
        let dyn_fs: Arc<dyn vfs::Fs> = fs.clone();
        let db = storage::Db::open(dyn_fs, Path::new("/kv"), storage::Options::default()).unwrap();
        db.compact_all().unwrap();
    }
    let trimming = KvOptions {
        history_revisions_max: kept,
        ..KvOptions::default()
    };
    let mut sm = open(&fs, trimming);
    let start = Instant::now();
    apply(&mut sm, &[put("trigger")]);
    start.elapsed()
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    let revisions: usize = std::env::var("HISTORY_TRIM_REVISIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    for compact in [false, true] {
        let place = if compact { "tables" } else { "memtable" };
        let keep_all = revisions as u64 + 10;
        let base = median(
            (0..RUNS)
                .map(|_| run(revisions, keep_all, compact))
                .collect(),
        );
        let trim = median((0..RUNS).map(|_| run(revisions, 1, compact)).collect());
        let per = trim.saturating_sub(base) / revisions as u32;
        println!(
            "history in {place}: put trimming {revisions} revisions {trim:?}, \
             put trimming none {base:?}, about {per:?} per revision trimmed"
        );
    }
}
