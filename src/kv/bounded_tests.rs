//! Commands of any size (prefix deletes, session close and expiry) apply in bounded
//! memory as one revision: tests under a small change cap, so a few hundred keys are
//! "too many for one batch".

use crate::kv::command::{Command, LeaderBallot, SessionId};
use crate::kv::hub::Filter;
use crate::kv::keyspace::EventKind;
use crate::kv::outcome::Outcome;
use crate::kv::read::HistoryRead;
use crate::kv::test_support::{apply, dump, one, open, put, put_in};
use crate::kv::watch::{WatchItem, WatchStream};
use crate::kv::{KvError, KvOptions, KvStateMachine};
use futures_util::FutureExt;
use std::ops::Bound;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// The change cap of these tests (bytes).
const CAP: u64 = 10_000;

fn small_cap() -> KvOptions {
    cap(CAP)
}

fn cap(bytes: u64) -> KvOptions {
    KvOptions {
        slot_batch_bytes_max: bytes,
        ..KvOptions::default()
    }
}

/// A machine under the small cap with session 7 owning `keys` ephemeral keys
/// `eph/00000` .. and `keys` persistent keys `big/00000` ..; the keys go in slots of
/// 20 puts (each slot within the cap).
fn loaded(keys: usize) -> (Arc<vfs::SimFs>, KvStateMachine) {
    loaded_under(keys, small_cap())
}

fn loaded_under(keys: usize, opts: KvOptions) -> (Arc<vfs::SimFs>, KvStateMachine) {
    let fs = Arc::new(vfs::SimFs::new());
    let mut sm = open(&fs, opts);
    let r = one(
        &mut sm,
        Command::CreateSession {
            id: SessionId(7),
            ttl_ms: 5000,
            owner: None,
        },
    );
    assert!(matches!(r.outcome, Outcome::SessionCreated { .. }), "{r:?}");
    let all: Vec<usize> = (0..keys).collect();
    for slot in all.chunks(20) {
        let puts: Vec<Command> = slot
            .iter()
            .flat_map(|i| {
                [
                    put_in(&format!("eph/{i:05}"), SessionId(7)),
                    put(&format!("big/{i:05}"), "v"),
                ]
            })
            .collect();
        apply(&mut sm, &puts);
    }
    (fs, sm)
}

/// Asserts revision `revision`'s history holds exactly one delete of each of `keys`.
fn assert_history_deletes(sm: &KvStateMachine, revision: u64, keys: &[String]) {
    let HistoryRead::Events { revisions, .. } = sm.reader().history(revision, 1).unwrap() else {
        panic!("history compacted")
    };
    assert_eq!(revisions.len(), 1, "one revision");
    let (rev, events) = &revisions[0];
    assert_eq!(*rev, revision);
    let deleted: Vec<String> = events
        .iter()
        .map(|e| {
            assert_eq!(e.kind, EventKind::Delete);
            assert_eq!(e.mod_revision, revision);
            e.key.clone()
        })
        .collect();
    assert_eq!(deleted, keys, "every delete, once, in key order");
}

fn eph_keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("eph/{i:05}")).collect()
}

#[test]
fn a_session_with_more_keys_than_the_cap_expires_in_one_revision() {
    let (_fs, mut sm) = loaded(400);
    let before = sm.revision();
    let r = one(
        &mut sm,
        Command::ExpireSessions {
            ids: vec![SessionId(7)],
            ballot: LeaderBallot { round: 1, node: 1 },
        },
    );
    assert_eq!(
        r.outcome,
        Outcome::SessionsExpired {
            sessions: 1,
            deleted_keys: 400
        }
    );
    assert_eq!(r.revision, before + 1, "one revision");
    let reader = sm.reader();
    assert_eq!(reader.session(SessionId(7)).unwrap(), None);
    assert!(reader.list("eph/", None, 1).unwrap().entries.is_empty());
    assert_eq!(reader.list("big/", None, 1000).unwrap().entries.len(), 400);
    assert_eq!(sm.leases.len(), 0, "the lease went with the session");
    assert_history_deletes(&sm, before + 1, &eph_keys(400));
}

