//! The `concierge` binary: `concierge serve` runs one node (see `config` for the flags);
//! every other subcommand is the command-line client (`cli`, docs/cli.md).
//!
//! Start-up order: resolve the configuration, load and check the TLS files
//! (`concierge::tls`), check the data directory's cluster file, open the storage Db and
//! the state machine, start the node (consensus, peers, apply loop), start the session
//! expiry loop, then serve HTTP (or HTTPS) until SIGINT/SIGTERM.

mod cli;

use clap::Parser;
use cli::{Cli, CliCommand};
use concierge::config::{
    check_cluster_file, read_cluster_file, write_cluster_file, ServeArgs, ServeConfig,
    CLUSTER_SECRET_ENV,
};
use concierge::http::{self, AppState, HttpLimits};
use concierge::kv::hub::WatchLimits;
use concierge::kv::{KvOptions, KvStateMachine, LeaseTable};
use concierge::node::transport::peer_tls::PeerTls;
use concierge::node::{Node, NodeConfig};
use concierge::server;
use concierge::tls::NodeTls;
use std::process::ExitCode;
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// The server's allocator. Under a 3-node put load glibc's malloc took a fifth of the
/// CPU, most of it in the HTTP workers (a buffer allocated on one thread and freed on
/// another goes through glibc's arena locks). With mimalloc's per-thread free lists,
/// `wrk -t 2 -c 64` through one node of three, runs alternating: puts 9.7-11.6k/s became
/// 11.9-14.3k/s, linearizable gets 26.2-31.2k/s became 31.5-36.8k/s. Its cost: each
/// node's peak RSS after those runs, 131-134 MB before, 167-172 MB after. The storage
/// engine's own big buffers (memtable chunks) are mapped directly, whatever the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A node logs its progress; a client command only its warnings (stdout is its output).
    let default_level = match cli.command {
        CliCommand::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        CliCommand::Serve(args) => run_serve(&args),
        CliCommand::Certs(args) => match cli::certs::certs(args) {
            Ok(code) => ExitCode::from(code),
            Err(failure) => {
                eprintln!("concierge certs: {failure}");
                ExitCode::from(failure.code)
            }
        },
        CliCommand::Client(command) => ExitCode::from(cli::run(command)),
    }
}

/// `concierge serve`: exit 2 for a configuration that cannot run, 1 when the node stops
/// on an error.
fn run_serve(args: &ServeArgs) -> ExitCode {
    let mut args = args.clone();
    args.cluster_secret = std::env::var(CLUSTER_SECRET_ENV).ok();
    let config = match ServeConfig::resolve(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("concierge: {e}");
            return ExitCode::from(2);
        }
    };
    let host = config
        .client_addr
        .rsplit_once(':')
        .map_or(config.client_addr.as_str(), |(h, _)| h);
    let tls = match NodeTls::load(&config.tls, host, config.members.len()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("concierge: {e}");
            return ExitCode::from(2);
        }
    };
    let peer_tls = match concierge::tls_peer::load(&config.peer_tls, &config.peer_addr) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("concierge: {e}");
            return ExitCode::from(2);
        }
    };
    for warning in &tls.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("concierge: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, tls, peer_tls)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "concierge stopped");
            eprintln!("concierge: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    config: ServeConfig,
    tls: NodeTls,
    peer_tls: Option<Arc<PeerTls>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let fs: Arc<dyn vfs::Fs> = vfs::RealFs::shared();
    let mut joined_now = false;
    let cluster = match (
        &config.join,
        read_cluster_file(fs.as_ref(), &config.data_dir)?,
    ) {
        (Some(url), None) => {
            joined_now = true;
            let client = tls.forward_client(config.request_timeout)?;
            let file = server::join::join(
                &client,
                url,
                config.join_token.as_deref(),
                &config.peer_addr,
            )
            .await?;
            write_cluster_file(fs.as_ref(), &config.data_dir, &file)?;
            tracing::info!(id = ?file.id, via = %url, "joined the cluster");
            file
        }
        _ => check_cluster_file(fs.as_ref(), &config.data_dir, &config.member_addrs())?,
    };
    let id = cluster.id.unwrap_or(config.id);
    let first_members: Vec<(u32, String)> = cluster
        .members
        .iter()
        .enumerate()
        .map(|(i, m)| (i as u32 + 1, m.clone()))
        .collect();
    let db = storage::Db::open(
        Arc::clone(&fs),
        &config.data_dir.join("kv"),
        config.storage.clone(),
    )
    .map_err(|e| format!("opening the key-value store: {e}"))?;
    let leases = LeaseTable::new();
    let engine = db.stats_reader();
    let sm = KvStateMachine::open(db, KvOptions::default(), Arc::clone(&leases))
        .map_err(|e| format!("opening the state machine: {e}"))?
        .with_watch_limits(WatchLimits {
            watchers_max: config.watchers_max,
            ..WatchLimits::default()
        });
    let reader = sm.reader();
    let auth = sm.auth();
    tracing::info!(
        id,
        first_members = ?first_members,
        client_addr = %config.client_addr,
        applied_index = sm.applied_index(),
        "starting node"
    );
    let mut node_config = NodeConfig::new(
        id,
        first_members,
        config.client_addr.clone(),
        config.data_dir.clone(),
    );
    node_config.peers_known = cluster.peers.clone();
    node_config.new_member = joined_now;
    node_config.request_timeout_ms = config.request_timeout.as_millis() as u64;
    node_config.cluster_token = cluster.token;
    node_config.cluster_secret = config.cluster_secret.clone();
    node_config.peer_tls = peer_tls;
    let node = Node::start(node_config, Box::new(sm))
        .await
        .map_err(|e| format!("starting the node: {e}"))?;
    let expiry = tokio::spawn(server::expiry::run(node.clone(), Arc::clone(&leases)));
    let clock = tokio::spawn(server::clock::run(node.clone(), reader.clone()));

    let state = actix_web::web::Data::new(AppState {
        node: node.clone(),
        reader,
        leases,
        auth,
        limits: HttpLimits {
            value_bytes_max: config.value_bytes_max,
            request_timeout: config.request_timeout,
            ..config.http.limits()
        },
        forward: tls.forward_client(config.request_timeout)?,
        forward_scheme: tls.scheme(),
        metrics: http::metrics::Metrics::default(),
        data_dir: config.data_dir.clone(),
        backups: Default::default(),
        engine,
    });
    let server = server::http::serve(&config.client_addr, &config.http, tls.server.clone(), state)
        .map_err(|e| format!("listening for clients on {}: {e}", config.client_addr))?;
    tracing::info!(
        addr = %config.client_addr,
        scheme = tls.scheme(),
        client_certificates = tls.client_auth,
        "serving clients"
    );
    // A node that halts on its own (its acceptor log failed, or its peers refuse its data
    // directory) must not go on answering 503s: stop serving and exit with the reason.
    let halted = {
        let (node, server) = (node.clone(), server.handle());
        tokio::spawn(async move {
            let reason = node.stopped().await;
            server.stop(true).await;
            reason
        })
    };
    let result = server.await;
    expiry.abort();
    clock.abort();
    node.shutdown().await;
    if let Ok(Some(reason)) = halted.await {
        return Err(format!("the node stopped: {reason}").into());
    }
    result.map_err(|e| format!("HTTP server: {e}").into())
}
