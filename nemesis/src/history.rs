//! The record of one run: every client operation with its invocation and completion
//! times (microseconds since the run started) and what the server answered.
//!
//! Invariants: `complete_us >= invoke_us` when known; `complete_us` is `None` exactly
//! when the outcome is unknown (a timeout, a dropped connection, a 504, an unexpected
//! answer to a write): the checker then lets the operation complete at +infinity, so
//! it may or may not have taken effect. A 503 is `NotApplied`: by the contract the
//! operation did not happen, and the checker holds the server to that; so is a request
//! whose connection could not even be made (never sent).

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// What a client asked for (always about one key).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "f", rename_all = "snake_case")]
pub enum Call {
    /// A linearizable `GET /v1/keys/{key}`.
    Get,
    /// `PUT /v1/keys/{key}` with a value unique in the run, `?version=N` when set.
    Put {
        value: String,
        if_version: Option<u64>,
    },
    /// `DELETE /v1/keys/{key}`, `?version=N` when set.
    Delete { if_version: Option<u64> },
}

impl Call {
    /// A short name for summaries: get, put, cas-put, delete, cas-delete.
    pub fn kind(&self) -> &'static str {
        match self {
            Call::Get => "get",
            Call::Put {
                if_version: None, ..
            } => "put",
            Call::Put { .. } => "cas-put",
            Call::Delete { if_version: None } => "delete",
            Call::Delete { .. } => "cas-delete",
        }
    }

    /// True for puts and deletes.
    pub fn is_write(&self) -> bool {
        !matches!(self, Call::Get)
    }
}

/// What the server answered.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "r", rename_all = "snake_case")]
pub enum Outcome {
    /// 200 to a get.
    Found {
        value: String,
        version: u64,
        mod_revision: u64,
    },
    /// 404 to a get or a delete.
    NotFound,
    /// 200/201 to a put.
    Written { version: u64, mod_revision: u64 },
    /// 200 to a delete.
    Deleted { revision: u64 },
    /// 412: the version condition failed; nothing changed.
    Mismatch { current_version: u64 },
    /// 503: not applied and never will be; `status` 0: the connection could not be
    /// made, so the request was never sent.
    NotApplied { status: u16 },
    /// No answer, or a 504: the operation may or may not have taken effect.
    Unknown { reason: String },
    /// An answer the contract does not allow here (a 500, a body that does not parse):
    /// reported as a contract breach and, for the checker, of unknown effect.
    Unexpected { status: u16, body: String },
}

impl Outcome {
    /// True when the answer says exactly what happened.
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            Outcome::Found { .. }
                | Outcome::NotFound
                | Outcome::Written { .. }
                | Outcome::Deleted { .. }
                | Outcome::Mismatch { .. }
        )
    }

    /// The column of the summary this outcome counts in.
    pub fn column(&self) -> Column {
        match self {
            Outcome::Found { .. } | Outcome::Written { .. } | Outcome::Deleted { .. } => Column::Ok,
            Outcome::NotFound | Outcome::Mismatch { .. } => Column::Refused,
            Outcome::NotApplied { .. } => Column::NotApplied,
            Outcome::Unknown { .. } => Column::Unknown,
            Outcome::Unexpected { .. } => Column::Unexpected,
        }
    }
}

/// Summary columns: 2xx, a definite refusal (404/412), 503, unknown, contract breach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    Ok,
    Refused,
    NotApplied,
    Unknown,
    Unexpected,
}

/// One operation of the history.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Unique in the run.
    pub id: u64,
    /// The client that issued it ([`PROBE_CLIENT`] for the harness's own probes).
    pub client: u32,
    /// The node (index from 0) the first attempt went to.
    pub node: usize,
    pub key: String,
    pub call: Call,
    pub invoke_us: u64,
    /// None: unknown outcome (+infinity for the checker).
    pub complete_us: Option<u64>,
    pub outcome: Outcome,
    /// Attempts made: more than 1 when an unknown outcome was retried with the same
    /// `Idempotency-Key` to learn the answer.
    pub attempts: u32,
}

/// The client id of operations the harness itself makes (recovery probes, final reads).
pub const PROBE_CLIENT: u32 = u32::MAX;

impl Op {
    /// Asserts the record's invariants (a harness bug otherwise).
    pub fn assert_valid(&self) {
        match self.complete_us {
            Some(c) => assert!(
                c >= self.invoke_us && self.outcome.is_definite()
                    || matches!(self.outcome, Outcome::NotApplied { .. }),
                "op {} completes at {c} with {:?}",
                self.id,
                self.outcome
            ),
            None => assert!(
                !self.outcome.is_definite(),
                "op {} has no completion but a definite outcome",
                self.id
            ),
        }
    }

    /// One line for reports.
    pub fn describe(&self) -> String {
        let end = self
            .complete_us
            .map_or("inf".to_string(), |c| format!("{:.3}", c as f64 / 1e6));
        let call = match &self.call {
            Call::Get => "get".to_string(),
            Call::Put { value, if_version } => match if_version {
                Some(v) => format!("put {value} if version={v}"),
                None => format!("put {value}"),
            },
            Call::Delete { if_version } => match if_version {
                Some(v) => format!("delete if version={v}"),
                None => "delete".to_string(),
            },
        };
        let client = if self.client == PROBE_CLIENT {
            "harness".to_string()
        } else {
            format!("c{}", self.client)
        };
        format!(
            "op {:>6} {client:>7} n{} [{:.3}, {end}] {} {call} -> {:?}{}",
            self.id,
            self.node + 1,
            self.invoke_us as f64 / 1e6,
            self.key,
            self.outcome,
            if self.attempts > 1 {
                format!(" ({} attempts)", self.attempts)
            } else {
                String::new()
            }
        )
    }
}

/// Writes `ops` as JSON lines.
pub fn save(path: &Path, ops: &[Op]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        serde_json::to_writer(&mut out, op)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Reads a history written by [`save`].
pub fn load(path: &Path) -> std::io::Result<Vec<Op>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
        .collect()
}
