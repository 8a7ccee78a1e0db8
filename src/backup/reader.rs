//! Reading a backup: checks every byte of `docs/format-backup.md` as it streams by
//! (header CRC, each frame's CRC and structure, the trailer's counts and digest, the
//! meta against the header, nothing after the trailer) and hands out the chunks.
//!
//! A caller must treat the chunks as unverified until `next_chunk` returned `Ok(None)`:
//! only the trailer proves nothing was cut or altered. `verify` reads a whole backup
//! that way; `restore` verifies first, then reads again to write.
//! Memory: one chunk at a time (at most `CHUNK_BYTES_MAX`). Corrupt input is an error,
//! never a panic.

use std::io::Read;

use super::format::{
    BackupError, Header, Trailer, CHUNK_BYTES_MAX, HEADER_BYTES, TAG_CHUNK, TAG_END, TRAILER_BYTES,
};
use super::tally::Tally;
use crate::kv::snapshot::CHUNK_FORMAT;

/// A backup being read.
pub struct BackupReader<R: Read> {
    input: R,
    header: Header,
    /// Bytes read so far.
    at: u64,
    tally: Tally,
    trailer: Option<Trailer>,
}

/// What a verified backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    pub trailer: Trailer,
    /// Bytes of the whole file.
    pub file_bytes: u64,
}

impl<R: Read> BackupReader<R> {
    /// Reads and checks the header.
    pub fn open(mut input: R) -> Result<BackupReader<R>, BackupError> {
        let mut bytes = [0u8; HEADER_BYTES];
        let got = read_full(&mut input, &mut bytes)?;
        if got < bytes.len() {
            if got < 8 || bytes[..8] != super::format::MAGIC[..] {
                return Err(BackupError::BadMagic);
            }
            return Err(BackupError::Truncated {
                at: got as u64,
                what: "the header",
            });
        }
        let header = Header::decode(&bytes)?;
        if header.chunk_format != CHUNK_FORMAT {
            return Err(BackupError::Malformed {
                at: 9,
                reason: format!(
                    "chunk format {} is not supported (this build reads {CHUNK_FORMAT})",
                    header.chunk_format
                ),
            });
        }
        Ok(BackupReader {
            input,
            header,
            at: HEADER_BYTES as u64,
            tally: Tally::new(),
            trailer: None,
        })
    }

    /// The header.
    pub fn header(&self) -> Header {
        self.header
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), BackupError> {
        let got = read_full(&mut self.input, buf)?;
        self.at += got as u64;
        if got < buf.len() {
            return Err(BackupError::Truncated { at: self.at, what });
        }
        Ok(())
    }

    /// The next chunk, checked; `Ok(None)` once the trailer matched everything read and
    /// the input ended right after it.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, BackupError> {
        if self.trailer.is_some() {
            return Ok(None);
        }
        let frame_at = self.at;
        let mut tag = [0u8; 1];
        self.read_exact(&mut tag, "a frame (the trailer is missing)")?;
        match tag[0] {
            TAG_CHUNK => {
                let mut len = [0u8; 4];
                self.read_exact(&mut len, "a frame's length")?;
                let len = u32::from_be_bytes(len) as usize;
                if len > CHUNK_BYTES_MAX {
                    return Err(BackupError::Malformed {
                        at: frame_at,
                        reason: format!("a frame of {len} bytes, above {CHUNK_BYTES_MAX}"),
                    });
                }
                let mut data = vec![0u8; len];
                self.read_exact(&mut data, "a frame's data")?;
                let mut crc = [0u8; 4];
                self.read_exact(&mut crc, "a frame's checksum")?;
                let expected = u32::from_be_bytes(crc);
                let actual = crc32fast::hash(&data);
                if expected != actual {
                    return Err(BackupError::ChecksumMismatch {
                        what: "a chunk frame",
                        at: frame_at,
                        expected,
                        actual,
                    });
                }
                self.tally.add(&data).map_err(|e| BackupError::Malformed {
                    at: frame_at,
                    reason: e.to_string(),
                })?;
                Ok(Some(data))
            }
            TAG_END => {
                let mut bytes = [0u8; TRAILER_BYTES];
                bytes[0] = TAG_END;
                self.read_exact(&mut bytes[1..], "the trailer")?;
                let stored = Trailer::decode(&bytes, frame_at)?;
                self.check_end(stored, frame_at)?;
                self.trailer = Some(stored);
                Ok(None)
            }
            other => Err(BackupError::Malformed {
                at: frame_at,
                reason: format!("unknown frame tag {other:#04x}"),
            }),
        }
    }

    /// The trailer against what was read, the meta against the header, then EOF.
    fn check_end(&mut self, stored: Trailer, at: u64) -> Result<(), BackupError> {
        let counted = self.tally.trailer();
        if counted.digest != stored.digest {
            return Err(BackupError::DigestMismatch {
                expected: stored.digest,
                actual: counted.digest,
            });
        }
        if counted != stored {
            return Err(BackupError::Malformed {
                at,
                reason: format!("the trailer says {stored:?}, the chunks hold {counted:?}"),
            });
        }
        let meta = self.tally.meta().ok_or_else(|| BackupError::Malformed {
            at,
            reason: "the backup holds no meta record".into(),
        })?;
        if meta.revision != self.header.revision || meta.applied_index != self.header.slot {
            return Err(BackupError::Malformed {
                at,
                reason: format!(
                    "the header says slot {} revision {}, the state's meta slot {} revision {}",
                    self.header.slot, self.header.revision, meta.applied_index, meta.revision
                ),
            });
        }
        let mut extra = [0u8; 1];
        if read_full(&mut self.input, &mut extra)? != 0 {
            return Err(BackupError::Malformed {
                at: self.at,
                reason: "bytes after the trailer".into(),
            });
        }
        Ok(())
    }

    /// The trailer, once the whole backup was read and verified.
    pub fn trailer(&self) -> Option<Trailer> {
        self.trailer
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.at
    }
}

/// Reads until `buf` is full or the input ends; the count read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> Result<usize, BackupError> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BackupError::Io(e)),
        }
    }
    Ok(got)
}

/// Reads a whole backup, checking everything; its summary.
pub fn verify(input: impl Read) -> Result<Summary, BackupError> {
    let mut reader = BackupReader::open(input)?;
    while reader.next_chunk()?.is_some() {}
    let trailer = reader.trailer().ok_or_else(|| BackupError::Malformed {
        at: reader.bytes_read(),
        reason: "no trailer".into(),
    })?;
    Ok(Summary {
        header: reader.header(),
        trailer,
        file_bytes: reader.bytes_read(),
    })
}
