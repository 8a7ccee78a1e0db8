//! The table's bloom filter: no false negatives, and under 2% false positives on
//! 100k absent keys at 10 bits per key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::build;
use sstable::{BuildOptions, Kind};

#[test]
fn false_positive_rate_below_two_percent_at_ten_bits_per_key() {
    let keys: Vec<Vec<u8>> = (0..100_000u64)
        .map(|i| (i * 2).to_be_bytes().to_vec())
        .collect();
    // Two versions of some keys: the filter counts each user key once.
    let mut entries = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        entries.push((k.clone(), 10, Kind::Put, b"v".to_vec()));
        if i % 3 == 0 {
            entries.push((k.clone(), 5, Kind::Delete, Vec::new()));
        }
    }
    let (fs, _) = build(
        &entries,
        BuildOptions {
            bloom_bits_per_key: 10,
            ..Default::default()
        },
    );
    let table = common::open(&fs);
    for k in &keys {
        assert!(table.may_contain(k).unwrap(), "false negative for {k:?}");
    }
    let absent = 100_000u64;
    let false_positives = (0..absent)
        .filter(|i| table.may_contain(&(i * 2 + 1).to_be_bytes()).unwrap())
        .count();
    let rate = false_positives as f64 / absent as f64;
    println!(
        "bloom false positive rate at 10 bits/key: {:.3}%",
        rate * 100.0
    );
    assert!(rate < 0.02, "false positive rate {rate}");
    // And absent keys inside the key range are answered without error.
    for i in (0..absent).step_by(97) {
        assert_eq!(
            table.get(&(i * 2 + 1).to_be_bytes(), u64::MAX).unwrap(),
            None
        );
    }
}

#[test]
fn zero_bits_per_key_writes_no_filter() {
    let entries = common::sample_entries(100, 1, 4);
    let (fs, _) = build(
        &entries,
        BuildOptions {
            bloom_bits_per_key: 0,
            ..Default::default()
        },
    );
    let table = common::open(&fs);
    assert!(table.may_contain(b"absent").unwrap());
    assert_eq!(table.get(b"key-00000001", u64::MAX).unwrap(), None);
    assert!(table.get(b"key-00000007", u64::MAX).unwrap().is_some());
}
