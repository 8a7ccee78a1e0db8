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
//!
//! An expiry is never refused for its size (the state machine applies it in chunks,
//! `kv::chunked`); one refused all the same (a stale ballot: another leader took
//! over) or a proposal that failed is logged, and the loop waits before proposing
//! again ([`Backoff`]: from `EXPIRY_TICK`, doubling up to `EXPIRY_BACKOFF_MAX`), rather
//! than proposing the same refused command every tick.

use crate::kv::{Command, LeaderBallot, LeaseTable, Outcome, Reply};
use crate::node::{NodeError, NodeHandle};
use crate::server::backoff::Backoff;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often the loop looks at deadlines (well below the smallest TTL, 1 s).
pub const EXPIRY_TICK: Duration = Duration::from_millis(100);
/// Sessions expired by one command.
pub const EXPIRE_SESSIONS_MAX: usize = 1024;
/// Longest wait after refused or failed expiries.
pub const EXPIRY_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Why the state machine refused an expiry, from its encoded reply (None: applied).
pub fn refusal(reply: &[u8]) -> Option<String> {
    match Reply::decode(reply) {
        Ok(Reply {
            outcome: Outcome::Rejected { reason },
            ..
        }) => Some(reason),
        Ok(_) => None,
        Err(e) => Some(format!("undecodable reply: {e}")),
    }
}

/// Runs until the node shuts down.
pub async fn run(node: NodeHandle, leases: Arc<LeaseTable>) {
    let mut leading_ballot: Option<LeaderBallot> = None;
    let mut backoff = Backoff::new(EXPIRY_TICK, EXPIRY_BACKOFF_MAX);
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
            backoff.succeeded();
            continue;
        }
        if !backoff.ready(Instant::now()) {
            continue;
        }
        let due = leases.expired(Instant::now(), EXPIRE_SESSIONS_MAX);
        if due.is_empty() {
            continue;
        }
        let sessions = due.len();
        tracing::info!(sessions, "expiring sessions");
        let command = Command::ExpireSessions { ids: due, ballot };
        let failure = match node.propose(command.encode()).await {
            Ok((_, reply)) => refusal(&reply),
            Err(NodeError::Shutdown) => return,
            Err(e) => Some(format!("proposing failed: {e}")),
        };
        match failure {
            None => backoff.succeeded(),
            Some(reason) => {
                let wait = backoff.failed(Instant::now());
                tracing::warn!(
                    sessions,
                    reason,
                    retry_in_ms = wait.as_millis() as u64,
                    "a session expiry was not applied; waiting before proposing again"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_expiry_is_told_from_an_applied_one() {
        let applied = Reply {
            revision: 3,
            outcome: Outcome::SessionsExpired {
                sessions: 1,
                deleted_keys: 80_000,
            },
        };
        assert_eq!(refusal(&applied.encode()), None);
        let stale = Reply {
            revision: 3,
            outcome: Outcome::Rejected {
                reason: "expiry from ballot (1, 1) older than (2, 1)".into(),
            },
        };
        assert_eq!(
            refusal(&stale.encode()).as_deref(),
            Some("expiry from ballot (1, 1) older than (2, 1)")
        );
        assert!(refusal(b"").is_some());
    }
}
