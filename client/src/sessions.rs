//! The session endpoints, one call each: create, keepalive, inspect, list, close.
//! A session that keeps itself alive is [`crate::Session`] (`session.rs`), built on
//! these.

use crate::client::Client;
use crate::encode::{component, query};
use crate::error::Error;
use crate::transport::{Answer, Call, Kind};
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;
use std::time::Duration;
use tokio::time::Instant;

/// A session's id and TTL.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub ttl_ms: u64,
}

/// A session with a page of its ephemeral keys.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SessionDetail {
    pub id: String,
    pub ttl_ms: u64,
    pub keys: Vec<String>,
    #[serde(default)]
    pub more: bool,
}

/// A page of live sessions.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
    #[serde(default)]
    pub more: bool,
}

#[derive(Deserialize)]
struct Closed {
    deleted_keys: u64,
}

/// Options of a page (sessions or a session's keys).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageOptions {
    pub limit: Option<u64>,
    pub start_after: Option<String>,
}

impl PageOptions {
    fn query(&self) -> String {
        let mut pairs = Vec::new();
        if let Some(l) = self.limit {
            pairs.push(("limit", l.to_string()));
        }
        if let Some(a) = &self.start_after {
            pairs.push(("start_after", a.clone()));
        }
        query(&pairs)
    }
}

fn session_path(id: &str) -> String {
    format!("/v1/sessions/{}", component(id))
}

impl Client {
    /// Creates a session that lives `ttl` past its last keepalive (1 s..=300 s; None:
    /// the server's default, 10 s). It is not kept alive: see [`Client::session`].
    pub async fn create_session(&self, ttl: Option<Duration>) -> Result<SessionInfo, Error> {
        let body = match ttl {
            Some(t) => format!("{{\"ttl_ms\": {}}}", t.as_millis()),
            None => String::new(),
        };
        let call = Call::write(Method::POST, "/v1/sessions".into(), Some(Bytes::from(body)));
        self.transport.execute(&call).await?.json()
    }

    /// One keepalive of the session; `Error::SessionNotFound` once it is gone.
    pub async fn keepalive(&self, id: &str) -> Result<SessionInfo, Error> {
        let (info, _) = self.keepalive_before(id, None).await?;
        Ok(info)
    }

    /// A keepalive that gives up at `deadline`; also returns when the attempt that
    /// succeeded was sent (the lease runs from no earlier than that).
    pub(crate) async fn keepalive_before(
        &self,
        id: &str,
        deadline: Option<Instant>,
    ) -> Result<(SessionInfo, Instant), Error> {
        let call = Call {
            method: Method::POST,
            path: format!("{}/keepalive", session_path(id)),
            body: None,
            kind: Kind::Keepalive,
            deadline,
            headers: Vec::new(),
        };
        let answer: Answer = self.transport.execute(&call).await?;
        Ok((answer.json()?, answer.sent_at))
    }

    /// The session and a page of its ephemeral keys.
    pub async fn session_info(&self, id: &str, page: &PageOptions) -> Result<SessionDetail, Error> {
        let path = format!("{}{}", session_path(id), page.query());
        self.transport.execute(&Call::read(path)).await?.json()
    }

    /// A page of the live sessions, in id order.
    pub async fn list_sessions(&self, page: &PageOptions) -> Result<SessionList, Error> {
        let path = format!("/v1/sessions{}", page.query());
        self.transport.execute(&Call::read(path)).await?.json()
    }

    /// Closes the session; returns how many ephemeral keys were deleted with it.
    pub async fn close_session(&self, id: &str) -> Result<u64, Error> {
        let call = Call::write(Method::DELETE, session_path(id), None);
        let closed: Closed = self.transport.execute(&call).await?.json()?;
        Ok(closed.deleted_keys)
    }
}
