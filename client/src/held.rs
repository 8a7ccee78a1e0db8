//! A key held at the head of a queue (`Client::queue`, in `lock.rs`): what a lock
//! holder ([`crate::LockGuard`]) and an election leader ([`crate::Leadership`]) share.
//!
//! [`HeldKey`] carries the key, its fencing token (the key's `create_revision`) and its
//! session's loss signal; both recipe types dereference to it for `token`, `key`,
//! `is_lost` and `lost`. Invariant: the key is never left behind by this process: it
//! is deleted by [`HeldKey::release`] (unlock, resign) or, when dropped still held,
//! in the background (then by the session's end if that fails).

use crate::client::Client;
use crate::error::Error;
use crate::session::SessionLoss;
use tokio::sync::watch;

/// A queue key this process holds (see the module doc).
#[derive(Debug)]
pub struct HeldKey {
    pub(crate) client: Client,
    /// The key; None once released.
    key: Option<String>,
    token: u64,
    loss: watch::Receiver<Option<SessionLoss>>,
}

impl HeldKey {
    /// Holds `key`, whose create_revision is `token`, for as long as `loss` says its
    /// session lives.
    pub(crate) fn new(
        client: Client,
        key: String,
        token: u64,
        loss: watch::Receiver<Option<SessionLoss>>,
    ) -> HeldKey {
        HeldKey {
            client,
            key: Some(key),
            token,
            loss,
        }
    }

    /// The fencing token: the held key's `create_revision`, larger for every later
    /// holder of the same queue.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The held key (empty once released).
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or_default()
    }

    /// The held key, None once released.
    pub(crate) fn held(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Whether the session, and with it the key, was lost.
    pub fn is_lost(&self) -> bool {
        self.loss.borrow().is_some()
    }

    /// Resolves when the key is lost (its session is): stop acting as its holder.
    pub async fn lost(&self) -> SessionLoss {
        let mut rx = self.loss.clone();
        wait_lost(&mut rx).await
    }

    /// Deletes the key: `Error::SessionLost` with `gone` if it was already gone; on
    /// another failure the key is left to the background release, then to the
    /// session's end.
    pub(crate) async fn release(&mut self, gone: &str) -> Result<(), Error> {
        let Some(key) = self.key.take() else {
            return Ok(());
        };
        match self.client.delete(&key).await {
            Ok(_) => Ok(()),
            Err(Error::KeyNotFound(_)) => Err(Error::SessionLost {
                reason: gone.into(),
            }),
            Err(e) => {
                release_in_background(&self.client, Some(key));
                Err(e)
            }
        }
    }
}

impl Drop for HeldKey {
    fn drop(&mut self) {
        release_in_background(&self.client, self.key.take());
    }
}

/// Deletes `key` (if any) on the current runtime, without waiting: a key that cannot
/// be deleted goes with its session.
pub(crate) fn release_in_background(client: &Client, key: Option<String>) {
    let (Some(key), Ok(runtime)) = (key, tokio::runtime::Handle::try_current()) else {
        return;
    };
    let client = client.clone();
    runtime.spawn(async move {
        if let Err(e) = client.delete(&key).await {
            if !matches!(e, Error::KeyNotFound(_)) {
                tracing::warn!(%key, error = %e, "could not delete a queue key; it goes with its session");
            }
        }
    });
}

/// Resolves when the session behind `rx` is lost.
pub(crate) async fn wait_lost(rx: &mut watch::Receiver<Option<SessionLoss>>) -> SessionLoss {
    loop {
        if let Some(loss) = rx.borrow_and_update().clone() {
            return loss;
        }
        if rx.changed().await.is_err() {
            return SessionLoss::Closed;
        }
    }
}
