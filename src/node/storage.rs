//! Durable acceptor state: the Paxos core's `Persist` records in a `wal` log in
//! `data_dir/paxos/`, replayed into a `DurableState` at start-up.
//!
//! Record grammar (each is one wal record; the wal adds length and checksum):
//! ```text
//! record := version:u8 (1) rmp-serde(Record)
//! Record := Persist(Promise(ballot) | Accept{slot, ballot, value})
//!         | Checkpoint{compacted_through, promised}
//! ```
//! A record whose values no run can produce (an `Accept` at slot 0 or >= 2^63, a
//! `Checkpoint` at or above 2^63) is corrupt, like one that does not decode: open fails.
//! Replay applies records in log order: a promise raises `promised` (max), an accept
//! overwrites its slot (the last record per slot wins) and raises `promised`, a checkpoint
//! compacts everything at or below `compacted_through`.
//!
//! Truncation scheme. Records are not in slot order (a slot can be re-accepted in a higher
//! ballot long after later slots), so "drop the prefix below slot S" is not a log
//! position. Instead, `checkpoint(S)` appends one `Checkpoint{S, promised}` record, makes
//! it durable, and only then drops the whole segments before the oldest record still
//! needed: the latest record of every slot > S (or the checkpoint, if older). Replaying
//! from there meets every needed record in log order; records of slots <= S it meets
//! before the checkpoint are compacted by it, and the promise of every dropped record
//! is in it. A crash part-way leaves a suffix of the log that starts no later, which
//! replays to the same state. To keep memory small, this module remembers for each
//! accepted slot only the wal index of its latest record, not the value.
//! Cost: a checkpoint writes one record and copies nothing (it used to rewrite the
//! retained tail, 8 MB and an 80 ms fsync every 10,000 slots under load); the log holds
//! the slots above the compaction point, whatever it holds beside them since the
//! oldest of them was written, and up to one segment more.
//!
//! Invariant: `persist` returns only after one fdatasync covering all its records
//! (one group commit per call).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vfs::Fs;
use wal::{SyncMode, Wal};

use crate::paxos::{Ballot, DurableState, Persist, Slot};

const RECORD_VERSION: u8 = 1;

#[derive(Debug, Serialize, Deserialize)]
enum Record {
    Persist(Persist),
    Checkpoint {
        compacted_through: Slot,
        promised: Ballot,
    },
}

/// A failure of the acceptor log. After any error the node must stop: the acceptor can no
/// longer vouch for what it promised.
#[derive(Debug)]
pub enum StorageError {
    Wal {
        context: &'static str,
        source: wal::Error,
    },
    Corrupt {
        index: u64,
        reason: String,
    },
    Encode {
        reason: String,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Wal { context, source } => write!(f, "acceptor log {context}: {source}"),
            StorageError::Corrupt { index, reason } => {
                write!(f, "acceptor log record {index} is invalid: {reason}")
            }
            StorageError::Encode { reason } => write!(f, "cannot encode acceptor record: {reason}"),
        }
    }
}

impl std::error::Error for StorageError {}

fn wal_err(context: &'static str) -> impl FnOnce(wal::Error) -> StorageError {
    move |source| StorageError::Wal { context, source }
}

fn encode(record: &Record) -> Result<Vec<u8>, StorageError> {
    // Never write what `decode` would refuse: the log would not open again.
    check_values(0, record).map_err(|e| StorageError::Encode {
        reason: e.to_string(),
    })?;
    encode_unchecked(record)
}

/// The bytes of `record`, whatever its values (tests write impossible ones with it).
fn encode_unchecked(record: &Record) -> Result<Vec<u8>, StorageError> {
    let mut buf = vec![RECORD_VERSION];
    rmp_serde::encode::write(&mut buf, record).map_err(|e| StorageError::Encode {
        reason: e.to_string(),
    })?;
    Ok(buf)
}

/// Slots are below 2^63 (a run cannot reach more), so a slot at or above this read from
/// disk is damage, not data; `Slot` arithmetic (`through + 1`) relies on it too.
pub const SLOT_LIMIT: Slot = 1 << 63;

