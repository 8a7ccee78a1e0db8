//! The handshake over in-memory streams (`tokio::io::duplex`): both roles honest, a
//! wrong secret on either side, a hello altered in transit, replayed frames, a secret on
//! one side only, and an oversize frame before authentication.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::io::{duplex, AsyncWriteExt, DuplexStream};

use super::*;
use crate::node::transport::frame::read_message;

fn secret(b: u8) -> ClusterSecret {
    ClusterSecret::new(vec![b; 32]).unwrap()
}

fn hello(node: u32) -> Hello {
    Hello {
        protocol: PROTOCOL_VERSION,
        cluster_id: 0xc0ffee,
        node,
        client_addr: format!("127.0.0.1:80{node:02}"),
        dir: u64::from(node) << 32 | 5,
        you_were: None,
    }
}

/// A hang guard only (generous): every exchange here completes or fails at once.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("the handshake hung")
}

/// A listener that challenges (secret 1) and reads the dialer's hello, no further.
async fn challenged_hello(mut a: DuplexStream) -> Result<Hello, HandshakeError> {
    let l = challenge(&mut a, Some(&secret(1))).await.unwrap();
    l.read_hello(&mut a, Some(&secret(1)))
        .await
        .map(|v| v.hello)
}

/// An honest listener: challenge, verify, welcome with `hello(1)`.
async fn listen(
    mut s: DuplexStream,
    secret: Option<ClusterSecret>,
) -> Result<Hello, HandshakeError> {
    let l = challenge(&mut s, secret.as_ref()).await?;
    let v = l.read_hello(&mut s, secret.as_ref()).await?;
    let mut mine = hello(1);
    mine.you_were = Some(77);
    v.welcome(&mut s, secret.as_ref(), mine).await?;
    Ok(v.hello)
}

async fn run_both(
    listener: Option<ClusterSecret>,
    dialer: Option<ClusterSecret>,
) -> (Result<Hello, HandshakeError>, Result<Hello, HandshakeError>) {
    let (a, mut b) = duplex(64 * 1024);
    let l = tokio::spawn(listen(a, listener));
    let d = dial(&mut b, dialer.as_ref(), &hello(2)).await;
    drop(b); // a refused dialer closes, so a listener waiting for its hello ends too
    (bounded(l).await.unwrap(), d)
}

fn unauthenticated<T: std::fmt::Debug>(r: &Result<T, HandshakeError>) -> bool {
    matches!(r, Err(HandshakeError::Unauthenticated(_)))
}

#[tokio::test]
async fn the_right_secret_authenticates_both_sides() {
    let (l, d) = bounded(run_both(Some(secret(1)), Some(secret(1)))).await;
    assert_eq!(l.unwrap(), hello(2));
    let d = d.unwrap();
    assert_eq!((d.node, d.you_were), (1, Some(77)));
}

