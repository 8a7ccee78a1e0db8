//! Why the engine stopped taking writes: the first failure that latched it.
//!
//! After a failed WAL write or fsync nobody can say what is durable (the kernel may
//! have dropped the dirty pages, so a retried fsync that succeeds proves nothing);
//! after a failed flush or compaction the engine cannot make progress safely, and
//! after bad bytes on disk it must not build on them. So the first such failure is
//! kept ([`Failure`]) and every later write returns it as `Error::Poisoned` (like
//! LevelDB's `bg_error_`, RocksDB's background error, redb's `PreviousIo`); reads go
//! on. Invariant: the first failure is kept, never replaced or cleared while the
//! engine is open; reopening the directory is the way back.

use crate::error::Error;

/// The failure that latched the engine.
#[derive(Clone, Debug)]
pub(crate) struct Failure {
    reason: String,
    corruption: bool,
}

impl Failure {
    /// A failure described by `reason`; `corruption` when it was bad bytes on disk.
    pub fn new(reason: String, corruption: bool) -> Failure {
        Failure { reason, corruption }
    }

    /// The failure of `e`, prefixed with what was being done.
    pub fn of(what: &str, e: &Error) -> Failure {
        Failure::new(format!("{what}: {e}"), e.is_corruption())
    }

    /// The error every write after it gets.
    pub fn error(&self) -> Error {
        Error::Poisoned {
            reason: self.reason.clone(),
            corruption: self.corruption,
        }
    }

    /// What went wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}
