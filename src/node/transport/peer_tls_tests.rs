//! Peer TLS over in-memory streams (`tokio::io::duplex`): certificates from one CA
//! speak for the member they name and no other, in both roles; a certificate from
//! another CA fails the TLS handshake; and the whole peer handshake (TLS, then the
//! hello exchange with a secret) runs inside the TLS stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, Ia5String, IsCa, KeyPair, SanType,
};
use tokio::io::duplex;

use super::*;

/// A CA of its own.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A node certificate from `ca` naming `member` (if any) as its member URI, and
/// the DNS name "localhost".
fn node(ca: &Ca, member: Option<&str>) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    if let Some(m) = member {
        let uri = Ia5String::try_from(member_uri(m)).unwrap();
        params.subject_alt_names.push(SanType::URI(uri));
    }
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    (vec![cert.der().clone()], der)
}

fn tls(ca_of_cert: &Ca, trusted: &Ca, member: Option<&str>) -> PeerTls {
    let (chain, key) = node(ca_of_cert, member);
    let mut roots = RootCertStore::empty();
    roots.add(trusted.cert.der().clone()).unwrap();
    PeerTls::new(chain, key, roots).unwrap()
}

/// A hang guard only (generous).
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("the TLS handshake hung")
}

const ONE: &str = "127.0.0.1:7001";
const TWO: &str = "127.0.0.1:7002";

/// Runs both TLS handshakes: `listener` accepts, `dialer` connects to `dialed`.
/// Returns the certificate each side saw (or why it failed).
async fn both(
    listener: &PeerTls,
    dialer: &PeerTls,
    dialed: &str,
) -> (
    Result<CertificateDer<'static>, TlsFailure>,
    Result<CertificateDer<'static>, String>,
) {
    let (l, d) = duplex(64 * 1024);
    // Both streams live until both handshakes ended (a TLS 1.3 listener writes its
    // session tickets after the dialer is done).
    let (l, d) =
        bounded(async { tokio::join!(listener.accept(l), dialer.connect(d, dialed)) }).await;
    (l.map(|s| s.peer_cert), d.map(|s| s.peer_cert))
}

#[tokio::test]
async fn a_certificate_speaks_for_the_member_it_names_and_no_other() {
    let ca = ca("cluster CA");
    let one = tls(&ca, &ca, Some(ONE));
    let two = tls(&ca, &ca, Some(TWO));
    // Node 2 dials node 1: both TLS handshakes pass, and each side's certificate
    // names its own member entry.
    let (l, d) = both(&one, &two, ONE).await;
    let seen_by_listener = l.unwrap();
    d.unwrap();
    check_member(&seen_by_listener, TWO).unwrap();
    // The listener's check: a dialer with node 2's certificate that claims to be
    // node 1 is refused.
    let e = check_member(&seen_by_listener, ONE).unwrap_err();
    assert!(e.contains("not 127.0.0.1:7001"), "{e}");
    // The dialer's check: dialing member 2 and being answered by node 1's
    // certificate fails the connection before any hello is read.
    let (_, d) = both(&one, &two, TWO).await;
    let e = d.unwrap_err();
    assert!(e.contains("names member(s)"), "{e}");
}

#[tokio::test]
async fn a_certificate_without_a_member_name_speaks_for_no_member() {
    let ca = ca("cluster CA");
    let nameless = tls(&ca, &ca, None);
    let one = tls(&ca, &ca, Some(ONE));
    let (l, d) = both(&one, &nameless, ONE).await;
    d.unwrap();
    let e = check_member(&l.unwrap(), TWO).unwrap_err();
    assert!(e.contains("names no member"), "{e}");
    let (_, d) = both(&nameless, &one, TWO).await;
    assert!(d.unwrap_err().contains("names no member"));
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails_the_tls_handshake_both_ways() {
    let (ours, theirs) = (ca("cluster CA"), ca("another CA"));
    let one = tls(&ours, &ours, Some(ONE));
    // A stranger whose certificate names member 2 but comes from another CA (and
    // trusts ours, so only our side's check can stop it).
    let stranger = tls(&theirs, &ours, Some(TWO));
    let (l, d) = both(&one, &stranger, ONE).await;
    let e = l.map(|_| ()).unwrap_err();
    assert!(e.about_certificate, "{e}");
    assert!(e.message.contains("UnknownIssuer"), "{e}");
    drop(d);
    // The same stranger as a listener: our dialer refuses it.
    let (_, d) = both(&stranger, &one, TWO).await;
    let e = d.unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
}

/// A measurement, not a check (ignored by default): the CPU cost of one whole peer
/// handshake with and without TLS (both sides, in memory, with a secret).
/// `cargo test --release -p concierge --lib peer_tls_handshake_cost -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a measurement; run by hand"]
async fn peer_tls_handshake_cost() {
    use crate::node::transport::auth::ClusterSecret;
    use crate::node::transport::handshake;
    use crate::node::transport::wire::{Hello, PROTOCOL_VERSION};
    let secret = ClusterSecret::new(vec![7; 32]).unwrap();
    let hello = |node: u32| Hello {
        protocol: PROTOCOL_VERSION,
        cluster_id: 1,
        node,
        client_addr: "127.0.0.1:80".into(),
        dir: u64::from(node),
        you_were: None,
    };
    let ca = ca("cluster CA");
    let (one, two) = (tls(&ca, &ca, Some(ONE)), tls(&ca, &ca, Some(TWO)));
    let rounds = 2_000u32;
    for with_tls in [false, true] {
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            let (l, d) = duplex(64 * 1024);
            let listen = async {
                let mut s: Box<dyn PeerIoTest> = if with_tls {
                    Box::new(one.accept(l).await.unwrap().stream)
                } else {
                    Box::new(l)
                };
                let ls = handshake::challenge(&mut s, Some(&secret)).await.unwrap();
                let v = ls.read_hello(&mut s, Some(&secret)).await.unwrap();
                v.welcome(&mut s, Some(&secret), hello(1)).await.unwrap();
            };
            let dial = async {
                let mut s: Box<dyn PeerIoTest> = if with_tls {
                    Box::new(two.connect(d, ONE).await.unwrap().stream)
                } else {
                    Box::new(d)
                };
                handshake::dial(&mut s, Some(&secret), &hello(2))
                    .await
                    .unwrap();
            };
            bounded(async { tokio::join!(listen, dial) }).await;
        }
        let each = start.elapsed() / rounds;
        println!(
            "peer handshake with a secret, {}: {each:?} per handshake (both sides, in memory)",
            if with_tls {
                "with mutual TLS"
            } else {
                "without TLS"
            }
        );
    }
}

trait PeerIoTest: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerIoTest for T {}
