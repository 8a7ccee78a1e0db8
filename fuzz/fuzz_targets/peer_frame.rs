//! Fuzzes the peer link's decoders: a frame payload (`frame::decode`, rmp-serde of
//! `Wire`; `frame::decode_as::<Handshake>`, the handshake frames), a byte stream of length-prefixed frames (`frame::read_frame`), and the
//! command envelope (`envelope::unwrap`) of every command a decoded message carries.
//!
//! Properties, beyond "no panic, no hang, no huge allocation":
//! - a payload that decodes re-encodes (`frame::encode`) to a frame that decodes to the
//!   same message (compared by its encoding: encoding is a fixed point after one trip);
//! - the stream reader never returns more frames than 5-byte units in the input, and a
//!   frame it returns is at most the `max` it was given;
//! - an envelope that unwraps re-wraps to exactly the bytes it came from.

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use concierge::node::envelope;
use concierge::node::transport::frame::{self, LEN_BYTES};
use concierge::node::transport::wire::{Handshake, Wire};
use concierge::paxos::{Message, Value};
use libfuzzer_sys::fuzz_target;

const MAX: u32 = 4096;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fn check_envelope(command: &Bytes) {
    if let (Some(origin), inner) = envelope::unwrap(command) {
        assert_eq!(&envelope::wrap(origin, &inner), command);
    }
}

fn check_values(msg: &Wire) {
    let Wire::Paxos(m) = msg else { return };
    let values: Vec<&Value> = match m {
        Message::Accept { value, .. } => vec![value],
        Message::Promise { accepted, .. } => accepted.iter().map(|(_, _, v)| v).collect(),
        _ => Vec::new(),
    };
    for v in values {
        if let Value::Batch(commands) = v {
            commands.iter().for_each(check_envelope);
        }
    }
}

fn round_trip(msg: &Wire) {
    let Ok(once) = frame::encode(msg, u32::MAX) else {
        return; // a value the encoder refuses (it names the reason) is fine
    };
    let again = frame::decode(&once[LEN_BYTES..]).expect("a re-encoded frame decodes");
    let twice = frame::encode(&again, u32::MAX).expect("it encoded once");
    assert_eq!(once, twice, "encoding is not a fixed point");
}

fuzz_target!(|data: &[u8]| {
    check_envelope(&Bytes::copy_from_slice(data));
    if let Ok(msg) = frame::decode(data) {
        round_trip(&msg);
        check_values(&msg);
    }
    if let Ok(h) = frame::decode_as::<Handshake>(data) {
        // A handshake message that decodes re-encodes to one that decodes to itself.
        if let Ok(once) = frame::encode(&h, u32::MAX) {
            let again: Handshake = frame::decode_as(&once[LEN_BYTES..]).expect("it decodes");
            assert_eq!(again, h);
        }
    }
    runtime().block_on(async {
        let mut stream = data;
        let mut frames = 0usize;
        loop {
            match frame::read_payload(&mut stream, MAX).await {
                Ok(Some(payload)) => {
                    assert!(!payload.is_empty() && payload.len() <= MAX as usize);
                    frames += 1;
                    assert!(frames * (LEN_BYTES + 1) <= data.len());
                    if let Ok(msg) = frame::decode(&payload) {
                        check_values(&msg);
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
    });
});
