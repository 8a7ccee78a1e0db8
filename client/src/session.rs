//! [`Session`]: a session that keeps itself alive in the background and says when it
//! is lost.
//!
//! A keeper task sends a keepalive about every ttl/3, through any live endpoint (the
//! transport fails over), and retries a failed one until the lease could have run out.
//! The lease is counted from when the acknowledged keepalive was *sent*: the server
//! restarts the TTL when it receives it, which is later, so until `sent + ttl` the
//! session is certainly alive (API.md: it expires no sooner than ttl after its last
//! acknowledged keepalive). Past that point without an acknowledgement, or on a 404,
//! the session is reported lost and the keeper stops: an application holding a lock
//! through it must stop acting as its holder.
//!
//! Invariant: the loss signal is set exactly once, before the keeper ends, and never
//! while the lease is certainly alive; dropping or closing the handle sets `Closed`.

use crate::client::Client;
use crate::error::Error;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Why a session is no longer held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionLoss {
    /// The server answered 404 to a keepalive: the session expired or was closed, and
    /// its ephemeral keys are gone.
    Expired,
    /// No keepalive was acknowledged for a whole TTL (every endpoint failed): the
    /// session may have expired; its keys may be gone or go at any moment.
    Unconfirmed { last_error: String },
    /// Closed or dropped by this process.
    Closed,
}

type LossSender = Arc<watch::Sender<Option<SessionLoss>>>;

/// Sets the loss once; later losses keep the first.
fn report(tx: &LossSender, loss: SessionLoss) {
    tx.send_if_modified(|v| {
        if v.is_none() {
            *v = Some(loss);
            true
        } else {
            false
        }
    });
}

/// A session kept alive in the background.
#[derive(Debug)]
pub struct Session {
    client: Client,
    id: String,
    ttl: Duration,
    loss: LossSender,
    keeper: JoinHandle<()>,
}

impl Client {
    /// Creates a session with this TTL (1 s..=300 s) and keeps it alive until it is
    /// closed, dropped, or lost.
    pub async fn session(&self, ttl: Duration) -> Result<Session, Error> {
        let started = Instant::now();
        let info = self.create_session(Some(ttl)).await?;
        let ttl = Duration::from_millis(info.ttl_ms);
        let (tx, _) = watch::channel(None);
        let loss = Arc::new(tx);
        // The lease of a new session runs from no earlier than the create was sent.
        let keeper = tokio::spawn(keep(
            self.clone(),
            info.id.clone(),
            ttl,
            started,
            loss.clone(),
        ));
        Ok(Session {
            client: self.clone(),
            id: info.id,
            ttl,
            loss,
            keeper,
        })
    }
}

/// The keeper: one keepalive per ttl/3, retried until the lease could have ended.
async fn keep(
    client: Client,
    id: String,
    mut ttl: Duration,
    mut held_since: Instant,
    loss: LossSender,
) {
    loop {
        tokio::time::sleep_until(held_since + ttl / 3).await;
        let lease_end = held_since + ttl;
        loop {
            match client.keepalive_before(&id, Some(lease_end)).await {
                Ok((info, sent_at)) => {
                    held_since = sent_at;
                    ttl = Duration::from_millis(info.ttl_ms);
                    break;
                }
                Err(Error::SessionNotFound(_)) => {
                    tracing::warn!(session = %id, "session expired");
                    report(&loss, SessionLoss::Expired);
                    return;
                }
                Err(e) => {
                    let now = Instant::now();
                    if now >= lease_end {
                        tracing::warn!(session = %id, error = %e, "session lost: no keepalive acknowledged within its TTL");
                        report(
                            &loss,
                            SessionLoss::Unconfirmed {
                                last_error: e.to_string(),
                            },
                        );
                        return;
                    }
                    // A refusal the transport does not retry (it gave up before the
                    // lease's end): pause, then try again while the lease lasts.
                    let pause = client.config().backoff_max.min(lease_end - now);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

impl Session {
    /// The session's id (for `PutOptions::session`, `Op::put_owned`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The TTL the server granted.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The loss, once the session is lost.
    pub fn loss(&self) -> Option<SessionLoss> {
        self.loss.borrow().clone()
    }

    /// A receiver of the loss signal (None while held), to select on or hand out.
    pub fn subscribe(&self) -> watch::Receiver<Option<SessionLoss>> {
        self.loss.subscribe()
    }

    /// Resolves when the session is lost (or closed or dropped elsewhere).
    pub async fn lost(&self) -> SessionLoss {
        let mut rx = self.loss.subscribe();
        let loss = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or(SessionLoss::Closed),
            Err(_) => SessionLoss::Closed,
        };
        loss
    }

    /// Stops the keepalives and closes the session (its ephemeral keys are deleted);
    /// returns how many keys went with it.
    pub async fn close(self) -> Result<u64, Error> {
        report(&self.loss, SessionLoss::Closed);
        self.keeper.abort();
        self.client.close_session(&self.id).await
    }
}

impl Drop for Session {
    /// The keepalives stop; the session expires on the server after its TTL.
    fn drop(&mut self) {
        report(&self.loss, SessionLoss::Closed);
        self.keeper.abort();
    }
}
