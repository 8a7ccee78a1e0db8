//! Watch stream tests on a real state machine over the power-loss simulator, in paused
//! tokio time: the clock only moves when every task waits, so "10 s of silence" is
//! exact and no assertion depends on the machine's speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{changes, Filter, PROGRESS_EVERY};
use crate::kv::auth::Grants;
use crate::kv::watch::WatchStream;
use crate::kv::{Command, KvOptions, KvStateMachine, LeaseTable};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn machine() -> KvStateMachine {
    let fs: Arc<dyn vfs::Fs> = Arc::new(vfs::SimFs::new());
    let db = storage::Db::open(fs, Path::new("/kv"), storage::Options::default()).unwrap();
    KvStateMachine::open(db, KvOptions::default(), LeaseTable::new()).unwrap()
}

fn put(sm: &mut KvStateMachine, key: &str, value: &str) {
    let command = Command::Put {
        key: key.into(),
        value: Bytes::copy_from_slice(value.as_bytes()),
        expect_version: None,
        session: None,
    };
    let slot = sm.applied_index() + 1;
    sm.apply_slot(slot, &[command.encode()]).unwrap();
}

/// A key watch on a busy cluster still gets its progress comment: silence is counted
/// per stream, and writes to other keys are not this stream's activity.
#[tokio::test(start_paused = true)]
async fn progress_counts_this_streams_silence_not_the_clusters() {
    let mut sm = machine();
    let watch = WatchStream::open(&sm.reader(), Filter::Key("quiet".into()), 1).unwrap();
    let mut stream = Box::pin(changes(watch, Grants::open()));
    let start = tokio::time::Instant::now();
    let mut writes = 0;
    let frame = loop {
        put(&mut sm, "busy", &writes.to_string());
        writes += 1;
        tokio::select! {
            item = stream.next() => break item.expect("the stream is open").unwrap(),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        assert!(
            start.elapsed() <= PROGRESS_EVERY * 3,
            "no progress comment after {writes} writes to another key"
        );
    };
    let text = String::from_utf8(frame.to_vec()).unwrap();
    assert!(text.starts_with(": progress "), "{text:?}");
    let silent = start.elapsed();
    assert!(silent >= PROGRESS_EVERY && silent < PROGRESS_EVERY + Duration::from_secs(1));
}

/// Counts how often a task was woken.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A write wakes only the watches it matches: idle watches on other keys (and on
/// other prefixes) are not woken at all, so they cost the write nothing.
#[tokio::test]
async fn a_write_wakes_only_the_watches_it_matches() {
    use std::task::{Context, Poll, Waker};
    let mut sm = machine();
    let counter = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&counter));
    let mut cx = Context::from_waker(&waker);
    let mut idle: Vec<_> = (0..100)
        .map(|i| {
            let filter = if i % 2 == 0 {
                Filter::Key(format!("idle/{i}"))
            } else {
                Filter::Prefix(format!("idle/{i}/"))
            };
            Box::pin(changes(
                WatchStream::open(&sm.reader(), filter, 1).unwrap(),
                Grants::open(),
            ))
        })
        .collect();
    let busy = WatchStream::open(&sm.reader(), Filter::Prefix("busy/".into()), 1).unwrap();
    let mut hit = Box::pin(changes(busy, Grants::open()));
    let hit_counter = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
    let hit_waker = Waker::from(Arc::clone(&hit_counter));
    for s in idle.iter_mut() {
        assert!(s.as_mut().poll_next(&mut cx).is_pending());
    }
    assert!(hit
        .as_mut()
        .poll_next(&mut Context::from_waker(&hit_waker))
        .is_pending());
    for i in 0..10 {
        put(&mut sm, &format!("busy/{i}"), "v");
        put(&mut sm, "idle", "not under any idle prefix");
    }
    assert_eq!(
        counter.0.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "idle watches were woken by writes they do not match"
    );
    assert!(hit_counter.0.load(std::sync::atomic::Ordering::SeqCst) > 0);
    let Poll::Ready(Some(Ok(frames))) = hit.as_mut().poll_next(&mut cx) else {
        panic!("the matching watch has its events")
    };
    assert!(String::from_utf8_lossy(&frames).contains("busy/0"));
}

/// A revision stored in several parts reaches the stream in several batches: only the
/// batch that ends it puts `id:` on its last event.
#[test]
fn only_the_batch_ending_a_revision_carries_its_id() {
    use crate::kv::hub::Batch;
    use crate::kv::{Event, EventKind};
    let delete = |key: &str| {
        Arc::new(Event {
            kind: EventKind::Delete,
            key: key.into(),
            value: None,
            version: 0,
            create_revision: 3,
            mod_revision: 9,
            session: None,
        })
    };
    let frames = super::batch_frames(
        &[
            Batch {
                revision: 9,
                events: vec![delete("a"), delete("b")],
                complete: false,
            },
            Batch {
                revision: 9,
                events: vec![delete("c")],
                complete: true,
            },
        ],
        &Grants::open(),
    );
    assert_eq!(frames.matches("id: 9\n").count(), 1, "{frames}");
    assert!(frames.ends_with("\n\n") && frames.contains("id: 9\ndata: {"));
    let last = frames.rsplit("id: 9").next().unwrap();
    assert!(last.contains("\"key\":\"c\""), "{frames}");
}

/// Events a token may not read are left out, and the revision's `id:` goes on the last
/// event shown (here the filtered last event would have carried it).
#[test]
fn filtered_frames_keep_the_id_on_the_last_event_shown() {
    use crate::kv::auth::{Access, Perm, Rights};
    use crate::kv::hub::Batch;
    use crate::kv::Event;
    let put = |key: &str| {
        std::sync::Arc::new(Event {
            kind: crate::kv::EventKind::Put,
            key: key.into(),
            value: Some(Bytes::from_static(b"v")),
            version: 1,
            create_revision: 5,
            mod_revision: 5,
            session: None,
        })
    };
    let grants = Grants {
        user: Some("u".into()),
        perms: vec![Perm {
            prefix: "a/".into(),
            access: Access::Read,
        }],
        rights: Rights::default(),
    };
    let frames = super::batch_frames(
        &[Batch {
            revision: 5,
            events: vec![put("a/1"), put("b/1")],
            complete: true,
        }],
        &grants,
    );
    assert!(!frames.contains("b/1"), "{frames}");
    assert!(
        frames.starts_with("id: 5\ndata: {") && frames.contains("a/1"),
        "{frames}"
    );
}
