//! The lock recipe: a distributed mutex over sessions, sequential keys and watches.
//!
//! To lock `name`, a client writes a sequential key `name/<20 digits>` owned by its
//! session (its place in the queue) and lists the queue: if its key is first it holds
//! the lock; otherwise it watches only its predecessor's key (no herd: one waiter wakes
//! per release) from the revision of the listing that showed it, and on its deletion
//! lists again (the predecessor may have left the queue without holding the lock).
//!
//! The holder's key's `create_revision` is its fencing token: later holders of the lock
//! have larger ones (their keys were created later), so a resource that refuses a token
//! below the highest it has seen refuses a holder whose lease ran out unnoticed (a
//! paused process). The lease is the session's: the key goes when the session ends or
//! expires, and the session handle reports the loss no later than the server could
//! expire it (see `session.rs`), so a holder that watches [`LockGuard::lost`] stops
//! before the next holder starts.
//!
//! The queue itself (`Client::queue`) is shared with the election recipe (`election.rs`),
//! and so is what a head of the queue holds ([`HeldKey`], `held.rs`).
//!
//! Invariant: a waiter key is never left behind by this process: a failed or cancelled
//! acquisition and a dropped guard delete it (in the background when dropped).

use crate::client::Client;
use crate::error::Error;
use crate::held::{release_in_background, wait_lost, HeldKey};
use crate::keys::PutOptions;
use crate::session::{Session, SessionLoss};
use crate::types::ListOptions;
use crate::watch::{EventKind, WatchOptions};
use bytes::Bytes;
use std::ops::Deref;
use tokio::sync::watch;

/// Digits the server appends to a sequential key.
const SEQUENCE_DIGITS: usize = 20;
/// Keys read per page while looking for the predecessor.
const PAGE_KEYS: u64 = 1000;

/// A held lock. Release it with [`LockGuard::unlock`]; dropping it releases it in the
/// background. Its key, fencing token and loss signal are the [`HeldKey`]'s it
/// dereferences to (`token`, `key`, `is_lost`, `lost`).
#[derive(Debug)]
pub struct LockGuard {
    held: HeldKey,
}

/// Deletes a waiter key when dropped while still armed (the acquisition failed or its
/// future was dropped).
struct Cleanup {
    client: Client,
    key: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        release_in_background(&self.client, self.key.take());
    }
}

/// Where a waiter stands in its queue.
enum Place {
    First,
    /// Behind `key`, seen in a listing at `revision`.
    Behind {
        key: String,
        revision: u64,
    },
    /// The waiter's key is gone (its session ended).
    Gone,
}

/// Whether `key` is a waiter of the queue `prefix`: the prefix and a sequence number
/// only (a lock named `a/0` is not in `a`'s queue).
pub(crate) fn is_waiter(prefix: &str, key: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|n| n.len() == SEQUENCE_DIGITS && n.bytes().all(|b| b.is_ascii_digit()))
}

fn lost(loss: &SessionLoss) -> Error {
    Error::SessionLost {
        reason: format!("{loss:?}"),
    }
}

/// A waiter that reached the head of its queue: its key, that key's create_revision
/// (the fencing token) and its session's loss signal.
pub(crate) struct Head {
    pub(crate) key: String,
    pub(crate) token: u64,
    pub(crate) loss: watch::Receiver<Option<SessionLoss>>,
}

impl Client {
    /// Takes the lock `name` for `session`, waiting as long as it takes (wrap it in a
    /// timeout to bound the wait). Fails with `Error::SessionLost` if the session is lost
    /// while waiting.
    pub async fn lock(&self, session: &Session, name: &str) -> Result<LockGuard, Error> {
        let head = self.queue(session, name, Bytes::new()).await?;
        Ok(LockGuard {
            held: HeldKey::new(self.clone(), head.key, head.token, head.loss),
        })
    }

    /// Joins the queue `name/` with a waiter key holding `value`, owned by `session`,
    /// and waits until it is first (the queue shared by the lock and the election).
    pub(crate) async fn queue(
        &self,
        session: &Session,
        name: &str,
        value: Bytes,
    ) -> Result<Head, Error> {
        if name.is_empty() {
            return Err(Error::InvalidArgument("a queue needs a name".into()));
        }
        let mut loss = session.subscribe();
        if let Some(l) = loss.borrow().clone() {
            return Err(lost(&l));
        }
        let prefix = format!("{name}/");
        let options = PutOptions {
            session: Some(session.id().to_string()),
            sequential: true,
            version: None,
        };
        let mine = self.put_with(&prefix, value, &options).await?;
        let mut cleanup = Cleanup {
            client: self.clone(),
            key: Some(mine.key.clone()),
        };
        loop {
            let (key, revision) = match self.place(&prefix, &mine.key).await? {
                Place::First => break,
                Place::Gone => {
                    return Err(Error::SessionLost {
                        reason: "the waiter key is gone: its session ended".into(),
                    })
                }
                Place::Behind { key, revision } => (key, revision),
            };
            let mut watch = self.watch(WatchOptions::key(key).from_revision(revision + 1));
            loop {
                tokio::select! {
                    l = wait_lost(&mut loss) => return Err(lost(&l)),
                    event = watch.next_event() => if event?.kind == EventKind::Delete {
                        break;
                    },
                }
            }
        }
        cleanup.key = None;
        Ok(Head {
            key: mine.key,
            token: mine.create_revision,
            loss,
        })
    }

    /// The waiter `mine`'s place in the queue under `prefix`: only keys that are the
    /// prefix and a sequence number count (a lock named `a/0` is not in `a`'s queue).
    async fn place(&self, prefix: &str, mine: &str) -> Result<Place, Error> {
        let is_waiter = |key: &str| is_waiter(prefix, key);
        let mut options = ListOptions {
            limit: Some(PAGE_KEYS),
            keys_only: true,
            ..ListOptions::default()
        };
        let mut before: Option<(String, u64)> = None;
        loop {
            let page = self.list(prefix, &options).await?;
            for entry in &page.entries {
                if entry.key.as_str() == mine {
                    return Ok(match before {
                        None => Place::First,
                        Some((key, revision)) => Place::Behind { key, revision },
                    });
                }
                if entry.key.as_str() > mine {
                    return Ok(Place::Gone);
                }
                if is_waiter(&entry.key) {
                    before = Some((entry.key.clone(), page.revision));
                }
            }
            match (page.more, page.entries.last()) {
                (true, Some(last)) => options.start_after = Some(last.key.clone()),
                _ => return Ok(Place::Gone),
            }
        }
    }
}

impl Deref for LockGuard {
    type Target = HeldKey;

    fn deref(&self) -> &HeldKey {
        &self.held
    }
}

impl LockGuard {
    /// Releases the lock. `Error::SessionLost` if it was already lost (its key gone).
    pub async fn unlock(mut self) -> Result<(), Error> {
        self.held.release("the lock's key was already gone").await
    }
}
