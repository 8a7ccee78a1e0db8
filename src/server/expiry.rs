//! The leader's session expiry loop (runs on every node; acts only while leader).
//!
//! It lives with the server's wiring, not in `kv`: it reads the node's status and
//! proposes through the `NodeHandle`, while the state machine only applies the
//! `ExpireSessions` commands it sends and keeps the `LeaseTable` it reads.
//!
//! Every `EXPIRY_TICK` it checks leadership: on becoming leader it restarts every
//! session's TTL (`LeaseTable::restart_all`), so a leader change never expires a
//! session; while leader it proposes one `ExpireSessions` for the sessions past their
//! deadline (at most `EXPIRE_SESSIONS_MAX` per command), carrying its ballot. One
//! proposal at a time: the loop awaits it before looking again.

use crate::kv::{Command, LeaderBallot, LeaseTable};
use crate::node::{NodeError, NodeHandle};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the loop looks at deadlines (well below the smallest TTL, 1 s).
pub const EXPIRY_TICK: Duration = Duration::from_millis(100);
/// Sessions expired by one command.
pub const EXPIRE_SESSIONS_MAX: usize = 1024;

/// Runs until the node shuts down.
pub async fn run(node: NodeHandle, leases: Arc<LeaseTable>) {
    let mut leading_ballot: Option<LeaderBallot> = None;
    let mut ticker = tokio::time::interval(EXPIRY_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let status = node.status();
        let ballot = LeaderBallot {
            round: status.ballot.round,
            node: status.ballot.node,
        };
        if !status.is_leader {
            leading_ballot = None;
            continue;
        }
        if leading_ballot != Some(ballot) {
            tracing::info!(
                round = ballot.round,
                "became leader: restarting every session's TTL"
            );
            leases.restart_all();
            leading_ballot = Some(ballot);
            continue;
        }
        let due = leases.expired(Instant::now(), EXPIRE_SESSIONS_MAX);
        if due.is_empty() {
            continue;
        }
        tracing::info!(sessions = due.len(), "expiring sessions");
        let command = Command::ExpireSessions { ids: due, ballot };
        match node.propose(command.encode()).await {
            Ok(_) => {}
            Err(NodeError::Shutdown) => return,
            Err(e) => tracing::warn!(error = %e, "proposing a session expiry failed; will retry"),
        }
    }
}
