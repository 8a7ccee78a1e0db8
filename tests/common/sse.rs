//! A Server-Sent Events reader for watch tests: opens `GET /v1/watch...` and splits the
//! stream into frames (`id:`, `event:`, `data:` lines, and `:` comments), keeping
//! every frame, with or without an `id:`.

use futures_util::StreamExt;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// One SSE frame as it came.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    pub id: Option<u64>,
    pub event: Option<String>,
    pub data: Option<Value>,
    /// The text of a comment line (after `: `).
    pub comment: Option<String>,
}

impl Frame {
    /// The change event's `mod_revision` (panics on a frame that is not an event).
    pub fn revision(&self) -> u64 {
        self.data.as_ref().expect("an event frame")["mod_revision"]
            .as_u64()
            .expect("mod_revision")
    }

    /// The event's key.
    pub fn key(&self) -> String {
        self.data.as_ref().expect("an event frame")["key"]
            .as_str()
            .expect("key")
            .to_string()
    }

    /// A change event (data, not an error event).
    pub fn is_change(&self) -> bool {
        self.data.is_some() && self.event.is_none()
    }
}

/// An open watch stream.
pub struct Sse {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    text: String,
}

impl Sse {
    /// Takes a 200 `text/event-stream` response.
    pub fn of(resp: Response) -> Sse {
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Sse {
            stream: resp.bytes_stream().boxed(),
            text: String::new(),
        }
    }

    /// The next frame, or None when the stream ended. Panics after `limit` without one
    /// (a bound against hanging, not a timing assertion).
    pub async fn next(&mut self, limit: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let raw: String = self.text.drain(..end + 2).collect();
                return Some(parse_frame(&raw));
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("a frame within the limit");
            match chunk {
                None => return None,
                Some(bytes) => self
                    .text
                    .push_str(std::str::from_utf8(&bytes.expect("stream bytes")).expect("UTF-8")),
            }
        }
    }

    /// The next `count` change events, skipping comments.
    pub async fn changes(&mut self, count: usize, limit: Duration) -> Vec<Frame> {
        let mut out = Vec::new();
        while out.len() < count {
            let f = self.next(limit).await.expect("the stream stays open");
            if f.comment.is_none() {
                assert!(f.is_change(), "expected a change, got {f:?}");
                out.push(f);
            }
        }
        out
    }
}

fn parse_frame(raw: &str) -> Frame {
    let mut f = Frame::default();
    for line in raw.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            f.id = Some(v.parse().expect("a numeric id"));
        } else if let Some(v) = line.strip_prefix("event: ") {
            f.event = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("data: ") {
            f.data = Some(serde_json::from_str(v).expect("JSON data"));
        } else if let Some(v) = line.strip_prefix(':') {
            f.comment = Some(v.trim().to_string());
        }
    }
    f
}
