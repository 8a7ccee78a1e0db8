//! The backup file format (spec: `docs/format-backup.md`): sizes, the header and the
//! trailer, their codecs, and the errors a reader reports.
//!
//! ```text
//! file     = header frame* trailer                      (nothing after the trailer)
//! header   = magic "CCBACKUP" version:u8 (=1) chunk_format:u8 (=1) reserved:u16 (=0)
//!            cluster_id:u64 slot:u64 revision:u64 compact_revision:u64
//!            created_unix_ms:u64 header_crc:u32          (56 bytes)
//! frame    = 'C' len:u32 data[len] data_crc:u32         (data = one snapshot chunk)
//! trailer  = 'E' chunks:u64 data_bytes:u64 records:u64 keys:u64 sessions:u64
//!            digest:u64 trailer_crc:u32                 (53 bytes)
//! ```
//! Integers are big-endian. CRCs are CRC-32 (IEEE): the header's covers the 52 bytes
//! before it, a frame's its data, the trailer's the 49 bytes before it (tag included).
//! `digest` is the XXH3-64 (seed 0) of every frame's data in order, the digest a
//! snapshot transfer between peers carries (`node::snapshot_digest`).

use std::fmt;

/// The first bytes of every backup.
pub const MAGIC: &[u8; 8] = b"CCBACKUP";
/// The format version this build writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of the header, its CRC included.
pub const HEADER_BYTES: usize = 8 + 1 + 1 + 2 + 5 * 8 + 4;
/// Tag of a chunk frame.
pub const TAG_CHUNK: u8 = b'C';
/// Tag of the trailer.
pub const TAG_END: u8 = b'E';
/// Bytes of a frame around its data (tag, length, CRC).
pub const FRAME_OVERHEAD_BYTES: usize = 1 + 4 + 4;
/// Bytes of the trailer, its CRC included.
pub const TRAILER_BYTES: usize = 1 + 6 * 8 + 4;
/// Largest chunk a frame may carry (bounds what a reader allocates for a bad length).
pub const CHUNK_BYTES_MAX: usize = 64 << 20;

const _: () = assert!(HEADER_BYTES == 56);
const _: () = assert!(TRAILER_BYTES == 53);

/// What a backup says about the state it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The format of the chunks (`kv::snapshot::CHUNK_FORMAT`).
    pub chunk_format: u8,
    /// The id of the cluster it was taken from.
    pub cluster_id: u64,
    /// The last slot applied in the state it holds.
    pub slot: u64,
    /// The cluster revision of that state.
    pub revision: u64,
    /// History holds revisions above this.
    pub compact_revision: u64,
    /// When the node that served it took it (Unix ms, that node's clock).
    pub created_unix_ms: u64,
}

/// The counts and digest closing a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trailer {
    pub chunks: u64,
    /// Bytes of chunk data (frames excluded).
    pub data_bytes: u64,
    /// Records of the state (the meta included).
    pub records: u64,
    /// User keys.
    pub keys: u64,
    /// Live sessions.
    pub sessions: u64,
    /// XXH3-64 of every chunk's data, in order.
    pub digest: u64,
}

/// Why a backup was refused.
#[derive(Debug)]
pub enum BackupError {
    Io(std::io::Error),
    /// The stream ended `at` bytes in, inside `what`.
    Truncated {
        at: u64,
        what: &'static str,
    },
    BadMagic,
    UnsupportedVersion(u8),
    ChecksumMismatch {
        what: &'static str,
        at: u64,
        expected: u32,
        actual: u32,
    },
    /// The digest of the chunks read is not the trailer's.
    DigestMismatch {
        expected: u64,
        actual: u64,
    },
    /// Anything else that breaks the grammar or the state's structure.
    Malformed {
        at: u64,
        reason: String,
    },
}

impl fmt::Display for BackupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackupError::Io(e) => write!(f, "reading the backup: {e}"),
            BackupError::Truncated { at, what } => {
                write!(f, "the backup is truncated: it ends at byte {at}, inside {what}")
            }
            BackupError::BadMagic => write!(f, "not a concierge backup (bad magic)"),
            BackupError::UnsupportedVersion(v) => {
                write!(f, "backup format version {v} is not supported (this build reads {VERSION})")
            }
            BackupError::ChecksumMismatch {
                what,
                at,
                expected,
                actual,
            } => write!(
                f,
                "the backup is corrupt: checksum mismatch in {what} at byte {at} \
                 (stored {expected:#010x}, computed {actual:#010x})"
            ),
            BackupError::DigestMismatch { expected, actual } => write!(
                f,
                "the backup is corrupt: its chunks hash to {actual:#018x}, the trailer says {expected:#018x}"
            ),
            BackupError::Malformed { at, reason } => {
                write!(f, "the backup is malformed at byte {at}: {reason}")
            }
        }
    }
}

