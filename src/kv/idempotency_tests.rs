//! Idempotency records on a real state machine: fingerprints, the leader's clock, and
//! records written by the previous format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::kv::command::Command;
use crate::kv::test_support::{fresh, one, put};
use crate::kv::KvStateMachine;
use bytes::Bytes;

/// An idempotent command proposed by a node that is not the leader.
fn from_follower(key: &str, stamp_ms: u64, inner: Command) -> Command {
    Command::Idempotent {
        key: key.into(),
        stamp_ms,
        inner: Box::new(inner),
        leader: None,
    }
}

const T0: u64 = 1_700_000_000_000;

#[test]
fn a_proposer_with_a_clock_far_ahead_does_not_retire_records_early() {
    let (_fs, mut sm) = fresh();
    let first = one(&mut sm, from_follower("r1", T0, put("k", "a")));
    assert!(matches!(first.outcome, Outcome::Put { created: true, .. }));
    // A node whose clock runs an hour ahead proposes another idempotent write.
    let skewed = T0 + 6 * IDEMPOTENCY_RETENTION_MS;
    one(&mut sm, from_follower("r2", skewed, put("other", "x")));
    // A second later, the retry of r1 must still get the first answer.
    let retry = one(&mut sm, from_follower("r1", T0 + 1000, put("k", "a")));
    assert_eq!(retry, first, "the record of r1 was retired early");
    let (record, _) = sm.reader().get("k").unwrap();
    assert_eq!(record.unwrap().version, 1, "applied twice");
}

fn leader_clock(round: u64, stamp_ms: u64) -> Command {
    Command::LeaderClock {
        ballot: LeaderBallot { round, node: 1 },
        stamp_ms,
    }
}

fn from_leader(round: u64, key: &str, stamp_ms: u64, inner: Command) -> Command {
    Command::Idempotent {
        key: key.into(),
        stamp_ms,
        inner: Box::new(inner),
        leader: Some(LeaderBallot { round, node: 1 }),
    }
}

/// Ticks the leader's clock every step until `until`; returns the last stamp.
fn run_clock(sm: &mut KvStateMachine, round: u64, from: u64, until: u64) -> u64 {
    let mut now = from;
    while now < until {
        now += IDEMPOTENCY_CLOCK_STEP_MS_MAX;
        let r = one(sm, leader_clock(round, now));
        assert!(matches!(r.outcome, Outcome::ClockAdvanced { .. }), "{r:?}");
    }
    now
}

#[test]
fn a_leader_whose_clock_jumps_ahead_moves_the_clock_one_step_only() {
    let (_fs, mut sm) = fresh();
    one(&mut sm, leader_clock(1, T0));
    let first = one(&mut sm, from_follower("r1", T0, put("k", "a")));
    // The leader's wall clock jumps an hour ahead (NTP step, bad clock).
    let skewed = T0 + 6 * IDEMPOTENCY_RETENTION_MS;
    one(&mut sm, from_leader(1, "r2", skewed, put("other", "x")));
    assert_eq!(sm.meta.idempotency_clock_ms, IDEMPOTENCY_CLOCK_STEP_MS_MAX);
    let retry = one(&mut sm, from_follower("r1", T0, put("k", "a")));
    assert_eq!(retry, first, "the record of r1 was retired early");
}

#[test]
fn a_new_leader_takes_the_clock_over_without_comparing_clocks() {
    let (_fs, mut sm) = fresh();
    one(&mut sm, leader_clock(1, T0));
    one(&mut sm, leader_clock(1, T0 + 5000));
    assert_eq!(sm.meta.idempotency_clock_ms, 5000);
    // A new leader whose clock is an hour behind: its first stamp is its base only.
    let behind = T0 - 6 * IDEMPOTENCY_RETENTION_MS;
    one(&mut sm, leader_clock(2, behind));
    assert_eq!(sm.meta.idempotency_clock_ms, 5000);
    one(&mut sm, leader_clock(2, behind + 3000));
    assert_eq!(sm.meta.idempotency_clock_ms, 8000);
    // The deposed leader's stamps are ignored, and so is a follower's.
    let r = one(&mut sm, leader_clock(1, T0 + 60_000));
    assert!(matches!(r.outcome, Outcome::Rejected { .. }), "{r:?}");
    one(&mut sm, from_follower("f", T0 + 60_000, put("k", "v")));
    one(&mut sm, from_leader(1, "g", T0 + 60_000, put("k", "w")));
    assert_eq!(sm.meta.idempotency_clock_ms, 8000);
    // A leader's clock going backwards does not move it back.
    one(&mut sm, leader_clock(2, behind));
    assert_eq!(sm.meta.idempotency_clock_ms, 8000);
}

