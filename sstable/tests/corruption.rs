//! Damaged tables give errors, never panics or wrong data.
//!
//! - Truncation at every length of a small table fails to open.
//! - Every bit flip of a small table (and a sample for a larger one) is caught: open,
//!   a lookup or the scan returns an error, and whatever is returned before that is
//!   correct data (every byte is under a crc).
//! - "Resealed" damage: bytes changed inside a block whose crc is then recomputed, so
//!   the decoders themselves meet the bad bytes. Anything may come back except a
//!   panic, a hang or a huge allocation.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(not(feature = "fuzz-skip-checksums"))]

mod common;

use std::path::Path;

use common::{build, model_get, model_of, sample_entries, scan, Entry, Model, Rng};
use sstable::format::{block_crc, BLOCK_TRAILER_LEN, FOOTER_LEN};
use sstable::{BuildOptions, Error, Kind, Table};
use vfs::{Fs, Mapped};

fn small_table() -> (Vec<Entry>, Vec<u8>) {
    let entries = sample_entries(12, 3, 5);
    let opts = BuildOptions {
        block_bytes: 128,
        restart_interval: 4,
        bloom_bits_per_key: 10,
    };
    let (fs, _) = build(&entries, opts);
    let bytes = fs.read_all(Path::new("/t/table.sst")).unwrap();
    (entries, bytes)
}

/// Opens `bytes`, does every lookup and a full scan; checks each answer that is not
/// an error against the model. Returns whether any error was seen.
fn exercise(bytes: &[u8], entries: &[Entry], model: &Model) -> bool {
    let table = match Table::from_bytes(Mapped::new(bytes.to_vec())) {
        Ok(t) => t,
        Err(e) => {
            assert!(e.is_corruption(), "unexpected error kind: {e}");
            return true;
        }
    };
    let mut failed = false;
    for (k, s, _, _) in entries {
        for snap in [*s, s - 1, u64::MAX] {
            match table.get(k, snap) {
                Ok(got) => {
                    let got = got.map(|e| (e.seqno, e.kind, e.value));
                    let got = got.as_ref().map(|(s, k, v)| (*s, *k, v.as_slice()));
                    assert_eq!(
                        got,
                        model_get(model, k, snap),
                        "wrong answer from a damaged table"
                    );
                }
                Err(e) => {
                    assert!(e.is_corruption(), "{e}");
                    failed = true;
                }
            }
        }
    }
    // A fresh handle, so the scan verifies the data blocks itself.
    let table = Table::from_bytes(Mapped::new(bytes.to_vec())).unwrap();
    match scan(&table) {
        Ok(all) => assert_eq!(all, entries, "wrong scan from a damaged table"),
        Err(e) => {
            assert!(e.is_corruption(), "{e}");
            failed = true;
        }
    }
    failed
}

#[test]
fn the_undamaged_table_reads_back() {
    let (entries, bytes) = small_table();
    let model = model_of(&entries);
    assert!(!exercise(&bytes, &entries, &model));
}

#[test]
fn truncation_at_every_length_fails_to_open() {
    let (_, bytes) = small_table();
    for len in 0..bytes.len() {
        let err = Table::from_bytes(Mapped::new(bytes[..len].to_vec())).expect_err(&format!(
            "a table cut to {len} of {} bytes opened",
            bytes.len()
        ));
        assert!(err.is_corruption(), "{err}");
    }
}

#[test]
fn truncated_file_on_simfs_fails_to_open() {
    let entries = sample_entries(50, 2, 10);
    let (fs, info) = build(&entries, BuildOptions::default());
    let path = Path::new("/t/table.sst");
    fs.truncate_durable(path, (info.file_bytes - 1) as usize)
        .unwrap();
    assert!(Table::open(&fs, path).unwrap_err().is_corruption());
    fs.truncate_durable(path, (info.file_bytes / 2) as usize)
        .unwrap();
    assert!(Table::open(&fs, path).unwrap_err().is_corruption());
    let missing = Table::open(&fs, Path::new("/t/missing.sst")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }), "{missing}");
}

#[test]
fn every_bit_flip_of_a_small_table_is_caught() {
    let (entries, bytes) = small_table();
    let model = model_of(&entries);
    for byte in 0..bytes.len() {
        for bit in 0..8 {
            let mut damaged = bytes.clone();
            damaged[byte] ^= 1 << bit;
            assert!(
                exercise(&damaged, &entries, &model),
                "flip of bit {bit} of byte {byte} (of {}) went unnoticed",
                bytes.len()
            );
        }
    }
}

