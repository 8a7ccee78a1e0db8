//! The workloads: what each request does, and on which keys.
//!
//! Keys are numbered `0..keys` and named `{prefix}{number}`, the number zero-padded so
//! that every key is exactly `--key-bytes` long. A workload draws each request's key
//! (or, for `txn`, its distinct keys) uniformly from a seeded generator.
//! Invariant: a `txn` batch never holds one key twice (the API refuses that); a
//! [`Workload`] is only ever made of a request workload (`keepalive` and `watch` run in
//! `sessions` and `fanout`).

use clap::ValueEnum;

/// The workloads `concierge bench` runs.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// Write a random key.
    Put,
    /// Read a random key (written before the run).
    Get,
    /// Reads and writes, a --read-ratio share of them reads.
    Mixed,
    /// Compare-and-set (PUT ?version=N) on the --keys keys: with few keys, contention.
    Cas,
    /// Transactions of --batch puts on distinct random keys.
    Txn,
    /// Keep --sessions sessions alive (created before, closed after the run).
    Keepalive,
    /// Fan-out: --watchers watches of one key (or --watch-prefix) and writers to it.
    Watch,
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Put => "put",
            WorkloadKind::Get => "get",
            WorkloadKind::Mixed => "mixed",
            WorkloadKind::Cas => "cas",
            WorkloadKind::Txn => "txn",
            WorkloadKind::Keepalive => "keepalive",
            WorkloadKind::Watch => "watch",
        }
    }

    /// Whether each request is one [`Op`] drawn by [`Workload::next`] (the others,
    /// keepalive and watch, run phases of their own).
    pub fn is_request(self) -> bool {
        !matches!(self, WorkloadKind::Keepalive | WorkloadKind::Watch)
    }

    /// Whether the keys must exist before the run starts.
    pub fn reads_existing_keys(self) -> bool {
        matches!(
            self,
            WorkloadKind::Get | WorkloadKind::Mixed | WorkloadKind::Cas
        )
    }
}

/// One request, before it is put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(u64),
    Get(u64),
    /// Write the key only if its version is still the last one this client saw.
    Cas(u64),
    /// Put each key, all in one transaction.
    Txn(Vec<u64>),
}

/// A workload with its parameters, checked.
#[derive(Debug, Clone)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub keys: u64,
    pub read_ratio: f64,
    pub batch: usize,
}

/// The most operations a transaction may hold (API.md).
pub const TXN_OPS_MAX: usize = 128;

impl Workload {
    pub fn new(
        kind: WorkloadKind,
        keys: u64,
        read_ratio: f64,
        batch: usize,
    ) -> Result<Workload, String> {
        if !kind.is_request() {
            return Err(format!("{} is not a request workload", kind.name()));
        }
        if keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&read_ratio) {
            return Err(format!("--read-ratio {read_ratio}: not within 0..=1"));
        }
        if kind == WorkloadKind::Txn {
            if !(1..=TXN_OPS_MAX).contains(&batch) {
                return Err(format!("--batch {batch}: not within 1..={TXN_OPS_MAX}"));
            }
            if (batch as u64) > keys {
                return Err(format!("--batch {batch} needs at least as many --keys"));
            }
        }
        Ok(Workload {
            kind,
            keys,
            read_ratio,
            batch,
        })
    }

    /// The next request.
    pub fn next(&self, rng: &mut fastrand::Rng) -> Op {
        let key = rng.u64(0..self.keys);
        match self.kind {
            WorkloadKind::Put => Op::Put(key),
            WorkloadKind::Get => Op::Get(key),
            WorkloadKind::Mixed if rng.f64() < self.read_ratio => Op::Get(key),
            WorkloadKind::Mixed => Op::Put(key),
            WorkloadKind::Cas => Op::Cas(key),
            WorkloadKind::Txn => {
                let mut keys = Vec::with_capacity(self.batch);
                keys.push(key);
                while keys.len() < self.batch {
                    let k = rng.u64(0..self.keys);
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
                Op::Txn(keys)
            }
            WorkloadKind::Keepalive | WorkloadKind::Watch => {
                unreachable!("Workload::new refuses {:?}", self.kind)
            }
        }
    }
}

/// Key names: `{prefix}{number}`, all `key_bytes` long.
#[derive(Debug, Clone)]
pub struct KeyNames {
    prefix: String,
    digits: usize,
}

impl KeyNames {
    pub fn new(prefix: &str, key_bytes: usize, keys: u64) -> Result<KeyNames, String> {
        let needed = keys.saturating_sub(1).max(1).ilog10() as usize + 1;
        let digits = key_bytes.saturating_sub(prefix.len());
        if digits < needed {
            return Err(format!(
                "--key-bytes {key_bytes}: too short for the prefix {prefix:?} and {needed} digits"
            ));
        }
        if key_bytes > 1024 {
            return Err(format!(
                "--key-bytes {key_bytes}: keys are at most 1024 bytes"
            ));
        }
        Ok(KeyNames {
            prefix: prefix.to_string(),
            digits,
        })
    }

    pub fn name(&self, key: u64) -> String {
        format!("{}{key:0width$}", self.prefix, width = self.digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_key_bytes_long() {
        let names = KeyNames::new("bench/", 16, 1000).unwrap();
        assert_eq!(names.name(7), "bench/0000000007");
        assert_eq!(names.name(999).len(), 16);
        assert!(KeyNames::new("bench/", 8, 1000).is_err());
        assert!(KeyNames::new("b/", 5, 1000).is_ok());
    }

    #[test]
    fn a_txn_batch_has_distinct_keys() {
        let w = Workload::new(WorkloadKind::Txn, 8, 0.0, 8).unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..100 {
            let Op::Txn(mut keys) = w.next(&mut rng) else {
                panic!("not a txn")
            };
            keys.sort_unstable();
            assert_eq!(keys, (0..8).collect::<Vec<u64>>());
        }
        assert!(Workload::new(WorkloadKind::Txn, 4, 0.0, 8).is_err());
    }

    #[test]
    fn mixed_follows_the_read_ratio() {
        let w = Workload::new(WorkloadKind::Mixed, 10, 0.75, 1).unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        let reads = (0..10_000)
            .filter(|_| matches!(w.next(&mut rng), Op::Get(_)))
            .count();
        assert!((7_000..8_000).contains(&reads), "{reads}");
    }
}
