//! Proposals of this node waiting to be applied, keyed by their envelope sequence.
//!
//! The handle registers a proposal before sending it to the driver; the apply thread
//! completes it when the command comes out of the log; a caller that gives up (timeout)
//! removes its entry. Invariant: at most `max` entries, so waiting callers cost bounded
//! memory.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::error::NodeError;
use crate::paxos::Slot;

/// The answer a proposer waits for.
pub type ProposeResult = Result<(Slot, Bytes), NodeError>;

/// The table of waiting proposals.
#[derive(Debug)]
pub struct Pending {
    map: Mutex<HashMap<u64, oneshot::Sender<ProposeResult>>>,
    max: usize,
}

impl Pending {
    pub fn new(max: usize) -> Pending {
        Pending {
            map: Mutex::new(HashMap::new()),
            max,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<ProposeResult>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `seq`; `None` when the table is full.
    pub fn register(&self, seq: u64) -> Option<oneshot::Receiver<ProposeResult>> {
        let mut map = self.map();
        if map.len() >= self.max {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        map.insert(seq, tx);
        Some(rx)
    }

    /// Completes `seq` if someone still waits for it.
    pub fn complete(&self, seq: u64, result: ProposeResult) {
        let tx = self.map().remove(&seq);
        if let Some(tx) = tx {
            let _ = tx.send(result); // the caller may have gone
        }
    }

    /// Forgets `seq` (its caller gave up).
    pub fn forget(&self, seq: u64) {
        self.map().remove(&seq);
    }

    /// Fails every waiting proposal with `err`.
    pub fn fail_all(&self, err: &NodeError) {
        let drained: Vec<_> = self.map().drain().collect();
        for (_, tx) in drained {
            let _ = tx.send(Err(err.clone()));
        }
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }
}
