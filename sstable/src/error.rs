//! The errors of building and reading tables.
//!
//! Two families, kept apart: operating errors (I/O, corrupt bytes on disk, a checksum
//! that does not match) that a caller handles, and misuse by the caller (entries out
//! of order, an entry too large) reported as typed errors too, because the builder
//! takes its input from the layers above and must not crash the process for it.

use std::fmt;
use std::io;

/// Everything that can go wrong building or reading a table.
#[derive(Debug)]
pub enum Error {
    /// The file system failed.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The bytes at `offset` (a file offset) are not a valid table.
    Corrupt {
        /// File offset of the bad structure (block start, footer start, ...).
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A block's stored checksum does not match its bytes.
    ChecksumMismatch {
        /// File offset of the block's contents.
        offset: u64,
        /// The checksum stored in the block trailer.
        expected: u32,
        /// The checksum of the bytes as read.
        actual: u32,
    },
    /// `TableBuilder::add` got an entry that does not come after the previous one in
    /// table order (user key ascending, then seqno descending).
    OutOfOrder {
        /// The previous entry's user key.
        prev_key: Vec<u8>,
        /// The previous entry's seqno.
        prev_seqno: u64,
        /// The rejected entry's user key.
        key: Vec<u8>,
        /// The rejected entry's seqno.
        seqno: u64,
    },
    /// A key, value or block is larger than the format allows.
    TooLarge {
        /// What was too large ("key", "value", "index block", ...).
        what: &'static str,
        /// Its length in bytes.
        len: u64,
        /// The largest length allowed.
        max: u64,
    },
    /// An earlier write or sync of this builder failed; the file is not usable.
    Poisoned,
}

impl Error {
    /// True for errors that mean the table's bytes are bad (corrupt or checksum).
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupt { .. } | Error::ChecksumMismatch { .. })
    }

    pub(crate) fn corrupt(offset: u64, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            offset,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "i/o error {context}: {source}"),
            Error::Corrupt { offset, reason } => {
                write!(f, "corrupt table at offset {offset}: {reason}")
            }
            Error::ChecksumMismatch { offset, expected, actual } => write!(
                f,
                "checksum mismatch in block at offset {offset}: stored {expected:#010x}, computed {actual:#010x}"
            ),
            Error::OutOfOrder { prev_key, prev_seqno, key, seqno } => write!(
                f,
                "entry ({key:?}, {seqno}) does not follow ({prev_key:?}, {prev_seqno}) in table order"
            ),
            Error::TooLarge { what, len, max } => {
                write!(f, "{what} of {len} bytes exceeds the limit of {max} bytes")
            }
            Error::Poisoned => write!(f, "an earlier write to this table failed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
