//! Backups: the file format (`docs/format-backup.md`), writing one from a point-in-time
//! snapshot of the state (`GET /v1/snapshot` streams it), reading and verifying one,
//! and restoring the data directory of a member of a NEW cluster from one
//! (`concierge snapshot restore`).
//!
//! Map: `format` (sizes, header, trailer, errors), `tally` (what the chunks hold,
//! counted alike on both sides), `writer`, `reader`, `restore`, `data_size` (bytes a
//! data directory takes on disk). Imports point one way: `backup` uses `kv`, `node`'s
//! snapshot digest and `config`'s cluster file; nothing below it uses `backup`
//! (`http` and the CLI do).

pub mod data_size;
pub mod format;
pub mod reader;
pub mod restore;
pub mod tally;
pub mod writer;

#[cfg(test)]
mod tests;