impl std::error::Error for BackupError {}

impl From<std::io::Error> for BackupError {
    fn from(e: std::io::Error) -> Self {
        BackupError::Io(e)
    }
}

fn be64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(b)
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(b)
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[..8].copy_from_slice(MAGIC);
        out[8] = VERSION;
        out[9] = self.chunk_format;
        // out[10..12]: reserved, zero
        let fields = [
            self.cluster_id,
            self.slot,
            self.revision,
            self.compact_revision,
            self.created_unix_ms,
        ];
        for (i, v) in fields.iter().enumerate() {
            out[12 + 8 * i..20 + 8 * i].copy_from_slice(&v.to_be_bytes());
        }
        let crc = crc32fast::hash(&out[..HEADER_BYTES - 4]);
        out[HEADER_BYTES - 4..].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses a header (magic, version, CRC, reserved bits).
    pub fn decode(bytes: &[u8; HEADER_BYTES]) -> Result<Header, BackupError> {
        if &bytes[..8] != MAGIC {
            return Err(BackupError::BadMagic);
        }
        if bytes[8] != VERSION {
            return Err(BackupError::UnsupportedVersion(bytes[8]));
        }
        let expected = be32(bytes, HEADER_BYTES - 4);
        let actual = crc32fast::hash(&bytes[..HEADER_BYTES - 4]);
        if expected != actual {
            return Err(BackupError::ChecksumMismatch {
                what: "the header",
                at: 0,
                expected,
                actual,
            });
        }
        if bytes[10] != 0 || bytes[11] != 0 {
            return Err(BackupError::Malformed {
                at: 10,
                reason: "reserved header bytes are not zero".into(),
            });
        }
        Ok(Header {
            chunk_format: bytes[9],
            cluster_id: be64(bytes, 12),
            slot: be64(bytes, 20),
            revision: be64(bytes, 28),
            compact_revision: be64(bytes, 36),
            created_unix_ms: be64(bytes, 44),
        })
    }
}

impl Trailer {
    /// The trailer's bytes (tag included).
    pub fn encode(&self) -> [u8; TRAILER_BYTES] {
        let mut out = [0u8; TRAILER_BYTES];
        out[0] = TAG_END;
        let fields = [
            self.chunks,
            self.data_bytes,
            self.records,
            self.keys,
            self.sessions,
            self.digest,
        ];
        for (i, v) in fields.iter().enumerate() {
            out[1 + 8 * i..9 + 8 * i].copy_from_slice(&v.to_be_bytes());
        }
        let crc = crc32fast::hash(&out[..TRAILER_BYTES - 4]);
        out[TRAILER_BYTES - 4..].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses a trailer read at byte `at` (tag included), checking its CRC.
    pub fn decode(bytes: &[u8; TRAILER_BYTES], at: u64) -> Result<Trailer, BackupError> {
        if bytes[0] != TAG_END {
            return Err(BackupError::Malformed {
                at,
                reason: format!("expected the trailer tag, found {:#04x}", bytes[0]),
            });
        }
        let expected = be32(bytes, TRAILER_BYTES - 4);
        let actual = crc32fast::hash(&bytes[..TRAILER_BYTES - 4]);
        if expected != actual {
            return Err(BackupError::ChecksumMismatch {
                what: "the trailer",
                at,
                expected,
                actual,
            });
        }
        Ok(Trailer {
            chunks: be64(bytes, 1),
            data_bytes: be64(bytes, 9),
            records: be64(bytes, 17),
            keys: be64(bytes, 25),
            sessions: be64(bytes, 33),
            digest: be64(bytes, 41),
        })
    }
}

/// The frame of one chunk: tag, length, data, CRC.
pub fn encode_frame(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + FRAME_OVERHEAD_BYTES);
    out.push(TAG_CHUNK);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32fast::hash(data).to_be_bytes());
    out
}
