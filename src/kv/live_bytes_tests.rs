//! `Meta::live_bytes` (what the storage quota measures) follows every write that adds,
//! replaces or removes a key, and a meta written before it existed is counted on open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::kv::command::{Command, SessionId};
use crate::kv::keyspace;
use crate::kv::machine::count_live_bytes;
use crate::kv::test_support::{one, open, put, put_in};
use crate::kv::{KvOptions, KvStateMachine};
use std::collections::BTreeMap;
use std::sync::Arc;
use storage::WriteOptions;

/// The live bytes by the model: key and value lengths of every live key.
fn model_bytes(model: &BTreeMap<String, usize>) -> u64 {
    model.iter().map(|(k, v)| (k.len() + v) as u64).sum()
}

fn assert_counted(sm: &KvStateMachine, model: &BTreeMap<String, usize>, step: &str) {
    let counted = count_live_bytes(&sm.db, sm.area).unwrap();
    assert_eq!(
        counted,
        model_bytes(model),
        "recount disagrees with the model after {step}"
    );
    assert_eq!(sm.meta.live_bytes, Some(counted), "meta after {step}");
    assert_eq!(
        sm.reader().meta().unwrap().live_bytes,
        Some(counted),
        "stored meta after {step}"
    );
}

#[test]
fn live_bytes_follow_puts_overwrites_deletes_prefix_deletes_and_sessions() {
    let fs = Arc::new(vfs::SimFs::new());
    let mut sm = open(&fs, KvOptions::default());
    let mut model = BTreeMap::new();
    for i in 0..40u32 {
        let key = format!("a/{}", i % 13);
        let value = "v".repeat((i as usize * 7) % 50);
        one(&mut sm, put(&key, &value));
        model.insert(key, value.len());
    }
    assert_counted(&sm, &model, "puts and overwrites");
    let r = one(
        &mut sm,
        Command::Delete {
            key: "a/3".into(),
            expect_version: None,
        },
    );
    assert!(matches!(
        r.outcome,
        crate::kv::Outcome::Deleted { count: 1 }
    ));
    model.remove("a/3");
    // A failed compare-and-set changes nothing, bytes included.
    one(
        &mut sm,
        crate::kv::test_support::put_if("a/4", "much longer value", 99),
    );
    assert_counted(&sm, &model, "a delete and a failed compare");
    for i in 0..5 {
        one(&mut sm, put(&format!("b/{i}"), "0123456789"));
        model.insert(format!("b/{i}"), 10);
    }
    one(
        &mut sm,
        Command::DeletePrefix {
            prefix: "a/1".into(),
        },
    );
    model.retain(|k, _| !k.starts_with("a/1"));
    assert_counted(&sm, &model, "a prefix delete");
    let s = SessionId(7);
    one(
        &mut sm,
        Command::CreateSession {
            id: s,
            ttl_ms: 5000,
            owner: None,
        },
    );
    for i in 0..4 {
        one(&mut sm, put_in(&format!("e/{i}"), s));
        model.insert(format!("e/{i}"), 1);
    }
    // An ephemeral key overwriting a plain one replaces its bytes.
    one(&mut sm, put_in("b/0", s));
    model.insert("b/0".into(), 1);
    assert_counted(&sm, &model, "ephemeral puts");
    one(&mut sm, Command::CloseSession { id: s });
    model.retain(|k, _| !k.starts_with("e/") && k != "b/0");
    assert_counted(&sm, &model, "a session close");
}

#[test]
fn a_meta_without_live_bytes_is_counted_when_opened() {
    let fs = Arc::new(vfs::SimFs::new());
    let mut sm = open(&fs, KvOptions::default());
    one(&mut sm, put("key", "value"));
    one(&mut sm, put("k2", "vv"));
    // Store the meta as a release before `live_bytes` wrote it.
    let mut meta = sm.meta.clone();
    meta.live_bytes = None;
    sm.db
        .put(
            &sm.area.meta_key(),
            &keyspace::encode(&meta),
            WriteOptions { sync: true },
        )
        .unwrap();
    drop(sm);
    let mut sm = open(&fs, KvOptions::default());
    assert_eq!(sm.meta.live_bytes, Some(8 + 4));
    one(&mut sm, put("k3", "v"));
    assert_eq!(sm.reader().meta().unwrap().live_bytes, Some(8 + 4 + 3));
}

