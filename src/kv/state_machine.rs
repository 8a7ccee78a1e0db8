//! The node's `StateMachine` trait, implemented by [`KvStateMachine`].

use crate::kv::apply::KvStateMachine;
use crate::kv::snapshot::KvSnapshot;
use crate::node::{SnapshotSource, StateMachine};
use crate::paxos::Slot;
use bytes::Bytes;
use std::io;

impl SnapshotSource for KvSnapshot {
    fn slot(&self) -> Slot {
        KvSnapshot::slot(self)
    }

    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        Ok(KvSnapshot::next_chunk(self)?)
    }
}

impl StateMachine for KvStateMachine {
    fn applied_index(&self) -> Slot {
        KvStateMachine::applied_index(self)
    }

    fn apply(&mut self, slot: Slot, commands: &[Bytes]) -> io::Result<Vec<Bytes>> {
        Ok(self.apply_slot(slot, commands)?)
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(KvStateMachine::sync(self)?)
    }

    fn snapshot(&self) -> io::Result<Box<dyn SnapshotSource>> {
        Ok(Box::new(KvStateMachine::snapshot(self)?))
    }

    fn begin_install(&mut self, slot: Slot) -> io::Result<()> {
        Ok(KvStateMachine::begin_install(self, slot)?)
    }

    fn install_chunk(&mut self, chunk: &[u8]) -> io::Result<()> {
        Ok(KvStateMachine::install_chunk(self, chunk)?)
    }

    fn finish_install(&mut self) -> io::Result<()> {
        Ok(KvStateMachine::finish_install(self)?)
    }
}
