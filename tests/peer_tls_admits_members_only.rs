//! A three-node cluster with mutual TLS between peers (certificates from
//! `concierge certs --members`, plus the cluster secret) elects, writes through one
//! follower and reads through another; its peer port speaks no plaintext. Then two
//! impostors dial every node, each knowing the cluster secret and the member list:
//! - one with a certificate from another CA (naming a member entry): the TLS handshake
//!   fails at the listener;
//! - one with a valid cluster certificate (node 3's) that claims another member's id:
//!   the listener refuses it before it acts on its hello.
//!
//! Both send a hello with a client address of their own and frames that would take
//! the cluster over if accepted. Nothing changes: ballots, member client addresses and
//! data stay as they were, and the nodes log why they refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Cluster;
use concierge::node::transport::auth::ClusterSecret;
use concierge::node::transport::frame::{self, HANDSHAKE_FRAME_BYTES_MAX};
use concierge::node::transport::handshake;
use concierge::node::transport::peer_tls::PeerTls;
use concierge::node::transport::wire::{cluster_id, Handshake, Hello, Wire, PROTOCOL_VERSION};
use concierge::paxos::{Ballot, Message};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_concierge");
const EVIL_ADDR: &str = "203.0.113.66:666";
const HUGE_ROUND: u64 = 1 << 40;

