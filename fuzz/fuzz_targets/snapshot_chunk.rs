//! Fuzzes the receiving side of a snapshot transfer: chunk frames decoded from the
//! link (`frame::read_frame`) and checked in arrival order by
//! `snapshot_digest::StreamCheck` (sequence, last flag, whole-snapshot checksum).
//!
//! The input is either raw bytes from the network, or a sender's stream (chunks with
//! the sender's digest on the last one, encoded with `frame::encode`) damaged in transit
//! at the message level so that every chunk still decodes: bytes of a chunk changed or
//! cut, a chunk dropped, repeated or moved, and optionally the survivors renumbered
//! 0, 1, 2, ... with the last flag and digest moved to the new last chunk (a buggy
//! sender), which leaves only the checksum to catch it. Properties:
//! - no panic, whatever the bytes;
//! - a stream the check completes hashes (the receiver's own digest) to the digest it
//!   carried, and no chunk is accepted after completion;
//! - an undamaged sender's stream completes, and its bytes are the sender's bytes;
//! - a damaged stream that completes carries exactly the sender's bytes (damage that
//!   changed nothing, such as an xor with 0, may pass; anything else must not).

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use concierge::node::snapshot_digest::{Progress, SnapshotDigest, StreamCheck};
use concierge::node::transport::frame;
use concierge::node::transport::wire::{SnapshotMsg, Wire};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const MAX: u32 = 1 << 16;

#[derive(Debug, Arbitrary)]
enum Damage {
    Xor { chunk: u8, at: u16, with: u8 },
    Cut { chunk: u8, to: u16 },
    Drop { chunk: u8 },
    Repeat { chunk: u8 },
    Move { from: u8, to: u8 },
}

#[derive(Debug, Arbitrary)]
enum Input {
    Raw(Vec<u8>),
    Stream {
        chunks: Vec<Vec<u8>>,
        damage: Vec<Damage>,
        renumber: bool,
    },
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

struct Chunk {
    seq: u64,
    data: Bytes,
    last: bool,
    digest: Option<u64>,
}

/// Reads frames from `bytes` and runs the chunks through a `StreamCheck`; returns the
/// bytes of the stream if it completed.
fn receive(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut check = StreamCheck::new();
    let mut staged = Vec::new();
    let mut complete: Option<Vec<u8>> = None;
    runtime().block_on(async {
        let mut stream = bytes;
        while let Ok(Some(msg)) = frame::read_frame(&mut stream, MAX).await {
            let Wire::Snapshot(SnapshotMsg::Chunk {
                seq,
                data,
                last,
                digest,
                ..
            }) = msg
            else {
                continue;
            };
            let result = check.chunk(seq, &data, last, digest);
            if complete.is_some() {
                assert!(result.is_err(), "a chunk was accepted after the last one");
                continue;
            }
            match result {
                Ok(Progress::More) => staged.extend_from_slice(&data),
                Ok(Progress::Complete) => {
                    staged.extend_from_slice(&data);
                    let mut own = SnapshotDigest::new();
                    own.update(&staged);
                    assert_eq!(Some(own.value()), digest, "completed on another digest");
                    complete = Some(std::mem::take(&mut staged));
                }
                Err(_) => break, // the receiver refuses the transfer here
            }
        }
    });
    complete
}

fn encode(chunks: &[Chunk]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks {
        let msg = Wire::Snapshot(SnapshotMsg::Chunk {
            transfer: 1,
            slot: 9,
            seq: c.seq,
            data: c.data.clone(),
            last: c.last,
            digest: c.digest,
        });
        out.extend_from_slice(&frame::encode(&msg, MAX).expect("chunks are small"));
    }
    out
}

fn damage(chunks: &mut Vec<Chunk>, d: &Damage) {
    let n = chunks.len();
    if n == 0 {
        return;
    }
    match *d {
        Damage::Xor { chunk, at, with } => {
            let c = &mut chunks[chunk as usize % n];
            if !c.data.is_empty() {
                let mut v = c.data.to_vec();
                let at = at as usize % v.len();
                v[at] ^= with;
                c.data = Bytes::from(v);
            }
        }
        Damage::Cut { chunk, to } => {
            let c = &mut chunks[chunk as usize % n];
            let to = (to as usize).min(c.data.len());
            c.data.truncate(to);
        }
        Damage::Drop { chunk } => {
            chunks.remove(chunk as usize % n);
        }
        Damage::Repeat { chunk } => {
            let c = &chunks[chunk as usize % n];
            let copy = Chunk {
                seq: c.seq,
                data: c.data.clone(),
                last: c.last,
                digest: c.digest,
            };
            chunks.insert(chunk as usize % n, copy);
        }
        Damage::Move { from, to } => {
            let c = chunks.remove(from as usize % n);
            chunks.insert(to as usize % n, c);
        }
    }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Raw(bytes) => {
            let _ = receive(&bytes);
        }
        Input::Stream {
            chunks,
            damage: damages,
            renumber,
        } => {
            let mut parts: Vec<Vec<u8>> = chunks
                .into_iter()
                .take(16)
                .map(|mut c| {
                    c.truncate(2048);
                    c
                })
                .filter(|c| !c.is_empty())
                .collect();
            if parts.is_empty() {
                parts.push(Vec::new()); // an empty snapshot: one empty last chunk
            }
            let sent: Vec<u8> = parts.concat();
            let mut digest = SnapshotDigest::new();
            digest.update(&sent);
            let n = parts.len();
            let mut stream: Vec<Chunk> = parts
                .into_iter()
                .enumerate()
                .map(|(k, data)| Chunk {
                    seq: k as u64,
                    data: Bytes::from(data),
                    last: k + 1 == n,
                    digest: (k + 1 == n).then(|| digest.value()),
                })
                .collect();
            assert_eq!(receive(&encode(&stream)).as_deref(), Some(&sent[..]));
            if damages.is_empty() {
                return;
            }
            for d in damages.iter().take(4) {
                damage(&mut stream, d);
            }
            if renumber {
                let n = stream.len();
                for (k, c) in stream.iter_mut().enumerate() {
                    c.seq = k as u64;
                    c.last = k + 1 == n;
                    c.digest = c.last.then(|| digest.value());
                }
            }
            if let Some(got) = receive(&encode(&stream)) {
                assert_eq!(got, sent, "a damaged stream completed with other bytes");
            }
        }
    }
});
