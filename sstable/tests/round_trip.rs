//! Tables built from random sorted entry sets answer every `get`, scan and seek
//! exactly as a `BTreeMap` model of the same entries does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{build, entries_of, model_get, model_seek, open, scan, Entry, Model};
use proptest::prelude::*;
use sstable::{BuildOptions, Kind, Table};

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![3 => Just(Kind::Put), 1 => Just(Kind::Delete)]
}

/// Keys over a small alphabet so that prefixes are shared and keys collide; now and
/// then a long one.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(prop::sample::select(b"abc\x00\xff".to_vec()), 0..8),
        1 => prop::collection::vec(any::<u8>(), 100..600),
        // Longer than the index's 8-byte key prefixes, so prefixes tie.
        3 => prop::collection::vec(prop::sample::select(b"ab\x00".to_vec()), 0..6)
            .prop_map(|tail| [&b"shared-prefix/"[..], &tail].concat()),
    ]
}

fn model(max_keys: usize) -> impl Strategy<Value = Model> {
    let versions = prop::collection::btree_map(
        0u64..60,
        (kind(), prop::collection::vec(any::<u8>(), 0..40)),
        1..6,
    );
    prop::collection::btree_map(key(), versions, 1..max_keys).prop_map(|by_key| {
        let mut m = Model::new();
        for (k, versions) in by_key {
            for (s, (kind, v)) in versions {
                let v = if kind == Kind::Delete { Vec::new() } else { v };
                m.insert((k.clone(), std::cmp::Reverse(s)), (kind, v));
            }
        }
        m
    })
}

fn options() -> impl Strategy<Value = BuildOptions> {
    (
        prop::sample::select(vec![64usize, 200, 1024, 4096]),
        1usize..20,
        0usize..=12,
    )
        .prop_map(
            |(block_bytes, restart_interval, bloom_bits_per_key)| BuildOptions {
                block_bytes,
                restart_interval,
                bloom_bits_per_key,
            },
        )
}

fn check_table(model: &Model, opts: BuildOptions, probes: &[Vec<u8>]) {
    let entries: Vec<Entry> = entries_of(model);
    let (fs, info) = build(&entries, opts);
    let table = open(&fs);
    assert_eq!(table.info(), &info);
    assert_eq!(info.entries, entries.len() as u64);
    assert_eq!(info.smallest_key, entries.first().unwrap().0);
    assert_eq!(info.largest_key, entries.last().unwrap().0);
    assert_eq!(
        info.smallest_seqno,
        entries.iter().map(|e| e.1).min().unwrap()
    );
    assert_eq!(
        info.largest_seqno,
        entries.iter().map(|e| e.1).max().unwrap()
    );

    assert_eq!(scan(&table).unwrap(), entries, "full scan differs");

    let mut keys: Vec<&[u8]> = entries.iter().map(|e| e.0.as_slice()).collect();
    keys.dedup();
    for key in keys
        .iter()
        .copied()
        .chain(probes.iter().map(|p| p.as_slice()))
    {
        let mut snapshots = vec![0, 1, 30, 59, 60, u64::MAX];
        snapshots.extend(
            entries
                .iter()
                .filter(|e| e.0 == key)
                .flat_map(|e| [e.1, e.1.saturating_sub(1)]),
        );
        for snap in snapshots {
            check_get(&table, model, key, snap);
            check_seek(&table, model, key, snap);
        }
    }
}

fn check_get(table: &Table, model: &Model, key: &[u8], snap: u64) {
    let got = table
        .get(key, snap)
        .unwrap()
        .map(|e| (e.seqno, e.kind, e.value));
    let got = got.as_ref().map(|(s, k, v)| (*s, *k, v.as_slice()));
    assert_eq!(got, model_get(model, key, snap), "get({key:?}, {snap})");
}

