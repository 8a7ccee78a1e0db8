//! Backups and history compaction: `GET /v1/snapshot` as a stream of bytes (the backup
//! file of the server's docs/format-backup.md, to be written as it comes), and
//! `POST /v1/compact`.
//!
//! A backup is read from one node: the call tries the endpoints in order until one
//! answers 200, then streams that node's answer; a broken stream is an error (start
//! over: a backup cannot resume). The bytes are not checked here (the `concierge`
//! binary's `snapshot save` verifies the file it wrote).

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Method;
use serde::Deserialize;

use crate::client::Client;
use crate::error::Error;
use crate::transport::Call;

/// The bytes of a backup, as they arrive.
pub struct SnapshotStream {
    /// The endpoint serving it.
    pub endpoint: String,
    /// The revision the backup holds (`X-Concierge-Revision` of the answer).
    pub revision: u64,
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
}

impl std::fmt::Debug for SnapshotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotStream")
            .field("endpoint", &self.endpoint)
            .field("revision", &self.revision)
            .finish()
    }
}

impl Stream for SnapshotStream {
    type Item = Result<Bytes, Error>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// `POST /v1/compact`'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Compacted {
    /// History now holds the revisions above this.
    pub compact_revision: u64,
    /// The cluster revision (unchanged by a compaction).
    pub revision: u64,
}

impl Client {
    /// Starts streaming a backup (`GET /v1/snapshot`) from the first node that serves one.
    pub async fn snapshot(&self) -> Result<SnapshotStream, Error> {
        let transport = &self.transport;
        let mut last = None;
        let first = transport.preferred();
        for k in 0..transport.endpoints.len() {
            let endpoint = &transport.endpoints[(first + k) % transport.endpoints.len()];
            let sent = tokio::time::timeout(
                transport.config.attempt_timeout,
                transport.http.get(format!("{endpoint}/v1/snapshot")).send(),
            )
            .await;
            let resp = match sent {
                Err(_) => {
                    last = Some(Error::Unreachable {
                        message: format!("{endpoint}: no answer to the snapshot request"),
                    });
                    continue;
                }
                Ok(Err(e)) => {
                    last = Some(Error::Unreachable {
                        message: format!("{endpoint}: {e}"),
                    });
                    continue;
                }
                Ok(Ok(r)) => r,
            };
            let status = resp.status().as_u16();
            if status != 200 {
                let body = resp.bytes().await.unwrap_or_default();
                let error = Error::from_answer(status, &body, endpoint);
                if status >= 500 || status == 408 {
                    last = Some(error);
                    continue;
                }
                return Err(error);
            }
            let revision = resp
                .headers()
                .get("x-concierge-revision")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let ep = endpoint.clone();
            let inner = resp.bytes_stream().map(move |item| {
                item.map_err(|e| Error::OutcomeUnknown {
                    endpoint: ep.clone(),
                    message: format!("the backup stream broke: {e}"),
                })
            });
            return Ok(SnapshotStream {
                endpoint: endpoint.clone(),
                revision,
                inner: Box::pin(inner),
            });
        }
        Err(last.unwrap_or_else(|| Error::InvalidArgument("no endpoints".into())))
    }

    /// Drops the watch history below `revision` (`POST /v1/compact`). A revision above
    /// the current one, or at or below the oldest one held, is `Error::Rejected`.
    pub async fn compact(&self, revision: u64) -> Result<Compacted, Error> {
        let body = serde_json::json!({ "revision": revision }).to_string();
        self.transport
            .execute(&Call::write(
                Method::POST,
                "/v1/compact".into(),
                Some(Bytes::from(body)),
            ))
            .await?
            .json()
    }
}
