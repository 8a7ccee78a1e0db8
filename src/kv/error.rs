//! The state machine's errors: storage failures and corrupt records.

use std::fmt;

/// A failure the state machine cannot answer around.
#[derive(Debug)]
pub enum KvError {
    /// The storage engine failed.
    Storage(storage::Error),
    /// A stored record did not decode.
    Corrupt { key: Vec<u8>, reason: String },
    /// A snapshot stream was malformed.
    BadSnapshot { reason: String },
    /// The node handed a slot other than the next one.
    OutOfOrder { applied: u64, slot: u64 },
    /// The node restarted inside a command applied in chunks: the stored state holds
    /// part of it until the replay of `slot` finishes it, and no reader may see that.
    Resuming { slot: u64 },
}

impl KvError {
    /// A corrupt record under `key`.
    pub fn corrupt(key: &[u8], reason: String) -> KvError {
        KvError::Corrupt {
            key: key.to_vec(),
            reason,
        }
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::Storage(e) => write!(f, "storage: {e}"),
            KvError::Corrupt { key, reason } => {
                write!(
                    f,
                    "corrupt record at {:?}: {reason}",
                    String::from_utf8_lossy(key)
                )
            }
            KvError::BadSnapshot { reason } => write!(f, "bad snapshot: {reason}"),
            KvError::OutOfOrder { applied, slot } => {
                write!(f, "slot {slot} handed to apply after slot {applied}")
            }
            KvError::Resuming { slot } => write!(
                f,
                "slot {slot} is half applied (the node restarted inside it); reads wait for its replay"
            ),
        }
    }
}

impl std::error::Error for KvError {}

impl From<storage::Error> for KvError {
    fn from(e: storage::Error) -> Self {
        KvError::Storage(e)
    }
}

impl From<KvError> for std::io::Error {
    fn from(e: KvError) -> Self {
        let kind = match &e {
            KvError::Storage(_) | KvError::OutOfOrder { .. } | KvError::Resuming { .. } => {
                std::io::ErrorKind::Other
            }
            KvError::Corrupt { .. } | KvError::BadSnapshot { .. } => {
                std::io::ErrorKind::InvalidData
            }
        };
        std::io::Error::new(kind, e)
    }
}
