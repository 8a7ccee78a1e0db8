//! The engine's error type: operating errors (I/O, corrupt bytes, a latched failure)
//! as typed variants carrying context, wrapping the `wal` and `sstable` errors.
//!
//! Programmer errors are asserts; everything read from disk that is wrong is `Corrupt`
//! (or a wrapped `Wal`/`Table` error whose own variant says corrupt), never a panic.

use std::fmt;
use std::io;

/// Everything that can go wrong in the storage engine.
#[derive(Debug)]
pub enum Error {
    /// The file system failed.
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Bytes on disk (a manifest record, a WAL batch, CURRENT, a table's metadata) are invalid.
    Corrupt {
        /// Which file or record.
        context: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The write-ahead log (or the manifest log) failed.
    Wal {
        /// What was being done.
        context: String,
        /// The log's error.
        source: wal::Error,
    },
    /// A table failed to build, open or read.
    Table {
        /// What was being done (names the table file).
        context: String,
        /// The table's error.
        source: sstable::Error,
    },
    /// An earlier fsync or background flush/compaction failed; the engine refuses writes.
    Poisoned {
        /// The failure that latched the engine.
        reason: String,
        /// True when that failure was bad bytes on disk (see [`Error::is_corruption`]).
        corruption: bool,
    },
    /// A key, value or batch is over a limit.
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its length in bytes.
        len: u64,
        /// The largest length allowed.
        max: u64,
    },
    /// Another open `Db` (in this or another process) holds the directory's `LOCK`.
    AlreadyOpen {
        /// The database directory.
        dir: String,
        /// What the file system said.
        source: io::Error,
    },
    /// The directory holds a database's files (tables, a WAL, manifest records) but no
    /// `CURRENT`: it was damaged or half copied. Starting it as a new database would
    /// delete those files, so open refuses and touches nothing.
    MissingCurrent {
        /// The database directory.
        dir: String,
        /// What was found there, for the operator.
        found: String,
    },
    /// A write needs seqnos past the last one the engine can hand out (`2^56 - 2`).
    /// Nothing was written; reads and smaller writes go on.
    SeqnosExhausted {
        /// The last seqno handed out so far.
        last: u64,
        /// How many more the refused write needed.
        wanted: u64,
    },
    /// The options are unusable.
    InvalidOptions {
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn corrupt(context: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            context: context.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn wal(context: impl Into<String>, source: wal::Error) -> Error {
        Error::Wal {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn table(context: impl Into<String>, source: sstable::Error) -> Error {
        Error::Table {
            context: context.into(),
            source,
        }
    }

    /// True when the error means bytes on disk are bad (as opposed to I/O failing).
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Corrupt { .. } | Error::MissingCurrent { .. } => true,
            Error::Poisoned { corruption, .. } => *corruption,
            Error::Table { source, .. } => source.is_corruption(),
            Error::Wal { source, .. } => matches!(source, wal::Error::Corrupt { .. }),
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "i/o error while {context}: {source}"),
            Error::Corrupt { context, reason } => write!(f, "corruption in {context}: {reason}"),
            Error::Wal { context, source } => write!(f, "log error while {context}: {source}"),
            Error::Table { context, source } => write!(f, "table error while {context}: {source}"),
            Error::Poisoned { reason, .. } => {
                write!(
                    f,
                    "storage engine refuses writes after an earlier failure: {reason}"
                )
            }
            Error::TooLarge { what, len, max } => {
                write!(f, "{what} of {len} bytes exceeds the limit of {max} bytes")
            }
            Error::AlreadyOpen { dir, source } => write!(
                f,
                "database {dir} is already open (its LOCK is held by another engine): {source}"
            ),
            Error::MissingCurrent { dir, found } => write!(
                f,
                "database {dir} has no CURRENT file but holds {found}; refusing to start it \
                 as a new database (that would delete them): restore CURRENT from a backup \
                 or move the directory away"
            ),
            Error::SeqnosExhausted { last, wanted } => write!(
                f,
                "no sequence numbers left: the last one handed out is {last} and a write \
                 needs {wanted} more"
            ),
            Error::InvalidOptions { reason } => write!(f, "invalid options: {reason}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Wal { source, .. } => Some(source),
            Error::Table { source, .. } => Some(source),
            Error::AlreadyOpen { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io { source, .. } => source.kind(),
            Error::Corrupt { .. } | Error::MissingCurrent { .. } => io::ErrorKind::InvalidData,
            Error::TooLarge { .. } | Error::InvalidOptions { .. } => io::ErrorKind::InvalidInput,
            Error::AlreadyOpen { .. } => io::ErrorKind::WouldBlock,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