#[test]
fn a_session_with_more_keys_than_the_cap_closes_in_one_revision() {
    let (_fs, mut sm) = loaded(400);
    let before = sm.revision();
    let r = one(&mut sm, Command::CloseSession { id: SessionId(7) });
    assert_eq!(r.outcome, Outcome::SessionClosed { deleted_keys: 400 });
    assert_eq!(r.revision, before + 1);
    let reader = sm.reader();
    assert_eq!(reader.session(SessionId(7)).unwrap(), None);
    assert!(reader.list("eph/", None, 1).unwrap().entries.is_empty());
    assert!(reader.session_keys(SessionId(7)).unwrap().is_empty());
    assert_history_deletes(&sm, before + 1, &eph_keys(400));
}

#[test]
fn a_prefix_delete_larger_than_the_cap_is_one_revision() {
    let (_fs, mut sm) = loaded(400);
    let before = sm.revision();
    // With a put before and after it in the same slot: each is its own revision.
    let replies = apply(
        &mut sm,
        &[
            put("big/00003", "again"),
            Command::DeletePrefix {
                prefix: "big/".into(),
            },
            put("after", "v"),
        ],
    );
    assert_eq!(replies[0].revision, before + 1);
    assert_eq!(replies[1].outcome, Outcome::Deleted { count: 400 });
    assert_eq!(replies[1].revision, before + 2);
    assert_eq!(replies[2].revision, before + 3);
    let (meta, keys, _) = dump(&sm.reader());
    assert_eq!(meta.revision, before + 3);
    assert!(keys.iter().all(|k| !k.starts_with("big/")), "{keys:?}");
    assert_eq!(keys.len(), 401, "the ephemeral keys and `after` stay");
    let big: Vec<String> = (0..400).map(|i| format!("big/{i:05}")).collect();
    assert_history_deletes(&sm, before + 2, &big);
}

