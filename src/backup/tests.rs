//! The backup format: a written backup verifies and restores to the same state; every
//! truncation, every flipped byte and arbitrary garbage are errors, never panics.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::format::{BackupError, HEADER_BYTES};
use super::reader::{verify, BackupReader};
use super::writer::BackupWriter;
use crate::kv::command::{Command, SessionId};
use crate::kv::restore::Restorer;
use crate::kv::test_support::{dump, fresh, one, open, put, put_in};
use crate::kv::{KvOptions, KvStateMachine, LeaseTable, Outcome};
use std::path::Path;
use std::sync::Arc;

/// A state with keys, an ephemeral key, a session and some history, and its backup.
fn sample(keys: usize, chunk_bytes: usize) -> (KvStateMachine, Vec<u8>) {
    let (_fs, mut sm) = fresh();
    for i in 0..keys {
        one(&mut sm, put(&format!("k{i:04}"), &"v".repeat(i % 50)));
    }
    one(
        &mut sm,
        Command::CreateSession {
            id: SessionId(7),
            ttl_ms: 5000,
            owner: None,
        },
    );
    one(&mut sm, put_in("eph", SessionId(7)));
    let backup = write_backup(&sm, chunk_bytes);
    (sm, backup)
}

fn write_backup(sm: &KvStateMachine, chunk_bytes: usize) -> Vec<u8> {
    let source = sm.reader().snapshot(chunk_bytes).unwrap();
    let mut w = BackupWriter::new(source, 42, 1_700_000_000_000);
    let mut out = Vec::new();
    while let Some(piece) = w.next_piece().unwrap() {
        out.extend_from_slice(&piece);
    }
    out
}

#[test]
fn a_backup_verifies_with_its_counts() {
    let (sm, backup) = sample(300, 2000);
    let s = verify(backup.as_slice()).unwrap();
    assert_eq!(s.header.cluster_id, 42);
    assert_eq!(s.header.revision, sm.revision());
    assert_eq!(s.header.slot, sm.applied_index());
    assert_eq!(s.trailer.keys, 301);
    assert_eq!(s.trailer.sessions, 1);
    assert!(s.trailer.chunks > 3, "several chunks: {}", s.trailer.chunks);
    assert_eq!(s.file_bytes, backup.len() as u64);
}

#[test]
fn every_truncation_is_refused() {
    let (_sm, backup) = sample(40, 300);
    for len in 0..backup.len() {
        let err = verify(&backup[..len]).unwrap_err();
        if len >= HEADER_BYTES {
            assert!(
                matches!(err, BackupError::Truncated { .. }),
                "cut at {len}: {err}"
            );
        }
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let (_sm, backup) = sample(40, 300);
    for at in 0..backup.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = backup.clone();
            bad[at] ^= bit;
            assert!(
                verify(bad.as_slice()).is_err(),
                "byte {at} ^ {bit:#x} accepted"
            );
        }
    }
    let mut longer = backup.clone();
    longer.push(0);
    assert!(
        verify(longer.as_slice()).is_err(),
        "bytes after the trailer"
    );
}

#[test]
fn garbage_is_an_error_never_a_panic() {
    let mut rng = fastrand::Rng::with_seed(11);
    let (_sm, backup) = sample(5, 100);
    for _ in 0..2000 {
        let len = rng.usize(0..400);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        if rng.bool() && bytes.len() > HEADER_BYTES {
            // A valid header, garbage after it.
            bytes[..HEADER_BYTES].copy_from_slice(&backup[..HEADER_BYTES]);
        }
        assert!(verify(bytes.as_slice()).is_err());
    }
    // A frame claiming 4 GiB allocates nothing of it.
    let mut huge = backup[..HEADER_BYTES].to_vec();
    huge.push(b'C');
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        verify(huge.as_slice()),
        Err(BackupError::Malformed { .. })
    ));
}