/// `concierge certs` for nodes n1..n3 naming the cluster's member entries.
fn make_certs(dir: &Path, concierges: &str) {
    let out = Command::new(BIN)
        .args(["certs", "--nodes", "n1,n2,n3", "--hosts", "127.0.0.1"])
        .args(["--members", concierges])
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "concierge certs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An impostor's TLS: its certificate and key, trusting `ca` (so that only the
/// listener's checks can stop it).
fn impostor(cert: &Path, key: &Path, ca: &Path) -> PeerTls {
    let chain = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    PeerTls::new(chain, key, roots).unwrap()
}

/// Dials `addr` (member entry), runs TLS and the hello exchange with the cluster
/// secret claiming `claimed` and the attacker's client address, then sends frames
/// that would raise every ballot. Returns whether the node welcomed it (it must not).
async fn attack(
    tls: &PeerTls,
    secret: &ClusterSecret,
    addr: &str,
    members: &[(u32, String)],
    claimed: u32,
) -> bool {
    let Ok(tcp) = TcpStream::connect(addr).await else {
        return false;
    };
    // (With TLS 1.3 the dialer may finish its side before the listener has checked
    // its certificate, so a refusal can show only at the hello exchange.)
    let Ok(Ok(secured)) =
        tokio::time::timeout(Duration::from_secs(10), tls.connect(tcp, addr)).await
    else {
        return false;
    };
    let mut s = secured.stream;
    let hello = Hello {
        protocol: PROTOCOL_VERSION,
        cluster_id: cluster_id(members),
        node: claimed,
        client_addr: EVIL_ADDR.into(),
        dir: 0xbad,
        you_were: None,
    };
    let dialed = tokio::time::timeout(
        Duration::from_secs(10),
        handshake::dial(&mut s, Some(secret), &hello),
    )
    .await;
    let welcomed = matches!(dialed, Ok(Ok(_)));
    let huge = Ballot {
        round: HUGE_ROUND,
        node: claimed,
    };
    for m in [
        Message::Prepare {
            ballot: huge,
            from: 1,
        },
        Message::Heartbeat {
            leading: Some(huge),
            commit: 1_000_000,
            read_round: 0,
        },
    ] {
        let _ = s
            .write_all(&frame::encode(&Wire::Paxos(m), 1 << 20).unwrap())
            .await;
    }
    let _ = s.flush().await;
    welcomed
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

fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_tls_admits_members_only() {
    let mut c = Cluster::prepare(3, "peer-mtls", &[], true);
    let certs = c.root.join("certs");
    make_certs(&certs, &c.concierges);
    c.node_env = (1..=3)
        .map(|i| {
            vec![
                ("PEER_TLS_CERT_FILE", file(&certs, &format!("n{i}.pem"))),
                ("PEER_TLS_KEY_FILE", file(&certs, &format!("n{i}-key.pem"))),
                ("PEER_TLS_CA_FILE", file(&certs, "ca.pem")),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.display().to_string()))
            .collect()
        })
        .collect();
    for i in 0..3 {
        c.launch(i);
    }
    for i in 0..3 {
        c.wait_ready(i, Duration::from_secs(30)).await;
    }
    let members: Vec<(u32, String)> = c
        .nodes
        .iter()
        .map(|n| (n.id, format!("127.0.0.1:{}", n.peer_port)))
        .collect();

    // Elects; writes through one follower, reads through the other.
    let leader = c.wait_leader(Duration::from_secs(30)).await;
    let f1 = c.other_than(leader);
    let f2 = (0..3).find(|&i| i != leader && i != f1).unwrap();
    let put = c.put(f1, "/v1/keys/k", b"v1").await;
    assert!(put.status.is_success(), "{}", put.text());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = c.get(f2, "/v1/keys/k").await;
        if got.status.as_u16() == 200 {
            assert_eq!(got.body, b"v1");
            break;
        }
        assert!(Instant::now() < deadline, "{}", got.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The peer port speaks TLS only: a plaintext dialer gets no challenge.
    let mut plain = TcpStream::connect(&members[0].1).await.unwrap();
    let challenge = tokio::time::timeout(
        Duration::from_secs(5),
        frame::read_message::<Handshake, _>(&mut plain, HANDSHAKE_FRAME_BYTES_MAX),
    )
    .await;
    assert!(
        !matches!(challenge, Ok(Ok(Some(Handshake::Challenge(_))))),
        "the TLS peer port sent a plaintext challenge"
    );

    let before: Vec<(u64, Vec<String>)> = {
        let mut v = Vec::new();
        for i in 0..3 {
            v.push(view(&c, i).await);
        }
        v
    };
    let secret_file = c
        .env
        .iter()
        .find(|(k, _)| k == "CLUSTER_SECRET_FILE")
        .map(|(_, v)| v.clone())
        .unwrap();
    let secret_bytes = std::fs::read_to_string(secret_file).unwrap();
    let secret = ClusterSecret::new(secret_bytes.trim().as_bytes().to_vec()).unwrap();

    // Another CA's certificate naming node 3's entry, trusting the cluster's CA.
    let other = c.root.join("other-certs");
    make_certs(&other, &c.concierges);
    let foreign = impostor(
        &file(&other, "n3.pem"),
        &file(&other, "n3-key.pem"),
        &file(&certs, "ca.pem"),
    );
    // Node 3's own, valid certificate.
    let insider = impostor(
        &file(&certs, "n3.pem"),
        &file(&certs, "n3-key.pem"),
        &file(&certs, "ca.pem"),
    );
    for (i, (_, addr)) in members.iter().enumerate().take(2) {
        assert!(
            !attack(&foreign, &secret, addr, &members, 3).await,
            "node {} welcomed a certificate from another CA",
            i + 1
        );
        for claimed in [1u32, 2] {
            if claimed == i as u32 + 1 {
                continue;
            }
            assert!(
                !attack(&insider, &secret, addr, &members, claimed).await,
                "node {} welcomed node 3's certificate claiming node {claimed}",
                i + 1
            );
        }
    }

    // Give anything that slipped through time to take effect, then look.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, was) in before.iter().enumerate() {
        let (round, addrs) = view(&c, i).await;
        assert!(
            round < HUGE_ROUND,
            "node {}'s ballot round became {round} (before: {was:?})",
            i + 1
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
    let put = c.put(f2, "/v1/keys/after", b"ok").await;
    assert!(put.status.is_success(), "{}", put.text());
    for n in &c.nodes[..2] {
        let log = std::fs::read_to_string(&n.log).unwrap();
        assert!(
            log.contains("refused: TLS: invalid peer certificate"),
            "node {} did not log the foreign certificate",
            n.id
        );
        assert!(
            log.contains("but its certificate names member(s)"),
            "node {} did not log the impostor",
            n.id
        );
        assert!(
            !log.contains("NOT encrypted"),
            "node {} warned of a plaintext peer link",
            n.id
        );
    }
}