#[tokio::test]
async fn without_secrets_on_both_sides_the_handshake_still_works() {
    let (l, d) = bounded(run_both(None, None)).await;
    assert_eq!(l.unwrap(), hello(2));
    assert_eq!(d.unwrap().node, 1);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_listener() {
    let (l, d) = bounded(run_both(Some(secret(1)), Some(secret(2)))).await;
    assert!(unauthenticated(&l), "{l:?}");
    // The listener sent nothing after its challenge: the dialer sees the connection end.
    assert!(matches!(d, Err(HandshakeError::Closed)), "{d:?}");
}

#[tokio::test]
async fn a_secret_on_one_side_only_is_refused_both_ways() {
    let (l, d) = bounded(run_both(Some(secret(1)), None)).await;
    assert!(unauthenticated(&d), "{d:?}");
    assert!(l.is_err(), "{l:?}");
    let (l, d) = bounded(run_both(None, Some(secret(1)))).await;
    assert!(unauthenticated(&d), "{d:?}");
    assert!(l.is_err(), "{l:?}");
}

/// An impostor listener: it accepts any hello and signs its welcome with `its_secret`.
async fn impostor(mut s: DuplexStream, its_secret: ClusterSecret) {
    let l = challenge(&mut s, Some(&its_secret)).await.unwrap();
    let Some(Handshake::Hello(h)) = read_message(&mut s, HANDSHAKE_FRAME_BYTES_MAX)
        .await
        .unwrap()
    else {
        panic!("no hello");
    };
    let mine = hello(1);
    let t = auth::transcript(Role::Listener, &l.nonce, &h.nonce, &h.hello, Some(&mine)).unwrap();
    let w = Handshake::Welcome(Welcome {
        hello: mine,
        mac: Some(its_secret.mac(&t)),
    });
    let _ = s
        .write_all(&frame::encode(&w, HANDSHAKE_FRAME_BYTES_MAX).unwrap())
        .await;
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_dialer() {
    let (a, mut b) = duplex(64 * 1024);
    let l = tokio::spawn(impostor(a, secret(9)));
    let d = bounded(dial(&mut b, Some(&secret(1)), &hello(2))).await;
    assert!(unauthenticated(&d), "{d:?}");
    bounded(l).await.unwrap();
}

#[tokio::test]
async fn a_hello_altered_in_transit_is_refused() {
    // Each field of the dialer's hello, changed after its MAC was computed.
    let edits: [fn(&mut DialerHello); 5] = [
        |h| h.hello.node = 3,
        |h| h.hello.client_addr = "evil:1".into(),
        |h| h.hello.dir ^= 1,
        |h| h.hello.cluster_id ^= 1,
        |h| h.nonce[0] ^= 1,
    ];
    for edit in edits {
        let (a, mut b) = duplex(64 * 1024);
        let l = tokio::spawn(challenged_hello(a));
        let Some(Handshake::Challenge(c)) = read_message(&mut b, HANDSHAKE_FRAME_BYTES_MAX)
            .await
            .unwrap()
        else {
            panic!("no challenge");
        };
        let nonce = [4u8; 32];
        let t = auth::transcript(Role::Dialer, &c.nonce, &nonce, &hello(2), None).unwrap();
        let mut h = DialerHello {
            hello: hello(2),
            nonce,
            mac: Some(secret(1).mac(&t)),
        };
        edit(&mut h);
        b.write_all(&frame::encode(&Handshake::Hello(h), 4096).unwrap())
            .await
            .unwrap();
        let got = bounded(l).await.unwrap();
        assert!(unauthenticated(&got), "{got:?}");
    }
}

#[tokio::test]
async fn a_replayed_hello_is_refused() {
    // Record an honest dialer's hello frame from one connection ...
    let (mut a, mut b) = duplex(64 * 1024);
    let l = tokio::spawn(async move {
        let l = challenge(&mut a, Some(&secret(1))).await.unwrap();
        let v = l.read_hello(&mut a, Some(&secret(1))).await.unwrap();
        (l, v) // then hangs up without a welcome
    });
    let d = tokio::spawn(async move {
        let _ = dial(&mut b, Some(&secret(1)), &hello(2)).await;
    });
    let (first, verified) = bounded(l).await.unwrap();
    drop(verified);
    bounded(d).await.unwrap();
    let recorded = {
        let t = auth::transcript(Role::Dialer, &first.nonce, &[6; 32], &hello(2), None).unwrap();
        Handshake::Hello(DialerHello {
            hello: hello(2),
            nonce: [6; 32],
            mac: Some(secret(1).mac(&t)),
        })
    };
    // ... (a hello valid for that connection's challenge) and play it to a new one.
    let (mut a, mut b) = duplex(64 * 1024);
    let l = tokio::spawn(async move {
        let l = challenge(&mut a, Some(&secret(1))).await.unwrap();
        let fresh = l.nonce;
        (
            fresh,
            l.read_hello(&mut a, Some(&secret(1)))
                .await
                .map(|v| v.hello),
        )
    });
    let _challenge: Option<Handshake> = read_message(&mut b, 4096).await.unwrap();
    b.write_all(&frame::encode(&recorded, 4096).unwrap())
        .await
        .unwrap();
    let (fresh, got) = bounded(l).await.unwrap();
    assert_ne!(fresh, first.nonce, "the listener's nonce is fresh");
    assert!(unauthenticated(&got), "{got:?}");
}

#[tokio::test]
async fn a_replayed_welcome_is_refused() {
    // A welcome valid for one exchange, replayed by an impostor to a new dialer whose
    // nonce differs: the dialer refuses it.
    let old_listener_nonce = [1u8; 32];
    let old_dialer_nonce = [2u8; 32];
    let t = auth::transcript(
        Role::Listener,
        &old_listener_nonce,
        &old_dialer_nonce,
        &hello(2),
        Some(&hello(1)),
    )
    .unwrap();
    let replay = Handshake::Welcome(Welcome {
        hello: hello(1),
        mac: Some(secret(1).mac(&t)),
    });
    let (mut a, mut b) = duplex(64 * 1024);
    let l = tokio::spawn(async move {
        let c = Handshake::Challenge(Challenge {
            protocol: PROTOCOL_VERSION,
            nonce: old_listener_nonce,
            authenticated: true,
        });
        a.write_all(&frame::encode(&c, 4096).unwrap())
            .await
            .unwrap();
        let _hello: Option<Handshake> = read_message(&mut a, 4096).await.unwrap();
        a.write_all(&frame::encode(&replay, 4096).unwrap())
            .await
            .unwrap();
    });
    let d = bounded(dial(&mut b, Some(&secret(1)), &hello(2))).await;
    assert!(unauthenticated(&d), "{d:?}");
    bounded(l).await.unwrap();
}

#[tokio::test]
async fn an_oversize_frame_before_authentication_is_refused_unallocated() {
    let (a, mut b) = duplex(64 * 1024);
    let l = tokio::spawn(challenged_hello(a));
    let _challenge: Option<Handshake> = read_message(&mut b, 4096).await.unwrap();
    // 64 MiB announced (the post-handshake cap), and the stream kept open: a reader that
    // believed the header would allocate it and wait for the bytes.
    b.write_all(&(64u32 << 20).to_be_bytes()).await.unwrap();
    let got = bounded(l).await.unwrap();
    match got {
        Err(HandshakeError::Frame(FrameError::TooLarge { len, max })) => {
            assert_eq!((len, max), (64 << 20, HANDSHAKE_FRAME_BYTES_MAX));
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    drop(b);
    // The dialer's side has the same cap.
    let (mut a, mut b) = duplex(64 * 1024);
    a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let d = bounded(dial(&mut b, Some(&secret(1)), &hello(2))).await;
    assert!(
        matches!(
            d,
            Err(HandshakeError::Frame(FrameError::TooLarge {
                max: 4096,
                ..
            }))
        ),
        "{d:?}"
    );
}

#[tokio::test]
async fn a_post_handshake_frame_instead_of_a_hello_is_refused() {
    let (a, mut b) = duplex(64 * 1024);
    let l = tokio::spawn(challenged_hello(a));
    let _challenge: Option<Handshake> = read_message(&mut b, 4096).await.unwrap();
    let paxos = super::super::wire::Wire::Paxos(crate::paxos::Message::Heartbeat {
        leading: None,
        commit: 1,
        read_round: 0,
    });
    b.write_all(&frame::encode(&paxos, 4096).unwrap())
        .await
        .unwrap();
    let got = bounded(l).await.unwrap();
    assert!(
        matches!(
            got,
            Err(HandshakeError::Frame(FrameError::Decode { .. })
                | HandshakeError::Unexpected { .. })
        ),
        "{got:?}"
    );
}

/// A measurement, not a check (ignored by default): the CPU cost of one whole
/// handshake (both sides, in memory, so without network round trips), with and
/// without a secret. `cargo test --release -p concierge --lib
/// handshake_cost -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a measurement; run by hand"]
async fn handshake_cost() {
    for secret in [None, Some(secret(1))] {
        let rounds = 20_000u32;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            let (l, d) = run_both(secret.clone(), secret.clone()).await;
            assert!(l.is_ok() && d.is_ok());
        }
        let each = start.elapsed() / rounds;
        println!(
            "handshake, {}: {each:?} per handshake (both sides, in memory)",
            if secret.is_some() {
                "with a secret"
            } else {
                "without a secret"
            }
        );
    }
}
