//! The log's error type: operating failures as data, never panics.
//!
//! `Io` and `Corrupt` carry the file (and offset) they concern; `Poisoned` is the
//! latch after a failed write or fsync (redb's `PreviousIo`): once the log cannot
//! tell what reached the disk it refuses every later write rather than pretend.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the log.
#[derive(Debug)]
pub enum Error {
    /// An operating-system call failed; `context` says which and on what.
    Io { context: String, source: io::Error },
    /// Bytes on disk are not what the log wrote: bad checksum, bad length, a gap.
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },
    /// An earlier write or fsync failed; this log takes no more writes. Reopen it.
    Poisoned,
    /// A record is longer than `Options::record_bytes_max`.
    TooLarge { len: u64, max: u64 },
    /// An index outside the records the log holds (`first..next`).
    OutOfRange { index: u64, first: u64, next: u64 },
    /// `Options` that cannot work (see `Options::validate`).
    InvalidOptions { reason: String },
    /// A call that needs record `index`'s offset, on a log that keeps none
    /// (`Options::index_records` false).
    Unindexed { index: u64 },
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// True for `Error::Corrupt`.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "wal: {context}: {source}"),
            Error::Corrupt {
                segment,
                offset,
                reason,
            } => {
                write!(
                    f,
                    "wal: corrupt segment {} at offset {offset}: {reason}",
                    segment.display()
                )
            }
            Error::Poisoned => write!(
                f,
                "wal: an earlier write or fsync failed; the log takes no more writes"
            ),
            Error::TooLarge { len, max } => {
                write!(f, "wal: record of {len} bytes exceeds the limit of {max}")
            }
            Error::OutOfRange { index, first, next } => {
                write!(f, "wal: index {index} outside the log ({first}..{next})")
            }
            Error::InvalidOptions { reason } => write!(f, "wal: invalid options: {reason}"),
            Error::Unindexed { index } => write!(
                f,
                "wal: record {index}: this log keeps no record offsets (index_records is off)"
            ),
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

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::Corrupt { .. } => io::ErrorKind::InvalidData,
            Error::TooLarge { .. }
            | Error::OutOfRange { .. }
            | Error::InvalidOptions { .. }
            | Error::Unindexed { .. } => io::ErrorKind::InvalidInput,
            Error::Poisoned => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
