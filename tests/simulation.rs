//! Deterministic simulation of whole clusters of the real paxos `Core` (TigerBeetle's VOPR
//! idea: any failure is reproduced from its seed). 3 or 5 nodes, one thread, one seeded
//! RNG: a network that drops, delays, duplicates, reorders and partitions, and that keeps
//! each sender's frames queued per peer while the link is cut or the peer is down or
//! paused, delivering them later, to the peer's next incarnation too (as the transport's
//! queues do); messages over the frame limit are dropped; crashes that keep exactly what
//! the node's real acceptor log fsynced on a power-loss file system (a Ready's messages
//! leave only after its persist; a crash loses Readys still persisting; extra crashes are
//! aimed at nodes with a Ready still persisting, half of them just after that persist
//! completed and before its messages left); pauses longer than a suspicion; restarts,
//! compaction with a log tail, snapshots; clients proposing unique commands of varied
//! sizes and asking read indexes with ids that restart per incarnation. In half the runs
//! (their own RNG stream, so the other half keep every draw) the faults also aim at a
//! candidate's next incarnation, each a thing a deployment does: peers redial a
//! restarted node with the transport's capped exponential backoff (its own links work
//! at once, theirs open at their next attempt); a node crashes while the fsync of a
//! promise of its own ballot is pending; a crash aimed at a campaign restarts within a
//! suspicion timeout; fsyncs stall for a few heartbeats; and the peer whose queue holds
//! a Promise for the crashed campaign redials just as the next incarnation campaigns.
//! Checked after every delivery: agreement, order, integrity, durability, read index;
//! after the faults stop: liveness (everything delivered everywhere within a bound).
//!
//! `SIM_SEEDS=N cargo test --release --test simulation` runs N seeds (default 200);
//! `SIM_SEED=S cargo test --release --test simulation -- --nocapture` replays one with a trace.
//!
//! Teeth (each breakage put in the core by hand, then removed; first failing seed, check):
//! - acceptor replies before its records are durable (persist held to the next Ready):
//!   seed 0, agreement (22 of seeds 0..200 fail: 19 agreement, 3 read index);
//! - acceptor accepts a ballot below its promise: seed 19, agreement (13 of 0..200);
//! - promise reports the promised ballot, not the accepted one: seed 19, agreement (13 of 0..200);
//! - read index answered without a quorum round: seed 575, read index;
//! - candidate counts its own promise at once and sends itself no prepare (it leads and
//!   accepts before its promise is durable): seed 14, agreement (73 of seeds 0..400 fail;
//!   35 with the crashes aimed at pending persists turned off).
//!
//! The seed numbers above predate the leader's `Commit` message and the aimed crashes
//! (both change every run's schedule); the last line was measured after them.
//! Re-measured on today's core and fault mix (2026-11-30, on 2f47823, each breakage put
//! in and taken out again by `SEEDS=2000 python3 tools/teeth_safety.py`):
//! - acceptor replies (Promise, Accepted) leave before their Ready's persist: seed 65,
//!   read index, and seed 158, agreement (30 of 0..2,000: 22 agreement, 8 read index);
//! - acceptor accepts a ballot below its promise: seed 674, agreement (7 of 0..2,000);
//! - promise reports the promised ballot, not the accepted one: seed 21, agreement
//!   (9 of 0..2,000);
//! - read index answered without a quorum round: seed 84, read index (5 of 0..2,000);
//! - candidate counts its own promise at once and sends itself no Prepare: 0 of
//!   0..2,000, as it must be now: `promise_own` puts the candidate's promise in the
//!   Ready that carries its Prepares, so no peer can answer before it is durable. The
//!   breakage it stood for (leading before the own promise is durable) is the
//!   `promise_own`-without-`Persist::Promise` line below (seed 241).
//!
//! Teeth of the incarnation faults (stale frames across restarts, pauses, per-incarnation
//! read ids, the real acceptor log, frame limits), measured on the core as it was before
//! the fixes (`SIM_KEEP_GOING=1`, seeds 0..44,000):
//! - a stale Promise (same ballot reused after a crash, answering a Prepare with another
//!   `from`) counted towards a quorum: seed 37489, agreement (1 of 40,000 seeds);
//! - a stale ReadIndexReply (read ids restart per incarnation) answered a new read:
//!   seed 111, read index (3 of the first 4,000 seeds, 23 of the next 40,000);
//! - a Promise carrying every accepted slot exceeded the frame limit and was dropped on
//!   every retry, leaving the cluster leaderless: seed 2939, liveness (7 of 44,000).
//!
//! The same two holes put back into the final code (2026-11-30, on a9897e5, with PreVote,
//! sticky leadership and the aimed campaign crashes; `SIM_KEEP_GOING=1`):
//! - the candidate's ballot kept in memory only, not made durable before its Prepares
//!   leave (`promise_own` without its `Persist::Promise`), and promises counted whatever
//!   `from` they echo: seed 59, agreement (28 of seeds 0..20,000; 32 with the `from` check
//!   kept, since both campaigns then asked from the same slot);
//! - the incarnation check on ReadIndexReply dropped: seed 324, read index (45 of
//!   0..20,000).
//!
//! With the faults aimed at a candidate's next incarnation (2026-11-30, on 3a49f91 plus
//! those faults, each breakage in a scratch copy of the core, `SIM_KEEP_GOING=1`):
//! - `promise_own` without its `Persist::Promise`: seed 241, agreement (7 of 0..2,000;
//!   8 with the `from` check also dropped);
//! - the incarnation check on ReadIndexReply dropped: seed 18, read index (11 of 0..2,000);
//! - the literal stale-promise hole, `promise_own` removed outright (the candidate's
//!   Prepares leave before its own promise is durable; it gets that promise back through
//!   the network): no seed can find it while the `from` echo is checked, and none does
//!   (0 of 0..20,000; in the same seeds with the check weakened as below, 1,048
//!   campaigns reused an earlier incarnation's ballot with another `from`, and 300 stale
//!   promises reached a reused campaign). A promise for the same `(ballot, from)` is a
//!   true answer: the acceptor promised that ballot when it wrote it, so it accepted
//!   nothing below it since, and no value was proposed in it (a candidate leads only
//!   after its own promise, which leaves only once durable, so a ballot that led is
//!   never reused); one for another `from` is ignored. docs/consensus.md has the proof.
//!   With the check weakened to the first chunk (a member's first promise counted
//!   whatever `from` it echoes), seed 11178 finds it, agreement (1 of 0..20,000): n2 led
//!   and chose slots 3..26 with n1 while n3 was down; n3 came back, caught up, campaigned
//!   (3.3) from slot 20 and crashed before its own promise was durable, n1's promise
//!   waiting in n1's queue; n3 restarted with nothing applied and campaigned (3.3) again
//!   from slot 1; n1 redialed just then, its stale promise (slots 20..26 only) completed
//!   a quorum with n3's own, and n3 filled slot 17 with a no-op that n1 accepted.
//!
//! 100,000 seeds of the final code pass: 1,750 s wall on a shared 2-core machine
//! (`SIM_SEEDS=100000 SIM_KEEP_GOING=1 cargo test --release --test simulation`). With
//! the aimed faults, 20,000 seeds pass in 458 s (same command, `SIM_SEEDS=20000`), and
//! 100,000 seeds pass on 2f47823 (the core and simulator as they are now): 29,679,241
//! commands, 26,827,103 slots chosen, 3,918 s wall at low priority beside two builds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sim;

