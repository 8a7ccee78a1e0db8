//! Hub tests: who gets woken, what is shared, the revision a subscription starts at,
//! the watcher limit, and the jump after a snapshot install.

use super::*;
use crate::kv::keyspace::EventKind;

fn put(key: &str, revision: u64) -> Event {
    Event {
        kind: EventKind::Put,
        key: key.into(),
        value: Some(bytes::Bytes::from_static(b"v")),
        version: 1,
        create_revision: revision,
        mod_revision: revision,
        session: None,
    }
}

fn limits(watchers_max: usize, revisions_max: usize) -> WatchLimits {
    WatchLimits {
        watchers_max,
        inbox: InboxLimits {
            revisions_max,
            bytes_max: 1 << 20,
        },
    }
}

fn drained(sub: &Subscription) -> Vec<(u64, Vec<String>)> {
    match sub.drain(usize::MAX) {
        Drained::Batches(b) => b
            .iter()
            .map(|b| (b.revision, b.events.iter().map(|e| e.key.clone()).collect()))
            .collect(),
        Drained::Lagged => panic!("lagged"),
    }
}

#[test]
fn publish_queues_whole_revisions_for_matching_watchers_only() {
    let hub = Hub::new(WatchLimits::default(), 4);
    let (a, at) = hub.subscribe(Filter::Prefix("a/".into())).unwrap();
    assert_eq!(at, 4);
    let (b, _) = hub.subscribe(Filter::Key("b".into())).unwrap();
    let (all, _) = hub.subscribe(Filter::Prefix(String::new())).unwrap();
    hub.publish(
        vec![
            (5, vec![put("a/1", 5), put("c", 5), put("a/2", 5)]),
            (6, vec![put("b", 6)]),
        ],
        &HashSet::new(),
        6,
    );
    assert_eq!(hub.revision(), 6);
    assert_eq!(drained(&a), [(5, vec!["a/1".into(), "a/2".into()])]);
    assert_eq!(drained(&b), [(6, vec!["b".to_string()])]);
    assert_eq!(
        drained(&all),
        [
            (5, vec!["a/1".into(), "c".into(), "a/2".into()]),
            (6, vec!["b".into()])
        ]
    );
}

#[test]
fn an_event_matched_by_many_watchers_is_held_once() {
    let hub = Hub::new(WatchLimits::default(), 0);
    let (x, _) = hub.subscribe(Filter::Prefix("k".into())).unwrap();
    let (y, _) = hub.subscribe(Filter::Key("k1".into())).unwrap();
    hub.publish(vec![(1, vec![put("k1", 1)])], &HashSet::new(), 1);
    let (Drained::Batches(bx), Drained::Batches(by)) = (x.drain(1 << 20), y.drain(1 << 20)) else {
        panic!("lagged")
    };
    assert!(Arc::ptr_eq(&bx[0].events[0], &by[0].events[0]));
}

#[test]
fn subscriptions_unregister_on_drop_and_the_limit_holds() {
    let hub = Hub::new(limits(2, 16), 0);
    let (one, _) = hub.subscribe(Filter::Key("k".into())).unwrap();
    let (two, _) = hub.subscribe(Filter::Key("k".into())).unwrap();
    assert_eq!(
        hub.subscribe(Filter::Key("j".into())).err(),
        Some(TooManyWatchers { watchers_max: 2 })
    );
    assert_eq!(hub.watchers(), 2);
    drop(one);
    assert_eq!(hub.watchers(), 1);
    let (three, _) = hub.subscribe(Filter::Prefix(String::new())).unwrap();
    hub.publish(vec![(1, vec![put("k", 1)])], &HashSet::new(), 1);
    assert_eq!(drained(&two).len(), 1);
    assert_eq!(drained(&three).len(), 1);
    drop((two, three));
    assert_eq!(hub.watchers(), 0);
}

#[test]
fn overflow_and_jump_lag_the_inbox_until_resync() {
    let hub = Hub::new(limits(10, 2), 0);
    let (slow, _) = hub.subscribe(Filter::Key("k".into())).unwrap();
    let (other, _) = hub.subscribe(Filter::Key("j".into())).unwrap();
    for r in 1..=3 {
        hub.publish(vec![(r, vec![put("k", r)])], &HashSet::new(), r);
    }
    assert!(matches!(slow.drain(usize::MAX), Drained::Lagged));
    assert_eq!(slow.resync(), 3, "live again after revision 3");
    hub.publish(vec![(4, vec![put("k", 4)])], &HashSet::new(), 4);
    assert_eq!(drained(&slow), [(4, vec!["k".to_string()])]);

    hub.publish(vec![(5, vec![put("j", 5)])], &HashSet::new(), 5);
    hub.jump(9);
    assert_eq!(hub.revision(), 9);
    assert!(matches!(other.drain(usize::MAX), Drained::Lagged));
    assert!(matches!(slow.drain(usize::MAX), Drained::Lagged));
    assert_eq!(other.resync(), 9);
    assert_eq!(drained(&other), []);
}
