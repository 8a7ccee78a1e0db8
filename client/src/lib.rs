//! The Rust client of Concierge: every endpoint of the HTTP API as a typed async call,
//! with failover across the cluster's nodes, writes that are retried without ever
//! applying twice, sessions that keep themselves alive and say when they are lost, and
//! watches that resume after a dead node with no gap and no duplicate.
//!
//! ```no_run
//! use concierge_client::{Client, WatchOptions};
//! use futures_util::StreamExt;
//! use std::time::Duration;
//!
//! # async fn tour() -> Result<(), concierge_client::Error> {
//! let client = Client::connect(["127.0.0.1:8080", "127.0.0.1:8081", "127.0.0.1:8082"])?;
//! let put = client.put("config/a", "1").await?;
//! let got = client.get("config/a").await?; // Some(KeyValue) or None
//! assert_eq!(got.map(|kv| kv.version), Some(put.version));
//!
//! let session = client.session(Duration::from_secs(10)).await?; // kept alive
//! // ... session.lost().await resolves if it is ever lost.
//!
//! let mut watch = client.watch(WatchOptions::prefix("config/").from_revision(put.mod_revision));
//! while let Some(event) = watch.next().await {
//!     let event = event?; // an Err ends the stream
//!     println!("{:?} {} at {}", event.kind, event.key, event.mod_revision);
//! #   break;
//! }
//! session.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Map: `config` (endpoints, time limits), `tls` (the CA to trust, a client certificate), `transport` (failover and the retry rules),
//! `error` (what failed and whether it was applied), one module per resource (`keys`,
//! `txn`, `sessions`, `cluster`, `backup`: snapshots and compaction), `session` (the
//! keeper), `watch` (the resuming stream, over `sse`), and the recipes `lock` and
//! `election` (one queue of sequential keys, whose head holds a `held` key).
//! docs/client.md says the rules in prose.

pub mod auth;
pub mod backup;
pub mod client;
pub mod cluster;
pub mod config;
pub mod election;
mod encode;
pub mod error;
pub mod held;
mod idempotency;
pub mod keys;
pub mod lock;
pub mod members;
pub mod session;
pub mod sessions;
mod sse;
pub mod tls;
pub(crate) mod transport;
pub mod txn;
pub mod types;
pub mod watch;

pub use auth::{AuthStatus, NewToken, Permission, RoleSpec, TokenInfo, UserInfo};
pub use backup::{Compacted, SnapshotStream};
pub use client::Client;
pub use cluster::{Ballot, ClusterStatus, FirstMember, Member};
pub use config::{ClientConfig, Token};
pub use election::{Leader, Leadership, Observer};
pub use error::{Applied, Error, ServerError};
pub use held::HeldKey;
pub use keys::{DeleteOptions, PutOptions};
pub use lock::LockGuard;
pub use members::MemberChange;
pub use session::{Session, SessionLoss};
pub use sessions::{PageOptions, SessionDetail, SessionInfo, SessionList};
pub use tls::Tls;
pub use txn::{Compare, Op, Txn, TxnResponse, TxnResult};
pub use types::{Consistency, DeleteResult, Entry, KeyValue, ListOptions, ListPage, PutResult};
pub use watch::{Event, EventKind, WatchOptions, WatchStream};