fn check_seek(table: &Table, model: &Model, key: &[u8], snap: u64) {
    let mut it = table.iter();
    it.seek_version(key, snap).unwrap();
    let got = it.valid().then(|| {
        (
            it.key().to_vec(),
            it.seqno(),
            it.kind(),
            it.value().to_vec(),
        )
    });
    assert_eq!(
        got,
        model_seek(model, key, snap),
        "seek_version({key:?}, {snap})"
    );
    it.seek(key).unwrap();
    let got = it.valid().then(|| {
        (
            it.key().to_vec(),
            it.seqno(),
            it.kind(),
            it.value().to_vec(),
        )
    });
    assert_eq!(got, model_seek(model, key, u64::MAX), "seek({key:?})");
    // The cursor goes on correctly from a seek.
    if let Some((k, s, _, _)) = got {
        it.next().unwrap();
        let after = it.valid().then(|| (it.key().to_vec(), it.seqno()));
        let expected = model
            .range((k, std::cmp::Reverse(s))..)
            .nth(1)
            .map(|((k, std::cmp::Reverse(s)), _)| (k.clone(), *s));
        assert_eq!(after, expected, "next after seek({key:?})");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn small_tables_match_the_model(m in model(40), opts in options(), probes in prop::collection::vec(key(), 0..20)) {
        check_table(&m, opts, &probes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn large_tables_match_the_model(m in model(1500), opts in options(), probes in prop::collection::vec(key(), 0..50)) {
        check_table(&m, opts, &probes);
    }
}

#[test]
fn single_entry_table() {
    let m = common::model_of(&[(b"only".to_vec(), 9, Kind::Put, b"v".to_vec())]);
    check_table(
        &m,
        BuildOptions::default(),
        &[b"".to_vec(), b"onlx".to_vec(), b"onlz".to_vec()],
    );
}

#[test]
fn one_key_with_versions_spanning_many_blocks() {
    // 500 versions of one key in blocks of ~64 bytes: every lookup crosses blocks.
    let entries: Vec<Entry> = (0..500u64)
        .rev()
        .map(|s| {
            (
                b"k".to_vec(),
                s * 2,
                if s % 7 == 0 { Kind::Delete } else { Kind::Put },
                s.to_le_bytes().to_vec(),
            )
        })
        .map(|(k, s, kind, v)| {
            (
                k,
                s,
                kind,
                if kind == Kind::Delete { Vec::new() } else { v },
            )
        })
        .collect();
    let m = common::model_of(&entries);
    let opts = BuildOptions {
        block_bytes: 64,
        restart_interval: 3,
        bloom_bits_per_key: 10,
    };
    let (fs, _) = build(&entries, opts);
    let table = open(&fs);
    assert!(table.data_blocks().unwrap() > 50);
    for snap in 0..1001 {
        check_get(&table, &m, b"k", snap);
        check_seek(&table, &m, b"k", snap);
    }
}

#[test]
fn empty_values_and_empty_key() {
    let entries: Vec<Entry> = vec![
        (Vec::new(), 5, Kind::Put, Vec::new()),
        (Vec::new(), 4, Kind::Delete, Vec::new()),
        (b"a".to_vec(), 1, Kind::Put, Vec::new()),
    ];
    let m = common::model_of(&entries);
    check_table(&m, BuildOptions::default(), &[b"\x00".to_vec()]);
}

#[test]
fn thousands_of_entries_with_default_options() {
    let entries = common::sample_entries(5000, 3, 50);
    let m = common::model_of(&entries);
    let (fs, _) = build(&entries, BuildOptions::default());
    let table = open(&fs);
    assert!(table.data_blocks().unwrap() > 50);
    assert_eq!(scan(&table).unwrap(), entries);
    for (i, e) in entries.iter().enumerate().step_by(7) {
        check_get(&table, &m, &e.0, e.1);
        check_get(&table, &m, &e.0, e.1 - 1);
        check_seek(&table, &m, &e.0, e.1 + (i as u64 % 2));
    }
    for i in 0..2000 {
        let absent = format!("key-{:08}", i * 7 + 3).into_bytes();
        assert_eq!(table.get(&absent, u64::MAX).unwrap(), None);
        check_seek(&table, &m, &absent, u64::MAX);
    }
}

#[test]
fn empty_table_opens_and_is_empty() {
    let (fs, info) = build(&[], BuildOptions::default());
    assert_eq!(info.entries, 0);
    let table = open(&fs);
    assert_eq!(table.info(), &info);
    assert_eq!(table.get(b"x", u64::MAX).unwrap(), None);
    assert_eq!(scan(&table).unwrap(), Vec::new());
    let mut it = table.iter();
    it.seek(b"").unwrap();
    assert!(!it.valid());
}

#[test]
fn concurrent_readers_share_one_table() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Table>();
    assert_send_sync::<sstable::TableIter>();

    let entries = common::sample_entries(3000, 2, 30);
    let m = common::model_of(&entries);
    let (fs, _) = build(&entries, BuildOptions::default());
    let table = open(&fs);
    std::thread::scope(|s| {
        for t in 0..4usize {
            let (table, m, entries) = (table.clone(), &m, &entries);
            s.spawn(move || {
                for e in entries.iter().skip(t).step_by(3) {
                    check_get(&table, m, &e.0, e.1);
                }
                assert_eq!(scan(&table).unwrap(), *entries);
            });
        }
    });
}
