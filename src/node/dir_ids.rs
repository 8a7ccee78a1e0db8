//! Data-directory ids: a node whose acceptor log was lost must not vote as if it had
//! never promised anything.
//!
//! Every `paxos/` directory gets a random id when it is created (`DIR_IDS_FILE`), and each
//! node remembers, durably, the directory id of every peer that ever connected to it. A
//! peer's messages reach us only over connections it dialed, and we remember its id
//! before reading anything after its `Hello`, so any node that ever counted a vote of
//! member X remembers X's directory.
//!
//! The rule: a directory created empty is *unconfirmed* and its node takes no part in
//! consensus (no votes, no campaigns, nothing learned) until **every** peer has answered
//! its handshake saying it remembers no other directory for it. Then it is *confirmed*,
//! durably, for good. A peer that remembers another directory refuses the connection and
//! the new node stops with a message saying why (its old promises are gone: restore the
//! directory or re-create the cluster; README "Replacing a node"). Asking a quorum would
//! not do: the one node that counted the lost votes may be the one that is down.
//! A directory that already holds acceptor state but no ids file (written before this
//! file existed) is confirmed at once: it has its promises. So is the directory of a
//! node that has just joined under an id the cluster gave a learner (`server::join`,
//! `NodeConfig::new_member`): no vote was ever counted from that id (ids are never
//! reused), and peers that are gone for good could never vouch for it.
//!
//! The cost: a brand-new cluster starts serving once every member has started once.
//!
//! File format (rewritten whole with `write_atomic`): magic `CCID`, a version byte (1),
//! the body length (u32 LE), the CRC-32 of the body (u32 LE), then the body
//! (rmp-serde of [`IdsFile`]). Anything else is a start-up error, never a guess.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use vfs::Fs;

use super::error::StartError;
use crate::paxos::NodeId;

/// The file in `data_dir/paxos/` that holds the ids.
pub const DIR_IDS_FILE: &str = "DIR_IDS";

const MAGIC: &[u8; 4] = b"CCID";
const VERSION: u8 = 1;
const HEADER_BYTES: usize = 4 + 1 + 4 + 4;
/// The file holds a few ids; anything larger is corrupt.
const BODY_BYTES_MAX: usize = 1 << 20;

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IdsFile {
    /// This directory's id (never 0).
    dir: u64,
    /// Every peer has confirmed it remembers no earlier directory of this node.
    confirmed: bool,
    /// The directory id of each peer that ever connected to us.
    peers: BTreeMap<NodeId, u64>,
}

/// What a peer said about this node's directory in its handshake reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It remembers no directory of ours, or this one.
    Confirms,
    /// It remembers another directory of ours: this one lost that one's promises.
    Remembers(u64),
}

/// This node's directory id, the peers' ids it remembers, and its confirmation.
#[derive(Debug)]
pub struct DirIds {
    fs: Arc<dyn Fs>,
    path: PathBuf,
    /// Every member but this node.
    peers: BTreeSet<NodeId>,
    /// This directory's id (immutable).
    dir: u64,
    /// Mirrors `state.file.confirmed`, read on every tick without the lock (which a
    /// file write may hold).
    confirmed: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: IdsFile,
    /// Peers that confirmed this (unconfirmed) directory since start.
    confirmed_by: BTreeSet<NodeId>,
    /// Set when a peer remembers another directory of ours: the node must stop.
    refused: Option<String>,
}

