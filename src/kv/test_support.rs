//! Helpers shared by the state machine's tests: a `KvStateMachine` on a real
//! `storage::Db` over the power-loss simulator, slots applied from commands, and a
//! dump of everything a reader can observe.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::kv::command::{Command, SessionId};
use crate::kv::keyspace::Meta;
use crate::kv::lease::LeaseTable;
use crate::kv::outcome::Reply;
use crate::kv::{KvOptions, KvReader, KvStateMachine};
use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;

pub(crate) fn open(fs: &Arc<vfs::SimFs>, opts: KvOptions) -> KvStateMachine {
    let fs: Arc<dyn vfs::Fs> = fs.clone();
    let db = storage::Db::open(fs, Path::new("/kv"), storage::Options::default()).unwrap();
    KvStateMachine::open(db, opts, LeaseTable::new()).unwrap()
}

pub(crate) fn fresh() -> (Arc<vfs::SimFs>, KvStateMachine) {
    let fs = Arc::new(vfs::SimFs::new());
    let sm = open(&fs, KvOptions::default());
    (fs, sm)
}

/// Applies `commands` as the next slot.
pub(crate) fn apply(sm: &mut KvStateMachine, commands: &[Command]) -> Vec<Reply> {
    let slot = sm.applied_index() + 1;
    let bytes: Vec<Bytes> = commands.iter().map(Command::encode).collect();
    sm.apply_slot(slot, &bytes)
        .unwrap()
        .iter()
        .map(|b| Reply::decode(b).unwrap())
        .collect()
}

pub(crate) fn one(sm: &mut KvStateMachine, command: Command) -> Reply {
    apply(sm, &[command]).remove(0)
}

pub(crate) fn put(key: &str, value: &str) -> Command {
    Command::Put {
        key: key.into(),
        value: Bytes::copy_from_slice(value.as_bytes()),
        expect_version: None,
        session: None,
    }
}

pub(crate) fn put_if(key: &str, value: &str, version: u64) -> Command {
    Command::Put {
        key: key.into(),
        value: Bytes::copy_from_slice(value.as_bytes()),
        expect_version: Some(version),
        session: None,
    }
}

pub(crate) fn put_in(key: &str, session: SessionId) -> Command {
    Command::Put {
        key: key.into(),
        value: Bytes::from_static(b"e"),
        expect_version: None,
        session: Some(session),
    }
}

pub(crate) fn value_of(reader: &KvReader, key: &str) -> Option<(String, u64)> {
    reader
        .get(key)
        .unwrap()
        .0
        .map(|r| (String::from_utf8(r.value.to_vec()).unwrap(), r.version))
}

/// Everything observable: meta, every key, every session with its keys.
pub(crate) fn dump(reader: &KvReader) -> (Meta, Vec<String>, Vec<String>) {
    let meta = reader.meta().unwrap();
    let keys = reader
        .list("", None, 10_000)
        .unwrap()
        .entries
        .into_iter()
        .map(|(k, r)| {
            format!(
                "{k}={:?}@{:?}",
                r.value,
                (r.version, r.create_revision, r.mod_revision, r.session)
            )
        })
        .collect();
    let sessions = reader
        .sessions()
        .unwrap()
        .into_iter()
        .map(|(id, r)| format!("{id}:{}:{:?}", r.ttl_ms, reader.session_keys(id).unwrap()))
        .collect();
    (meta, keys, sessions)
}