#[test]
fn live_bytes_follow_a_prefix_delete_applied_in_chunks() {
    let fs = Arc::new(vfs::SimFs::new());
    let opts = KvOptions {
        slot_batch_bytes_max: 10_000,
        ..KvOptions::default()
    };
    let mut sm = open(&fs, opts.clone());
    let mut model = BTreeMap::new();
    for i in 0..400 {
        let key = format!("big/{i:03}");
        one(&mut sm, put(&key, "0123456789"));
        model.insert(key, 10);
    }
    one(&mut sm, put("kept", "v"));
    model.insert("kept".into(), 1);
    let chunks_before = sm.chunks_written();
    one(
        &mut sm,
        Command::DeletePrefix {
            prefix: "big/".into(),
        },
    );
    assert!(
        sm.chunks_written() > chunks_before,
        "the delete was not chunked"
    );
    model.retain(|k, _| !k.starts_with("big/"));
    assert_counted(&sm, &model, "a chunked prefix delete");
    // And across a restart.
    drop(sm);
    let sm = open(&fs, opts);
    assert_counted(&sm, &model, "a restart");
}

/// The figure the quota reads (published with the pinned snapshot) against the pinned
/// meta record it stands for.
fn assert_published(sm: &KvStateMachine, expected: u64, step: &str) {
    let reader = sm.reader();
    let published = reader.live_bytes().unwrap();
    assert_eq!(
        published,
        reader.meta().unwrap().live_bytes,
        "published live bytes differ from the pinned meta after {step}"
    );
    assert_eq!(
        published,
        Some(expected),
        "published live bytes after {step}"
    );
}

#[test]
fn published_live_bytes_equal_the_pinned_meta_after_every_pin() {
    let fs = Arc::new(vfs::SimFs::new());
    let opts = KvOptions {
        slot_batch_bytes_max: 10_000,
        ..KvOptions::default()
    };
    let mut sm = open(&fs, opts.clone());
    // An empty Db holds no meta record yet: readers see the default's None.
    assert_eq!(sm.reader().live_bytes().unwrap(), None);
    assert_eq!(sm.reader().meta().unwrap().live_bytes, None);
    for i in 0..300 {
        one(&mut sm, put(&format!("big/{i:03}"), "0123456789"));
    }
    one(&mut sm, put("kept", "vv"));
    assert_published(&sm, 300 * (7 + 10) + 4 + 2, "puts");
    one(
        &mut sm,
        Command::Delete {
            key: "big/000".into(),
            expect_version: None,
        },
    );
    assert_published(&sm, 299 * (7 + 10) + 4 + 2, "a delete");
    let chunks_before = sm.chunks_written();
    one(
        &mut sm,
        Command::DeletePrefix {
            prefix: "big/".into(),
        },
    );
    assert!(
        sm.chunks_written() > chunks_before,
        "the delete was not chunked"
    );
    assert_published(&sm, 4 + 2, "a chunked prefix delete");
    drop(sm);
    let mut sm = open(&fs, opts.clone());
    assert_published(&sm, 4 + 2, "a reopen");
    one(&mut sm, put("k", "v"));
    assert_published(&sm, 4 + 2 + 2, "a put after the reopen");
    // A meta from before `live_bytes`: readers see it absent until the next slot.
    let mut meta = sm.meta.clone();
    meta.live_bytes = None;
    sm.db
        .put(
            &sm.area.meta_key(),
            &keyspace::encode(&meta),
            WriteOptions { sync: true },
        )
        .unwrap();
    drop(sm);
    let mut sm = open(&fs, opts);
    assert_eq!(sm.reader().live_bytes().unwrap(), None);
    assert_eq!(sm.reader().meta().unwrap().live_bytes, None);
    one(&mut sm, put("k", "w"));
    assert_published(&sm, 4 + 2 + 2, "the first slot after a legacy meta");
}
