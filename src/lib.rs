//! Concierge: a durable, replicated coordination service.
//!
//! Reading order: `paxos` (the pure consensus core), `node` (drives it over the network
//! and disk), `kv` (the replicated state machine), `http` (the REST API of API.md),
//! `server` (what runs beside the node and the state machine: session expiry),
//! `tls` (HTTPS on the client port),
//! `backup` (the backup file format, and restoring a new cluster from one).

pub mod node;
pub mod paxos;

// The server around the consensus: configuration, the state machine, the REST API.
pub mod backup;
pub mod config;
pub mod http;
pub mod kv;
pub mod server;
pub mod tls;
pub mod tls_peer;

// A client tool that lives beside the server: the load generator behind `concierge bench`,
// and the `--endpoints` flag it shares with the command-line client.
pub mod bench;
pub mod endpoints;