/// Decodes one acceptor log record read from wal index `index`: the version byte, the
/// msgpack body, then the values no run can produce (an `Accept` at slot 0 or at or above
/// [`SLOT_LIMIT`], a `Checkpoint` at or above it) are [`StorageError::Corrupt`].
#[doc(hidden)] // pub for the fuzz target in fuzz/ (acceptor_log)
pub fn decode_record(index: u64, bytes: &[u8]) -> Result<(), StorageError> {
    decode(index, bytes).map(|_| ())
}

fn decode(index: u64, bytes: &[u8]) -> Result<Record, StorageError> {
    match bytes.split_first() {
        Some((&RECORD_VERSION, body)) => {
            let record: Record =
                rmp_serde::from_slice(body).map_err(|e| StorageError::Corrupt {
                    index,
                    reason: e.to_string(),
                })?;
            check_values(index, &record)?;
            Ok(record)
        }
        Some((v, _)) => Err(StorageError::Corrupt {
            index,
            reason: format!("unknown record version {v}"),
        }),
        None => Err(StorageError::Corrupt {
            index,
            reason: "empty record".into(),
        }),
    }
}

fn check_values(index: u64, record: &Record) -> Result<(), StorageError> {
    let corrupt = |reason: String| Err(StorageError::Corrupt { index, reason });
    match record {
        Record::Persist(Persist::Accept { slot, .. }) if *slot == 0 || *slot >= SLOT_LIMIT => {
            corrupt(format!("accept at slot {slot}, outside 1..2^63"))
        }
        Record::Checkpoint {
            compacted_through, ..
        } if *compacted_through >= SLOT_LIMIT => corrupt(format!(
            "checkpoint through slot {compacted_through}, not below 2^63"
        )),
        _ => Ok(()),
    }
}

/// The acceptor's log and a light index of it (wal position of each slot's latest record).
pub struct AcceptorLog {
    wal: Wal,
    promised: Ballot,
    compacted_through: Slot,
    /// Invariant: every key is > `compacted_through`; the value is the wal index of the
    /// latest `Accept` record of that slot.
    latest: BTreeMap<Slot, u64>,
}

impl fmt::Debug for AcceptorLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceptorLog")
            .field("promised", &self.promised)
            .field("compacted_through", &self.compacted_through)
            .field("slots", &self.latest.len())
            .finish()
    }
}

impl AcceptorLog {
    /// Opens (or creates) the log in `dir` and replays it.
    pub fn open(
        fs: Arc<dyn Fs>,
        dir: &Path,
        segment_bytes_max: u64,
        record_bytes_max: u32,
    ) -> Result<(AcceptorLog, DurableState), StorageError> {
        fs.create_dir_all(dir).map_err(|e| StorageError::Wal {
            context: "create directory",
            source: wal::Error::Io {
                context: dir.display().to_string(),
                source: e,
            },
        })?;
        let opts = wal::Options {
            segment_bytes_max,
            record_bytes_max,
            ..wal::Options::default()
        };
        let wal = Wal::open(fs, dir, opts).map_err(wal_err("open"))?;
        let mut state = DurableState::default();
        let mut latest = BTreeMap::new();
        let iter = wal
            .iter_from(wal.first_index())
            .map_err(wal_err("replay"))?;
        for item in iter {
            let (index, bytes) = item.map_err(wal_err("replay"))?;
            match decode(index, &bytes)? {
                Record::Persist(p) => {
                    if let Persist::Accept { slot, .. } = &p {
                        if *slot > state.compacted_through {
                            latest.insert(*slot, index);
                        }
                    }
                    state.apply(&p);
                }
                Record::Checkpoint {
                    compacted_through,
                    promised,
                } => {
                    state.promised = state.promised.max(promised);
                    state.compact(compacted_through);
                    latest = latest.split_off(&(compacted_through + 1));
                }
            }
        }
        let log = AcceptorLog {
            wal,
            promised: state.promised,
            compacted_through: state.compacted_through,
            latest,
        };
        debug_assert_eq!(log.latest.len(), state.accepted.len());
        Ok((log, state))
    }

