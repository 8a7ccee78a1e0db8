//! The checker on known histories: linearizable ones must pass and non-linearizable
//! ones must fail, whatever the outcome of unknown operations.

use crate::checker::{check, Budget, Verdict};
use crate::history::{Call, Op, Outcome};
use std::time::{Duration, Instant};

fn budget() -> Budget {
    Budget {
        steps_max: 1_000_000,
        deadline: Instant::now() + Duration::from_secs(30),
    }
}

/// An op on key "k" over [invoke, complete] (None: unknown).
fn op(id: u64, invoke: u64, complete: Option<u64>, call: Call, outcome: Outcome) -> Op {
    Op {
        id,
        client: id as u32,
        node: 0,
        key: "k".into(),
        call,
        invoke_us: invoke,
        complete_us: complete,
        outcome,
        attempts: 1,
    }
}

fn put(v: &str) -> Call {
    Call::Put {
        value: v.into(),
        if_version: None,
    }
}

fn cas(v: &str, n: u64) -> Call {
    Call::Put {
        value: v.into(),
        if_version: Some(n),
    }
}

fn written(version: u64) -> Outcome {
    Outcome::Written {
        version,
        mod_revision: 0,
    }
}

fn found(v: &str, version: u64) -> Outcome {
    Outcome::Found {
        value: v.into(),
        version,
        mod_revision: 0,
    }
}

fn unknown() -> Outcome {
    Outcome::Unknown {
        reason: "timeout".into(),
    }
}

fn verdict(ops: &[Op]) -> Verdict {
    let reports = check(ops, budget());
    assert_eq!(reports.len(), 1);
    reports.into_iter().next().map(|r| r.verdict).unwrap()
}

fn assert_ok(ops: &[Op]) {
    let v = verdict(ops);
    assert_eq!(v, Verdict::Linearizable, "expected linearizable: {v:?}");
}

fn assert_violation(ops: &[Op]) -> String {
    match verdict(ops) {
        Verdict::Violation(text) => text,
        v => panic!("expected a violation, got {v:?}"),
    }
}

#[test]
fn sequential_history_of_every_kind_passes() {
    assert_ok(&[
        op(1, 0, Some(1), Call::Get, Outcome::NotFound),
        op(2, 2, Some(3), put("a"), written(1)),
        op(3, 4, Some(5), Call::Get, found("a", 1)),
        op(4, 6, Some(7), cas("b", 1), written(2)),
        op(
            5,
            8,
            Some(9),
            cas("c", 1),
            Outcome::Mismatch { current_version: 2 },
        ),
        op(
            6,
            10,
            Some(11),
            Call::Delete {
                if_version: Some(1),
            },
            Outcome::Mismatch { current_version: 2 },
        ),
        op(
            7,
            12,
            Some(13),
            Call::Delete {
                if_version: Some(2),
            },
            Outcome::Deleted { revision: 0 },
        ),
        op(
            8,
            14,
            Some(15),
            Call::Delete { if_version: None },
            Outcome::NotFound,
        ),
        op(9, 16, Some(17), cas("d", 0), written(1)),
        op(10, 18, Some(19), Call::Get, found("d", 1)),
    ]);
}

#[test]
fn stale_read_after_acknowledged_write_fails() {
    let text = assert_violation(&[
        op(1, 0, Some(1), put("a"), written(1)),
        op(2, 2, Some(3), put("b"), written(2)),
        op(3, 4, Some(5), Call::Get, found("a", 1)),
    ]);
    assert!(text.contains("key k: not linearizable"), "{text}");
    assert!(
        text.contains("op      3"),
        "the stuck read is shown: {text}"
    );
}

#[test]
fn lost_acknowledged_write_fails() {
    assert_violation(&[
        op(1, 0, Some(1), put("a"), written(1)),
        op(2, 2, Some(3), Call::Get, Outcome::NotFound),
    ]);
}

#[test]
fn lost_acknowledged_write_seen_through_versions_fails() {
    // The second put's version says the first one never happened.
    assert_violation(&[
        op(1, 0, Some(1), put("a"), written(1)),
        op(2, 2, Some(3), put("b"), written(1)),
    ]);
}

#[test]
fn op_answered_503_that_took_effect_fails() {
    let text = assert_violation(&[
        op(1, 0, Some(1), put("a"), Outcome::NotApplied { status: 503 }),
        op(2, 2, Some(3), Call::Get, found("a", 1)),
    ]);
    assert!(text.contains("answered 503"), "{text}");
}

#[test]
fn op_answered_503_that_did_not_take_effect_passes() {
    assert_ok(&[
        op(1, 0, Some(1), put("a"), Outcome::NotApplied { status: 503 }),
        op(2, 2, Some(3), Call::Get, Outcome::NotFound),
    ]);
}

#[test]
fn concurrent_ops_linearizable_in_some_order_pass() {
    // a is invoked first but b is linearized first; the read sits between them.
    assert_ok(&[
        op(1, 0, Some(10), put("a"), written(2)),
        op(2, 1, Some(9), put("b"), written(1)),
        op(3, 5, Some(6), Call::Get, found("b", 1)),
        op(4, 11, Some(12), Call::Get, found("a", 2)),
    ]);
}

