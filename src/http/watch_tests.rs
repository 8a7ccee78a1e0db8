//! Watch stream tests on a real state machine over the power-loss simulator, in paused
//! tokio time: the clock only moves when every task waits, so "10 s of silence" is
//! exact and no assertion depends on the machine's speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{changes, Filter, PROGRESS_EVERY};
use crate::kv::{Command, KvOptions, KvStateMachine, LeaseTable};
use bytes::Bytes;
use futures_util::StreamExt;
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
    let mut stream = Box::pin(changes(sm.reader(), Filter::Key("quiet".into()), 1));
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
