//! `KvOptions`: the limits of the state machine (history, snapshot chunks, slot size).
//!
//! They shape what every replica writes, so every replica must use the same values.

/// Limits of the state machine. Every replica must use the same values.
#[derive(Clone, Debug)]
pub struct KvOptions {
    /// History keeps at most this many revisions.
    pub history_revisions_max: u64,
    /// History keeps at most about this many encoded bytes (at least the newest revision).
    pub history_bytes_max: u64,
    /// Target size of one snapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// Most bytes one storage batch of a slot holds (below the storage engine's batch
    /// limit, with room for the meta and history trimming), and so about the most a
    /// slot's writes hold in memory. A command of bounded size (a put, a transaction)
    /// past it is refused; a prefix delete, session close or expiry past it is applied
    /// in chunks of about this size (`kv::chunked`). A slot whose commands together
    /// write more goes to the Db in batches of about this size.
    pub slot_batch_bytes_max: u64,
}

impl Default for KvOptions {
    fn default() -> Self {
        KvOptions {
            history_revisions_max: 10_000,
            history_bytes_max: 64 << 20,
            snapshot_chunk_bytes: 1 << 20,
            slot_batch_bytes_max: 12 << 20,
        }
    }
}
