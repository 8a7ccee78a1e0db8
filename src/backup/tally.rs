//! What a backup's chunks hold, counted the same way by the writer (for the trailer)
//! and by the reader (to check the trailer): records, user keys, sessions, the meta
//! record, the chunk bytes and their XXH3-64 digest.
//!
//! Every chunk is parsed (`kv::snapshot::parse_chunk`), so a chunk whose CRC matches
//! but whose structure does not (a writer bug) is refused too.

use crate::kv::keyspace::{self, Meta, AREA_FIRST, KEY_PREFIX, META_KIND, SESSION_PREFIX};
use crate::kv::snapshot::parse_chunk;
use crate::kv::KvError;
use crate::node::snapshot_digest::SnapshotDigest;

use super::format::Trailer;

/// Running counts over a backup's chunks.
#[derive(Debug, Default)]
pub struct Tally {
    trailer: Trailer,
    digest: SnapshotDigest,
    meta: Option<Meta>,
}

impl Tally {
    /// Nothing counted yet.
    pub fn new() -> Tally {
        Tally::default()
    }

    /// Counts one chunk; an error when it does not parse, or holds a second meta.
    pub fn add(&mut self, chunk: &[u8]) -> Result<(), KvError> {
        for (k, v) in parse_chunk(chunk)? {
            self.trailer.records += 1;
            match k.first() {
                Some(&META_KIND) if k.len() == 1 => {
                    if self.meta.is_some() {
                        return Err(KvError::BadSnapshot {
                            reason: "two meta records".into(),
                        });
                    }
                    self.meta = Some(keyspace::decode(&AREA_FIRST.meta_key(), v)?);
                }
                Some(&KEY_PREFIX) => self.trailer.keys += 1,
                Some(&SESSION_PREFIX) => self.trailer.sessions += 1,
                _ => {}
            }
        }
        self.trailer.chunks += 1;
        self.trailer.data_bytes += chunk.len() as u64;
        self.digest.update(chunk);
        Ok(())
    }

    /// The meta record seen, if any.
    pub fn meta(&self) -> Option<&Meta> {
        self.meta.as_ref()
    }

    /// The trailer these counts make.
    pub fn trailer(&self) -> Trailer {
        Trailer {
            digest: self.digest.value(),
            ..self.trailer
        }
    }
}
