//! Fuzzes the table reader: `Table::from_bytes`, then `get`, `seek`, and iteration.
//!
//! The first input byte picks a mode:
//! - even: the rest is the file, as is (with seeds from the corpus, or nothing);
//! - odd: the rest describes entries and build options; a valid table is built from
//!   them and, with no mutations, every answer is checked against a `BTreeMap` model
//!   (differential); then the input's trailing mutations (`pos:u16 xor:u8` triples)
//!   damage the table before it is read again.
//!
//! This crate builds `sstable` with `fuzz-skip-checksums`, so damaged bytes reach the
//! block, index, filter and meta decoders instead of stopping at a crc. The only
//! failures are panics, hangs, huge allocations and model mismatches.

#![no_main]

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sstable::{BuildOptions, Kind, Table, TableBuilder};
use vfs::{Fs, Mapped, SimFs};

type Model = BTreeMap<(Vec<u8>, Reverse<u64>), (Kind, Vec<u8>)>;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let probes = probes_from(rest);
        exercise(rest.to_vec(), &probes, None);
    } else {
        build_then_damage(rest);
    }
});

/// A few keys to look up: slices of the input and some fixed ones.
fn probes_from(data: &[u8]) -> Vec<Vec<u8>> {
    let mut probes = vec![Vec::new(), b"a".to_vec(), vec![0xff; 4]];
    for chunk in data.chunks(7).take(16) {
        probes.push(chunk.to_vec());
    }
    probes
}

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> Option<Vec<u8>> {
        if self.data.len() < n {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head.to_vec())
    }
}

fn build_then_damage(data: &[u8]) {
    let mut r = Reader { data };
    let (Some(a), Some(b), Some(c), Some(muts)) = (r.byte(), r.byte(), r.byte(), r.byte()) else {
        return;
    };
    let opts = BuildOptions {
        block_bytes: 16 + usize::from(a) * 4,
        restart_interval: 1 + usize::from(b % 16),
        bloom_bits_per_key: usize::from(c % 16),
    };
    // The mutations come from the end of the input.
    let muts = usize::from(muts % 8);
    let split = r.data.len().saturating_sub(3 * muts);
    let (body, tail) = r.data.split_at(split);
    let mut r = Reader { data: body };
    let mut model = Model::new();
    while let Some(len) = r.byte() {
        let Some(key) = r.bytes(usize::from(len % 12)) else {
            break;
        };
        let (Some(seqno), Some(flags)) = (r.byte(), r.byte()) else {
            break;
        };
        let kind = if flags & 0x80 == 0 {
            Kind::Put
        } else {
            Kind::Delete
        };
        let value = if kind == Kind::Put {
            let Some(v) = r.bytes(usize::from(flags % 40)) else {
                break;
            };
            v
        } else {
            Vec::new()
        };
        model.insert((key, Reverse(u64::from(seqno) * 3)), (kind, value));
    }

    let fs = SimFs::new();
    let dir = Path::new("/f");
    let path = Path::new("/f/t.sst");
    fs.create_dir_all(dir).expect("create dir on SimFs");
    let mut builder = TableBuilder::new(fs.create(path).expect("create on SimFs"), opts);
    for ((k, Reverse(s)), (kind, v)) in &model {
        builder
            .add(k, *s, *kind, v)
            .expect("entries are in table order");
    }
    builder.finish().expect("finish on SimFs");
    let mut bytes = fs.read_all(path).expect("read back from SimFs");

    let mut probes: Vec<Vec<u8>> = model.keys().map(|(k, _)| k.clone()).collect();
    probes.extend(probes_from(body));
    if muts == 0 {
        exercise(bytes, &probes, Some(&model));
        return;
    }
    for m in tail.chunks_exact(3) {
        let pos = usize::from(u16::from_le_bytes([m[0], m[1]])) % bytes.len();
        bytes[pos] ^= m[2].max(1);
    }
    exercise(bytes, &probes, None);
}

/// Reads everything; with a model, checks every answer against it.
fn exercise(bytes: Vec<u8>, probes: &[Vec<u8>], model: Option<&Model>) {
    let table = match Table::from_bytes(Mapped::new(bytes)) {
        Ok(t) => t,
        Err(e) => {
            assert!(model.is_none(), "a freshly built table failed to open: {e}");
            return;
        }
    };
    for key in probes {
        for snap in [0, 1, 100, 383, u64::MAX] {
            let got = table.get(key, snap);
            if let Some(m) = model {
                let want = m
                    .range((key.clone(), Reverse(snap))..)
                    .next()
                    .filter(|((k, _), _)| k == key)
                    .map(|((_, Reverse(s)), (kind, v))| (*s, *kind, v.clone()));
                let got = got
                    .expect("get on a valid table")
                    .map(|e| (e.seqno, e.kind, e.value.to_vec()));
                assert_eq!(got, want, "get({key:?}, {snap})");
            }
        }
        let mut it = table.iter();
        if it.seek(key).is_ok() {
            if let Some(m) = model {
                let want = m
                    .range((key.clone(), Reverse(u64::MAX))..)
                    .next()
                    .map(|((k, _), _)| k.clone());
                assert_eq!(it.valid().then(|| it.key().to_vec()), want, "seek({key:?})");
            }
            for _ in 0..3 {
                if !it.valid() {
                    break;
                }
                let _ = (it.key(), it.seqno(), it.kind(), it.value());
                if it.next().is_err() {
                    break;
                }
            }
        }
    }
    let mut it = table.iter();
    let mut seen = 0usize;
    if it.seek_to_first().is_ok() {
        while it.valid() {
            let _ = (it.key(), it.value());
            seen += 1;
            if it.next().is_err() {
                break;
            }
        }
    }
    if let Some(m) = model {
        assert_eq!(seen, m.len(), "full scan length");
    }
}