#[test]
fn sampled_bit_flips_of_a_larger_table_are_caught() {
    let entries = sample_entries(400, 3, 40);
    let model = model_of(&entries);
    let (fs, _) = build(&entries, BuildOptions::default());
    let path = Path::new("/t/table.sst");
    let bytes = fs.read_all(path).unwrap();
    assert!(Table::open(&fs, path).unwrap().data_blocks().unwrap() > 10);
    let mut rng = Rng(7);
    for _ in 0..300 {
        let byte = rng.below(bytes.len() as u64) as usize;
        let bit = rng.below(8) as u8;
        let mut damaged = bytes.clone();
        damaged[byte] ^= 1 << bit;
        assert!(
            exercise(&damaged, &entries, &model),
            "flip of bit {bit} of byte {byte} went unnoticed"
        );
    }
    // The same through SimFs::flip_bit and Table::open, for the footer.
    fs.flip_bit(path, bytes.len() - 3, 1).unwrap();
    assert!(Table::open(&fs, path).unwrap_err().is_corruption());
}

/// Changes `bytes` inside one block (or the footer) and recomputes that block's crc.
fn reseal(
    bytes: &mut [u8],
    blocks: &[(sstable::format::BlockKind, sstable::format::Handle)],
    at: usize,
) {
    let footer_at = bytes.len() - FOOTER_LEN;
    if at >= footer_at {
        let crc = crc32fast::hash(&bytes[footer_at..bytes.len() - 12]);
        let crc_at = bytes.len() - 12;
        bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
        return;
    }
    for (_, h) in blocks {
        let start = h.offset as usize;
        let end = start + h.len as usize;
        if (start..end + BLOCK_TRAILER_LEN).contains(&at) {
            let crc = block_crc(&bytes[start..end], bytes[end]);
            bytes[end + 1..end + 5].copy_from_slice(&crc.to_le_bytes());
        }
    }
}

/// Reads everything it can from `bytes` and throws the answers away: only panics,
/// hangs and huge allocations would fail this.
fn read_everything(bytes: Vec<u8>, probes: &[Vec<u8>]) {
    let Ok(table) = Table::from_bytes(Mapped::new(bytes)) else {
        return;
    };
    for k in probes {
        let _ = table.get(k, u64::MAX);
        let _ = table.get(k, 3);
        let mut it = table.iter();
        if it.seek(k).is_ok() && it.valid() {
            let _ = (it.key(), it.value(), it.seqno(), it.kind());
            let _ = it.next();
        }
    }
    let mut it = table.iter();
    let mut steps = 0u64;
    if it.seek_to_first().is_ok() {
        while it.valid() {
            let _ = (it.key(), it.value());
            steps += 1;
            assert!(steps < 1_000_000, "scan does not end");
            if it.next().is_err() {
                break;
            }
        }
    }
}

#[test]
fn resealed_damage_never_panics() {
    let (entries, bytes) = small_table();
    reseal_every_byte(&entries, &bytes, 11);
}

#[test]
fn resealed_damage_with_long_keys_and_values_never_panics() {
    // Lengths of 128 and more take the multi-byte varint path.
    let entries: Vec<Entry> = (0..6u8)
        .flat_map(|i| {
            let key = [vec![b'k'; 130], vec![i]].concat();
            [
                (key.clone(), 9, Kind::Put, vec![i; 200]),
                (key, 2, Kind::Delete, Vec::new()),
            ]
        })
        .collect();
    let opts = BuildOptions {
        block_bytes: 512,
        restart_interval: 2,
        bloom_bits_per_key: 4,
    };
    let (fs, _) = build(&entries, opts);
    let bytes = fs.read_all(Path::new("/t/table.sst")).unwrap();
    reseal_every_byte(&entries, &bytes, 12);
}

fn reseal_every_byte(entries: &[Entry], bytes: &[u8], seed: u64) {
    let table = Table::from_bytes(Mapped::new(bytes.to_vec())).unwrap();
    let blocks = table.blocks().unwrap();
    let probes: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| e.0.clone())
        .chain([b"".to_vec(), b"zz".to_vec()])
        .collect();
    let mut rng = Rng(seed);
    for at in 0..bytes.len() {
        for value in [0x00, 0xff, 0x80, 0x7f, 0x01, rng.below(256) as u8] {
            let mut damaged = bytes.to_vec();
            damaged[at] = value;
            // Also damage a second, random byte now and then.
            if value == 0x80 {
                let other = rng.below(bytes.len() as u64) as usize;
                damaged[other] ^= rng.below(255) as u8 + 1;
                reseal(&mut damaged, &blocks, other);
            }
            reseal(&mut damaged, &blocks, at);
            read_everything(damaged, &probes);
        }
    }
}