use sim::cluster::Sim;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn fail(seed: u64, why: &str) -> String {
    format!(
        "seed {seed} failed: {why}\nreplay with: SIM_SEED={seed} cargo test --release --test simulation -- --nocapture"
    )
}

#[test]
fn simulated_clusters_stay_safe_and_live() {
    if let Some(seed) = env_u64("SIM_SEED") {
        let mut sim = Sim::new(seed, true).unwrap_or_else(|e| panic!("{}", fail(seed, &e)));
        if let Err(why) = sim.run() {
            panic!("{}", fail(seed, &why));
        }
        println!(
            "seed {seed} passed: {} commands, chosen through slot {}",
            sim.checker.created, sim.checker.max_delivered
        );
        return;
    }
    let seeds = env_u64("SIM_SEEDS").unwrap_or(200);
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(0);
    // SIM_KEEP_GOING=1 runs every seed and tallies failures by check (for measuring
    // teeth: how many seeds find a breakage, and the first one per check).
    let keep_going = env_u64("SIM_KEEP_GOING").is_some_and(|v| v != 0);
    let (mut commands, mut slots, mut changes) = (0u64, 0u64, 0usize);
    let mut failures: std::collections::BTreeMap<String, (u64, u64, String)> = Default::default();
    for seed in first..first + seeds {
        let result = Sim::new(seed, false).and_then(|mut sim| {
            sim.run()?;
            Ok((
                sim.checker.created,
                sim.checker.max_delivered,
                sim.checker.voters.changes(),
            ))
        });
        match result {
            Ok((c, s, m)) => {
                commands += c;
                slots += s;
                changes += m;
            }
            Err(why) if keep_going => {
                let check = why.split(':').next().unwrap_or("?").to_string();
                let entry = failures.entry(check).or_insert((0, seed, why));
                entry.0 += 1;
            }
            Err(why) => panic!("{}", fail(seed, &why)),
        }
    }
    if !failures.is_empty() {
        for (check, (count, seed, why)) in &failures {
            println!("{check}: {count} of {seeds} seeds fail; first seed {seed}: {why}");
        }
        panic!("{} checks failed", failures.len());
    }
    println!(
        "{seeds} seeds passed ({commands} commands, {slots} slots chosen, {changes} membership \
         changes)"
    );
}