/// Every record of the Db, raw: the whole stored state, meta and history parts included.
fn raw(sm: &KvStateMachine) -> Vec<(Vec<u8>, Vec<u8>)> {
    sm.db
        .iter(Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// One slot with two chunked commands between two puts.
fn big_slot() -> Vec<Command> {
    vec![
        put("x", "before"),
        Command::ExpireSessions {
            ids: vec![SessionId(99), SessionId(7)],
            ballot: LeaderBallot { round: 2, node: 1 },
        },
        Command::DeletePrefix {
            prefix: "big/".into(),
        },
        put("y", "after"),
    ]
}

/// A crash (the process dies: the machine is dropped mid-apply, the Db reopened) after
/// k chunks, for every k the slot writes: the replay resumes at the cursor and ends
/// in exactly the state, byte for byte, of a run without the crash.
#[test]
fn a_crash_after_any_chunk_resumes_to_the_uninterrupted_state() {
    let (_fs, mut sm) = loaded(300);
    let want_replies = apply(&mut sm, &big_slot());
    let want = raw(&sm);
    let want_dump = dump(&sm.reader());
    let chunks = sm.chunks_written();
    assert!(chunks >= 6, "the slot is written in many chunks: {chunks}");
    assert_eq!(
        want_replies[1].outcome,
        Outcome::SessionsExpired {
            sessions: 1,
            deleted_keys: 300
        }
    );
    assert_eq!(want_replies[2].outcome, Outcome::Deleted { count: 300 });
    for k in 1..=chunks {
        let (fs, mut sm) = loaded(300);
        let slot = sm.applied_index() + 1;
        *sm.chunk_hook.lock().unwrap() = Some(Box::new(move |written| {
            assert!(written != k, "simulated crash after chunk {k}");
        }));
        let crashed = catch_unwind(AssertUnwindSafe(|| apply(&mut sm, &big_slot())));
        assert!(crashed.is_err(), "k {k}: the hook stopped the apply");
        drop(sm);
        let mut sm = open(&fs, small_cap());
        assert_eq!(sm.applied_index(), slot - 1, "k {k}");
        let mid = sm.meta.command_cursor.is_some();
        assert!(mid, "k {k}: a crash right after a chunk leaves its cursor");
        assert!(
            matches!(sm.reader().get("x"), Err(KvError::Resuming { .. })),
            "k {k}: no reader sees a half-applied command"
        );
        let replies = apply(&mut sm, &big_slot());
        assert_eq!(raw(&sm), want, "k {k}: the same stored bytes");
        // Commands done before the crash answer "applied before this node restarted";
        // the one the crash cut, and those after it, answer as an uninterrupted run did.
        let done = replies
            .iter()
            .take_while(|r| matches!(r.outcome, Outcome::Rejected { .. }))
            .count();
        assert!((1..=2).contains(&done), "k {k}: {replies:?}");
        assert_eq!(replies[done..], want_replies[done..], "k {k}");
        assert_eq!(dump(&sm.reader()), want_dump, "k {k}");
        assert_eq!(
            sm.leases.len(),
            0,
            "k {k}: the expired session's lease is gone"
        );
    }
}

/// Memory: the overlay of a slot never holds much more than the change cap, however
/// much one command deletes (counted by the overlay, not timed).
#[test]
fn a_big_delete_holds_at_most_about_one_cap_in_memory() {
    let (_fs, mut sm) = loaded(1000);
    let before = sm.overlay_peak_bytes();
    assert!(before <= CAP, "loading stayed within a cap: {before}");
    let r = one(
        &mut sm,
        Command::DeletePrefix {
            prefix: "big/".into(),
        },
    );
    assert_eq!(r.outcome, Outcome::Deleted { count: 1000 });
    let chunks = sm.chunks_written();
    // 1,000 tombstones of about 26 bytes plus their events: several caps' worth.
    assert!(chunks >= 5, "{chunks} chunks");
    let peak = sm.overlay_peak_bytes();
    assert!(peak < 2 * CAP, "peak {peak} bytes over 2 x {CAP}");
}

/// A reader during a chunked apply sees the state before the command, whole, at every
/// chunk; after it, the state after, whole.
#[test]
fn a_reader_during_a_chunked_apply_sees_all_or_nothing() {
    let (_fs, mut sm) = loaded(400);
    let reader = sm.reader();
    let before = dump(&reader);
    let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    let hook_seen = Arc::clone(&seen);
    let hook_reader = reader.clone();
    let want = before.clone();
    *sm.chunk_hook.lock().unwrap() = Some(Box::new(move |_| {
        let now = dump(&hook_reader);
        let history = hook_reader.history(want.0.revision + 1, 10).unwrap();
        let none_yet =
            matches!(&history, HistoryRead::Events { revisions, .. } if revisions.is_empty());
        hook_seen.lock().unwrap().push(now == want && none_yet);
    }));
    let replies = apply(&mut sm, &big_slot());
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.len() >= 6,
        "the hook ran at each chunk: {}",
        seen.len()
    );
    assert!(seen.iter().all(|&whole| whole), "{seen:?}");
    let after = dump(&reader);
    assert_eq!(after.0.revision, before.0.revision + 4);
    assert_eq!(replies[3].revision, after.0.revision);
    assert!(after
        .1
        .iter()
        .all(|k| !k.starts_with("big/") && !k.starts_with("eph/")));
    assert!(after.2.is_empty(), "no session left");
}

/// A watch of a revision stored in many parts gets every event once, in order, in
/// several bounded batches of which only the last ends the revision (carries the id);
/// a watch of one key gets its one event, ending the revision.
#[test]
fn a_watch_reads_a_revision_of_many_parts_in_bounded_batches() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        // A 1,000-byte cap: the expiry is stored in more parts than one history read takes.
        let (_fs, mut sm) = loaded_under(400, cap(1_000));
        let from = sm.revision() + 1;
        let reader = sm.reader();
        let mut all = WatchStream::open(&reader, Filter::Prefix("eph/".into()), from).unwrap();
        let mut one_key =
            WatchStream::open(&reader, Filter::Key("eph/00150".into()), from).unwrap();
        let r = one(
            &mut sm,
            Command::ExpireSessions {
                ids: vec![SessionId(7)],
                ballot: LeaderBallot { round: 1, node: 1 },
            },
        );
        assert_eq!(r.revision, from);
        let parts = sm.chunks_written();
        assert!(
            parts as usize > crate::kv::watch::HISTORY_PIECES_PER_READ,
            "{parts} parts"
        );
        let mut keys = Vec::new();
        let mut batches = Vec::new();
        while keys.len() < 400 {
            // (every read of this watch finds events: no yield in between)
            match all.next_item().now_or_never() {
                Some(Some(Ok(WatchItem::Events(bs)))) => {
                    for b in bs {
                        assert_eq!(b.revision, from);
                        keys.extend(b.events.iter().map(|e| e.key.clone()));
                        batches.push(b.complete);
                    }
                }
                other => panic!("after {} events: {other:?}", keys.len()),
            }
        }
        assert_eq!(keys, eph_keys(400));
        assert!(batches.len() > 1, "{batches:?}");
        assert_eq!(batches.iter().filter(|&&c| c).count(), 1);
        assert_eq!(batches.last(), Some(&true));
        // A history read with nothing to send yields to other tasks: poll again.
        let mut item = None;
        for _ in 0..10 {
            item = one_key.next_item().now_or_never();
            if item.is_some() {
                break;
            }
        }
        match item {
            Some(Some(Ok(WatchItem::Events(bs)))) => {
                assert_eq!(bs.len(), 1);
                assert!(bs[0].complete);
                let got: Vec<_> = bs[0].events.iter().map(|e| e.key.as_str()).collect();
                assert_eq!(got, ["eph/00150"]);
            }
            other => panic!("{other:?}"),
        }
    });
}

