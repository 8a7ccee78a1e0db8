//! Reads of the applied state: keys, listings, sessions, history.
//!
//! A [`KvReader`] reads the state as the state machine last published it: a storage
//! snapshot the machine pins ([`Pinned`]) after each whole slot it applies (and after a
//! snapshot install), never while a slot is in progress. A slot may reach the Db in
//! several batches, and one big command in several chunks (`kv::chunked`); pinning
//! means a reader sees all of a command or none of it. Linearizability is the caller's
//! business (read index, then wait until applied, then read here). Each call reads
//! from one pinned snapshot, finding the live area there, so the revision it reports
//! matches the data it returns. After a restart inside a chunked command the stored
//! state holds part of it: reads answer [`KvError::Resuming`] until the replay ends it.
//!
//! Pages ([`Page`]) bound what one call returns by count and by bytes, so an answer
//! built from them is bounded too; a `keys_only` listing decodes no values. History is
//! read in pieces ([`KvReader::history_pieces`]): one revision of a big command is
//! stored in several parts, and a bounded read may stop between two of them.

use crate::kv::command::SessionId;
use crate::kv::error::KvError;
use crate::kv::hub::Hub;
use crate::kv::keyspace::{self, Area, Event, KeyRecord, Meta, Root, SessionRecord, ROOT_KEY};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
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

/// The bounds of one page: at most `limit` items and `bytes_max` bytes by the caller's
/// measure (always at least one item).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    pub bytes_max: u64,
}

/// Bytes counted for a key in a list of keys, beyond its own (quotes, comma).
pub const KEY_JSON_OVERHEAD_BYTES: u64 = 4;

/// A key record's fields but its value, in the stored (positional) layout.
#[derive(serde::Deserialize)]
struct RecordWithoutValue(serde::de::IgnoredAny, u64, u64, u64, Option<SessionId>);

/// Decodes a key record skipping its value (never copied): the record comes back
/// with an empty value. Checks the format byte and the structure as `decode` does.
fn decode_without_value(storage_key: &[u8], bytes: &[u8]) -> Result<KeyRecord, KvError> {
    match bytes.split_first() {
        Some((&keyspace::RECORD_FORMAT, body)) => {
            let r: RecordWithoutValue = rmp_serde::from_slice(body)
                .map_err(|e| KvError::corrupt(storage_key, format!("undecodable record: {e}")))?;
            Ok(KeyRecord {
                value: bytes::Bytes::new(),
                version: r.1,
                create_revision: r.2,
                mod_revision: r.3,
                session: r.4,
            })
        }
        _ => keyspace::decode(storage_key, bytes),
    }
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

/// A stretch of one revision's events as stored: a revision is one part, or several
/// for a command applied in chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPiece {
    pub revision: u64,
    /// The part's number (0 first).
    pub part: u32,
    /// Whether it is the revision's last part.
    pub last: bool,
    pub events: Vec<Event>,
}

/// Pieces read from the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PiecesRead {
    /// The revision asked for is no longer held; the oldest held is `compact_revision + 1`.
    Compacted { compact_revision: u64 },
    /// Pieces in (revision, part) order, and the current revision.
    Pieces {
        pieces: Vec<HistoryPiece>,
        revision: u64,
    },
}

/// The storage snapshot readers read: the state after the last whole slot applied.
/// Invariant: only the state machine replaces it, between slots.
pub struct Pinned {
    state: Mutex<PinnedState>,
}

/// A pinned snapshot and the figures of the meta it holds.
/// Invariant: `figures` are those of the live area's meta record in `snap`.
struct PinnedState {
    snap: Arc<Snapshot>,
    figures: MetaFigures,
}

/// Figures of a meta record, published with the snapshot holding it so that a hot
/// path (the storage quota, on every write that may grow the data) reads them without
/// looking up and decoding the meta.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MetaFigures {
    /// `Meta::live_bytes`, as stored (None in a meta written before it existed).
    live_bytes: Option<u64>,
    /// The slot of a command stored in part (after a restart inside one): reads
    /// answer [`KvError::Resuming`] while it is set, as [`View::of`] does.
    resuming_slot: Option<u64>,
}

impl MetaFigures {
    /// The figures of `meta`, which must be the meta record as stored.
    pub(crate) fn of(meta: &Meta) -> MetaFigures {
        MetaFigures {
            live_bytes: meta.live_bytes,
            resuming_slot: meta.command_cursor.as_ref().map(|_| meta.applied_index + 1),
        }
    }
}