#[test]
fn concurrent_ops_with_no_valid_order_fail() {
    // Both unconditional puts claim to have created the key.
    assert_violation(&[
        op(1, 0, Some(10), put("a"), written(1)),
        op(2, 1, Some(9), put("b"), written(1)),
    ]);
}

#[test]
fn concurrent_compare_and_set_both_succeeding_fails() {
    assert_violation(&[
        op(1, 0, Some(1), put("a"), written(1)),
        op(2, 2, Some(10), cas("b", 1), written(2)),
        op(3, 3, Some(9), cas("c", 1), written(2)),
    ]);
}

#[test]
fn unknown_op_taking_effect_passes() {
    assert_ok(&[
        op(1, 0, None, put("a"), unknown()),
        op(2, 5, Some(6), Call::Get, found("a", 1)),
    ]);
}

#[test]
fn unknown_op_not_taking_effect_passes() {
    assert_ok(&[
        op(1, 0, None, put("a"), unknown()),
        op(2, 5, Some(6), Call::Get, Outcome::NotFound),
        op(3, 7, Some(8), put("b"), written(1)),
    ]);
}

#[test]
fn unknown_op_taking_effect_late_passes() {
    assert_ok(&[
        op(1, 0, Some(1), put("a"), written(1)),
        op(2, 2, None, put("b"), unknown()),
        op(3, 3, Some(4), Call::Get, found("a", 1)),
        op(4, 50, Some(60), Call::Get, found("b", 2)),
        op(5, 61, Some(62), put("c"), written(3)),
    ]);
}

#[test]
fn unknown_op_cannot_take_effect_before_its_invocation() {
    assert_violation(&[
        op(1, 0, Some(1), Call::Get, found("b", 1)),
        op(2, 2, None, put("b"), unknown()),
    ]);
}

#[test]
fn version_gap_needs_an_unknown_write() {
    let with_gap = [
        op(1, 0, Some(1), put("a"), written(1)),
        op(2, 2, Some(3), put("c"), written(3)),
    ];
    assert_violation(&with_gap);
    let mut filled = with_gap.to_vec();
    filled.push(op(3, 0, None, put("x"), unknown()));
    assert_ok(&filled);
}

#[test]
fn unknown_delete_either_way_passes() {
    assert_ok(&[
        op(1, 0, Some(1), put("a"), written(1)),
        op(2, 2, None, Call::Delete { if_version: None }, unknown()),
        op(3, 3, Some(4), Call::Get, found("a", 1)),
        op(4, 5, Some(6), Call::Get, Outcome::NotFound),
    ]);
}

#[test]
fn mismatch_must_report_the_current_version() {
    assert_violation(&[
        op(1, 0, Some(1), put("a"), written(1)),
        op(
            2,
            2,
            Some(3),
            cas("b", 5),
            Outcome::Mismatch { current_version: 2 },
        ),
    ]);
}

#[test]
fn keys_are_checked_apart() {
    let mut a = op(1, 0, Some(1), put("a"), written(1));
    a.key = "x".into();
    let mut b = op(2, 2, Some(3), put("b"), written(1));
    b.key = "y".into();
    let reports = check(&[a, b], budget());
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.verdict == Verdict::Linearizable));
}

#[test]
fn budget_exhaustion_is_unknown_not_a_hang() {
    // Many unknown puts whose values later reads return, then a read no order explains:
    // the search must give up rather than try all 2^40 subsets.
    let mut ops: Vec<Op> = (0..40)
        .map(|i| op(i, i, None, put(&format!("u{i}")), unknown()))
        .collect();
    ops.push(op(100, 100, Some(101), Call::Get, found("never", 99)));
    for i in 0..40 {
        ops.push(op(
            200 + i,
            200 + 2 * i,
            Some(201 + 2 * i),
            Call::Get,
            found(&format!("u{i}"), 1),
        ));
    }
    let reports = check(
        &ops,
        Budget {
            steps_max: 10_000,
            deadline: Instant::now() + Duration::from_secs(5),
        },
    );
    assert!(
        matches!(
            reports.first().map(|r| &r.verdict),
            Some(Verdict::Unknown(_))
        ),
        "{reports:?}"
    );
}

#[test]
fn many_unknown_writes_nobody_read_stay_cheap() {
    // 300 timed-out puts pending from the start: interchangeable, so the search must not
    // try their subsets.
    let mut ops: Vec<Op> = (0..300)
        .map(|i| op(10_000 + i, i, None, put(&format!("u{i}")), unknown()))
        .collect();
    let mut t = 1000;
    for i in 0..2000u64 {
        // Every tenth acknowledged put skips a version: some timed-out put took effect.
        let version = i + 1 + (i / 10).min(299);
        ops.push(op(
            i,
            t,
            Some(t + 1),
            put(&format!("v{i}")),
            written(version),
        ));
        t += 2;
    }
    let reports = check(
        &ops,
        Budget {
            steps_max: 2_000_000,
            deadline: Instant::now() + Duration::from_secs(20),
        },
    );
    assert_eq!(reports[0].verdict, Verdict::Linearizable, "{reports:?}");
}

