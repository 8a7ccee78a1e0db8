//! `WatchStream` tests on a real state machine over the power-loss simulator: the
//! hand-over from history to live events, overflow and snapshot installs, against the
//! model "every matching event of revisions >= start, whole revisions, in order".
//!
//! Streams are polled by hand (`now_or_never`) between writes, so every interleaving of
//! "write applied" and "stream read" the cases pick happens exactly, with no timing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::kv::hub::{Filter, InboxLimits, WatchLimits};
use crate::kv::read::HistoryRead;
use crate::kv::watch::{WatchItem, WatchStream};
use crate::kv::{Command, KvOptions, KvStateMachine, LeaseTable};
use bytes::Bytes;
use futures_util::FutureExt;
use proptest::prelude::*;
use std::path::Path;
use std::sync::Arc;

fn machine(limits: WatchLimits) -> KvStateMachine {
    let fs: Arc<dyn vfs::Fs> = Arc::new(vfs::SimFs::new());
    let db = storage::Db::open(fs, Path::new("/kv"), storage::Options::default()).unwrap();
    KvStateMachine::open(db, KvOptions::default(), LeaseTable::new())
        .unwrap()
        .with_watch_limits(limits)
}

fn limits(revisions_max: usize) -> WatchLimits {
    WatchLimits {
        watchers_max: 16,
        inbox: InboxLimits {
            revisions_max,
            bytes_max: 1 << 20,
        },
    }
}

fn put(key: &str) -> Command {
    Command::Put {
        key: key.into(),
        value: Bytes::copy_from_slice(key.as_bytes()),
        expect_version: None,
        session: None,
    }
}

fn apply(sm: &mut KvStateMachine, commands: &[Command]) {
    let slot = sm.applied_index() + 1;
    let bytes: Vec<Bytes> = commands.iter().map(Command::encode).collect();
    sm.apply_slot(slot, &bytes).unwrap();
}

/// (revision, [(kind, key)]) of one revision's events.
type Rev = (u64, Vec<String>);

/// Polls `stream` up to `polls` times, keeping what is ready (never waiting).
fn poll(stream: &mut WatchStream, polls: usize, out: &mut Vec<Rev>) {
    for _ in 0..polls {
        match stream.next_item().now_or_never() {
            Some(Some(Ok(WatchItem::Events(batches)))) => {
                for b in batches {
                    let events = b
                        .events
                        .iter()
                        .map(|e| {
                            assert_eq!(e.mod_revision, b.revision);
                            format!("{:?} {}", e.kind, e.key)
                        })
                        .collect();
                    out.push((b.revision, events));
                }
            }
            Some(Some(Ok(WatchItem::Progress(_)))) => {}
            Some(other) => panic!("unexpected {other:?}"),
            None => {} // waiting, or yielding between history reads
        }
    }
}

/// What the watch must deliver: every matching event of revisions >= start.
fn model(sm: &KvStateMachine, filter: &Filter, start: u64) -> Vec<Rev> {
    let HistoryRead::Events { revisions, .. } = sm.reader().history(start, usize::MAX).unwrap()
    else {
        panic!("compacted")
    };
    revisions
        .into_iter()
        .filter_map(|(rev, events)| {
            let events: Vec<String> = events
                .iter()
                .filter(|e| filter.matches(&e.key))
                .map(|e| format!("{:?} {}", e.kind, e.key))
                .collect();
            (!events.is_empty()).then_some((rev, events))
        })
        .collect()
}

/// One step of a case: a slot of writes, or some polls of the stream.
#[derive(Clone, Debug)]
enum Step {
    /// One slot: one command per code (see `command`).
    Slot(Vec<u8>),
    Poll(u8),
}

