//! The seeded fault schedule. Each round is a quiet gap, then one fault or two
//! combined, held for a while, then healed. Planning is pure (this file): given the seed's
//! [`Rng`], the enabled kinds, the cluster size and the leader the cluster reported, it
//! returns the same [`Round`] every time; `run.rs` applies it to the processes and the
//! firewall.
//!
//! Faults: SIGKILL then restart (one node, the leader, a minority, all at once);
//! SIGSTOP then SIGCONT for 1-3 s, longer than the election timeout (one node, the
//! leader, a minority); partitions (isolate one node, isolate the leader, a random
//! majority/minority split). Invariant: a stopped node is never also killed in a round.

use crate::rng::Rng;

/// A kind of fault named on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Kill,
    Stop,
    Partition,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Stop => "stop",
            FaultKind::Partition => "partition",
        }
    }
}

/// One primitive fault, with the nodes (indices from 0) it hits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL now, restart at heal.
    Kill {
        nodes: Vec<usize>,
        target: &'static str,
    },
    /// SIGSTOP now, SIGCONT at heal.
    Stop {
        nodes: Vec<usize>,
        target: &'static str,
    },
    /// No traffic between groups until heal.
    Partition {
        groups: Vec<Vec<usize>>,
        target: &'static str,
    },
}

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::Kill { .. } => FaultKind::Kill,
            Fault::Stop { .. } => FaultKind::Stop,
            Fault::Partition { .. } => FaultKind::Partition,
        }
    }

    /// The same fault with node `i` (an index into the planned cluster) renamed
    /// `slots[i]`: rounds are planned over the current members, applied to their slots.
    /// Without membership churn `slots` is `0..n` and this changes nothing.
    pub fn onto(self, slots: &[usize]) -> Fault {
        let map = |v: Vec<usize>| -> Vec<usize> {
            v.into_iter()
                .map(|i| slots.get(i).copied().unwrap_or(i))
                .collect()
        };
        match self {
            Fault::Kill { nodes, target } => Fault::Kill {
                nodes: map(nodes),
                target,
            },
            Fault::Stop { nodes, target } => Fault::Stop {
                nodes: map(nodes),
                target,
            },
            Fault::Partition { groups, target } => Fault::Partition {
                groups: groups.into_iter().map(map).collect(),
                target,
            },
        }
    }

    /// A label for the log and summary, with nodes numbered from 1.
    pub fn describe(&self) -> String {
        let ids = |v: &[usize]| {
            v.iter()
                .map(|i| format!("n{}", i + 1))
                .collect::<Vec<_>>()
                .join(",")
        };
        match self {
            Fault::Kill { nodes, target } => format!("kill {target} [{}]", ids(nodes)),
            Fault::Stop { nodes, target } => format!("stop {target} [{}]", ids(nodes)),
            Fault::Partition { groups, target } => format!(
                "partition {target} {}",
                groups
                    .iter()
                    .map(|g| format!("[{}]", ids(g)))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
        }
    }
}

/// One round of the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round {
    /// Wait before injecting.
    pub quiet_ms: u64,
    /// How long the faults hold.
    pub hold_ms: u64,
    pub faults: Vec<Fault>,
}

/// Quiet gap between rounds, ms.
pub const QUIET_MS: (u64, u64) = (1_500, 4_000);
/// How long a stop holds, ms: longer than the election timeout (~300 ms).
pub const STOP_MS: (u64, u64) = (1_000, 3_000);
/// How long other faults hold, ms.
pub const HOLD_MS: (u64, u64) = (1_000, 5_000);
/// Chance that a round combines two kinds (when two or more are enabled).
pub const COMBINE_CHANCE: f64 = 0.3;

/// `k` distinct nodes out of `n`, including `must` when given.
fn pick(rng: &mut Rng, n: usize, k: usize, must: Option<usize>) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    // Fisher-Yates with the seeded generator.
    for i in (1..n).rev() {
        let j = rng.index(i + 1);
        all.swap(i, j);
    }
    if let Some(m) = must {
        all.retain(|&x| x != m);
        all.insert(0, m);
    }
    let mut out: Vec<usize> = all.into_iter().take(k).collect();
    out.sort_unstable();
    out
}

/// The leader if known, else a seeded random node.
fn leader_or_any(rng: &mut Rng, n: usize, leader: Option<usize>) -> usize {
    match leader {
        Some(l) if l < n => l,
        _ => rng.index(n),
    }
}

