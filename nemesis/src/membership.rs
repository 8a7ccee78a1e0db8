//! The membership churn cycle, planned without I/O: given the seed's [`Rng`], the
//! membership the cluster reports ([`View`]) and the voters whose disks the harness
//! destroyed, it returns the next [`Step`]; `churn.rs` carries it out against the real
//! cluster and asks the cluster again afterwards, so the plan follows what the
//! membership actually is, not what a step meant to make it.
//!
//! The cycle (issue 11's "done when"): grow one voter at a time to [`VOTERS_MAX`]; lose
//! one voter's disk (sometimes the leader's); replace it (remove the dead id, add a new
//! node under a new id, promote it); shrink one voter at a time (sometimes the leader)
//! to [`VOTERS_MIN`]; repeat. A learner left over from an unfinished step is promoted
//! while there is room for a voter, else removed.
//!
//! Invariants: a step never plans fewer than [`VOTERS_MIN`] or more than [`VOTERS_MAX`]
//! voters; a disk is lost only while no lost voter awaits its replacement (so at most one
//! voter of five is gone for good); a lost voter is never promoted, shrunk or lost again.

use crate::rng::Rng;

/// Voters the cycle shrinks to.
pub const VOTERS_MIN: usize = 3;
/// Voters the cycle grows to.
pub const VOTERS_MAX: usize = 5;
/// Chance that a disk loss or a shrink hits the leader (when it is known).
pub const LEADER_CHANCE: f64 = 0.35;

/// The membership as the cluster reports it (server ids).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct View {
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub leader: Option<u64>,
}

/// One change of the cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Start a new node with an empty directory, add it as a learner, promote it.
    Grow,
    /// Promote learner `id`, left over from a step that did not finish.
    Promote { id: u64 },
    /// Remove learner `id` (left over while the cycle shrinks) and stop it.
    RemoveLearner { id: u64 },
    /// SIGKILL voter `id` and delete its data directory: it never comes back.
    LoseDisk { id: u64, leader: bool },
    /// Remove voter `dead` (its disk lost), then grow: a new node under a new id.
    Replace { dead: u64 },
    /// Remove voter `id`, then stop its process.
    Shrink { id: u64, leader: bool },
}

impl Step {
    /// A short name for the fault log and the summary.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Grow => "grow",
            Step::Promote { .. } => "promote",
            Step::RemoveLearner { .. } => "remove-learner",
            Step::LoseDisk { .. } => "lose-disk",
            Step::Replace { .. } => "replace",
            Step::Shrink { .. } => "shrink",
        }
    }
}

/// Where the cycle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Adding voters up to [`VOTERS_MAX`], then losing a disk.
    Grow,
    /// A disk was lost: replacing that voter until [`VOTERS_MAX`] healthy voters vote.
    Replace,
    /// Removing voters down to [`VOTERS_MIN`].
    Shrink,
}

/// The cycle's state.
#[derive(Clone, Debug)]
pub struct Cycle {
    pub phase: Phase,
    /// Cycles completed: grown to five, a disk lost and replaced, shrunk to three.
    pub completed: u32,
    /// Set when the current cycle replaced its lost voter (five healthy voters again).
    pub replaced: bool,
}

impl Default for Cycle {
    fn default() -> Self {
        Cycle::new()
    }
}

/// A victim among `candidates`: the leader with [`LEADER_CHANCE`], else any other.
fn victim(rng: &mut Rng, candidates: &[u64], leader: Option<u64>) -> (u64, bool) {
    assert!(!candidates.is_empty(), "no voter to pick");
    let leader = leader.filter(|l| candidates.contains(l));
    if let Some(l) = leader {
        if rng.chance(LEADER_CHANCE) || candidates.len() == 1 {
            return (l, true);
        }
    }
    let others: Vec<u64> = candidates
        .iter()
        .copied()
        .filter(|c| Some(*c) != leader)
        .collect();
    let id = others.get(rng.index(others.len())).copied().unwrap_or(0);
    (id, false)
}

impl Cycle {
    pub fn new() -> Cycle {
        Cycle {
            phase: Phase::Grow,
            completed: 0,
            replaced: false,
        }
    }

