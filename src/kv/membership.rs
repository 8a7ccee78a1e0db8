//! The membership changes the log chose, kept in the applied state (`A "c"`), so that the
//! node can rebuild which nodes vote for which slot after a restart or a snapshot install
//! (`node::members`), and so that snapshots carry them to new members.
//!
//! A `Reconfigure` slot is applied here instead of through `apply_slot`: its change is
//! appended to the record and the applied index moves, in one storage batch. Every chosen
//! change is kept, void ones too (a change whose `base` is stale): replaying them in slot
//! order from the cluster's first membership is what every replica did, and a void one
//! changes nothing there either. Changes are rare (an operator's command each), so the
//! record stays small.
//!
//! Invariant: the record's slots strictly increase and are all <= the applied index.
//! A restore into a new cluster drops the record (`kv::restore`): the new cluster has
//! its own first membership.

use crate::kv::error::KvError;
use crate::kv::keyspace;
use crate::kv::machine::KvStateMachine;
use crate::kv::read::MetaFigures;
use crate::paxos::{Change, Slot};
use serde::{Deserialize, Serialize};
use storage::{WriteBatch, WriteOptions};

/// The stored record: every chosen change, in slot order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRecord {
    pub changes: Vec<(Slot, Change)>,
}

impl KvStateMachine {
    /// Every membership change applied so far, in slot order.
    pub fn membership_changes(&self) -> Result<Vec<(Slot, Change)>, KvError> {
        let sk = self.area.membership_key();
        match self.db.get(&sk)? {
            Some(bytes) => {
                let record: MembershipRecord = keyspace::decode(&sk, &bytes)?;
                if record.changes.windows(2).any(|w| w[0].0 >= w[1].0)
                    || record
                        .changes
                        .last()
                        .is_some_and(|(s, _)| *s > self.meta.applied_index)
                {
                    return Err(KvError::corrupt(
                        &sk,
                        "membership changes out of slot order or past the applied index".into(),
                    ));
                }
                Ok(record.changes)
            }
            None => Ok(Vec::new()),
        }
    }

    /// Applies slot `slot` (must be `applied_index() + 1`), which chose `change`.
    pub fn apply_membership_change(&mut self, slot: Slot, change: &Change) -> Result<(), KvError> {
        if slot != self.meta.applied_index + 1 {
            return Err(KvError::OutOfOrder {
                applied: self.meta.applied_index,
                slot,
            });
        }
        let mut changes = self.membership_changes()?;
        changes.push((slot, change.clone()));
        let mut meta = self.meta.clone();
        meta.applied_index = slot;
        meta.slot_commands_done = 0;
        let mut batch = WriteBatch::new();
        batch.put(
            &self.area.membership_key(),
            &keyspace::encode(&MembershipRecord { changes }),
        );
        batch.put(&self.area.meta_key(), &keyspace::encode(&meta));
        self.db.write(&batch, WriteOptions { sync: false })?;
        self.meta = meta;
        self.pinned.repin(&self.db, MetaFigures::of(&self.meta));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::kv::test_support::{fresh, open};
    use crate::kv::KvOptions;
    use crate::node::StateMachine;
    use crate::paxos::Change;

    fn change(base: u64, voters: &[u32]) -> Change {
        Change {
            base,
            voters: voters.to_vec(),
            learners: vec![],
            context: Default::default(),
        }
    }

    #[test]
    fn changes_are_kept_in_slot_order_with_the_applied_index_and_survive_a_restart() {
        let (fs, mut sm) = fresh();
        sm.apply_slot(1, &[]).unwrap();
        sm.apply_membership_change(2, &change(0, &[1, 2, 3, 4]))
            .unwrap();
        sm.apply_slot(3, &[]).unwrap();
        sm.apply_membership_change(4, &change(2, &[2, 3, 4]))
            .unwrap();
        assert_eq!(sm.applied_index(), 4);
        let expect = vec![(2, change(0, &[1, 2, 3, 4])), (4, change(2, &[2, 3, 4]))];
        assert_eq!(sm.membership_changes().unwrap(), expect);
        // Out of order is refused and changes nothing.
        assert!(sm.apply_membership_change(9, &change(4, &[2, 3])).is_err());
        assert_eq!(sm.membership_changes().unwrap(), expect);
        sm.sync().unwrap();
        drop(sm);
        fs.crash(vfs::CrashMode::DropUnsynced);
        let sm = open(&fs, KvOptions::default());
        assert_eq!(sm.applied_index(), 4);
        assert_eq!(sm.membership_changes().unwrap(), expect);
    }

    #[test]
    fn a_snapshot_carries_the_changes_to_the_installing_replica() {
        let (_, mut src) = fresh();
        sm_noop(&mut src, 1);
        src.apply_membership_change(2, &change(0, &[1, 2])).unwrap();
        let (_, mut dst) = fresh();
        assert!(dst.membership_changes().unwrap().is_empty());
        let mut snap = StateMachine::snapshot(&src).unwrap();
        dst.begin_install(snap.slot()).unwrap();
        while let Some(chunk) = snap.next_chunk().unwrap() {
            dst.install_chunk(&chunk).unwrap();
        }
        dst.finish_install().unwrap();
        assert_eq!(dst.applied_index(), 2);
        assert_eq!(
            dst.membership_changes().unwrap(),
            vec![(2, change(0, &[1, 2]))]
        );
    }

    #[test]
    fn a_restore_into_a_new_cluster_drops_the_old_clusters_changes() {
        let (_, mut src) = fresh();
        sm_noop(&mut src, 1);
        src.apply_membership_change(2, &change(0, &[1, 2])).unwrap();
        let fs: std::sync::Arc<dyn vfs::Fs> = std::sync::Arc::new(vfs::SimFs::new());
        let db = storage::Db::open(fs, std::path::Path::new("/kv"), Default::default()).unwrap();
        let mut restorer = crate::kv::restore::Restorer::new(&db).unwrap();
        let mut snap = StateMachine::snapshot(&src).unwrap();
        while let Some(chunk) = snap.next_chunk().unwrap() {
            restorer.add_chunk(&chunk).unwrap();
        }
        restorer.finish().unwrap();
        let sm = crate::kv::KvStateMachine::open(
            db,
            KvOptions::default(),
            crate::kv::lease::LeaseTable::new(),
        )
        .unwrap();
        assert_eq!(sm.applied_index(), 0);
        assert!(sm.membership_changes().unwrap().is_empty());
    }

    fn sm_noop(sm: &mut crate::kv::KvStateMachine, slot: u64) {
        sm.apply_slot(slot, &[]).unwrap();
    }
}
