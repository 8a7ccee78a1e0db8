//! The whole-snapshot checksum of a snapshot transfer, and the receiver's check of a
//! chunk stream against it.
//!
//! The sender hashes the bytes of every chunk it sends, in order, with XXH3-64 (seed 0)
//! and puts the hash in the LAST chunk's `digest` (`docs/peer-protocol.md`). The
//! receiver hashes the bytes it hands to `install_chunk` the same way and calls
//! `finish_install` only if the two match. The frame layer only proves that a frame
//! decodes; this proves that the staged state is byte for byte what the sender's state
//! machine produced (a chunk altered, dropped or repeated by a buggy or stale sender,
//! or by memory or a middlebox, fails here instead of becoming the new state).
//!
//! Invariants of an accepted stream: chunks numbered 0, 1, 2, ... with no gap; exactly
//! one chunk has `last`, it is the final one, and it alone carries a digest, which
//! equals the hash of the concatenation of every chunk's data.

use xxhash_rust::xxh3::Xxh3;

/// The running XXH3-64 of the bytes of a snapshot stream.
#[derive(Clone, Default)]
pub struct SnapshotDigest(Xxh3);

impl SnapshotDigest {
    /// The digest of no bytes so far.
    pub fn new() -> SnapshotDigest {
        SnapshotDigest(Xxh3::new())
    }

    /// Adds the next chunk's bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The hash of every byte added so far.
    pub fn value(&self) -> u64 {
        self.0.digest()
    }
}

impl std::fmt::Debug for SnapshotDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SnapshotDigest({:#018x})", self.value())
    }
}

/// Where a stream stands after a chunk passed [`StreamCheck::chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More chunks must follow.
    More,
    /// That was the last chunk and the whole stream matches its digest: install it.
    Complete,
}

/// The receiver's check of one transfer's chunks, in arrival order.
#[derive(Debug, Default)]
pub struct StreamCheck {
    next_seq: u64,
    digest: SnapshotDigest,
    complete: bool,
}

impl StreamCheck {
    /// A check expecting chunk 0.
    pub fn new() -> StreamCheck {
        StreamCheck::default()
    }

    /// Checks the next chunk; an error means the stream must be refused (the staged
    /// snapshot is discarded and the sender told so).
    pub fn chunk(
        &mut self,
        seq: u64,
        data: &[u8],
        last: bool,
        digest: Option<u64>,
    ) -> Result<Progress, String> {
        if self.complete {
            return Err(format!("chunk {seq} after the last chunk"));
        }
        if seq != self.next_seq {
            return Err(format!(
                "chunk {seq} out of order, expected {}",
                self.next_seq
            ));
        }
        self.digest.update(data);
        self.next_seq += 1;
        match (last, digest) {
            (false, None) => Ok(Progress::More),
            (false, Some(_)) => Err(format!("chunk {seq} carries a digest but is not last")),
            (true, None) => Err(format!("last chunk {seq} carries no digest")),
            (true, Some(want)) => {
                let got = self.digest.value();
                if got != want {
                    return Err(format!(
                        "snapshot checksum mismatch: received bytes hash to {got:#018x}, \
                         the sender's digest is {want:#018x}"
                    ));
                }
                self.complete = true;
                Ok(Progress::Complete)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(chunks: &[&[u8]]) -> u64 {
        let mut d = SnapshotDigest::new();
        for c in chunks {
            d.update(c);
        }
        d.value()
    }

    #[test]
    fn digest_is_xxh3_of_the_concatenation() {
        let whole = xxhash_rust::xxh3::xxh3_64(b"abcdef");
        assert_eq!(digest_of(&[b"ab", b"cdef"]), whole);
        assert_eq!(digest_of(&[b"abc", b"", b"def"]), whole);
    }

    #[test]
    fn a_whole_stream_completes_and_any_change_is_refused() {
        let chunks: [&[u8]; 3] = [b"alpha ", b"beta ", b"gamma"];
        let want = digest_of(&chunks);
        let run = |chunks: &[&[u8]], digest: u64| {
            let mut c = StreamCheck::new();
            let n = chunks.len();
            let mut last_result = Ok(Progress::More);
            for (k, data) in chunks.iter().enumerate() {
                let last = k + 1 == n;
                last_result = c.chunk(k as u64, data, last, last.then_some(digest));
                if last_result.is_err() {
                    break;
                }
            }
            last_result
        };
        assert_eq!(run(&chunks, want), Ok(Progress::Complete));
        // One byte changed, a chunk dropped, a chunk repeated: per-chunk valid, refused.
        assert!(run(&[b"alpha ", b"betA ", b"gamma"], want).is_err());
        assert!(run(&[b"alpha ", b"gamma"], want).is_err());
        assert!(run(&[b"alpha ", b"beta ", b"beta ", b"gamma"], want).is_err());
        assert!(run(&chunks, want ^ 1).is_err());
    }

    #[test]
    fn framing_rules() {
        let mut c = StreamCheck::new();
        assert!(c.chunk(1, b"x", false, None).is_err(), "gap");
        let mut c = StreamCheck::new();
        assert!(
            c.chunk(0, b"x", false, Some(1)).is_err(),
            "digest before the end"
        );
        let mut c = StreamCheck::new();
        assert!(c.chunk(0, b"x", true, None).is_err(), "last without digest");
        let mut c = StreamCheck::new();
        let d = xxhash_rust::xxh3::xxh3_64(b"");
        assert_eq!(c.chunk(0, b"", true, Some(d)), Ok(Progress::Complete));
        assert!(c.chunk(1, b"", true, Some(d)).is_err(), "after the end");
    }
}