fn plan_one(rng: &mut Rng, kind: FaultKind, n: usize, leader: Option<usize>) -> Fault {
    let minority = (n - 1) / 2;
    match kind {
        FaultKind::Kill => {
            let roll = rng.below(100);
            let (nodes, target) = if roll < 35 {
                (pick(rng, n, 1, None), "one")
            } else if roll < 70 {
                (vec![leader_or_any(rng, n, leader)], "leader")
            } else if roll < 85 {
                let l = leader_or_any(rng, n, leader);
                (pick(rng, n, minority, Some(l)), "minority")
            } else {
                ((0..n).collect(), "all")
            };
            Fault::Kill { nodes, target }
        }
        FaultKind::Stop => {
            let roll = rng.below(100);
            let (nodes, target) = if roll < 40 {
                (pick(rng, n, 1, None), "one")
            } else if roll < 80 {
                (vec![leader_or_any(rng, n, leader)], "leader")
            } else {
                let l = leader_or_any(rng, n, leader);
                (pick(rng, n, minority, Some(l)), "minority")
            };
            Fault::Stop { nodes, target }
        }
        FaultKind::Partition => {
            let roll = rng.below(100);
            let (alone, target) = if roll < 30 {
                (pick(rng, n, 1, None), "isolate-one")
            } else if roll < 70 {
                (vec![leader_or_any(rng, n, leader)], "isolate-leader")
            } else {
                (pick(rng, n, minority, None), "split")
            };
            let rest: Vec<usize> = (0..n).filter(|i| !alone.contains(i)).collect();
            Fault::Partition {
                groups: vec![alone, rest],
                target,
            }
        }
    }
}

/// Plans the next round.
pub fn plan_round(rng: &mut Rng, kinds: &[FaultKind], n: usize, leader: Option<usize>) -> Round {
    assert!(n >= 3, "a cluster of {n}");
    let quiet_ms = rng.between(QUIET_MS.0, QUIET_MS.1);
    if kinds.is_empty() {
        return Round {
            quiet_ms,
            hold_ms: rng.between(HOLD_MS.0, HOLD_MS.1),
            faults: Vec::new(),
        };
    }
    let first = kinds[rng.index(kinds.len())];
    let mut chosen = vec![first];
    if kinds.len() >= 2 && rng.chance(COMBINE_CHANCE) {
        let others: Vec<FaultKind> = kinds.iter().copied().filter(|k| *k != first).collect();
        chosen.push(others[rng.index(others.len())]);
    }
    chosen.sort_unstable();
    let mut faults: Vec<Fault> = chosen
        .iter()
        .map(|k| plan_one(rng, *k, n, leader))
        .collect();
    // A node that is killed is not also stopped.
    let killed: Vec<usize> = faults
        .iter()
        .flat_map(|f| match f {
            Fault::Kill { nodes, .. } => nodes.clone(),
            _ => Vec::new(),
        })
        .collect();
    for f in &mut faults {
        if let Fault::Stop { nodes, .. } = f {
            nodes.retain(|x| !killed.contains(x));
        }
    }
    faults.retain(|f| !matches!(f, Fault::Stop { nodes, .. } if nodes.is_empty()));
    let hold_ms = if faults.iter().all(|f| f.kind() == FaultKind::Stop) {
        rng.between(STOP_MS.0, STOP_MS.1)
    } else {
        rng.between(HOLD_MS.0, HOLD_MS.1)
    };
    Round {
        quiet_ms,
        hold_ms,
        faults,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_plans_the_same_rounds() {
        let kinds = [FaultKind::Kill, FaultKind::Stop, FaultKind::Partition];
        let mut a = Rng::new(42, 0);
        let mut b = Rng::new(42, 0);
        for _ in 0..100 {
            assert_eq!(
                plan_round(&mut a, &kinds, 5, Some(2)),
                plan_round(&mut b, &kinds, 5, Some(2))
            );
        }
    }

    #[test]
    fn faults_planned_over_members_land_on_their_slots() {
        let f = Fault::Partition {
            groups: vec![vec![0], vec![1, 2, 3]],
            target: "isolate-one",
        };
        assert_eq!(f.clone().onto(&[0, 1, 2, 3]), f);
        assert_eq!(
            f.onto(&[1, 2, 5, 6]).describe(),
            "partition isolate-one [n2] | [n3,n6,n7]"
        );
    }

    #[test]
    fn rounds_respect_their_invariants() {
        let kinds = [FaultKind::Kill, FaultKind::Stop, FaultKind::Partition];
        let mut rng = Rng::new(7, 0);
        let mut seen_combined = false;
        for _ in 0..2000 {
            let r = plan_round(&mut rng, &kinds, 5, Some(1));
            assert!(!r.faults.is_empty());
            seen_combined |= r.faults.len() == 2;
            let killed: Vec<usize> = r
                .faults
                .iter()
                .flat_map(|f| match f {
                    Fault::Kill { nodes, .. } => nodes.clone(),
                    _ => vec![],
                })
                .collect();
            for f in &r.faults {
                match f {
                    Fault::Stop { nodes, .. } => {
                        assert!(!nodes.is_empty() && nodes.len() <= 2);
                        assert!(nodes.iter().all(|x| !killed.contains(x)));
                    }
                    Fault::Partition { groups, .. } => {
                        let mut all: Vec<usize> = groups.concat();
                        all.sort_unstable();
                        assert_eq!(all, vec![0, 1, 2, 3, 4]);
                        assert!(groups.iter().all(|g| !g.is_empty()));
                    }
                    Fault::Kill { nodes, .. } => assert!(!nodes.is_empty()),
                }
            }
            if r.faults.iter().all(|f| f.kind() == FaultKind::Stop) {
                assert!((STOP_MS.0..=STOP_MS.1).contains(&r.hold_ms));
            }
        }
        assert!(seen_combined);
    }
}