#[test]
fn records_go_after_the_retention_on_the_leaders_clock_and_not_before() {
    let (_fs, mut sm) = fresh();
    one(&mut sm, leader_clock(1, T0));
    let first = one(&mut sm, from_follower("r1", T0, put("k", "a")));
    // Just inside the window (retention plus one step of slack) it still replays.
    let now = run_clock(&mut sm, 1, T0, T0 + IDEMPOTENCY_RETENTION_MS);
    assert_eq!(one(&mut sm, from_follower("r1", now, put("k", "a"))), first);
    // Past it, a leader's clock retires the record.
    let now = run_clock(
        &mut sm,
        1,
        now,
        T0 + IDEMPOTENCY_RETENTION_MS + 2 * IDEMPOTENCY_CLOCK_STEP_MS_MAX,
    );
    let r = one(&mut sm, leader_clock(1, now + 1));
    assert_eq!(
        r.outcome,
        Outcome::ClockAdvanced { retired: 0 },
        "retired by the ticks before"
    );
    let again = one(&mut sm, from_follower("r1", now, put("k", "b")));
    assert!(
        matches!(again.outcome, Outcome::Put { created: false, .. }),
        "{again:?}"
    );
}

#[test]
fn the_key_reused_for_another_request_is_refused_and_changes_nothing() {
    let (_fs, mut sm) = fresh();
    let first = one(&mut sm, from_follower("r1", T0, put("k", "a")));
    let refused = [
        put("k", "b"),
        put("j", "a"),
        Command::Delete {
            key: "k".into(),
            expect_version: None,
        },
        Command::Put {
            key: "k".into(),
            value: Bytes::from_static(b"a"),
            expect_version: Some(1),
            session: None,
        },
    ];
    for c in refused {
        let r = one(&mut sm, from_follower("r1", T0, c.clone()));
        assert_eq!(r.outcome, Outcome::IdempotencyKeyReused, "{c:?}");
        assert_eq!(r.revision, first.revision, "{c:?}");
    }
    assert_eq!(sm.reader().get("k").unwrap().0.unwrap().version, 1);
    assert_eq!(sm.reader().get("j").unwrap().0, None);
    assert_eq!(one(&mut sm, from_follower("r1", T0, put("k", "a"))), first);
}

#[test]
fn a_record_of_the_first_format_replays_for_a_fitting_command_only() {
    use crate::kv::keyspace::{self, IdempotencyRecord};
    let (_fs, mut sm) = fresh();
    let first = one(&mut sm, put("k", "a"));
    // As the previous release wrote it: format byte 1, no fingerprint.
    let old = IdempotencyRecord {
        stamp_ms: 0,
        reply: first.clone(),
    };
    let mut batch = storage::WriteBatch::default();
    batch.put(&sm.area.idempotency_key("old"), &keyspace::encode(&old));
    batch.put(&sm.area.idempotency_time_key(0, "old"), b"");
    sm.db
        .write(&batch, storage::WriteOptions { sync: false })
        .unwrap();
    assert_eq!(
        one(&mut sm, from_follower("old", T0, put("k", "zz"))),
        first
    );
    let r = one(
        &mut sm,
        from_follower(
            "old",
            T0,
            Command::Delete {
                key: "k".into(),
                expect_version: None,
            },
        ),
    );
    assert_eq!(r.outcome, Outcome::IdempotencyKeyReused);
    assert_eq!(sm.reader().get("k").unwrap().0.unwrap().version, 1);
}

#[test]
fn records_decode_in_both_formats_and_garbage_is_corrupt() {
    let reply = Reply {
        revision: 3,
        outcome: Outcome::KeyNotFound,
    };
    let f = crate::kv::fingerprint::Fingerprint(u128::MAX - 7);
    let bytes = encode_record(9, f, reply.clone());
    assert_eq!(
        decode_record(b"Aix", &bytes).unwrap(),
        Record {
            stamp_ms: 9,
            fingerprint: Some(f),
            reply: reply.clone(),
        }
    );
    let old = crate::kv::keyspace::encode(&crate::kv::keyspace::IdempotencyRecord {
        stamp_ms: 4,
        reply: reply.clone(),
    });
    assert_eq!(decode_record(b"Aix", &old).unwrap().fingerprint, None);
    assert!(decode_record(b"Aix", &[]).is_err());
    assert!(decode_record(b"Aix", &[9, 1]).is_err());
    assert!(decode_record(b"Aix", &bytes[..bytes.len() - 1]).is_err());
}
