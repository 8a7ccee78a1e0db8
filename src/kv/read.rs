//! Reads of the applied state: keys, listings, sessions, history.
//!
//! A [`KvReader`] shares the state machine's Db and reads its latest applied state;
//! linearizability is the caller's business (read index, then wait until applied,
//! then read here). Each call reads from one storage snapshot, finding the live area
//! there, so the revision it reports matches the data it returns.

use crate::kv::command::SessionId;
use crate::kv::error::KvError;
use crate::kv::hub::Hub;
use crate::kv::keyspace::{self, Area, Event, KeyRecord, Meta, Root, SessionRecord, ROOT_KEY};
use std::ops::Bound;
use std::sync::Arc;
use storage::{Db, Snapshot};

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage {
    /// The revision the page reflects.
    pub revision: u64,
    /// More keys match after the last one returned.
    pub more: bool,
    pub entries: Vec<(String, KeyRecord)>,
}

/// Events read from the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryRead {
    /// The revisions asked for are no longer held; the oldest held is `compact_revision + 1`.
    Compacted { compact_revision: u64 },
    /// (revision, events) in revision order, and the current revision.
    Events {
        revisions: Vec<(u64, Vec<Event>)>,
        revision: u64,
    },
}

/// Reads over the state machine's Db.
#[derive(Clone)]
pub struct KvReader {
    db: Db,
    hub: Arc<Hub>,
}

/// One consistent view: a storage snapshot, its live area and its meta.
pub(crate) struct View {
    pub snap: Snapshot,
    pub area: Area,
    pub meta: Meta,
}

impl View {
    /// Opens a view of `db` as of now.
    pub fn of(db: &Db) -> Result<View, KvError> {
        let snap = db.snapshot();
        let area = match snap.get(ROOT_KEY)? {
            Some(bytes) => Area::from_root(keyspace::decode::<Root>(ROOT_KEY, &bytes)?)?,
            None => keyspace::AREA_FIRST,
        };
        let meta_key = area.meta_key();
        let meta = match snap.get(&meta_key)? {
            Some(bytes) => keyspace::decode::<Meta>(&meta_key, &bytes)?,
            None => Meta::default(),
        };
        Ok(View { snap, area, meta })
    }

    /// Calls `f` on each (key, value) of the view from `lower` to the end of `prefix`,
    /// in key order, until it returns false.
    pub fn scan(
        &self,
        prefix: &[u8],
        lower: Bound<&[u8]>,
        mut f: impl FnMut(Vec<u8>, Vec<u8>) -> Result<bool, KvError>,
    ) -> Result<(), KvError> {
        let end = keyspace::prefix_end(prefix);
        let upper = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        for item in self.snap.iter(lower, upper)? {
            let (k, v) = item?;
            if !f(k, v)? {
                break;
            }
        }
        Ok(())
    }

    /// A record of the view, decoded.
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, KvError> {
        match self.snap.get(key)? {
            Some(bytes) => Ok(Some(keyspace::decode(key, &bytes)?)),
            None => Ok(None),
        }
    }
}

impl KvReader {
    /// A reader over `db`, whose watchers register with `hub`.
    pub fn new(db: Db, hub: Arc<Hub>) -> KvReader {
        KvReader { db, hub }
    }

    /// The watch hub the state machine publishes applied changes to.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The meta record (defaults before the first apply).
    pub fn meta(&self) -> Result<Meta, KvError> {
        Ok(View::of(&self.db)?.meta)
    }

    /// The current revision.
    pub fn revision(&self) -> Result<u64, KvError> {
        Ok(self.meta()?.revision)
    }

    /// One key and the revision the answer reflects.
    pub fn get(&self, key: &str) -> Result<(Option<KeyRecord>, u64), KvError> {
        let view = View::of(&self.db)?;
        let record = view.get(&view.area.key_key(key))?;
        Ok((record, view.meta.revision))
    }

    /// Keys starting with `prefix`, in key order, after `start_after` (exclusive), at
    /// most `limit` of them.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, KvError> {
        let view = View::of(&self.db)?;
        let first = view.area.key_key(prefix);
        let after = start_after.map(|a| view.area.key_key(a));
        let lower = match &after {
            Some(a) if a.as_slice() >= first.as_slice() => Bound::Excluded(a.as_slice()),
            _ => Bound::Included(first.as_slice()),
        };
        let mut entries = Vec::new();
        let mut more = false;
        view.scan(&first, lower, |sk, bytes| {
            if entries.len() == limit {
                more = true;
                return Ok(false);
            }
            let key = keyspace::user_key(&sk)?;
            entries.push((key, keyspace::decode(&sk, &bytes)?));
            Ok(true)
        })?;
        Ok(ListPage {
            revision: view.meta.revision,
            more,
            entries,
        })
    }

    /// A live session's record.
    pub fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, KvError> {
        let view = View::of(&self.db)?;
        view.get(&view.area.session_key(id))
    }

    /// The ephemeral keys a session owns, in key order.
    pub fn session_keys(&self, id: SessionId) -> Result<Vec<String>, KvError> {
        let view = View::of(&self.db)?;
        let prefix = view.area.ephemeral_prefix(id);
        let mut keys = Vec::new();
        view.scan(&prefix, Bound::Included(&prefix), |ik, _| {
            keys.push(keyspace::ephemeral_user_key(&ik)?);
            Ok(true)
        })?;
        Ok(keys)
    }

    /// Every live session, in id order.
    pub fn sessions(&self) -> Result<Vec<(SessionId, SessionRecord)>, KvError> {
        let view = View::of(&self.db)?;
        let prefix = view.area.sessions_prefix();
        let mut out = Vec::new();
        view.scan(&prefix, Bound::Included(&prefix), |sk, bytes| {
            out.push((
                keyspace::session_id_of(&sk)?,
                keyspace::decode(&sk, &bytes)?,
            ));
            Ok(true)
        })?;
        Ok(out)
    }

    /// The events of revisions `from_revision ..` (at most `revisions_max` revisions).
    pub fn history(
        &self,
        from_revision: u64,
        revisions_max: usize,
    ) -> Result<HistoryRead, KvError> {
        self.history_within(from_revision, revisions_max, usize::MAX)
    }

    /// As [`KvReader::history`], also stopping once the records read pass `bytes_max`
    /// encoded bytes (always at least one revision).
    pub fn history_within(
        &self,
        from_revision: u64,
        revisions_max: usize,
        bytes_max: usize,
    ) -> Result<HistoryRead, KvError> {
        let view = View::of(&self.db)?;
        let from = from_revision.max(1);
        if from <= view.meta.compact_revision {
            return Ok(HistoryRead::Compacted {
                compact_revision: view.meta.compact_revision,
            });
        }
        let prefix = view.area.history_prefix();
        let first = view.area.history_key(from);
        let mut revisions = Vec::new();
        let mut read = 0usize;
        view.scan(&prefix, Bound::Included(&first), |hk, bytes| {
            if revisions.len() == revisions_max || (read > 0 && read >= bytes_max) {
                return Ok(false);
            }
            read = read.saturating_add(bytes.len());
            let rev = keyspace::history_revision_of(&hk)?;
            revisions.push((rev, keyspace::decode(&hk, &bytes)?));
            Ok(true)
        })?;
        Ok(HistoryRead::Events {
            revisions,
            revision: view.meta.revision,
        })
    }
}