impl DirIds {
    /// Opens (or creates, durably) the ids file in `dir`. `has_state`: the acceptor log
    /// holds a promise, an accepted value or a compaction point.
    pub fn open(
        fs: Arc<dyn Fs>,
        dir: &Path,
        me: NodeId,
        members: &[NodeId],
        has_state: bool,
        fresh_id: u64,
    ) -> Result<DirIds, StartError> {
        let path = dir.join(DIR_IDS_FILE);
        let peers: BTreeSet<NodeId> = members.iter().copied().filter(|&m| m != me).collect();
        let storage = |reason: String| StartError::Storage {
            context: format!("data directory ids {}", path.display()),
            reason,
        };
        let file = if fs.exists(&path) {
            let bytes = fs.read_all(&path).map_err(|e| storage(e.to_string()))?;
            decode(&bytes).map_err(storage)?
        } else {
            let file = IdsFile {
                dir: fresh_id.max(1),
                confirmed: has_state || peers.is_empty(),
                peers: BTreeMap::new(),
            };
            encode(&file)
                .and_then(|bytes| fs.write_atomic(&path, &bytes))
                .map_err(|e| storage(format!("writing: {e}")))?;
            file
        };
        Ok(DirIds {
            fs,
            path,
            peers,
            dir: file.dir,
            confirmed: AtomicBool::new(file.confirmed),
            state: Mutex::new(State {
                file,
                confirmed_by: BTreeSet::new(),
                refused: None,
            }),
        })
    }

