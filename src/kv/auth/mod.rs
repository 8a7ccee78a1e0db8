//! Access control kept in the replicated state: roles, users, tokens and the enabled
//! flag, as one record of the live area (`keyspace::AUTH_KIND`), so snapshots, backups
//! and restores carry it like any other record and every node enforces the same rules.
//!
//! `model` (the state and the permission checks), `command` (what the log carries),
//! `apply` (deterministic changes, used by `kv::apply`), `token` (making and verifying
//! bearer tokens) and `table` (the applied state as the HTTP layer reads it, swapped
//! whole after each slot that changed it). Imports point one way: `apply` uses
//! `command` and `model`; `table` uses `model` and `token`.

pub(crate) mod apply;
pub mod command;
pub mod model;
pub mod table;
pub mod token;

pub use command::AuthCommand;
pub use model::{Access, AuthState, Grants, Perm, Rights, Role, User};
pub use table::AuthTable;

#[cfg(test)]
pub(crate) mod state_tests;