impl Pinned {
    /// Pins the state of `db` as of now; `figures` are those of the meta it holds.
    pub(crate) fn new(db: &Db, figures: MetaFigures) -> Arc<Pinned> {
        let pinned = Arc::new(Pinned {
            state: Mutex::new(PinnedState {
                snap: Arc::new(db.snapshot()),
                figures,
            }),
        });
        pinned.check_figures();
        pinned
    }

    /// Publishes the state of `db` as of now, whose meta has `figures` (the previous
    /// snapshot goes once its last reader is done with it).
    pub(crate) fn repin(&self, db: &Db, figures: MetaFigures) {
        let snap = Arc::new(db.snapshot());
        // A panic while holding the lock cannot leave a half-replaced state.
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = PinnedState { snap, figures };
        self.check_figures();
    }

    /// Tests: asserts the published figures are the pinned meta's (every state
    /// machine test checks the invariant on each pin).
    fn check_figures(&self) {
        #[cfg(test)]
        {
            let (snap, figures) = {
                let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                (Arc::clone(&state.snap), state.figures)
            };
            if let Ok(view) = View::at(snap) {
                assert_eq!(
                    figures,
                    MetaFigures::of(&view.meta),
                    "published figures differ from the pinned meta"
                );
            }
        }
    }

    /// The pinned snapshot.
    pub(crate) fn get(&self) -> Arc<Snapshot> {
        Arc::clone(&self.state.lock().unwrap_or_else(|p| p.into_inner()).snap)
    }

    /// The figures of the pinned meta.
    fn figures(&self) -> MetaFigures {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).figures
    }
}

/// Reads over the state machine's published state.
#[derive(Clone)]
pub struct KvReader {
    pinned: Arc<Pinned>,
    hub: Arc<Hub>,
}

/// One consistent view: a storage snapshot, its live area and its meta.
pub(crate) struct View {
    pub snap: Arc<Snapshot>,
    pub area: Area,
    pub meta: Meta,
}

impl View {
    /// Opens a view of the published state; [`KvError::Resuming`] while it holds part
    /// of a command (after a restart inside one).
    pub fn of(pinned: &Pinned) -> Result<View, KvError> {
        let view = View::at(pinned.get())?;
        if view.meta.command_cursor.is_some() {
            return Err(KvError::Resuming {
                slot: view.meta.applied_index + 1,
            });
        }
        Ok(view)
    }

    /// Opens a view of `snap`, whatever it holds.
    pub fn at(snap: Arc<Snapshot>) -> Result<View, KvError> {
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
    /// A reader of `pinned`, whose watchers register with `hub`.
    pub fn new(pinned: Arc<Pinned>, hub: Arc<Hub>) -> KvReader {
        KvReader { pinned, hub }
    }

    /// The published state (snapshots for backups read it: `kv::snapshot`).
    pub(crate) fn pinned(&self) -> &Pinned {
        &self.pinned
    }

    /// The watch hub the state machine publishes applied changes to.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The meta record (defaults before the first apply).
    pub fn meta(&self) -> Result<Meta, KvError> {
        Ok(View::of(&self.pinned)?.meta)
    }

    /// `Meta::live_bytes` of the published state, as [`KvReader::meta`] reports it,
    /// without reading the meta record (published with the snapshot).
    pub fn live_bytes(&self) -> Result<Option<u64>, KvError> {
        let figures = self.pinned.figures();
        if let Some(slot) = figures.resuming_slot {
            return Err(KvError::Resuming { slot });
        }
        Ok(figures.live_bytes)
    }

    /// The current revision.
    pub fn revision(&self) -> Result<u64, KvError> {
        Ok(self.meta()?.revision)
    }

    /// One key and the revision the answer reflects.
    pub fn get(&self, key: &str) -> Result<(Option<KeyRecord>, u64), KvError> {
        let view = View::of(&self.pinned)?;
        let record = view.get(&view.area.key_key(key))?;
        Ok((record, view.meta.revision))
    }

    /// Keys starting with `prefix`, in key order, after `start_after` (exclusive), at
    /// most `limit` of them, values included.
    pub fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage, KvError> {
        let page = Page {
            limit,
            bytes_max: u64::MAX,
        };
        self.list_page(prefix, start_after, page, true, &|_, _| 0)
    }

    /// One page of a listing: keys starting with `prefix`, in key order, after
    /// `start_after` (exclusive). The page ends after `page.limit` entries, or before
    /// the entry that would take the sum of `cost` past `page.bytes_max` (it always
    /// holds one entry, so a walk moves on); `more` says whether one of them cut it.
    /// Without `with_values` the values are skipped while decoding (never copied into
    /// the entries, which hold empty values).
    pub fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        page: Page,
        with_values: bool,
        cost: &dyn Fn(&str, &KeyRecord) -> u64,
    ) -> Result<ListPage, KvError> {
        let view = View::of(&self.pinned)?;
        let first = view.area.key_key(prefix);
        let after = start_after.map(|a| view.area.key_key(a));
        let lower = match &after {
            Some(a) if a.as_slice() >= first.as_slice() => Bound::Excluded(a.as_slice()),
            _ => Bound::Included(first.as_slice()),
        };
        let mut entries = Vec::new();
        let mut bytes = 0u64;
        let mut more = false;
        view.scan(&first, lower, |sk, value| {
            if entries.len() == page.limit {
                more = true;
                return Ok(false);
            }
            let key = keyspace::user_key(&sk)?;
            let record = if with_values {
                keyspace::decode(&sk, &value)?
            } else {
                decode_without_value(&sk, &value)?
            };
            let c = cost(&key, &record);
            if !entries.is_empty() && bytes.saturating_add(c) > page.bytes_max {
                more = true;
                return Ok(false);
            }
            bytes = bytes.saturating_add(c);
            entries.push((key, record));
            Ok(true)
        })?;
        Ok(ListPage {
            revision: view.meta.revision,
            more,
            entries,
        })
    }