    /// A confirmed set of ids on an in-memory file system, for transport tests.
    #[cfg(test)]
    pub fn in_memory(me: NodeId, members: &[NodeId]) -> Arc<DirIds> {
        let fs: Arc<dyn Fs> = Arc::new(vfs::SimFs::new());
        let dir = Path::new("/ids");
        let ids = fs
            .create_dir_all(dir)
            .map_err(|e| StartError::Io {
                context: "test dir".into(),
                source: e,
            })
            .and_then(|()| DirIds::open(fs, dir, me, members, true, u64::from(me) << 32 | 1));
        match ids {
            Ok(ids) => Arc::new(ids),
            Err(e) => panic!("in-memory ids: {e}"),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This directory's id (sent in every `Hello`).
    pub fn dir(&self) -> u64 {
        self.dir
    }

    /// True once every peer confirmed this directory (or it was never new).
    pub fn confirmed(&self) -> bool {
        self.confirmed.load(Ordering::Acquire)
    }

    /// Why this node must stop, if a peer remembers another directory of it.
    pub fn refused(&self) -> Option<String> {
        self.lock().refused.clone()
    }

    /// Peers that have not confirmed this directory yet (empty once confirmed).
    pub fn waiting_on(&self) -> Vec<NodeId> {
        let s = self.lock();
        if s.file.confirmed {
            return Vec::new();
        }
        self.peers.difference(&s.confirmed_by).copied().collect()
    }

    /// The listener saw `peer` present directory `dir`. Returns the directory remembered
    /// for it before (None the first time, when `dir` is made durable before returning).
    /// Blocking (file I/O): call from a blocking thread.
    pub fn remember(&self, peer: NodeId, dir: u64) -> std::io::Result<Option<u64>> {
        let mut s = self.lock();
        if let Some(&known) = s.file.peers.get(&peer) {
            return Ok(Some(known));
        }
        let mut next = s.file.clone();
        next.peers.insert(peer, dir);
        self.fs.write_atomic(&self.path, &encode(&next)?)?;
        s.file = next;
        Ok(None)
    }

    /// `peer` answered our handshake with what it remembers of our directory. Confirms
    /// the directory (durably) once every peer has. Blocking: call from a blocking thread.
    pub fn answered(&self, peer: NodeId, remembered: Option<u64>) -> std::io::Result<Answer> {
        let mut s = self.lock();
        let answer = match remembered {
            Some(d) if d != s.file.dir => Answer::Remembers(d),
            _ => Answer::Confirms,
        };
        match answer {
            Answer::Remembers(old) => {
                if s.refused.is_none() {
                    s.refused = Some(format!(
                        "node {peer} remembers an earlier data directory of this node \
                         (id {old:#x}; this one is {:#x}): the promises made from it are \
                         lost, and voting without them could choose two values for one \
                         slot. Restore that directory, or re-create the cluster \
                         (README: Replacing a node)",
                        s.file.dir
                    ));
                }
            }
            Answer::Confirms => {
                if !s.file.confirmed && self.peers.contains(&peer) {
                    s.confirmed_by.insert(peer);
                    if s.confirmed_by.len() == self.peers.len() {
                        let mut next = s.file.clone();
                        next.confirmed = true;
                        self.fs.write_atomic(&self.path, &encode(&next)?)?;
                        s.file = next;
                        self.confirmed.store(true, Ordering::Release);
                    }
                }
            }
        }
        Ok(answer)
    }
}

fn encode(file: &IdsFile) -> std::io::Result<Vec<u8>> {
    let body = rmp_serde::to_vec(file).map_err(std::io::Error::other)?;
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<IdsFile, String> {
    if bytes.len() < HEADER_BYTES || &bytes[..4] != MAGIC {
        return Err("not a data directory ids file (bad magic or too short)".into());
    }
    if bytes[4] != VERSION {
        return Err(format!("unknown version {}", bytes[4]));
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let len = word(5) as usize;
    let crc = word(9);
    let body = &bytes[HEADER_BYTES..];
    if len > BODY_BYTES_MAX || body.len() != len {
        return Err(format!("body is {} bytes, header says {len}", body.len()));
    }
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch".into());
    }
    let file: IdsFile = rmp_serde::from_slice(body).map_err(|e| format!("undecodable: {e}"))?;
    if file.dir == 0 {
        return Err("directory id 0".into());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vfs::RealFs;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dir-ids-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn open(dir: &Path, has_state: bool, fresh: u64) -> DirIds {
        DirIds::open(RealFs::shared(), dir, 1, &[1, 2, 3], has_state, fresh).unwrap()
    }

    #[test]
    fn a_new_directory_is_confirmed_only_by_every_peer_and_stays_confirmed() {
        let dir = tmp("confirm");
        let ids = open(&dir, false, 7);
        assert!(!ids.confirmed());
        assert_eq!(ids.answered(2, None).unwrap(), Answer::Confirms);
        assert!(!ids.confirmed(), "one peer of two is not enough");
        assert_eq!(ids.waiting_on(), vec![3]);
        assert_eq!(ids.answered(3, Some(7)).unwrap(), Answer::Confirms);
        assert!(ids.confirmed());
        let reopened = open(&dir, false, 99);
        assert!(reopened.confirmed(), "confirmation is durable");
        assert_eq!(reopened.dir(), 7, "the id is durable");
    }

    #[test]
    fn a_peer_remembering_another_directory_refuses_it() {
        let dir = tmp("refuse");
        let ids = open(&dir, false, 7);
        assert_eq!(ids.answered(2, Some(5)).unwrap(), Answer::Remembers(5));
        assert!(ids.refused().is_some_and(|r| r.contains("node 2")));
        assert_eq!(ids.answered(3, None).unwrap(), Answer::Confirms);
        assert!(!ids.confirmed());
    }

    #[test]
    fn a_directory_with_state_but_no_file_is_confirmed() {
        let dir = tmp("upgrade");
        assert!(open(&dir, true, 7).confirmed());
    }

    #[test]
    fn peers_directories_are_remembered_durably_and_never_replaced() {
        let dir = tmp("remember");
        let ids = open(&dir, false, 7);
        assert_eq!(ids.remember(2, 40).unwrap(), None);
        assert_eq!(ids.remember(2, 41).unwrap(), Some(40));
        let reopened = open(&dir, false, 7);
        assert_eq!(reopened.remember(2, 41).unwrap(), Some(40));
        assert_eq!(reopened.remember(3, 50).unwrap(), None);
    }

    #[test]
    fn a_corrupt_file_is_a_start_error() {
        let dir = tmp("corrupt");
        drop(open(&dir, false, 7));
        let path = dir.join(DIR_IDS_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = DirIds::open(RealFs::shared(), &dir, 1, &[1, 2, 3], false, 8).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        std::fs::write(&path, b"CC").unwrap();
        assert!(DirIds::open(RealFs::shared(), &dir, 1, &[1, 2, 3], false, 8).is_err());
    }
}
