//! Fuzzes the acceptor log (`node::storage::AcceptorLog`): its record decoder on raw
//! bytes (`decode_record`), and whole logs written through `persist` and `checkpoint`
//! (any slots, ballots and values, impossible ones included), reopened, then extended
//! with raw records appended straight to the underlying wal before a last open.
//!
//! Properties, beyond "no panic, no hang, no huge allocation":
//! - `persist`/`checkpoint` refuse exactly the impossible slots (0 or >= 2^63 for an
//!   accept, >= 2^63 for a checkpoint), and everything they accept reopens to the state
//!   a `DurableState` model reaches by applying the same records;
//! - with raw records appended, open succeeds iff every raw record decodes
//!   (`decode_record`), and an opened state keeps the `DurableState` invariants
//!   (every accepted slot in `compacted_through + 1 .. 2^63`, every accepted ballot
//!   <= `promised`).

#![no_main]

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use concierge::node::storage::{decode_record, AcceptorLog, SLOT_LIMIT};
use concierge::paxos::{Ballot, DurableState, Persist, Value};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use vfs::{Fs, SimFs};
use wal::{Options, SyncMode, Wal};

const DIR: &str = "/data/paxos";
const RECORD_BYTES_MAX: u32 = 1 << 16;

#[derive(Debug, Arbitrary)]
enum Op {
    Promise {
        round: u64,
        node: u32,
    },
    Accept {
        slot: u64,
        round: u64,
        node: u32,
        commands: Vec<Vec<u8>>,
    },
    Checkpoint(u64),
    Reopen,
}

#[derive(Debug, Arbitrary)]
struct Input {
    small_segments: bool,
    ops: Vec<Op>,
    raw: Vec<Vec<u8>>,
}

fn open(fs: &Arc<SimFs>, small: bool) -> Result<(AcceptorLog, DurableState), String> {
    let fs: Arc<dyn Fs> = fs.clone();
    let segment = if small { 512 } else { 1 << 20 };
    AcceptorLog::open(fs, Path::new(DIR), segment, RECORD_BYTES_MAX).map_err(|e| e.to_string())
}

fn check_invariants(state: &DurableState) {
    for (slot, (ballot, _)) in &state.accepted {
        assert!(
            *slot > state.compacted_through && *slot < SLOT_LIMIT,
            "slot {slot}"
        );
        assert!(
            *ballot <= state.promised,
            "accepted {ballot} above promised"
        );
    }
    assert!(state.compacted_through < SLOT_LIMIT);
}

fuzz_target!(|input: Input| {
    for (k, raw) in input.raw.iter().enumerate() {
        let _ = decode_record(k as u64 + 1, raw);
    }
    let fs = Arc::new(SimFs::new());
    let small = input.small_segments;
    let (mut log, state) = open(&fs, small).expect("a new log opens");
    assert_eq!(state, DurableState::default());
    let mut model = DurableState::default();
    for op in input.ops.into_iter().take(64) {
        match op {
            Op::Promise { round, node } => {
                let p = Persist::Promise(Ballot { round, node });
                log.persist(std::slice::from_ref(&p))
                    .expect("a promise persists");
                model.apply(&p);
            }
            Op::Accept {
                slot,
                round,
                node,
                commands,
            } => {
                let commands: Vec<Bytes> = commands
                    .into_iter()
                    .take(4)
                    .map(|mut c| {
                        c.truncate(256);
                        Bytes::from(c)
                    })
                    .collect();
                let value = if commands.is_empty() {
                    Value::Noop
                } else {
                    Value::Batch(commands)
                };
                let p = Persist::Accept {
                    slot,
                    ballot: Ballot { round, node },
                    value,
                };
                let got = log.persist(std::slice::from_ref(&p));
                let possible = slot != 0 && slot < SLOT_LIMIT;
                assert_eq!(got.is_ok(), possible, "accept at slot {slot}: {got:?}");
                if possible {
                    model.apply(&p);
                }
            }
            Op::Checkpoint(through) => {
                let got = log.checkpoint(through);
                assert_eq!(
                    got.is_ok(),
                    through < SLOT_LIMIT,
                    "checkpoint {through}: {got:?}"
                );
                if got.is_ok() {
                    model.compact(through);
                }
            }
            Op::Reopen => {
                drop(log);
                let (l, state) = open(&fs, small).expect("a log we wrote reopens");
                assert_eq!(state, model);
                log = l;
            }
        }
    }
    drop(log);
    let (_, state) = open(&fs, small).expect("a log we wrote reopens");
    assert_eq!(state, model);
    check_invariants(&state);
    if input.raw.is_empty() {
        return;
    }

    // Raw records straight into the wal, behind everything the log wrote.
    let first_raw = {
        let dynfs: Arc<dyn Fs> = fs.clone();
        let opts = Options {
            segment_bytes_max: if small { 512 } else { 1 << 20 },
            record_bytes_max: RECORD_BYTES_MAX,
        };
        let w = Wal::open(dynfs, Path::new(DIR), opts).expect("the wal opens");
        let first = w.next_index();
        for raw in input.raw.iter().take(8) {
            if raw.len() <= RECORD_BYTES_MAX as usize {
                w.append(raw, SyncMode::Durable).expect("append");
            }
        }
        first
    };
    let all_decode = input
        .raw
        .iter()
        .take(8)
        .filter(|r| r.len() <= RECORD_BYTES_MAX as usize)
        .enumerate()
        .all(|(k, r)| decode_record(first_raw + k as u64, r).is_ok());
    match open(&fs, small) {
        Ok((_, state)) => {
            assert!(all_decode, "open took a record decode_record refuses");
            check_invariants(&state);
        }
        Err(e) => assert!(!all_decode, "open failed on records that decode: {e}"),
    }
});
