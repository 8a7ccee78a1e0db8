//! Builds one block: prefix-compressed entries followed by a restart array.
//!
//! ```text
//! block   := entry* restart{num_restarts} num_restarts:u32
//! entry   := shared:varint32 unshared:varint32 value_len:varint32
//!            key_delta[unshared] seqno:u64 kind:u8 value[value_len]
//! restart := u32   offset of an entry whose shared == 0
//! ```
//! Each entry stores only the part of its user key that differs from the previous
//! entry's (`shared` bytes are taken from it). Every `restart_interval` entries the
//! key is stored whole and its offset is recorded, so a reader can binary-search the
//! restarts and then scan at most `restart_interval` entries. Versions of one key
//! share the whole key: they cost `unshared == 0`.
//!
//! Invariant: entries are added in table order (the caller, `TableBuilder`, checks);
//! the first entry is always a restart, so a non-empty block has `restart[0] == 0`.

use crate::entry::Kind;
use crate::format::{put_varint32, RESTART_COUNT_LEN, RESTART_LEN};

/// Accumulates the entries of one block.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    /// Entries since the last restart.
    counter: usize,
    restart_interval: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    pub(crate) fn new(restart_interval: usize) -> BlockBuilder {
        assert!(restart_interval >= 1, "restart_interval must be at least 1");
        BlockBuilder {
            buf: Vec::new(),
            restarts: Vec::new(),
            counter: 0,
            restart_interval,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends one entry. Key and value lengths were checked against the format limits
    /// by the caller, so they fit the varints.
    pub(crate) fn add(&mut self, key: &[u8], seqno: u64, kind: Kind, value: &[u8]) {
        let shared = if self.counter < self.restart_interval && self.entries > 0 {
            common_prefix_len(&self.last_key, key)
        } else {
            self.restarts.push(offset_u32(self.buf.len()));
            self.counter = 0;
            0
        };
        let unshared = key.get(shared..).unwrap_or_default();
        put_varint32(&mut self.buf, offset_u32(shared));
        put_varint32(&mut self.buf, offset_u32(unshared.len()));
        put_varint32(&mut self.buf, offset_u32(value.len()));
        self.buf.extend_from_slice(unshared);
        self.buf.extend_from_slice(&seqno.to_le_bytes());
        self.buf.push(kind as u8);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(unshared);
        self.counter += 1;
        self.entries += 1;
    }

    /// The size `finish` will return, in bytes.
    pub(crate) fn size_estimate(&self) -> usize {
        self.buf.len() + self.restarts.len() * RESTART_LEN + RESTART_COUNT_LEN
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Appends the restart array and returns the whole block; `reset` before reuse.
    pub(crate) fn finish(&mut self) -> &[u8] {
        for r in &self.restarts {
            self.buf.extend_from_slice(&r.to_le_bytes());
        }
        self.buf
            .extend_from_slice(&offset_u32(self.restarts.len()).to_le_bytes());
        &self.buf
    }

    /// Empties the builder, keeping its buffers' capacity.
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.counter = 0;
        self.last_key.clear();
        self.entries = 0;
    }
}

fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Block-internal offsets and lengths fit a `u32` because the table builder caps the
/// key, value and block sizes (see the assert in `format.rs`).
fn offset_u32(n: usize) -> u32 {
    u32::try_from(n)
        .unwrap_or_else(|_| panic!("block offset {n} exceeds u32: builder limits broken"))
}