#[test]
fn a_restore_holds_the_same_state_at_slot_zero() {
    let (sm, backup) = sample(120, 500);
    let (want_meta, want_keys, want_sessions) = dump(&sm.reader());
    let fs = Arc::new(vfs::SimFs::new());
    {
        let dynfs: Arc<dyn vfs::Fs> = fs.clone();
        let db = storage::Db::open(dynfs, Path::new("/kv"), storage::Options::default()).unwrap();
        let mut restorer = Restorer::new(&db).unwrap();
        let mut reader = BackupReader::open(backup.as_slice()).unwrap();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            restorer.add_chunk(&chunk).unwrap();
        }
        let restored = restorer.finish().unwrap();
        assert_eq!(restored.keys, 121);
        assert_eq!(restored.sessions, 1);
    }
    let mut restored = open(&fs, KvOptions::default());
    let (meta, keys, sessions) = dump(&restored.reader());
    assert_eq!(meta.applied_index, 0);
    assert_eq!(meta.revision, want_meta.revision);
    assert_eq!(meta.compact_revision, want_meta.compact_revision);
    assert_eq!((keys, sessions), (want_keys, want_sessions));
    // Slot 1 of the new cluster applies on top; revisions continue.
    let reply = one(&mut restored, put("after", "x"));
    assert_eq!(reply.revision, want_meta.revision + 1);
    assert_eq!(restored.applied_index(), 1);
    let _ = LeaseTable::new();
}

#[test]
fn a_restored_session_expires_under_the_new_clusters_first_leader() {
    let (_fs, mut sm) = fresh();
    one(
        &mut sm,
        Command::CreateSession {
            id: SessionId(3),
            ttl_ms: 5000,
            owner: None,
        },
    );
    // The old cluster's leader had a high ballot.
    let ballot = crate::kv::LeaderBallot { round: 90, node: 2 };
    one(
        &mut sm,
        Command::ExpireSessions {
            ids: vec![SessionId(99)],
            ballot,
        },
    );
    let backup = write_backup(&sm, 1 << 20);
    let fs = Arc::new(vfs::SimFs::new());
    {
        let dynfs: Arc<dyn vfs::Fs> = fs.clone();
        let db = storage::Db::open(dynfs, Path::new("/kv"), storage::Options::default()).unwrap();
        let mut restorer = Restorer::new(&db).unwrap();
        let mut reader = BackupReader::open(backup.as_slice()).unwrap();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            restorer.add_chunk(&chunk).unwrap();
        }
        restorer.finish().unwrap();
    }
    let mut restored = open(&fs, KvOptions::default());
    let reply = one(
        &mut restored,
        Command::ExpireSessions {
            ids: vec![SessionId(3)],
            ballot: crate::kv::LeaderBallot { round: 1, node: 1 },
        },
    );
    assert!(
        matches!(reply.outcome, Outcome::SessionsExpired { sessions: 1, .. }),
        "{:?}",
        reply.outcome
    );
}

#[test]
fn restore_refuses_a_store_that_holds_state() {
    let (_fs, sm) = fresh();
    let (_sm2, _) = (0, 0);
    let mut sm = sm;
    one(&mut sm, put("a", "1"));
    let backup = write_backup(&sm, 1 << 20);
    let mut reader = BackupReader::open(backup.as_slice()).unwrap();
    let _ = reader.next_chunk().unwrap();
    let fs = Arc::new(vfs::SimFs::new());
    let mut other = open(&fs, KvOptions::default());
    one(&mut other, put("b", "2"));
    drop(other);
    let dynfs: Arc<dyn vfs::Fs> = fs.clone();
    let db = storage::Db::open(dynfs, Path::new("/kv"), storage::Options::default()).unwrap();
    assert!(Restorer::new(&db).is_err());
}

#[test]
fn a_backup_restores_the_access_control_rules() {
    use crate::kv::auth::state_tests::{assert_rules, with_rules};
    let (_fs, mut sm) = fresh();
    let token = with_rules(&mut sm);
    let backup = write_backup(&sm, 1 << 20);
    let fs = Arc::new(vfs::SimFs::new());
    {
        let dynfs: Arc<dyn vfs::Fs> = fs.clone();
        let db = storage::Db::open(dynfs, Path::new("/kv"), storage::Options::default()).unwrap();
        let mut restorer = Restorer::new(&db).unwrap();
        let mut reader = BackupReader::open(backup.as_slice()).unwrap();
        while let Some(chunk) = reader.next_chunk().unwrap() {
            restorer.add_chunk(&chunk).unwrap();
        }
        restorer.finish().unwrap();
    }
    assert_rules(&open(&fs, KvOptions::default()), &token);
}
