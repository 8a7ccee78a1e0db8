//! The server around the node and the state machine: what runs beside them and needs
//! both, so belongs to neither.
//!
//! `expiry`: the leader's session expiry loop, which watches the node's leadership and
//! the state machine's lease table and proposes `ExpireSessions` commands through the
//! `NodeHandle`. `main.rs` starts it after the node and stops it before the node shuts
//! down. After a refused or failed proposal it waits (`backoff`: doubling, capped)
//! rather than proposing again every tick.
//!
//! `clock`: the leader's idempotency clock loop, which proposes `LeaderClock` commands
//! while idempotency records are held, so the clock that retires them moves with the
//! leader's time (`kv::idempotency`). Started and stopped beside `expiry`.
//!
//! `join`: a new node's first start with `JOIN`: it asks a member who it is in the
//! cluster and records that in its data directory before the node starts.
//!
//! `http`: the client HTTP server with its connection limits (deadlines for heads,
//! keep-alive, a connection cap), serving `crate::http`'s routes.
//!
//! Dependencies point down: `server` uses `node`, `kv` and `http`'s wall clock; none of
//! them uses it.

pub mod backoff;
pub mod clock;
pub mod expiry;
pub mod http;
pub mod join;
