//! The server around the node and the state machine: what runs beside them and needs
//! both, so belongs to neither.
//!
//! `expiry`: the leader's session expiry loop, which watches the node's leadership and
//! the state machine's lease table and proposes `ExpireSessions` commands through the
//! `NodeHandle`. `main.rs` starts it after the node and stops it before the node shuts
//! down. Dependencies point down: `server` uses `node` and `kv`; neither uses it.

pub mod expiry;