/// An idempotent prefix delete larger than the cap applies once, in chunks, and its
/// retry (also after a crash inside it) answers the first reply, revision included.
#[test]
fn an_idempotent_big_prefix_delete_applies_once_and_replays() {
    let command = Command::Idempotent {
        key: "once".into(),
        stamp_ms: 1_000,
        inner: Box::new(Command::DeletePrefix {
            prefix: "big/".into(),
        }),
        leader: Some(LeaderBallot { round: 1, node: 1 }),
    };
    let (fs, mut sm) = loaded(300);
    let before = sm.revision();
    *sm.chunk_hook.lock().unwrap() = Some(Box::new(|written| {
        assert!(written != 3, "simulated crash after chunk 3");
    }));
    let crashed = catch_unwind(AssertUnwindSafe(|| one(&mut sm, command.clone())));
    assert!(crashed.is_err());
    drop(sm);
    let mut sm = open(&fs, small_cap());
    let first = one(&mut sm, command.clone());
    assert_eq!(first.outcome, Outcome::Deleted { count: 300 });
    assert_eq!(first.revision, before + 1);
    let state = raw(&sm);
    let retry = one(&mut sm, command);
    assert_eq!(retry, first, "the retry answers the first reply");
    let (meta, keys, _) = dump(&sm.reader());
    assert_eq!(meta.revision, before + 1, "the retry changed nothing");
    assert!(keys.iter().all(|k| !k.starts_with("big/")));
    assert_eq!(raw(&sm).len(), state.len());
}

/// Issue 8's case at the real cap (12 MiB): a session with 80,000 ephemeral keys
/// expires, in more than one chunk, as one revision.
#[test]
fn a_session_with_80_000_keys_expires_under_the_default_cap() {
    let (_fs, mut sm) = loaded_under(0, KvOptions::default());
    let keys: Vec<Command> = (0..80_000)
        .map(|i| put_in(&format!("lock/holder-{i:06}"), SessionId(7)))
        .collect();
    for slot in keys.chunks(2_000) {
        apply(&mut sm, slot);
    }
    let before = sm.revision();
    let r = one(
        &mut sm,
        Command::ExpireSessions {
            ids: vec![SessionId(7)],
            ballot: LeaderBallot { round: 1, node: 1 },
        },
    );
    assert_eq!(
        r.outcome,
        Outcome::SessionsExpired {
            sessions: 1,
            deleted_keys: 80_000
        }
    );
    assert_eq!(r.revision, before + 1);
    assert!(sm.chunks_written() >= 1, "more than one batch");
    let cap = KvOptions::default().slot_batch_bytes_max;
    assert!(sm.overlay_peak_bytes() < 2 * cap);
    assert!(sm
        .reader()
        .list("lock/", None, 1)
        .unwrap()
        .entries
        .is_empty());
}

/// A power loss while a slot's chunks were being written (unsynced batches torn at
/// random): the Db keeps a prefix of the batches, and the replay from whatever cursor
/// survived ends in the state of a run without the crash.
#[test]
fn a_power_loss_inside_a_chunked_command_resumes_from_the_surviving_cursor() {
    let (_fs, mut sm) = loaded(300);
    apply(&mut sm, &big_slot());
    let want = dump(&sm.reader());
    let mut mid_command = 0;
    for seed in 0..24 {
        let (fs, mut sm) = loaded(300);
        sm.sync().unwrap();
        let slot = sm.applied_index() + 1;
        apply(&mut sm, &big_slot());
        drop(sm);
        fs.crash(vfs::CrashMode::TearUnsynced { seed });
        let mut sm = open(&fs, small_cap());
        if sm.applied_index() == slot - 1 {
            mid_command += u64::from(sm.meta.command_cursor.is_some());
            apply(&mut sm, &big_slot());
        }
        assert_eq!(dump(&sm.reader()), want, "seed {seed}");
    }
    assert!(mid_command > 0, "no crash fell inside a chunked command");
}
