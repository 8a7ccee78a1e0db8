//! Shared helpers for the sstable integration tests: build a table on `SimFs` from
//! a list of entries, and the `BTreeMap` model every answer is checked against.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::path::Path;

use sstable::{BuildOptions, Kind, Table, TableBuilder, TableInfo};
use vfs::{Fs, SimFs};

/// One entry: (user key, seqno, kind, value).
pub type Entry = (Vec<u8>, u64, Kind, Vec<u8>);

/// The reference: (key, Reverse(seqno)) -> (kind, value), i.e. table order.
pub type Model = BTreeMap<(Vec<u8>, Reverse<u64>), (Kind, Vec<u8>)>;

pub fn model_of(entries: &[Entry]) -> Model {
    entries
        .iter()
        .map(|(k, s, kind, v)| ((k.clone(), Reverse(*s)), (*kind, v.clone())))
        .collect()
}

/// Entries of a model, in table order.
pub fn entries_of(model: &Model) -> Vec<Entry> {
    model
        .iter()
        .map(|((k, Reverse(s)), (kind, v))| (k.clone(), *s, *kind, v.clone()))
        .collect()
}

/// The newest version of `key` with seqno <= `snapshot`.
pub fn model_get<'a>(model: &'a Model, key: &[u8], snapshot: u64) -> Option<(u64, Kind, &'a [u8])> {
    let ((k, Reverse(s)), (kind, v)) = model.range((key.to_vec(), Reverse(snapshot))..).next()?;
    (k.as_slice() == key).then_some((*s, *kind, v.as_slice()))
}

/// The first entry at or after `(key, seqno)` in table order.
pub fn model_seek(model: &Model, key: &[u8], seqno: u64) -> Option<Entry> {
    let ((k, Reverse(s)), (kind, v)) = model.range((key.to_vec(), Reverse(seqno))..).next()?;
    Some((k.clone(), *s, *kind, v.clone()))
}

/// Builds a table of `entries` at `/t/table.sst` on a fresh `SimFs`.
pub fn build(entries: &[Entry], opts: BuildOptions) -> (SimFs, TableInfo) {
    let fs = SimFs::new();
    fs.create_dir_all(Path::new("/t")).unwrap();
    let file = fs.create(Path::new("/t/table.sst")).unwrap();
    let mut b = TableBuilder::new(file, opts);
    for (k, s, kind, v) in entries {
        b.add(k, *s, *kind, v).unwrap();
    }
    let info = b.finish().unwrap();
    (fs, info)
}

pub fn open(fs: &SimFs) -> Table {
    Table::open(fs, Path::new("/t/table.sst")).unwrap()
}

/// Every entry of the table, by iteration from the first.
pub fn scan(table: &Table) -> Result<Vec<Entry>, sstable::Error> {
    let mut out = Vec::new();
    let mut it = table.iter();
    it.seek_to_first()?;
    while it.valid() {
        out.push((
            it.key().to_vec(),
            it.seqno(),
            it.kind(),
            it.value().to_vec(),
        ));
        it.next()?;
    }
    Ok(out)
}

/// A deterministic generator for tests that do not use proptest.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        vfs::splitmix64(&mut self.0)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// `n` distinct keys with `versions` versions each, values of `value_bytes`.
pub fn sample_entries(n: usize, versions: u64, value_bytes: usize) -> Vec<Entry> {
    let mut out = Vec::new();
    for i in 0..n {
        let key = format!("key-{:08}", i * 7).into_bytes();
        for v in 0..versions {
            let seqno = 1000 - v * 3 - (i as u64 % 3);
            let kind = if (i as u64 + v) % 5 == 4 {
                Kind::Delete
            } else {
                Kind::Put
            };
            let value = if kind == Kind::Delete {
                Vec::new()
            } else {
                vec![(i + v as usize) as u8; value_bytes]
            };
            out.push((key.clone(), seqno, kind, value));
        }
    }
    out
}
