//! The LSM storage engine: memtable, WAL, SSTables, manifest, leveled compaction, snapshots.