    /// A page of the live sessions in id order, after `start_after` (exclusive), and
    /// whether more follow.
    pub fn sessions_page(
        &self,
        start_after: Option<SessionId>,
        limit: usize,
    ) -> Result<(Vec<(SessionId, SessionRecord)>, bool), KvError> {
        let view = View::of(&self.pinned)?;
        let prefix = view.area.sessions_prefix();
        let after = start_after.map(|id| view.area.session_key(id));
        let lower = match &after {
            Some(a) => Bound::Excluded(a.as_slice()),
            None => Bound::Included(prefix.as_slice()),
        };
        let mut out = Vec::new();
        let mut more = false;
        view.scan(&prefix, lower, |sk, bytes| {
            if out.len() == limit {
                more = true;
                return Ok(false);
            }
            out.push((
                keyspace::session_id_of(&sk)?,
                keyspace::decode(&sk, &bytes)?,
            ));
            Ok(true)
        })?;
        Ok((out, more))
    }

    /// A page of the ephemeral keys session `id` owns, in key order, after
    /// `start_after` (exclusive): at most `page.limit` keys and `page.bytes_max` bytes
    /// of keys (at least one key); and whether more follow.
    pub fn session_keys_page(
        &self,
        id: SessionId,
        start_after: Option<&str>,
        page: Page,
    ) -> Result<(Vec<String>, bool), KvError> {
        let view = View::of(&self.pinned)?;
        let prefix = view.area.ephemeral_prefix(id);
        let after = start_after.map(|k| view.area.ephemeral_key(id, k));
        let lower = match &after {
            Some(a) => Bound::Excluded(a.as_slice()),
            None => Bound::Included(prefix.as_slice()),
        };
        let mut keys = Vec::new();
        let mut bytes = 0u64;
        let mut more = false;
        view.scan(&prefix, lower, |ik, _| {
            let key = keyspace::ephemeral_user_key(&ik)?;
            let c = key.len() as u64 + KEY_JSON_OVERHEAD_BYTES;
            if keys.len() == page.limit
                || (!keys.is_empty() && bytes.saturating_add(c) > page.bytes_max)
            {
                more = true;
                return Ok(false);
            }
            bytes = bytes.saturating_add(c);
            keys.push(key);
            Ok(true)
        })?;
        Ok((keys, more))
    }

    /// A live session's record.
    pub fn session(&self, id: SessionId) -> Result<Option<SessionRecord>, KvError> {
        let view = View::of(&self.pinned)?;
        view.get(&view.area.session_key(id))
    }