/// Command for code `c`: puts of matching and non-matching keys, prefix deletes (many
/// events in one revision).
fn command(c: u8) -> Command {
    match c % 6 {
        0 | 1 => put(&format!("w/{}", c % 5)),
        2 => put(&format!("x/{}", c % 3)),
        3 => put("w"),
        4 => Command::DeletePrefix {
            prefix: "w/".into(),
        },
        _ => Command::DeletePrefix { prefix: "".into() },
    }
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..4).prop_map(Step::Slot),
        (1u8..4).prop_map(Step::Poll),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Whatever the start (past, now, ahead), however writes and reads interleave and
    /// however small the inbox (overflow -> history -> live again), the stream delivers
    /// exactly the matching events of revisions >= start, each revision whole, in order.
    #[test]
    fn the_stream_delivers_exactly_the_model(
        before in proptest::collection::vec(any::<u8>(), 0..12),
        start_back in 0u64..14,
        start_ahead in 0u64..3,
        prefix in prop_oneof![Just("w/"), Just(""), Just("x")],
        revisions_max in 1usize..5,
        steps in proptest::collection::vec(step_strategy(), 0..40),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let mut sm = machine(limits(revisions_max));
            for c in &before {
                apply(&mut sm, &[command(*c)]);
            }
            let now = sm.revision();
            let start = (now + 1 + start_ahead).saturating_sub(start_back).max(1);
            let filter = Filter::Prefix(prefix.to_string());
            let mut stream = WatchStream::open(&sm.reader(), filter.clone(), start).unwrap();
            let mut got = Vec::new();
            for step in &steps {
                match step {
                    Step::Slot(codes) => {
                        let commands: Vec<Command> = codes.iter().map(|c| command(*c)).collect();
                        apply(&mut sm, &commands);
                    }
                    Step::Poll(n) => poll(&mut stream, *n as usize, &mut got),
                }
            }
            let want = model(&sm, &filter, start);
            for _ in 0..1000 {
                if got.len() >= want.len() {
                    break;
                }
                poll(&mut stream, 1, &mut got);
            }
            poll(&mut stream, 3, &mut got);
            prop_assert_eq!(got, want);
            Ok(())
        })?;
    }
}

/// A snapshot install moves the state past revisions that never went through the hub:
/// the watch reads them from the installed history and goes on live.
#[tokio::test(start_paused = true)]
async fn a_watch_reads_what_a_snapshot_install_skipped() {
    let mut src = machine(limits(64));
    let mut dst = machine(limits(64));
    for sm in [&mut src, &mut dst] {
        apply(sm, &[put("w/a")]);
        apply(sm, &[put("x")]);
    }
    let filter = Filter::Prefix("w/".into());
    let mut stream = WatchStream::open(&dst.reader(), filter.clone(), 1).unwrap();
    let mut got = Vec::new();
    poll(&mut stream, 3, &mut got);
    assert_eq!(got, model(&dst, &filter, 1));

    apply(&mut src, &[put("w/b"), put("x")]);
    apply(
        &mut src,
        &[Command::DeletePrefix {
            prefix: "w/".into(),
        }],
    );
    let mut snap = src.snapshot().unwrap();
    dst.begin_install(snap.slot()).unwrap();
    while let Some(chunk) = snap.next_chunk().unwrap() {
        dst.install_chunk(&chunk).unwrap();
    }
    dst.finish_install().unwrap();
    apply(&mut dst, &[put("w/c")]);
    poll(&mut stream, 6, &mut got);
    assert_eq!(got, model(&dst, &filter, 1));
    assert_eq!(got.len(), 4, "{got:?}");
}

/// The hand-over under real concurrency: streams opened (from the past, now, or ahead)
/// while another thread applies slots get exactly the model, whatever the moment of
/// their registration relative to a slot's publication.
#[test]
fn streams_opened_during_writes_miss_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut sm = machine(limits(8));
    let reader = sm.reader();
    let writer = std::thread::spawn(move || {
        for i in 0..400u32 {
            let codes = [(i % 251) as u8, (i * 7 % 253) as u8];
            let commands: Vec<Command> = codes.iter().map(|c| command(*c)).collect();
            apply(&mut sm, &commands[..1 + (i % 2) as usize]);
        }
        sm
    });
    let filter = Filter::Prefix("w/".into());
    let mut streams = Vec::new();
    rt.block_on(async {
        while !writer.is_finished() {
            let now = reader.revision().unwrap();
            let start = [1, now.saturating_sub(3).max(1), now + 1, now + 2][streams.len() % 4];
            let stream = WatchStream::open(&reader, filter.clone(), start).unwrap();
            streams.push((start, stream, Vec::new()));
            for (_, stream, got) in streams.iter_mut() {
                poll(stream, 2, got);
            }
            if streams.len() == 16 {
                break;
            }
            std::thread::yield_now();
        }
    });
    let sm = writer.join().unwrap();
    rt.block_on(async {
        for (start, mut stream, mut got) in streams {
            let want = model(&sm, &filter, start);
            for _ in 0..10_000 {
                if got.len() >= want.len() {
                    break;
                }
                poll(&mut stream, 1, &mut got);
            }
            let first_difference = got.iter().zip(&want).position(|(g, w)| g != w);
            assert!(
                got == want,
                "the stream from {start}: {} revisions delivered, {} expected, first \
                 difference at {first_difference:?}",
                got.len(),
                want.len()
            );
        }
    });
}
