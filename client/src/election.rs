//! The leader-election recipe: candidates campaign with a value, one of them leads,
//! anyone can observe who leads, and the leader resigns or loses its session.
//!
//! It is the lock's queue (`lock.rs`) with a value: a candidate writes a sequential key
//! `name/<20 digits>` holding its value (say, its address), owned by its session, and
//! leads once its key is the first of the queue; each waiting candidate watches only
//! its predecessor (no herd). The leader is therefore always the queue's first key,
//! which any client can read ([`Client::leader`]) or follow ([`Client::observe`]).
//!
//! The leader's key's `create_revision` is its fencing token: every later leader has a
//! larger one. A leader that stalls past its session's TTL loses its key (the next
//! candidate leads) and its [`Leadership::lost`] resolves no later than the server can
//! expire the session; a resource that refuses tokens below the highest it has seen
//! refuses the old leader even if it acts late.
//!
//! Invariants: a candidate's key is never left behind by this process (a failed or
//! cancelled campaign, a resignation and a dropped [`Leadership`] delete it); the
//! observer reports leaders in the order they led, each once (an update of the leader's
//! value by [`Leadership::proclaim`] is reported as a change).

use crate::client::Client;
use crate::error::Error;
use crate::held::HeldKey;
use crate::keys::PutOptions;
use crate::lock::is_waiter;
use crate::session::Session;
use crate::types::ListOptions;
use crate::watch::{EventKind, WatchOptions, WatchStream};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::ops::Deref;

/// Keys read per page while listing the candidates.
const PAGE_KEYS: u64 = 1000;

/// Who leads an election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leader {
    /// The leader's candidate key, `name/<20 digits>`.
    pub key: String,
    /// The value it campaigned (or last proclaimed) with.
    pub value: Bytes,
    /// Its fencing token: the key's create_revision.
    pub token: u64,
}

/// This process's leadership of an election. Resign with [`Leadership::resign`];
/// dropping it resigns in the background. Its key, fencing token and loss signal are
/// the [`HeldKey`]'s it dereferences to (`token`, `key`, `is_lost`, `lost`).
#[derive(Debug)]
pub struct Leadership {
    held: HeldKey,
    session: String,
}

impl Client {
    /// Campaigns in the election `name` with `value` for `session`, and returns once this
    /// candidate leads (wrap it in a timeout to bound the wait). Fails with
    /// `Error::SessionLost` if the session is lost first.
    pub async fn campaign(
        &self,
        session: &Session,
        name: &str,
        value: impl Into<Bytes>,
    ) -> Result<Leadership, Error> {
        let head = self.queue(session, name, value.into()).await?;
        Ok(Leadership {
            held: HeldKey::new(self.clone(), head.key, head.token, head.loss),
            session: session.id().to_string(),
        })
    }

    /// The current leader of the election `name` (a linearizable read), or None when
    /// nobody campaigns.
    pub async fn leader(&self, name: &str) -> Result<Option<Leader>, Error> {
        let (candidates, _) = self.candidates(name).await?;
        Ok(candidates.into_values().next())
    }

    /// Follows the election `name`: [`Observer::current`] is the leader now, and
    /// [`Observer::changed`] waits for the next one.
    pub async fn observe(&self, name: &str) -> Result<Observer, Error> {
        let (candidates, revision) = self.candidates(name).await?;
        let prefix = format!("{name}/");
        let watch = self.watch(WatchOptions::prefix(prefix.clone()).from_revision(revision + 1));
        let current = candidates.values().next().cloned();
        Ok(Observer {
            prefix,
            candidates,
            watch,
            current,
        })
    }

    /// Every candidate of `name`, by key (the first leads), and the revision of the
    /// listing's first page (a watch from the next revision misses nothing).
    async fn candidates(&self, name: &str) -> Result<(BTreeMap<String, Leader>, u64), Error> {
        if name.is_empty() {
            return Err(Error::InvalidArgument("an election needs a name".into()));
        }
        let prefix = format!("{name}/");
        let mut options = ListOptions {
            limit: Some(PAGE_KEYS),
            ..ListOptions::default()
        };
        let mut candidates = BTreeMap::new();
        let mut first_revision = None;
        loop {
            let page = self.list(&prefix, &options).await?;
            first_revision.get_or_insert(page.revision);
            for entry in &page.entries {
                if is_waiter(&prefix, &entry.key) {
                    let leader = Leader {
                        key: entry.key.clone(),
                        value: entry.value.clone().unwrap_or_default(),
                        token: entry.create_revision,
                    };
                    candidates.insert(entry.key.clone(), leader);
                }
            }
            match (page.more, page.entries.last()) {
                (true, Some(last)) => options.start_after = Some(last.key.clone()),
                _ => break,
            }
        }
        Ok((candidates, first_revision.unwrap_or_default()))
    }
}

/// Follows who leads an election (see [`Client::observe`]).
pub struct Observer {
    prefix: String,
    candidates: BTreeMap<String, Leader>,
    watch: WatchStream,
    current: Option<Leader>,
}

impl Observer {
    /// The leader as of the last change seen.
    pub fn current(&self) -> Option<&Leader> {
        self.current.as_ref()
    }

    /// Waits for the leader to change (another candidate leads, nobody does, or the
    /// leader proclaims a new value) and returns the new one. The underlying watch
    /// resumes across failed nodes; an error from it ends the observation.
    pub async fn changed(&mut self) -> Result<Option<Leader>, Error> {
        loop {
            let event = self.watch.next_event().await?;
            if !is_waiter(&self.prefix, &event.key) {
                continue;
            }
            match event.kind {
                EventKind::Put => {
                    let leader = Leader {
                        key: event.key.clone(),
                        value: event.value.clone().unwrap_or_default(),
                        token: event.create_revision,
                    };
                    self.candidates.insert(event.key, leader);
                }
                EventKind::Delete => {
                    self.candidates.remove(&event.key);
                }
            }
            let now = self.candidates.values().next().cloned();
            if now != self.current {
                self.current.clone_from(&now);
                return Ok(now);
            }
        }
    }
}

impl Deref for Leadership {
    type Target = HeldKey;

    fn deref(&self) -> &HeldKey {
        &self.held
    }
}

impl Leadership {
    /// Replaces the leader's value (observers see the change), keeping its key and
    /// token. `Error::SessionLost` if the leadership was lost (its key is gone).
    pub async fn proclaim(&self, value: impl Into<Bytes>) -> Result<(), Error> {
        let Some(key) = self.held.held() else {
            return Err(Error::SessionLost {
                reason: "the leadership was resigned".into(),
            });
        };
        let client = &self.held.client;
        let Some(current) = client.get(key).await? else {
            return Err(Error::SessionLost {
                reason: "the leader's key is gone: its session ended".into(),
            });
        };
        // Only the key as this leader left it: never re-create it after it went.
        let options = PutOptions {
            session: Some(self.session.clone()),
            sequential: false,
            version: Some(current.version),
        };
        match client.put_with(key, value.into(), &options).await {
            Ok(_) => Ok(()),
            Err(Error::VersionMismatch { .. }) | Err(Error::SessionNotFound(_)) => {
                Err(Error::SessionLost {
                    reason: "the leader's key changed or went: its session ended".into(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Steps down: deletes the candidate key, so the next candidate leads.
    /// `Error::SessionLost` if the leadership was already lost (its key gone).
    pub async fn resign(mut self) -> Result<(), Error> {
        self.held.release("the leader's key was already gone").await
    }
}