    /// Takes in the membership the cluster reports: a cycle that shrank back to
    /// [`VOTERS_MIN`] after its replacement is complete (counted once).
    pub fn observe(&mut self, view: &View) {
        if self.phase == Phase::Shrink && view.voters.len() <= VOTERS_MIN {
            if self.replaced {
                self.completed += 1;
            }
            self.replaced = false;
            self.phase = Phase::Grow;
        }
    }

    /// The next step, given the membership `view` and the voters whose disks were lost.
    pub fn plan(&mut self, rng: &mut Rng, view: &View, lost: &[u64]) -> Step {
        let dead: Vec<u64> = view
            .voters
            .iter()
            .copied()
            .filter(|v| lost.contains(v))
            .collect();
        let healthy: Vec<u64> = view
            .voters
            .iter()
            .copied()
            .filter(|v| !lost.contains(v))
            .collect();
        let voters = view.voters.len();
        if let Some(&id) = view.learners.iter().find(|l| !lost.contains(l)) {
            return if voters < VOTERS_MAX && self.phase != Phase::Shrink {
                Step::Promote { id }
            } else {
                Step::RemoveLearner { id }
            };
        }
        if let Some(&dead) = dead.first() {
            // Whatever the phase, a dead voter is replaced first (one may be left
            // from a replacement that did not finish).
            if self.phase == Phase::Grow {
                self.phase = Phase::Replace;
            }
            return Step::Replace { dead };
        }
        // At most two passes: Replace at five healthy voters goes on to Shrink.
        loop {
            match self.phase {
                Phase::Grow if voters < VOTERS_MAX => return Step::Grow,
                Phase::Grow => {
                    self.phase = Phase::Replace;
                    self.replaced = false;
                    let (id, leader) = victim(rng, &healthy, view.leader);
                    return Step::LoseDisk { id, leader };
                }
                Phase::Replace if voters < VOTERS_MAX => return Step::Grow,
                Phase::Replace => {
                    self.replaced = true;
                    self.phase = Phase::Shrink;
                }
                Phase::Shrink if voters > VOTERS_MIN => {
                    let (id, leader) = victim(rng, &healthy, view.leader);
                    return Step::Shrink { id, leader };
                }
                Phase::Shrink => {
                    self.observe(view);
                    return Step::Grow;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model cluster that carries out each step completely; `next` is the next id.
    struct Model {
        view: View,
        lost: Vec<u64>,
        next: u64,
    }

    impl Model {
        fn new(n: u64) -> Model {
            Model {
                view: View {
                    voters: (1..=n).collect(),
                    learners: vec![],
                    leader: Some(1),
                },
                lost: vec![],
                next: n + 1,
            }
        }

        fn grow(&mut self) {
            self.view.voters.push(self.next);
            self.next += 1;
        }

        fn remove(&mut self, id: u64) {
            self.view.voters.retain(|v| *v != id);
            self.view.learners.retain(|v| *v != id);
            if self.view.leader == Some(id) {
                self.view.leader = self.view.voters.first().copied();
            }
        }

        fn apply(&mut self, step: &Step) {
            match step {
                Step::Grow => self.grow(),
                Step::Promote { id } => {
                    self.view.learners.retain(|l| l != id);
                    self.view.voters.push(*id);
                }
                Step::RemoveLearner { id } | Step::Shrink { id, .. } => self.remove(*id),
                Step::LoseDisk { id, .. } => self.lost.push(*id),
                Step::Replace { dead } => {
                    self.remove(*dead);
                    self.grow();
                }
            }
            assert!(self.view.voters.len() >= VOTERS_MIN, "{:?}", self.view);
            assert!(self.view.voters.len() <= VOTERS_MAX, "{:?}", self.view);
        }
    }

    #[test]
    fn a_cycle_grows_to_five_loses_a_disk_replaces_it_and_shrinks_to_three() {
        let mut rng = Rng::new(3, 5);
        let mut m = Model::new(3);
        let mut c = Cycle::new();
        let mut names = Vec::new();
        for _ in 0..6 {
            let s = c.plan(&mut rng, &m.view, &m.lost);
            names.push(s.name());
            m.apply(&s);
        }
        assert_eq!(
            names,
            ["grow", "grow", "lose-disk", "replace", "shrink", "shrink"]
        );
        assert_eq!(m.view.voters.len(), 3);
        // The lost voter is gone, and the replacement took a new id (6).
        assert!(m.view.voters.iter().all(|v| !m.lost.contains(v)));
        assert_eq!(m.next, 7);
        assert_eq!(
            c.completed, 0,
            "counted once the cluster reports three voters"
        );
        c.observe(&m.view);
        c.observe(&m.view);
        assert_eq!(c.completed, 1);
        assert_eq!(c.plan(&mut rng, &m.view, &m.lost), Step::Grow);
        assert_eq!(c.completed, 1);
    }

    #[test]
    fn cycles_repeat_within_bounds_and_sometimes_hit_the_leader() {
        let mut rng = Rng::new(11, 5);
        let mut m = Model::new(3);
        let mut c = Cycle::new();
        let (mut leader_hits, mut losses) = (0, 0);
        for _ in 0..600 {
            let s = c.plan(&mut rng, &m.view, &m.lost);
            match &s {
                Step::LoseDisk { id, leader } | Step::Shrink { id, leader } => {
                    assert!(!m.lost.contains(id));
                    assert_eq!(*leader, m.view.leader == Some(*id));
                    leader_hits += u32::from(*leader);
                    if matches!(s, Step::LoseDisk { .. }) {
                        losses += 1;
                        // At most one voter lost at a time, at five voters.
                        assert_eq!(m.view.voters.len(), VOTERS_MAX);
                        assert!(m.view.voters.iter().all(|v| !m.lost.contains(v)));
                    }
                }
                _ => {}
            }
            m.apply(&s);
        }
        assert_eq!(c.completed, 99, "six steps a cycle");
        assert_eq!(losses, 100);
        assert!(leader_hits > 20 && leader_hits < 200, "{leader_hits}");
    }

    #[test]
    fn unfinished_steps_are_finished_from_what_the_cluster_reports() {
        let mut rng = Rng::new(5, 5);
        let mut c = Cycle::new();
        // A learner left by a grow whose promotion did not finish: promote it.
        let view = View {
            voters: vec![1, 2, 3],
            learners: vec![4],
            leader: Some(2),
        };
        assert_eq!(c.plan(&mut rng, &view, &[]), Step::Promote { id: 4 });
        // A replacement whose remove went through but whose add did not: grow.
        c.phase = Phase::Replace;
        let view = View {
            voters: vec![1, 2, 4, 5],
            learners: vec![],
            leader: Some(1),
        };
        assert_eq!(c.plan(&mut rng, &view, &[3]), Step::Grow);
        // A replacement whose remove did not go through: replace again.
        let view = View {
            voters: vec![1, 2, 3, 4, 5],
            learners: vec![],
            leader: Some(1),
        };
        assert_eq!(c.plan(&mut rng, &view, &[3]), Step::Replace { dead: 3 });
        // While shrinking, a learner is removed rather than promoted.
        c.phase = Phase::Shrink;
        let view = View {
            voters: vec![1, 2, 4, 5],
            learners: vec![7],
            leader: Some(1),
        };
        assert_eq!(c.plan(&mut rng, &view, &[3]), Step::RemoveLearner { id: 7 });
        // Starting from five voters, the first step loses a disk.
        let mut c = Cycle::new();
        let view = View {
            voters: vec![1, 2, 3, 4, 5],
            learners: vec![],
            leader: None,
        };
        assert!(matches!(
            c.plan(&mut rng, &view, &[]),
            Step::LoseDisk { leader: false, .. }
        ));
    }

    #[test]
    fn the_same_seed_plans_the_same_cycle() {
        let run = |seed| {
            let mut rng = Rng::new(seed, 5);
            let mut m = Model::new(3);
            let mut c = Cycle::new();
            (0..60)
                .map(|_| {
                    let s = c.plan(&mut rng, &m.view, &m.lost);
                    m.apply(&s);
                    s
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(8), run(8));
        assert_ne!(run(8), run(9));
    }
}