#[test]
fn anonymous_values_still_catch_a_stale_read() {
    // Unread values are merged, but a read of an overwritten value still fails.
    assert_violation(&[
        op(1, 0, Some(1), put("a"), written(1)),
        op(2, 2, Some(3), put("b"), written(2)),
        op(3, 4, None, put("x"), unknown()),
        op(4, 5, Some(6), Call::Get, found("a", 1)),
    ]);
}

#[test]
fn long_sequential_history_is_quick() {
    let mut ops = Vec::new();
    let mut t = 0;
    for i in 0..20_000u64 {
        let v = format!("v{i}");
        ops.push(op(2 * i, t, Some(t + 1), put(&v), written(i + 1)));
        // A concurrent read and a timed-out write every so often.
        ops.push(op(2 * i + 1, t, Some(t + 2), Call::Get, found(&v, i + 1)));
        if i % 500 == 0 {
            ops.push(op(
                1_000_000 + i,
                t,
                None,
                Call::Delete {
                    if_version: Some(1),
                },
                unknown(),
            ));
        }
        t += 3;
    }
    let started = Instant::now();
    assert_ok(&ops);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_timed_out_write_cannot_take_effect_twice() {
    // Versions 2 and 3 both need the one timed-out put: the relaxed search passes, the
    // exact one must not.
    let ops = [
        op(1, 0, Some(1), put("a"), written(1)),
        op(2, 2, None, put("x"), unknown()),
        op(3, 10, Some(11), put("b"), written(4)),
    ];
    assert_ne!(verdict(&ops), Verdict::Linearizable);
}

#[test]
fn a_stale_read_deep_in_a_long_history_with_timeouts_is_found() {
    // Thousands of ops (puts with concurrent reads, a delete every tenth), timed-out
    // writes all along, and one stale read in the middle.
    let mut ops = Vec::new();
    let mut t = 0;
    let mut version = 0;
    for i in 0..4000u64 {
        if i % 10 == 9 {
            ops.push(op(
                i,
                t,
                Some(t + 3),
                Call::Delete { if_version: None },
                Outcome::Deleted { revision: 0 },
            ));
            version = 0;
        } else {
            version += 1;
            ops.push(op(
                i,
                t,
                Some(t + 3),
                put(&format!("v{i}")),
                written(version),
            ));
            ops.push(op(
                100_000 + i,
                t + 1,
                Some(t + 4),
                Call::Get,
                found(&format!("v{i}"), version),
            ));
        }
        if i % 7 == 0 {
            ops.push(op(200_000 + i, t, None, put(&format!("u{i}")), unknown()));
            ops.push(op(
                300_000 + i,
                t,
                None,
                cas(&format!("w{i}"), version),
                unknown(),
            ));
            ops.push(op(
                400_000 + i,
                t,
                None,
                Call::Delete { if_version: None },
                unknown(),
            ));
        }
        if i == 1996 {
            // v1995 was overwritten by v1996, which completed before this read began.
            ops.push(op(
                999_999,
                t + 4,
                Some(t + 5),
                Call::Get,
                found("v1995", 6),
            ));
        }
        t += 5;
    }
    let started = Instant::now();
    let text = assert_violation(&ops);
    assert!(text.contains("op 999999"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20));
    // Without the stale read the same history passes.
    ops.retain(|o| o.id != 999_999);
    assert_ok(&ops);
}

fn written_at(version: u64, mod_revision: u64) -> Outcome {
    Outcome::Written {
        version,
        mod_revision,
    }
}

#[test]
fn writes_must_take_increasing_revisions() {
    // Versions allow a then b, but b's revision is older than a's.
    assert_violation(&[
        op(1, 0, Some(10), put("a"), written_at(1, 10)),
        op(2, 1, Some(9), put("b"), written_at(2, 9)),
    ]);
    assert_ok(&[
        op(1, 0, Some(10), put("a"), written_at(1, 9)),
        op(2, 1, Some(9), put("b"), written_at(2, 10)),
    ]);
}

#[test]
fn a_timed_out_write_takes_a_revision() {
    // Revisions 5 and 6 leave no room for the timed-out put that version 2 needs.
    assert_violation(&[
        op(1, 0, Some(1), put("a"), written_at(1, 5)),
        op(2, 2, None, put("x"), unknown()),
        op(3, 3, Some(4), put("b"), written_at(3, 6)),
    ]);
    assert_ok(&[
        op(1, 0, Some(1), put("a"), written_at(1, 5)),
        op(2, 2, None, put("x"), unknown()),
        op(3, 3, Some(4), put("b"), written_at(3, 7)),
    ]);
}

#[test]
fn a_delete_takes_a_revision_too() {
    assert_violation(&[
        op(1, 0, Some(1), put("a"), written_at(1, 5)),
        op(
            2,
            2,
            Some(3),
            Call::Delete { if_version: None },
            Outcome::Deleted { revision: 7 },
        ),
        op(3, 4, Some(5), put("b"), written_at(1, 6)),
    ]);
}
