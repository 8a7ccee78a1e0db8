//! Writing a backup: a point-in-time `KvSnapshot` turned into the bytes of
//! `docs/format-backup.md`, one piece at a time (the header, then one frame per
//! snapshot chunk, then the trailer), so a caller can stream it with bounded memory.
//!
//! Blocking (each chunk is a storage scan): run it off the async threads.

use bytes::Bytes;

use super::format::{encode_frame, Header, CHUNK_BYTES_MAX};
use super::tally::Tally;
use crate::kv::snapshot::{KvSnapshot, CHUNK_FORMAT};
use crate::kv::KvError;

/// Produces a backup's bytes from a snapshot.
pub struct BackupWriter {
    source: KvSnapshot,
    header: Header,
    tally: Tally,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Header,
    Chunks,
    Done,
}

impl BackupWriter {
    /// A writer of `source`, taken from the cluster `cluster_id`, stamped `created_unix_ms`.
    pub fn new(source: KvSnapshot, cluster_id: u64, created_unix_ms: u64) -> BackupWriter {
        let meta = source.meta();
        let header = Header {
            chunk_format: CHUNK_FORMAT,
            cluster_id,
            slot: meta.applied_index,
            revision: meta.revision,
            compact_revision: meta.compact_revision,
            created_unix_ms,
        };
        BackupWriter {
            source,
            header,
            tally: Tally::new(),
            stage: Stage::Header,
        }
    }

    /// The header this backup starts with.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The next bytes of the backup, None after the trailer.
    pub fn next_piece(&mut self) -> Result<Option<Bytes>, KvError> {
        match self.stage {
            Stage::Header => {
                self.stage = Stage::Chunks;
                Ok(Some(Bytes::copy_from_slice(&self.header.encode())))
            }
            Stage::Chunks => match self.source.next_chunk()? {
                Some(chunk) => {
                    if chunk.len() > CHUNK_BYTES_MAX {
                        return Err(KvError::BadSnapshot {
                            reason: format!(
                                "a chunk of {} bytes is above the backup's {CHUNK_BYTES_MAX}",
                                chunk.len()
                            ),
                        });
                    }
                    self.tally.add(&chunk)?;
                    Ok(Some(Bytes::from(encode_frame(&chunk))))
                }
                None => {
                    self.stage = Stage::Done;
                    Ok(Some(Bytes::copy_from_slice(&self.tally.trailer().encode())))
                }
            },
            Stage::Done => Ok(None),
        }
    }
}