    /// The latency of every fdatasync of this log (`/metrics`).
    pub fn sync_latency_histogram(&self) -> Arc<telemetry::Histogram> {
        self.wal.sync_latency_histogram()
    }

    /// Makes `records` durable with one group commit.
    pub fn persist(&mut self, records: &[Persist]) -> Result<(), StorageError> {
        if records.is_empty() {
            return Ok(());
        }
        let encoded = records
            .iter()
            .map(|p| encode(&Record::Persist(p.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let range = self
            .wal
            .append_many(encoded.iter().map(|r| r.as_slice()), SyncMode::Durable)
            .map_err(wal_err("append"))?;
        assert_eq!(
            range.end - range.start,
            records.len() as u64,
            "wal returned a range that does not match the records appended"
        );
        for (index, p) in range.zip(records) {
            match p {
                Persist::Promise(b) => self.promised = self.promised.max(*b),
                Persist::Accept { slot, ballot, .. } => {
                    self.promised = self.promised.max(*ballot);
                    if *slot > self.compacted_through {
                        self.latest.insert(*slot, index);
                    }
                }
            }
        }
        Ok(())
    }

    /// Forgets every slot <= `through` and drops the log prefix no longer needed (see the
    /// module doc): one durable `Checkpoint` record, then the whole segments before the
    /// oldest record still needed. No-op if `through` is not above the current
    /// compaction point.
    pub fn checkpoint(&mut self, through: Slot) -> Result<(), StorageError> {
        if through <= self.compacted_through {
            return Ok(());
        }
        let head = encode(&Record::Checkpoint {
            compacted_through: through,
            promised: self.promised,
        })?;
        // Durable before any segment goes: the record holds the promise of the records
        // the truncation drops.
        let at = self
            .wal
            .append_many([head.as_slice()], SyncMode::Durable)
            .map_err(wal_err("checkpoint"))?
            .start;
        self.latest = self.latest.split_off(&(through + 1));
        self.compacted_through = through;
        self.wal
            .truncate_prefix(self.replay_start(at))
            .map_err(wal_err("truncate"))?;
        Ok(())
    }

    /// Where a replay may start once the checkpoint at wal index `at` is durable: at
    /// the oldest latest record of a slot above the compaction point, or at the
    /// checkpoint when it is older. Replay from there meets every slot's latest record,
    /// in log order, and the checkpoint, which compacts the older slots replayed before
    /// it and carries the promise of every record dropped.
    fn replay_start(&self, at: u64) -> u64 {
        self.latest
            .values()
            .copied()
            .min()
            .map_or(at, |i| i.min(at))
    }

    /// The log's first retained index (for tests and status).
    pub fn first_index(&self) -> u64 {
        self.wal.first_index()
    }

    /// The slots with an accepted value on record.
    pub fn accepted_slots(&self) -> usize {
        self.latest.len()
    }

    /// The compaction point on record.
    pub fn compacted_through(&self) -> Slot {
        self.compacted_through
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::paxos::Value;
    use bytes::Bytes;
    use std::path::PathBuf;
    use vfs::SimFs;

    fn b(round: u64, node: u32) -> Ballot {
        Ballot { round, node }
    }

    fn accept(slot: Slot, ballot: Ballot, tag: &str) -> Persist {
        Persist::Accept {
            slot,
            ballot,
            value: Value::Batch(vec![Bytes::from(format!("{tag}-{slot}"))]),
        }
    }

    fn open(fs: &Arc<SimFs>, seg: u64) -> (AcceptorLog, DurableState) {
        let fs: Arc<dyn Fs> = fs.clone();
        AcceptorLog::open(fs, &PathBuf::from("/data/paxos"), seg, 1 << 20).unwrap()
    }

    #[test]
    fn reload_gives_the_same_durable_state() {
        let fs = Arc::new(SimFs::new());
        let mut expect = DurableState::default();
        {
            let (mut log, state) = open(&fs, 1 << 20);
            assert_eq!(state, DurableState::default());
            let batches = vec![
                vec![
                    Persist::Promise(b(1, 1)),
                    accept(1, b(1, 1), "a"),
                    accept(2, b(1, 1), "a"),
                ],
                vec![Persist::Promise(b(3, 2))],
                vec![
                    accept(2, b(3, 2), "b"),
                    accept(5, b(3, 2), "b"),
                    Persist::Promise(b(2, 1)),
                ],
                vec![accept(1, b(3, 2), "c")],
            ];
            for batch in batches {
                log.persist(&batch).unwrap();
                for p in &batch {
                    expect.apply(p);
                }
            }
        }
        let (_log, state) = open(&fs, 1 << 20);
        assert_eq!(state, expect);
        assert_eq!(state.promised, b(3, 2)); // max, not last
        assert_eq!(
            state.accepted.get(&2),
            Some(&(b(3, 2), Value::Batch(vec![Bytes::from("b-2")])))
        );
    }

    #[test]
    fn checkpoint_and_truncate_keep_what_is_needed() {
        let fs = Arc::new(SimFs::new());
        let mut expect = DurableState::default();
        {
            // Small segments so truncation really drops files.
            let (mut log, _) = open(&fs, 4096);
            for round in 1..=3u64 {
                for slot in 1..=200u64 {
                    let batch = vec![accept(slot, b(round, 1), &format!("r{round}"))];
                    log.persist(&batch).unwrap();
                    expect.apply(&batch[0]);
                }
            }
            // Slot 150 re-accepted out of order, after later slots.
            let late = vec![accept(150, b(4, 2), "late"), Persist::Promise(b(9, 3))];
            log.persist(&late).unwrap();
            for p in &late {
                expect.apply(p);
            }
            let first_before = log.first_index();
            log.checkpoint(120).unwrap();
            expect.compact(120);
            assert!(log.first_index() > first_before, "the prefix was dropped");
            assert_eq!(log.accepted_slots(), 80);
            // Appends after the checkpoint still replay on top of it.
            let after = vec![accept(201, b(9, 3), "after")];
            log.persist(&after).unwrap();
            expect.apply(&after[0]);
        }
        let (log, state) = open(&fs, 4096);
        assert_eq!(state, expect);
        assert_eq!(state.compacted_through, 120);
        assert_eq!(state.promised, b(9, 3));
        assert_eq!(
            state.accepted.get(&150),
            Some(&(b(4, 2), Value::Batch(vec![Bytes::from("late-150")])))
        );
        assert!(!state.accepted.contains_key(&120));
        assert_eq!(log.compacted_through(), 120);
    }

    #[test]
    fn a_checkpoint_writes_one_record_and_copies_nothing() {
        let fs = Arc::new(SimFs::new());
        let (mut log, _) = open(&fs, 4096);
        for slot in 1..=300u64 {
            log.persist(&[accept(slot, b(1, 1), "a")]).unwrap();
        }
        let before = log.wal.stats().appends;
        log.checkpoint(250).unwrap();
        assert_eq!(log.wal.stats().appends - before, 1);
        assert_eq!(log.accepted_slots(), 50);
    }

    #[test]
    fn steady_checkpoints_keep_the_log_to_its_tail_and_survive_a_crash() {
        let fs = Arc::new(SimFs::new());
        let mut expect = DurableState::default();
        let tail = 200u64;
        {
            let (mut log, _) = open(&fs, 4096);
            for slot in 1..=3000u64 {
                let mut batch = vec![accept(slot, b(1, 1), "a")];
                // Now and then an older slot is accepted again in a higher ballot.
                if slot % 97 == 0 {
                    batch.push(accept(slot - 50, b(2, 2), "again"));
                }
                log.persist(&batch).unwrap();
                for p in &batch {
                    expect.apply(p);
                }
                if slot % 100 == 0 && slot > tail {
                    log.checkpoint(slot - tail).unwrap();
                    expect.compact(slot - tail);
                }
            }
            // The log holds about the tail's records and a segment more: 4096-byte
            // segments hold some 100 of these records.
            let held = log.wal.next_index() - log.first_index();
            assert!(held < tail + 100 + 200, "{held} records held");
        }
        fs.crash(vfs::CrashMode::DropUnsynced);
        let (log, state) = open(&fs, 4096);
        assert_eq!(state, expect);
        assert_eq!(log.compacted_through(), 3000 - tail);
    }

    /// Appends raw acceptor records (bypassing `AcceptorLog`) to a fresh log.
    fn write_records(fs: &Arc<SimFs>, records: &[Record]) {
        let dynfs: Arc<dyn Fs> = fs.clone();
        let dir = PathBuf::from("/data/paxos");
        dynfs.create_dir_all(&dir).unwrap();
        let opts = wal::Options {
            segment_bytes_max: 1 << 20,
            record_bytes_max: 1 << 20,
            ..wal::Options::default()
        };
        let w = Wal::open(dynfs, &dir, opts).unwrap();
        for r in records {
            w.append(&encode_unchecked(r).unwrap(), SyncMode::Durable)
                .unwrap();
        }
    }

    #[test]
    fn impossible_slots_on_disk_are_corrupt() {
        let bad = [
            Record::Persist(accept(1 << 63, b(1, 1), "x")),
            Record::Persist(accept(u64::MAX, b(1, 1), "x")),
            Record::Persist(accept(0, b(1, 1), "x")),
            Record::Checkpoint {
                compacted_through: 1 << 63,
                promised: b(1, 1),
            },
            Record::Checkpoint {
                compacted_through: u64::MAX,
                promised: b(1, 1),
            },
        ];
        for record in bad {
            let fs = Arc::new(SimFs::new());
            let what = format!("{record:?}");
            write_records(&fs, &[Record::Persist(accept(1, b(1, 1), "ok")), record]);
            let dynfs: Arc<dyn Fs> = fs.clone();
            let got = AcceptorLog::open(dynfs, &PathBuf::from("/data/paxos"), 1 << 20, 1 << 20);
            match got {
                Err(StorageError::Corrupt { index: 2, reason }) => {
                    assert!(reason.contains("slot"), "{what}: {reason}")
                }
                other => panic!("{what}: expected Corrupt at index 2, got {other:?}"),
            }
        }
        // The largest possible slot is fine.
        let fs = Arc::new(SimFs::new());
        write_records(
            &fs,
            &[Record::Persist(accept((1 << 63) - 1, b(1, 1), "top"))],
        );
        let (_, state) = open(&fs, 1 << 20);
        assert!(state.accepted.contains_key(&((1 << 63) - 1)));
    }

    #[test]
    fn impossible_slots_are_never_written() {
        let fs = Arc::new(SimFs::new());
        let (mut log, _) = open(&fs, 1 << 20);
        log.persist(&[accept(1, b(1, 1), "ok")]).unwrap();
        for slot in [0, 1 << 63, u64::MAX] {
            let got = log.persist(&[accept(slot, b(1, 1), "x")]);
            assert!(matches!(got, Err(StorageError::Encode { .. })), "{got:?}");
        }
        assert!(matches!(
            log.checkpoint(1 << 63),
            Err(StorageError::Encode { .. })
        ));
        drop(log);
        let (_, state) = open(&fs, 1 << 20);
        assert_eq!(state.accepted.len(), 1);
    }

    #[test]
    fn garbage_record_is_an_error_not_a_panic() {
        let fs = Arc::new(SimFs::new());
        {
            let dynfs: Arc<dyn Fs> = fs.clone();
            let dir = PathBuf::from("/data/paxos");
            dynfs.create_dir_all(&dir).unwrap();
            let w = Wal::open(
                dynfs,
                &dir,
                wal::Options {
                    segment_bytes_max: 1 << 20,
                    record_bytes_max: 1 << 20,
                    ..wal::Options::default()
                },
            )
            .unwrap();
            w.append(&[RECORD_VERSION, 0xc1], SyncMode::Durable)
                .unwrap();
        }
        let dynfs: Arc<dyn Fs> = fs.clone();
        let got = AcceptorLog::open(dynfs, &PathBuf::from("/data/paxos"), 1 << 20, 1 << 20);
        assert!(matches!(got, Err(StorageError::Corrupt { index: 1, .. })));
    }
}