    /// The ephemeral keys a session owns, in key order.
    pub fn session_keys(&self, id: SessionId) -> Result<Vec<String>, KvError> {
        let view = View::of(&self.pinned)?;
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
        let view = View::of(&self.pinned)?;
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

    /// Whether a first reply is held for idempotency key `key` (a retry of it replays).
    pub fn idempotency_record_held(&self, key: &str) -> Result<bool, KvError> {
        let view = View::of(&self.pinned)?;
        Ok(view.snap.get(&view.area.idempotency_key(key))?.is_some())
    }

    /// Whether any idempotency record is held (the leader keeps the idempotency clock
    /// moving while one is: `crate::server::clock`).
    pub fn idempotency_records_held(&self) -> Result<bool, KvError> {
        let view = View::of(&self.pinned)?;
        let prefix = view.area.idempotency_time_prefix();
        let mut held = false;
        view.scan(&prefix, Bound::Included(&prefix), |_, _| {
            held = true;
            Ok(false)
        })?;
        Ok(held)
    }

    /// The events of revisions `from_revision ..` (at most `revisions_max` revisions),
    /// each revision whole (all its parts: unbounded for a big command's revision; the
    /// watch reads [`KvReader::history_pieces`] instead).
    pub fn history(
        &self,
        from_revision: u64,
        revisions_max: usize,
    ) -> Result<HistoryRead, KvError> {
        let view = View::of(&self.pinned)?;
        let from = from_revision.max(1);
        if from <= view.meta.compact_revision {
            return Ok(HistoryRead::Compacted {
                compact_revision: view.meta.compact_revision,
            });
        }
        let prefix = view.area.history_prefix();
        let first = view.area.history_key(from);
        let mut revisions: Vec<(u64, Vec<Event>)> = Vec::new();
        view.scan(&prefix, Bound::Included(&first), |hk, bytes| {
            let (rev, _) = keyspace::history_part_of(&hk)?;
            let events: Vec<Event> = keyspace::decode(&hk, &bytes)?;
            let len = revisions.len();
            match revisions.last_mut() {
                Some((last, held)) if *last == rev => held.extend(events),
                _ if len == revisions_max => return Ok(false),
                _ => revisions.push((rev, events)),
            }
            Ok(true)
        })?;
        Ok(HistoryRead::Events {
            revisions,
            revision: view.meta.revision,
        })
    }

    /// History pieces from part `from_part` of revision `from_revision` on, in order:
    /// at most `pieces_max` of them, and none more once they hold `bytes_max` encoded
    /// bytes (always one if any). A piece is at most one chunk of a command
    /// (`slot_batch_bytes_max`), so a read is bounded by `bytes_max` plus one chunk.
    pub fn history_pieces(
        &self,
        from_revision: u64,
        from_part: u32,
        pieces_max: usize,
        bytes_max: usize,
    ) -> Result<PiecesRead, KvError> {
        let view = View::of(&self.pinned)?;
        let from = from_revision.max(1);
        if from <= view.meta.compact_revision {
            return Ok(PiecesRead::Compacted {
                compact_revision: view.meta.compact_revision,
            });
        }
        let prefix = view.area.history_prefix();
        let first = view.area.history_part_key(from, from_part);
        let mut pieces: Vec<HistoryPiece> = Vec::new();
        let mut read = 0usize;
        view.scan(&prefix, Bound::Included(&first), |hk, bytes| {
            let (revision, part) = keyspace::history_part_of(&hk)?;
            // The next record says whether the previous piece ended its revision (the
            // pinned state holds whole commands only, so the very last one does).
            if let Some(prev) = pieces.last_mut() {
                prev.last = prev.revision != revision;
            }
            if pieces.len() == pieces_max || (read > 0 && read >= bytes_max) {
                return Ok(false);
            }
            read = read.saturating_add(bytes.len());
            pieces.push(HistoryPiece {
                revision,
                part,
                last: true,
                events: keyspace::decode(&hk, &bytes)?,
            });
            Ok(true)
        })?;
        Ok(PiecesRead::Pieces {
            pieces,
            revision: view.meta.revision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_decodes_without_its_value_and_garbage_is_corrupt() {
        let r = KeyRecord {
            value: bytes::Bytes::from(vec![7u8; 1000]),
            version: 3,
            create_revision: 4,
            mod_revision: 5,
            session: Some(SessionId(6)),
        };
        let stored = keyspace::encode(&r);
        let bare = decode_without_value(b"Akx", &stored).unwrap();
        assert_eq!(
            bare,
            KeyRecord {
                value: bytes::Bytes::new(),
                ..r
            }
        );
        assert!(decode_without_value(b"Akx", &stored[..stored.len() - 1]).is_err());
        assert!(decode_without_value(b"Akx", &[]).is_err());
        assert!(decode_without_value(b"Akx", &[9, 1]).is_err());
    }
}
