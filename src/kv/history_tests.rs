//! Trimming the watch history: a trim that drops many revisions at once (more than one
//! read of records, revisions of several parts among them) keeps exactly the newest
//! `history_revisions_max` revisions and counts the bytes of what it kept.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::kv::command::Command;
use crate::kv::read::HistoryRead;
use crate::kv::test_support::{one, open, put};
use crate::kv::{KvOptions, KvStateMachine};
use std::sync::Arc;

/// (revision, part) and encoded bytes of every stored history record.
fn stored_history(sm: &KvStateMachine) -> Vec<((u64, u32), usize)> {
    let prefix = sm.area.history_prefix();
    sm.db
        .prefix_iter(&prefix)
        .unwrap()
        .map(|item| {
            let (hk, bytes) = item.unwrap();
            (
                crate::kv::keyspace::history_part_of(&hk).unwrap(),
                bytes.len(),
            )
        })
        .collect()
}

#[test]
fn a_trim_of_many_revisions_keeps_exactly_the_newest() {
    let fs = Arc::new(vfs::SimFs::new());
    let opts = KvOptions {
        slot_batch_bytes_max: 10_000,
        ..KvOptions::default()
    };
    let mut sm = open(&fs, opts.clone());
    // Revisions of one record each, two prefix deletes applied in several parts, and
    // more records than one read of the trim takes.
    for round in 0..2 {
        for i in 0..200 {
            one(&mut sm, put(&format!("big/{round}/{i:03}"), "0123456789"));
        }
        let chunks = sm.chunks_written();
        one(
            &mut sm,
            Command::DeletePrefix {
                prefix: format!("big/{round}/"),
            },
        );
        assert!(sm.chunks_written() > chunks, "the delete was not chunked");
    }
    for i in 0..10 {
        one(&mut sm, put("tail", &i.to_string()));
    }
    let before = stored_history(&sm);
    assert!(
        before.iter().any(|((_, part), _)| *part > 0),
        "no revision of several parts"
    );
    drop(sm);
    let kept = 5;
    let mut sm = open(
        &fs,
        KvOptions {
            history_revisions_max: kept,
            ..opts
        },
    );
    one(&mut sm, put("tail", "last"));
    let revision = sm.revision();
    assert_eq!(sm.meta.compact_revision, revision - kept);
    let after = stored_history(&sm);
    let revisions: Vec<u64> = after.iter().map(|((r, _), _)| *r).collect();
    assert_eq!(
        revisions,
        (revision - kept + 1..=revision).collect::<Vec<_>>()
    );
    let bytes: usize = after.iter().map(|(_, b)| b).sum();
    assert_eq!(sm.meta.history_bytes, bytes as u64);
    let reader = sm.reader();
    assert_eq!(
        reader.history(revision - kept, 100).unwrap(),
        HistoryRead::Compacted {
            compact_revision: revision - kept
        }
    );
    let HistoryRead::Events { revisions, .. } = reader.history(revision - kept + 1, 100).unwrap()
    else {
        panic!("compacted")
    };
    assert_eq!(revisions.len() as u64, kept);
}

/// A state machine with `opts` after 300 puts of `value` over seven keys.
fn filled(opts: KvOptions, value: &str) -> KvStateMachine {
    let fs = Arc::new(vfs::SimFs::new());
    let mut sm = open(&fs, opts);
    for i in 0..300 {
        one(&mut sm, put(&format!("k{}", i % 7), value));
    }
    sm
}

#[test]
fn a_trim_reads_only_the_records_it_drops() {
    let mut sm = filled(
        KvOptions {
            history_revisions_max: 100,
            ..KvOptions::default()
        },
        "v",
    );
    let before = sm.history_records_read();
    let oldest = sm.meta.compact_revision;
    for i in 0..40 {
        one(&mut sm, put("steady", &i.to_string()));
    }
    let dropped = sm.meta.compact_revision - oldest;
    assert!(dropped > 0, "nothing was trimmed");
    assert_eq!(
        sm.history_records_read() - before,
        dropped,
        "every revision dropped is one record, and a trim should read only those"
    );
}

#[test]
fn history_is_trimmed_a_batch_of_revisions_at_a_time() {
    // Each trim opens a scan of the Db: one per put cost more than the put. With a
    // limit of 1,024 revisions a trim drops at least 64 (a sixteenth, at most 64).
    const MAX: u64 = 1_024;
    const BATCH: u64 = 64;
    const PUTS: u64 = 3_000;
    let fs = Arc::new(vfs::SimFs::new());
    let mut sm = open(
        &fs,
        KvOptions {
            history_revisions_max: MAX,
            ..KvOptions::default()
        },
    );
    let mut trims = 0;
    let mut fewest_held = u64::MAX;
    for i in 0..PUTS {
        let before = sm.meta.compact_revision;
        one(&mut sm, put(&format!("k{}", i % 7), "v"));
        let held = sm.revision() - sm.meta.compact_revision;
        assert!(held <= MAX, "{held} revisions held after put {i}");
        if sm.meta.compact_revision != before {
            trims += 1;
            fewest_held = fewest_held.min(held);
        }
    }
    assert!(
        trims <= (PUTS - MAX) / BATCH + 1,
        "{trims} trims in {} puts over the limit",
        PUTS - MAX
    );
    assert!(
        fewest_held >= MAX - BATCH,
        "only {fewest_held} revisions held"
    );
}

#[test]
fn the_bytes_rule_reads_only_the_revisions_it_drops() {
    let mut sm = filled(
        KvOptions {
            history_bytes_max: 4_000,
            ..KvOptions::default()
        },
        "0123456789",
    );
    let oldest = sm.meta.compact_revision;
    assert!(oldest > 0, "the bytes rule dropped nothing");
    let before = sm.history_records_read();
    // One value as large as a quarter of the limit (more than the room a batched trim
    // leaves): its revision makes room by dropping several of the oldest, and reads each
    // of those once.
    one(&mut sm, put("big", &"x".repeat(1_000)));
    let dropped = sm.meta.compact_revision - oldest;
    assert!(dropped > 1, "dropped {dropped}");
    assert_eq!(sm.history_records_read() - before, dropped);
}

#[test]
fn a_compaction_reads_only_the_revisions_it_drops() {
    let (_fs, mut sm) = crate::kv::test_support::fresh();
    for i in 0..200 {
        one(&mut sm, put(&format!("k{}", i % 7), "v"));
    }
    let oldest = sm.meta.compact_revision + 1;
    let before = sm.history_records_read();
    one(
        &mut sm,
        Command::Compact {
            revision: oldest + 20,
        },
    );
    assert_eq!(sm.meta.compact_revision, oldest + 19);
    assert_eq!(sm.history_records_read() - before, 20);
}
