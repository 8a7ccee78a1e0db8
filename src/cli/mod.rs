//! The `concierge` command line: `serve` runs a node (see `concierge::config`); every
//! other subcommand is a client of a running cluster, built on the `concierge-client`
//! crate (failover across `--endpoints`, idempotent retries, sessions kept alive).
//!
//! Map: `conn` (the shared flags and the client), `exit` (exit codes and errors),
//! `input` (data from an argument, a file or stdin), `output` (values, tables, JSON),
//! one file per command group (`keys`, `watch`, `txn`, `session`, `lock`, `cluster`,
//! `member`, `snapshot`, `compact`), and `certs` (a development CA and certificates; it talks to
//! no cluster).
//! This file only parses and dispatches; the command files never import it.
//! docs/cli.md is the user's reference.

mod auth;
pub mod certs;
mod cluster;
mod compact;
mod conn;
mod elect;
pub mod exit;
mod input;
mod keys;
mod lock;
mod member;
mod output;
mod session;
mod signals;
mod snapshot;
mod txn;
mod watch;

use clap::{Parser, Subcommand};
use concierge::config::ServeArgs;

/// The `concierge` command line.
#[derive(Parser, Debug)]
#[command(
    name = "concierge",
    version,
    about = "A durable, replicated coordination service, and its command-line client",
    after_help = "Client commands take --endpoints (or CONCIERGE_ENDPOINTS, default \
                  127.0.0.1:8080), --token (or CONCIERGE_TOKEN) and --json. Exit codes: 0 ok, 1 error, 2 usage, \
                  3 not found, 4 condition failed (docs/cli.md)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: CliCommand,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum CliCommand {
    /// Run one node.
    Serve(ServeArgs),
    /// Make a development CA and node and client certificates for HTTPS.
    Certs(certs::CertsArgs),
    #[command(flatten)]
    Client(ClientCommand),
}

/// The client subcommands.
#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Print a key's value (exit 3 if absent).
    Get(keys::GetArgs),
    /// Write a key from an argument, `-` (stdin) or --file.
    Put(keys::PutArgs),
    /// Delete a key, or every key under a prefix.
    Del(keys::DelArgs),
    /// List keys under a prefix, as a table.
    Ls(keys::LsArgs),
    /// Print the changes of a key or a prefix as they happen.
    Watch(watch::WatchArgs),
    /// Run a transaction given as JSON (exit 4 when its else branch ran).
    Txn(txn::TxnArgs),
    /// Create, keep alive, list and close sessions.
    Session(session::SessionArgs),
    /// Run a command while holding a lock.
    Lock(lock::LockArgs),
    Elect(elect::ElectArgs),
    /// Show the cluster's members as one node sees them.
    Cluster(cluster::ClusterArgs),
    /// Add, promote, remove and list the members (docs/cli.md).
    Member(member::MemberArgs),
    /// Exit 0 only if every node given is ready (GET /ready).
    Health(cluster::HealthArgs),
    /// Save, verify and restore backups (docs/cli.md).
    Snapshot(snapshot::SnapshotArgs),
    /// Drop the watch history below a revision (POST /v1/compact).
    Compact(compact::CompactArgs),
    /// Turn access control on or off, or show it.
    Auth(auth::AuthArgs),
    /// Add, list and remove roles (access control).
    Role(auth::RoleArgs),
    /// Add and remove users (access control).
    User(auth::UserArgs),
    /// Create and revoke tokens (access control).
    Token(auth::TokenArgs),
    /// Load a cluster (or etcd) and report throughput and latency (docs/bench.md).
    Bench(concierge::bench::BenchArgs),
}

/// Runs a client command to its exit code; a failure is printed on stderr.
pub fn run(command: ClientCommand) -> u8 {
    // The bench runs its own multi-threaded runtime.
    if let ClientCommand::Bench(args) = command {
        return match concierge::bench::main(args) {
            Ok(()) => exit::OK,
            Err(concierge::bench::BenchError::Usage(m)) => {
                eprintln!("concierge bench: {m}");
                exit::USAGE
            }
            Err(concierge::bench::BenchError::Failed(m)) => {
                eprintln!("concierge bench: {m}");
                exit::ERROR
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("concierge: starting the runtime: {e}");
            return exit::ERROR;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            ClientCommand::Get(a) => keys::get(a).await,
            ClientCommand::Put(a) => keys::put(a).await,
            ClientCommand::Del(a) => keys::del(a).await,
            ClientCommand::Ls(a) => keys::ls(a).await,
            ClientCommand::Watch(a) => watch::watch(a).await,
            ClientCommand::Txn(a) => txn::txn(a).await,
            ClientCommand::Session(a) => session::session(a).await,
            ClientCommand::Lock(a) => lock::lock(a).await,
            ClientCommand::Elect(a) => elect::elect(a).await,
            ClientCommand::Cluster(a) => cluster::cluster(a).await,
            ClientCommand::Health(a) => cluster::health(a).await,
            ClientCommand::Member(a) => member::member(a).await,
            ClientCommand::Snapshot(a) => snapshot::snapshot(a).await,
            ClientCommand::Compact(a) => compact::compact(a).await,
            ClientCommand::Auth(a) => auth::auth(a).await,
            ClientCommand::Role(a) => auth::role(a).await,
            ClientCommand::User(a) => auth::user(a).await,
            ClientCommand::Token(a) => auth::token(a).await,
            ClientCommand::Bench(_) => Ok(exit::OK), // ran above
        }
    });
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("concierge: {failure}");
            failure.code
        }
    }
}
