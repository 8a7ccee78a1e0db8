//! Membership churn: in the runs that have it, the simulator asks the leader now and
//! then for a change of members while it crashes, partitions, pauses and delays: add a
//! node as a learner (a spare never started, which then starts with an empty disk and
//! learns the log, or a node removed earlier, with its old disk), promote a learner,
//! remove a voter (the leader too) or a learner. One change at a time per membership:
//! each names the membership it replaces.

use concierge::paxos::{Change, Membership, NodeId};

use super::rng::Rng;

/// What a change asks, for the trace and for starting a spare.
pub struct Proposal {
    pub change: Change,
    /// A node never started before that the change adds (start it).
    pub starts: Option<NodeId>,
    pub what: String,
}

/// Picks a change of `latest` among the ones that make sense; `nodes` is every node id
/// of the run and `started[i]` tells whether node i + 1 ever ran.
pub fn pick(rng: &mut Rng, latest: &Membership, nodes: u32, started: &[bool]) -> Option<Proposal> {
    let member = |n: NodeId| latest.voters.contains(&n) || latest.learners.contains(&n);
    let outsiders: Vec<NodeId> = (1..=nodes).filter(|&n| !member(n)).collect();
    let mut kinds = Vec::new();
    if !outsiders.is_empty() {
        kinds.push(0);
    }
    if !latest.learners.is_empty() {
        kinds.extend([1, 1, 3]);
    }
    if latest.voters.len() > 1 {
        kinds.push(2);
    }
    let kind = *kinds.get(rng.below(kinds.len().max(1) as u64) as usize)?;
    let mut voters = latest.voters.clone();
    let mut learners = latest.learners.clone();
    let pick_one = |rng: &mut Rng, from: &[NodeId]| from[rng.below(from.len() as u64) as usize];
    let (what, starts) = match kind {
        0 => {
            let n = pick_one(rng, &outsiders);
            learners.push(n);
            let fresh = !started.get(n as usize - 1).copied().unwrap_or(true);
            (format!("add n{n} as a learner"), fresh.then_some(n))
        }
        1 => {
            let n = pick_one(rng, &learners);
            learners.retain(|&l| l != n);
            voters.push(n);
            (format!("promote n{n}"), None)
        }
        2 => {
            let n = pick_one(rng, &voters);
            voters.retain(|&v| v != n);
            (format!("remove voter n{n}"), None)
        }
        _ => {
            let n = pick_one(rng, &learners);
            learners.retain(|&l| l != n);
            (format!("remove learner n{n}"), None)
        }
    };
    let change = Change {
        base: latest.id,
        voters,
        learners,
        context: bytes::Bytes::new(),
    };
    Some(Proposal {
        change,
        starts,
        what,
    })
}
