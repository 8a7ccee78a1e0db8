//! `hub` mode: the state machine and the watch hub in this process, on a real storage
//! Db in a temporary directory. N idle `WatchStream`s (keys and prefixes the load never
//! writes) each wait in their own task, as the HTTP handler runs them; the main thread
//! applies one PUT per slot, as the node's apply thread does, and times each apply
//! (the storage write included, the fsync of the consensus log not). Rounds alternate
//! no watchers and N watchers; the resident memory per watcher is this part's share
//! of an idle watch (the HTTP connection comes on top, see `http` mode).

use crate::{is_prefix_watch, report, rss_kib, Opts, Phase};
use bytes::Bytes;
use concierge::kv::hub::{Filter, WatchLimits};
use concierge::kv::watch::WatchStream;
use concierge::kv::{Command, KvOptions, KvStateMachine, LeaseTable};
use hdrhistogram::Histogram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One phase: the big values, then slots of one PUT each for `seconds`.
fn measure(o: &Opts, sm: &mut KvStateMachine, name: &str) -> Phase {
    let mut apply = |command: Command| {
        let slot = sm.applied_index() + 1;
        sm.apply_slot(slot, &[command.encode()]).unwrap();
    };
    for b in 0..o.big_values {
        apply(Command::Put {
            key: format!("big/{b}"),
            value: Bytes::from(vec![b'x'; 1 << 20]),
            expect_version: None,
            session: None,
        });
    }
    let mut h = Histogram::<u64>::new(3).unwrap();
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(o.seconds);
    let mut i = 0u64;
    while Instant::now() < until {
        let command = Command::Put {
            key: format!("load/{}", i % 1000),
            value: Bytes::from(vec![b'v'; o.value_bytes]),
            expect_version: None,
            session: None,
        };
        let t = Instant::now();
        apply(command);
        h.record(t.elapsed().as_micros() as u64).unwrap();
        i += 1;
    }
    Phase::of(name, i as usize, started.elapsed().as_secs_f64(), &h)
}

pub async fn run(o: &Opts) {
    println!(
        "hub: {} watchers (1 in {} on a prefix), {} s of slots of one {}-byte PUT, \
         {} x 1 MiB values before each phase, {} rounds",
        o.watchers, o.prefix_every, o.seconds, o.value_bytes, o.big_values, o.rounds
    );
    let dir = std::env::temp_dir().join(format!("watchers-bench-hub-{}", std::process::id()));
    let db = storage::Db::open(vfs::RealFs::shared(), &dir, storage::Options::default())
        .expect("opening the Db");
    let limits = WatchLimits {
        watchers_max: o.watchers + 1,
        ..WatchLimits::default()
    };
    let sm = KvStateMachine::open(db, KvOptions::default(), LeaseTable::new())
        .expect("opening the state machine")
        .with_watch_limits(limits);
    let reader = sm.reader();
    // The machine is applied from a blocking thread, as the node's apply thread does.
    let sm = Arc::new(Mutex::new(sm));
    let pid = std::process::id();
    let in_apply = |name: &'static str| {
        let sm = Arc::clone(&sm);
        let o = o.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut sm = sm.lock().unwrap();
                measure(&o, &mut sm, name)
            })
            .await
            .unwrap()
        }
    };
    in_apply("warm-up").await;
    let (mut unwatched, mut watched, mut rss_delta) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..o.rounds {
        unwatched.push(in_apply("unwatched").await);
        let rss_before = rss_kib(pid);
        let next = reader.revision().unwrap() + 1;
        let started = Instant::now();
        let tasks: Vec<_> = (0..o.watchers)
            .map(|i| {
                let filter = if is_prefix_watch(o, i) {
                    Filter::Prefix(format!("idle/{i}/"))
                } else {
                    Filter::Key(format!("idle/{i}"))
                };
                let mut stream = WatchStream::open(&reader, filter, next).expect("under the limit");
                tokio::spawn(async move { while let Some(Ok(_)) = stream.next_item().await {} })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss_watched = rss_kib(pid);
        rss_delta.push(rss_watched.saturating_sub(rss_before));
        println!(
            "round {round}: {} watchers in {:.1} s ({} in the hub); RSS {rss_before} -> {rss_watched} KiB",
            tasks.len(),
            started.elapsed().as_secs_f64(),
            reader.hub().watchers()
        );
        watched.push(in_apply("watched").await);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        assert_eq!(reader.hub().watchers(), 0, "every watcher unregistered");
    }
    report(&unwatched, &watched, &rss_delta, o.watchers);
    drop(sm);
    let _ = std::fs::remove_dir_all(&dir);
}
