//! One simulated node's disk: the node layer's real acceptor log (`node::storage::AcceptorLog`,
//! its records, checkpoints and truncation) on its own `SimFs`, so a crash keeps exactly
//! what that code fsynced and a restart replays it the way the node does.
//!
//! Invariant: `state` equals what `AcceptorLog::open` would rebuild from the durable bytes
//! (checked after every restart against the replay of everything persisted).

use std::path::PathBuf;
use std::sync::Arc;

use concierge::node::storage::AcceptorLog;
use concierge::paxos::{DurableState, Persist, Slot};
use vfs::{CrashMode, Fs, SimFs};

/// Small segments so checkpoints really drop files.
const SEGMENT_BYTES_MAX: u64 = 64 << 10;

pub struct Disk {
    fs: Arc<SimFs>,
    log: Option<AcceptorLog>,
    /// What replaying the log gives; the sim's model of the disk, kept beside the log.
    pub state: DurableState,
    record_bytes_max: u32,
}

fn dir() -> PathBuf {
    PathBuf::from("/node/paxos")
}

impl Disk {
    /// A fresh, empty disk with the log open.
    pub fn new(record_bytes_max: u32) -> Result<Disk, String> {
        let mut disk = Disk {
            fs: Arc::new(SimFs::new()),
            log: None,
            state: DurableState::default(),
            record_bytes_max,
        };
        disk.open()?;
        Ok(disk)
    }

    fn open(&mut self) -> Result<DurableState, String> {
        let fs: Arc<dyn Fs> = self.fs.clone();
        let (log, state) = AcceptorLog::open(fs, &dir(), SEGMENT_BYTES_MAX, self.record_bytes_max)
            .map_err(|e| format!("durability: acceptor log did not reopen: {e}"))?;
        self.log = Some(log);
        Ok(state)
    }

    fn log(&mut self) -> Result<&mut AcceptorLog, String> {
        self.log
            .as_mut()
            .ok_or_else(|| "sim: acceptor log used while crashed".to_string())
    }

    /// One group commit of a Ready's records (returns once durable, like the node's).
    pub fn persist(&mut self, records: &[Persist]) -> Result<(), String> {
        self.log()?
            .persist(records)
            .map_err(|e| format!("sim: persist failed: {e}"))?;
        for r in records {
            self.state.apply(r);
        }
        Ok(())
    }

    /// The state machine is durable through `through`: checkpoint and truncate the log.
    pub fn checkpoint(&mut self, through: Slot) -> Result<(), String> {
        self.log()?
            .checkpoint(through)
            .map_err(|e| format!("sim: checkpoint failed: {e}"))?;
        self.state.compact(through);
        Ok(())
    }

    /// Power loss: only fsynced bytes survive (unsynced tails torn at random).
    pub fn crash(&mut self, seed: u64) {
        self.log = None;
        self.fs.crash(CrashMode::TearUnsynced { seed });
    }

    /// Reopens the log after a crash; the replayed state must equal the model.
    pub fn restart(&mut self) -> Result<DurableState, String> {
        let replayed = self.open()?;
        if replayed != self.state {
            return Err(format!(
                "durability: acceptor log replayed promised {} compacted {} with {} slots, \
                 expected promised {} compacted {} with {} slots",
                replayed.promised,
                replayed.compacted_through,
                replayed.accepted.len(),
                self.state.promised,
                self.state.compacted_through,
                self.state.accepted.len()
            ));
        }
        Ok(replayed)
    }
}
