//! A process that knows the member list (so the cluster id) but not the cluster secret
//! dials every node's peer port, claims another member's id and a client address of its
//! own, and sends what would take the cluster over if it were accepted: a Prepare and a
//! Heartbeat with a huge ballot, an Accept, and a snapshot chunk installing an empty
//! state. It tries without a MAC, with a MAC under a wrong secret, and in the protocol
//! before authentication existed (3: a bare hello first; a whole node with
//! another secret: `node_with_another_secret_is_refused.rs`). Nothing changes: no node gets a higher ballot, no member's
//! client address becomes the attacker's, the data stays, writes go on, and each node
//! logs the refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Cluster;
use concierge::node::transport::auth::{self, ClusterSecret, Role};
use concierge::node::transport::frame::{self, HANDSHAKE_FRAME_BYTES_MAX};
use concierge::node::transport::wire::{
    cluster_id, DialerHello, Handshake, Hello, SnapshotMsg, Wire, PROTOCOL_VERSION,
};
use concierge::paxos::{Ballot, Message, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const EVIL_ADDR: &str = "203.0.113.66:666";
const HUGE_ROUND: u64 = 1 << 40;

/// How the attacker introduces itself.
#[derive(Debug, Clone, Copy)]
enum Mac {
    /// Protocol 4 without a MAC.
    None,
    /// Protocol 4 with a MAC under a wrong secret.
    WrongSecret,
    /// Protocol 3 (before authentication): a bare `Hello` first, no challenge awaited.
    Legacy,
}

/// Protocol 3's frames (the same shapes, so the same bytes, as that version's `Wire`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum WireV3 {
    Hello(Hello),
    Paxos(Message),
    Snapshot(SnapshotMsg),
}

/// The legacy attack: a protocol-3 hello and the attack frames, sent at once. Returns
/// whether the node answered with a hello of its own.
async fn attack_legacy(addr: &str, members: &[(u32, String)], claimed: u32) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    let hello = WireV3::Hello(Hello {
        protocol: 3,
        cluster_id: cluster_id(members),
        node: claimed,
        client_addr: EVIL_ADDR.into(),
        dir: 0xbad,
        you_were: None,
    });
    let mut bytes = frame::encode(&hello, 1 << 20).unwrap().to_vec();
    for f in attack_frames(claimed) {
        let f = match f {
            Wire::Paxos(m) => WireV3::Paxos(m),
            Wire::Snapshot(c) => WireV3::Snapshot(c),
        };
        bytes.extend_from_slice(&frame::encode(&f, 1 << 20).unwrap());
    }
    let _ = s.write_all(&bytes).await;
    // A protocol-4 node sends its challenge and then closes; a protocol-3 one welcomes.
    loop {
        let read = tokio::time::timeout(Duration::from_secs(20), frame::read_payload(&mut s, 4096));
        let Ok(Ok(Some(payload))) = read.await else {
            return false;
        };
        if let Ok(WireV3::Hello(_)) = frame::decode_as::<WireV3>(&payload) {
            return true;
        }
    }
}

/// The attack frames that follow the hello (sent at once, without waiting for an answer).
fn attack_frames(claimed: u32) -> Vec<Wire> {
    let huge = Ballot {
        round: HUGE_ROUND,
        node: claimed,
    };
    vec![
        Wire::Paxos(Message::Prepare {
            ballot: huge,
            from: 1,
        }),
        Wire::Paxos(Message::Heartbeat {
            leading: Some(huge),
            commit: 1_000_000,
            read_round: 0,
        }),
        Wire::Paxos(Message::Accept {
            ballot: huge,
            slot: 1_000,
            value: Value::Batch(vec![Bytes::from_static(b"injected")]),
            commit: 1_000,
        }),
        Wire::Snapshot(SnapshotMsg::Chunk {
            transfer: 1,
            slot: 1_000_000,
            seq: 0,
            data: Bytes::new(),
            last: true,
            digest: Some(xxhash_rust::xxh3::xxh3_64(&[])),
        }),
    ]
}

