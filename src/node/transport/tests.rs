//! Transport tests over real loopback sockets: delivery and handshake, refusal of a
//! foreign cluster, and a garbage frame closing only its own connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::wire::{cluster_id, Hello, PROTOCOL_VERSION};
use super::*;
use crate::paxos::Ballot;

fn ctx(id: NodeId, members: &[(NodeId, String)]) -> LinkContext {
    LinkContext {
        self_id: id,
        cluster_id: cluster_id(members),
        client_addr: format!("client-{id}"),
        frame_bytes_max: 1 << 20,
        connect_timeout_ms: 1000,
        handshake_timeout_ms: 1000,
        write_timeout_ms: 1000,
        reconnect_backoff_ms_min: 10,
        reconnect_backoff_ms_max: 100,
        inbound_handshakes_max: 8,
        secret: None,
        tls: None,
        dir_ids: crate::node::dir_ids::DirIds::in_memory(
            id,
            &members.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
        ),
    }
}

async fn pair() -> (
    Vec<(NodeId, String)>,
    Vec<Transport>,
    Vec<mpsc::Receiver<Inbound>>,
) {
    pair_with(None).await
}

async fn pair_with(
    secret: Option<auth::ClusterSecret>,
) -> (
    Vec<(NodeId, String)>,
    Vec<Transport>,
    Vec<mpsc::Receiver<Inbound>>,
) {
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let members = vec![
        (1, l1.local_addr().unwrap().to_string()),
        (2, l2.local_addr().unwrap().to_string()),
    ];
    let (tx1, rx1) = mpsc::channel(16);
    let (tx2, rx2) = mpsc::channel(16);
    let (mut c1, mut c2) = (ctx(1, &members), ctx(2, &members));
    c1.secret = secret.clone();
    c2.secret = secret;
    let t1 = Transport::start(c1, &members, queue_limits(2), l1, tx1);
    let t2 = Transport::start(c2, &members, queue_limits(2), l2, tx2);
    (members, vec![t1, t2], vec![rx1, rx2])
}

fn heartbeat(commit: u64) -> Message {
    Message::Heartbeat {
        leading: Some(Ballot { round: 1, node: 1 }),
        commit,
        read_round: 0,
    }
}

async fn recv(rx: &mut mpsc::Receiver<Inbound>) -> Inbound {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("nothing received in time")
        .expect("channel closed")
}

#[tokio::test]
async fn messages_arrive_and_handshake_reports_client_addresses() {
    let (_members, ts, mut rxs) = pair().await;
    ts[0].send(2, &Wire::Paxos(heartbeat(7)));
    match recv(&mut rxs[1]).await {
        Inbound::Paxos(from, msg) => {
            assert_eq!(from, 1);
            assert_eq!(msg, heartbeat(7));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(ts[0].link(2).unwrap().connected());
    assert_eq!(
        ts[0].link(2).unwrap().client_addr().as_deref(),
        Some("client-2")
    );
    // The listener side learnt the dialer's client address from its hello.
    assert_eq!(
        ts[1].link(1).unwrap().client_addr().as_deref(),
        Some("client-1")
    );
    assert!(ts[0].link(9).is_none());
}

#[tokio::test]
async fn with_a_secret_both_links_authenticate_and_deliver() {
    let secret = auth::ClusterSecret::new(b"a transport test secret".to_vec()).unwrap();
    let (_members, ts, mut rxs) = pair_with(Some(secret)).await;
    delivered_eventually(&ts[0], &mut rxs[1], 2, 5).await;
    delivered_eventually(&ts[1], &mut rxs[0], 1, 6).await;
    assert_eq!(
        ts[0].link(2).unwrap().client_addr().as_deref(),
        Some("client-2")
    );
    assert_eq!(
        ts[1].link(1).unwrap().client_addr().as_deref(),
        Some("client-1")
    );
}

#[tokio::test]
async fn foreign_cluster_is_refused_and_garbage_closes_only_that_connection() {
    let (members, ts, mut rxs) = pair().await;
    let addr2 = &members[1].1;

    // A node of another cluster: no welcome comes back, the connection is closed.
    let mut foreign = TcpStream::connect(addr2).await.unwrap();
    let mut hello = Hello {
        protocol: PROTOCOL_VERSION,
        cluster_id: cluster_id(&members) ^ 1,
        node: 1,
        client_addr: "evil".into(),
        dir: 7,
        you_were: None,
    };
    let refused = handshake::dial(&mut foreign, None, &hello).await;
    assert!(
        matches!(refused, Err(handshake::HandshakeError::Closed)),
        "a foreign node got an answer: {refused:?}"
    );

    // A proper handshake followed by an oversize frame header: that connection closes.
    let mut rogue = TcpStream::connect(addr2).await.unwrap();
    hello.cluster_id = cluster_id(&members);
    hello.client_addr = "client-1".into();
    hello.dir = 1 << 32 | 1;
    let reply = handshake::dial(&mut rogue, None, &hello).await.unwrap();
    assert_eq!(reply.node, 2);
    rogue.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), rogue.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the connection survived an oversize frame");

    // The real link still works (the rogue's connection, authenticated as node 1 since
    // no secret is configured, replaced the real one for a moment: node 1 redials).
    delivered_eventually(&ts[0], &mut rxs[1], 2, 9).await;
}

/// Sends heartbeat(`commit`) from `t` to `to` until `rx` receives it (a message written
/// into a connection the listener just replaced may be lost; Paxos tolerates that).
async fn delivered_eventually(
    t: &Transport,
    rx: &mut mpsc::Receiver<Inbound>,
    to: NodeId,
    commit: u64,
) {
    for _ in 0..300 {
        t.send(to, &Wire::Paxos(heartbeat(commit)));
        let wait = tokio::time::timeout(Duration::from_millis(100), async {
            loop {
                if let Some(Inbound::Paxos(_, m)) = rx.recv().await {
                    if m == heartbeat(commit) {
                        return;
                    }
                }
            }
        });
        if wait.await.is_ok() {
            return;
        }
    }
    panic!("heartbeat {commit} never arrived");
}

#[tokio::test]
async fn a_dead_peer_costs_bounded_memory() {
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let members = vec![
        (1, l1.local_addr().unwrap().to_string()),
        (2, dead.local_addr().unwrap().to_string()),
    ];
    drop(dead); // nobody listens there any more
    let (tx, _rx) = mpsc::channel(16);
    let t = Transport::start(ctx(1, &members), &members, queue_limits(2), l1, tx);
    for i in 0..1000 {
        t.send(2, &Wire::Paxos(heartbeat(i)));
    }
    let link = t.link(2).unwrap();
    assert!(link.queue.len() <= 64);
    assert_eq!(link.queue.dropped(), 1000 - 64);
    assert!(!link.connected());
    t.shutdown().await;
}

/// Queue bounds for these tests: 64 frames, 64 MiB, `bulk_max` bulk frames.
fn queue_limits(bulk_max: usize) -> QueueLimits {
    QueueLimits {
        messages_max: 64,
        bytes_max: 64 << 20,
        bulk_max,
    }
}
