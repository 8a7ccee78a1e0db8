//! The leader's idempotency clock loop (runs on every node; acts only while leader).
//!
//! The state machine's idempotency clock moves only with the leader's stamps
//! (`kv::idempotency`). An idempotent write the leader proposes carries one; when all
//! writes come through followers, nothing would move the clock and records would never
//! retire. So every [`LEADER_CLOCK_TICK`], while this node leads and idempotency
//! records are held, it proposes a `LeaderClock` with its wall clock and ballot unless
//! its own stamps moved the clock within the last tick. The command also retires
//! records past their window. An idle cluster with no records proposes nothing. One
//! proposal at a time: the loop awaits it before looking again.

use crate::http::consensus::wall_clock_ms;
use crate::kv::{Command, KvReader, LeaderBallot};
use crate::node::{NodeError, NodeHandle};
use std::time::Duration;

/// How often the loop looks. Below `IDEMPOTENCY_CLOCK_STEP_MS_MAX` with margin for
/// the commit, so the clock keeps pace with the leader's.
pub const LEADER_CLOCK_TICK: Duration = Duration::from_secs(5);
const _: () = assert!(
    (LEADER_CLOCK_TICK.as_millis() as u64) * 2
        <= crate::kv::idempotency::IDEMPOTENCY_CLOCK_STEP_MS_MAX
);

/// Runs until the node shuts down.
pub async fn run(node: NodeHandle, reader: KvReader) {
    let mut ticker = tokio::time::interval(LEADER_CLOCK_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let status = node.status();
        if !status.is_leader {
            continue;
        }
        let ballot = LeaderBallot {
            round: status.ballot.round,
            node: status.ballot.node,
        };
        let (meta, held) = match (reader.meta(), reader.idempotency_records_held()) {
            (Ok(m), Ok(h)) => (m, h),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "reading the idempotency clock");
                continue;
            }
        };
        if !held {
            continue;
        }
        let now = wall_clock_ms();
        let mine = meta.idempotency_clock_ballot == (ballot.round, ballot.node);
        let tick_ms = LEADER_CLOCK_TICK.as_millis() as u64;
        if mine && now.saturating_sub(meta.idempotency_leader_stamp_ms) < tick_ms {
            continue;
        }
        let command = Command::LeaderClock {
            ballot,
            stamp_ms: now,
        };
        match node.propose(command.encode()).await {
            Ok(_) => {}
            Err(NodeError::Shutdown) => return,
            Err(e) => tracing::warn!(error = %e, "proposing the leader's clock failed; will retry"),
        }
    }
}