/// Dials `addr`, claims `claimed`, sends the hello (signed per `mac`) and the attack
/// frames. Returns whether the node answered with a welcome (it must not).
async fn attack(addr: &str, members: &[(u32, String)], claimed: u32, mac: Mac) -> bool {
    if let Mac::Legacy = mac {
        return attack_legacy(addr, members, claimed).await;
    }
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    let challenge = tokio::time::timeout(
        Duration::from_secs(10),
        frame::read_message::<Handshake, _>(&mut s, HANDSHAKE_FRAME_BYTES_MAX),
    );
    let Ok(Ok(Some(Handshake::Challenge(c)))) = challenge.await else {
        return false;
    };
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        cluster_id: cluster_id(members),
        node: claimed,
        client_addr: EVIL_ADDR.into(),
        dir: 0xbad,
        you_were: None,
    };
    let nonce = [7u8; 32];
    let mac = match mac {
        Mac::None | Mac::Legacy => None,
        Mac::WrongSecret => {
            let wrong = ClusterSecret::new(b"not-the-cluster-secret".to_vec()).unwrap();
            let t = auth::transcript(Role::Dialer, &c.nonce, &nonce, &hello, None).unwrap();
            Some(wrong.mac(&t))
        }
    };
    let mut bytes = frame::encode(
        &Handshake::Hello(DialerHello { hello, nonce, mac }),
        HANDSHAKE_FRAME_BYTES_MAX,
    )
    .unwrap()
    .to_vec();
    for f in attack_frames(claimed) {
        bytes.extend_from_slice(&frame::encode(&f, 1 << 20).unwrap());
    }
    let _ = s.write_all(&bytes).await;
    // The node closes the connection without a welcome (any byte would be one).
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await,
        Ok(Ok(n)) if n > 0
    )
}

/// (ballot round, member client addresses) as node `i` reports them.
async fn view(c: &Cluster, i: usize) -> (u64, Vec<String>) {
    let j = c.get(i, "/v1/cluster").await.json();
    let round = j["ballot"]["round"].as_u64().unwrap();
    let addrs = j["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["client_addr"].as_str().unwrap_or_default().to_string())
        .collect();
    (round, addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_without_the_secret_changes_nothing() {
    let c = Cluster::start(3, "peer-nosecret").await;
    let members: Vec<(u32, String)> = c
        .nodes
        .iter()
        .map(|n| (n.id, format!("127.0.0.1:{}", n.peer_port)))
        .collect();
    let leader = c.wait_leader(Duration::from_secs(30)).await;
    assert!(c.put(leader, "/v1/keys/k", b"v1").await.status.is_success());

    let mut before = BTreeMap::new();
    for i in 0..3 {
        before.insert(i, view(&c, i).await);
    }

    for mac in [Mac::None, Mac::WrongSecret, Mac::Legacy] {
        for (i, (_, addr)) in members.iter().enumerate() {
            for claimed in members.iter().map(|(id, _)| *id) {
                if claimed == i as u32 + 1 {
                    continue;
                }
                let welcomed = attack(addr, &members, claimed, mac).await;
                assert!(
                    !welcomed,
                    "node {} welcomed an attacker claiming node {claimed} ({mac:?})",
                    i + 1
                );
            }
        }
    }

    // Give anything that slipped through time to take effect, then look.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..3 {
        let (round, addrs) = view(&c, i).await;
        assert!(
            round < HUGE_ROUND,
            "node {}'s ballot round became {round} (before: {:?})",
            i + 1,
            before[&i]
        );
        assert!(
            !addrs.iter().any(|a| a == EVIL_ADDR),
            "node {} took the attacker's client address: {addrs:?}",
            i + 1
        );
        let got = c.get(i, "/v1/keys/k").await;
        assert_eq!(got.status.as_u16(), 200, "{}", got.text());
        assert_eq!(got.body, b"v1", "node {}", i + 1);
    }
    // The cluster still serves writes through every node.
    for i in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let a = c.put(i, &format!("/v1/keys/after{i}"), b"ok").await;
            if a.status.is_success() {
                break;
            }
            assert!(Instant::now() < deadline, "node {}: {}", i + 1, a.text());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for n in &c.nodes {
        let log = std::fs::read_to_string(&n.log).unwrap();
        assert!(
            log.contains("not authenticated"),
            "node {} did not log the refusal",
            n.id
        );
    }
}
