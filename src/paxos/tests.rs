//! Protocol tests of the whole core on a perfect in-memory network (the deterministic
//! simulation in tests/simulation.rs covers faults). Named for what they prove.

use std::collections::VecDeque;

use bytes::Bytes;

use super::*;

/// Cores wired by a lossless FIFO network; each Ready is persisted, then sent.
pub(super) struct Cluster {
    pub(super) cores: Vec<Core>,
    durable: Vec<DurableState>,
    pub(super) queue: VecDeque<(NodeId, NodeId, Message)>,
    pub(super) delivered: Vec<Vec<(Slot, Value)>>,
    pub(super) reads: Vec<Vec<(u64, Option<Slot>)>>,
    /// (asked node, asker) from Ready.snapshot_needed.
    snapshots: Vec<(NodeId, NodeId)>,
    /// Messages to these nodes are dropped.
    pub(super) down: Vec<NodeId>,
    /// Nodes 1..=first are the first membership's voters; the rest start outside it.
    first: u32,
    /// Per node, the proposals its Readys reported dropped (never to be chosen).
    dropped: Vec<Vec<Bytes>>,
}

pub(super) fn config(id: NodeId, n: u32) -> Config {
    let mut c = Config::new(id, (1..=n).collect());
    c.heartbeat_ticks = 2;
    c.suspect_ticks = 6;
    c
}

impl Cluster {
    pub(super) fn new(n: u32, tweak: impl Fn(&mut Config)) -> Cluster {
        Cluster::with_spares(n, 0, tweak)
    }

    /// `n` voters and `spares` more nodes (ids n + 1..) that start outside the membership.
    pub(super) fn with_spares(n: u32, spares: u32, tweak: impl Fn(&mut Config)) -> Cluster {
        let all = n + spares;
        let cores = (1..=all)
            .map(|id| {
                let mut c = config(id, n);
                tweak(&mut c);
                {
                    let g = c.genesis();
                    Core::new(c, DurableState::default(), g, u64::from(id))
                }
            })
            .collect();
        Cluster {
            cores,
            durable: vec![DurableState::default(); all as usize],
            queue: VecDeque::new(),
            delivered: vec![Vec::new(); all as usize],
            reads: vec![Vec::new(); all as usize],
            snapshots: Vec::new(),
            down: Vec::new(),
            dropped: vec![Vec::new(); all as usize],
            first: n,
        }
    }

    /// Node `id` restarts from what it persisted, as incarnation `incarnation`.
    fn restart(&mut self, id: NodeId, incarnation: u64) {
        let i = id as usize - 1;
        let n = self.first;
        let durable = self.durable[i].clone();
        self.cores[i] = Core::new(config(id, n), durable, config(id, n).genesis(), incarnation);
        self.delivered[i].clear();
        self.down.retain(|&d| d != id);
    }

    pub(super) fn core(&mut self, id: NodeId) -> &mut Core {
        &mut self.cores[id as usize - 1]
    }

    /// Runs every Ready and message until nothing moves.
    pub(super) fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..self.cores.len() {
                let id = i as NodeId + 1;
                if self.down.contains(&id) || !self.cores[i].has_ready() {
                    continue;
                }
                moved = true;
                let r = self.cores[i].ready();
                for p in &r.persist {
                    self.durable[i].apply(p);
                }
                for (to, m) in r.send {
                    self.queue.push_back((id, to, m));
                }
                self.delivered[i].extend(r.deliver);
                self.dropped[i].extend(r.dropped);
                self.reads[i].extend(r.reads);
                self.snapshots
                    .extend(r.snapshot_needed.into_iter().map(|p| (id, p)));
            }
            while let Some((from, to, m)) = self.queue.pop_front() {
                moved = true;
                if !self.down.contains(&to) {
                    self.cores[to as usize - 1].step(from, m);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("cluster did not settle");
    }

    pub(super) fn tick(&mut self, ticks: u32) {
        for _ in 0..ticks {
            for i in 0..self.cores.len() {
                if !self.down.contains(&(i as NodeId + 1)) {
                    self.cores[i].tick();
                }
            }
            self.settle();
        }
    }

    pub(super) fn leader(&self) -> Option<NodeId> {
        self.cores
            .iter()
            .find(|c| c.status().is_leader)
            .map(|c| c.status().id)
    }
}

/// Ticks after start-up by which a healthy cluster has a leader: one suspicion timeout
/// of waiting to hear an existing leader, then a pre-vote and phase 1.
pub(super) const ELECTED_BY: u32 = 8;

/// Makes a lone core campaign: waits out its start-up quiet time, grants its pre-vote on
/// behalf of `peer`, and returns the Ready with its Prepares.
pub(super) fn start_campaign(core: &mut Core, peer: NodeId) -> Ready {
    let mut asked = None;
    for _ in 0..=ELECTED_BY {
        core.tick();
        let r = core.ready();
        asked = r.send.iter().find_map(|(_, m)| match m {
            Message::PreVote { ballot, .. } => Some(*ballot),
            _ => None,
        });
        if asked.is_some() {
            break;
        }
    }
    let ballot = asked.expect("the core asked for a pre-vote");
    core.step(
        peer,
        Message::PreVoteReply {
            ballot,
            granted: true,
        },
    );
    core.ready()
}

pub(super) fn cmd(i: u32) -> Bytes {
    Bytes::from(i.to_le_bytes().to_vec())
}

pub(super) fn commands(delivered: &[(Slot, Value)]) -> Vec<Bytes> {
    delivered
        .iter()
        .flat_map(|(_, v)| match v {
            Value::Noop | Value::Reconfigure(_) => Vec::new(),
            Value::Batch(cs) => cs.clone(),
        })
        .collect()
}

#[test]
fn omega_elects_the_highest_id_and_every_node_delivers_the_same_sequence() {
    let mut c = Cluster::new(3, |_| {});
    c.tick(ELECTED_BY);
    assert_eq!(c.leader(), Some(3));
    for i in 0..10 {
        c.core(1 + i % 3).propose(cmd(i)).unwrap();
        c.settle();
    }
    c.tick(4);
    let expect = commands(&c.delivered[2]);
    assert_eq!(expect.len(), 10);
    for d in &c.delivered {
        assert_eq!(commands(d), expect);
        let slots: Vec<Slot> = d.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            slots,
            (1..=slots.len() as Slot).collect::<Vec<_>>(),
            "in order, no gaps"
        );
    }
}

#[test]
fn a_follower_learns_the_commit_of_its_forwarded_command_without_a_heartbeat() {
    let mut c = Cluster::new(3, |_| {});
    c.tick(ELECTED_BY);
    assert_eq!(c.leader(), Some(3));
    c.core(1).propose(cmd(7)).unwrap();
    // No tick: only the Readys the proposal caused (forward, accepts, commit).
    c.settle();
    assert_eq!(commands(&c.delivered[0]), vec![cmd(7)]);
    assert_eq!(commands(&c.delivered[1]), vec![cmd(7)]);
}

#[test]
fn a_commit_in_a_ballot_the_follower_did_not_accept_in_is_fetched_not_trusted() {
    let mut f = Core::new(
        config(1, 3),
        DurableState::default(),
        config(1, 3).genesis(),
        1,
    );
    let old = Ballot { round: 1, node: 3 };
    let new = Ballot { round: 2, node: 3 };
    let stale = Value::Batch(vec![cmd(1)]);
    f.step(
        3,
        Message::Accept {
            ballot: old,
            slot: 1,
            value: stale,
            commit: 0,
        },
    );
    f.step(
        3,
        Message::Commit {
            ballot: new,
            commit: 1,
        },
    );
    let r = f.ready();
    assert!(
        r.deliver.is_empty(),
        "slot 1 was accepted in another ballot"
    );
    f.tick();
    let r = f.ready();
    assert!(r.send.contains(&(3, Message::CatchUp { from: 1, to: 1 })));
}

/// The leader's commit covered slot 2 before this follower accepted it (a retransmitted
/// Accept after the follower missed the first): learnt on arrival, although the commit
/// was scanned already (the scan does not revisit slots below what it checked).
#[test]
fn an_accept_for_a_slot_already_committed_is_learnt_on_arrival() {
    let mut f = Core::new(
        config(1, 3),
        DurableState::default(),
        config(1, 3).genesis(),
        1,
    );
    let b = Ballot { round: 1, node: 3 };
    let accept = |slot, commit| Message::Accept {
        ballot: b,
        slot,
        value: Value::Batch(vec![cmd(slot as u32)]),
        commit,
    };
    f.step(3, accept(1, 0));
    f.step(3, accept(3, 0));
    f.step(
        3,
        Message::Commit {
            ballot: b,
            commit: 3,
        },
    );
    let r = f.ready();
    assert_eq!(
        r.deliver.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1]
    );
    f.step(3, accept(2, 3));
    let r = f.ready();
    assert_eq!(
        r.deliver.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![2, 3],
        "slot 2 arrived after the commit that covers it"
    );
}

/// A follower that missed slot 1 cannot deliver anything, and every Accept carries a
/// higher commit: each must examine only what is new, not every accepted slot again
/// (that was quadratic: 2,000 slots cost ~2,000,000 steps and a far-behind follower
/// under load spent its CPU on it and never caught up).
#[test]
fn a_follower_stuck_behind_a_gap_checks_each_accepted_slot_once() {
    let mut f = Core::new(
        config(1, 3),
        DurableState::default(),
        config(1, 3).genesis(),
        1,
    );
    let b = Ballot { round: 1, node: 3 };
    let slots = 2_000u64;
    for slot in 2..=slots + 1 {
        let accept = Message::Accept {
            ballot: b,
            slot,
            value: Value::Batch(vec![cmd(slot as u32)]),
            commit: slot - 1,
        };
        f.step(3, accept);
        assert!(f.ready().deliver.is_empty(), "slot 1 is missing");
    }
    let steps = f.leader_scan_steps();
    assert!(steps <= 2 * slots, "{steps} steps for {slots} slots");
}

#[test]
fn a_silent_leader_is_suspected_and_the_next_highest_takes_over() {
    let mut c = Cluster::new(3, |_| {});
    c.tick(ELECTED_BY);
    c.core(3).propose(cmd(1)).unwrap();
    c.tick(1);
    c.down.push(3);
    c.tick(12);
    assert_eq!(c.leader(), Some(2));
    c.core(1).propose(cmd(2)).unwrap();
    c.tick(4);
    assert_eq!(commands(&c.delivered[0]), vec![cmd(1), cmd(2)]);
}

#[test]
fn candidate_needs_its_own_durable_promise_before_leading() {
    // Ballots are unique only if a restart can never reuse one: the candidate's ballot is
    // persisted in the same Ready as its Prepares (so before they leave), and its own
    // promise counts only once stepped back after that persist.
    let mut c = Cluster::new(3, |_| {});
    let r = start_campaign(c.core(3), 1);
    let prepares: Vec<_> = r
        .send
        .iter()
        .filter(|(_, m)| matches!(m, Message::Prepare { .. }))
        .collect();
    assert_eq!(
        prepares.len(),
        3,
        "prepare goes to every member, itself included"
    );
    let ballot = match &prepares[0].1 {
        Message::Prepare { ballot, .. } => *ballot,
        _ => unreachable!(),
    };
    assert_eq!(r.persist, vec![Persist::Promise(ballot)]);
    for peer in [1, 2] {
        let reply = Message::Promise {
            ballot,
            from: 1,
            through: None,
            accepted: Vec::new(),
            compacted_through: 0,
        };
        c.core(3).step(peer, reply);
    }
    assert!(
        !c.core(3).status().is_leader,
        "a quorum without its own promise is not enough"
    );
    c.core(3).step(3, Message::Prepare { ballot, from: 1 });
    let r = c.core(3).ready();
    assert!(r.persist.is_empty(), "the ballot is durable already");
    let (to, own) = r
        .send
        .into_iter()
        .find(|(_, m)| matches!(m, Message::Promise { .. }))
        .unwrap();
    assert_eq!(to, 3);
    c.core(3).step(3, own);
    assert!(c.core(3).status().is_leader);
}

#[test]
fn a_restarted_node_keeps_its_promise_and_uses_a_higher_ballot() {
    let promised = Ballot { round: 7, node: 2 };
    let durable = DurableState {
        promised,
        ..DurableState::default()
    };
    let mut core = Core::new(config(3, 3), durable, config(3, 3).genesis(), 1);
    let r = start_campaign(&mut core, 1);
    let ballot = r.send.iter().find_map(|(_, m)| match m {
        Message::Prepare { ballot, .. } => Some(*ballot),
        _ => None,
    });
    assert_eq!(ballot, Some(Ballot { round: 8, node: 3 }));
    // And it refuses what it promised not to accept.
    core.step(
        1,
        Message::Accept {
            ballot: Ballot { round: 6, node: 1 },
            slot: 1,
            value: Value::Noop,
            commit: 0,
        },
    );
    let r = core.ready();
    assert!(r.persist.is_empty());
    // It promised its own new ballot (8.3) when it started phase 1.
    let own = Ballot { round: 8, node: 3 };
    assert!(r
        .send
        .iter()
        .any(|(to, m)| *to == 1 && matches!(m, Message::Nack { promised: p, .. } if *p == own)));
}

#[test]
fn new_leader_reproposes_the_highest_ballot_value_and_fills_gaps_with_noop() {
    // Paxos Made Simple, 2.2 (P2c) and 3 (gaps become no-ops).
    let low = Ballot { round: 1, node: 1 };
    let high = Ballot { round: 2, node: 2 };
    let v = |i| Value::Batch(vec![cmd(i)]);
    let durable = DurableState {
        promised: high,
        ..DurableState::default()
    };
    let mut core = Core::new(config(3, 3), durable, config(3, 3).genesis(), 1);
    start_campaign(&mut core, 1);
    let ballot = Ballot { round: 3, node: 3 };
    let reply = Message::Promise {
        ballot,
        from: 1,
        through: None,
        accepted: vec![(1, low, v(1)), (3, low, v(3))],
        compacted_through: 0,
    };
    core.step(1, reply);
    let reply = Message::Promise {
        ballot,
        from: 1,
        through: None,
        accepted: vec![(1, high, v(2))],
        compacted_through: 0,
    };
    core.step(2, reply);
    assert!(!core.status().is_leader, "its own promise is still missing");
    core.step(3, Message::Prepare { ballot, from: 1 });
    let own = core
        .ready()
        .send
        .into_iter()
        .find(|(_, m)| matches!(m, Message::Promise { .. }));
    core.step(3, own.unwrap().1);
    assert!(core.status().is_leader);
    let r = core.ready();
    let mut proposed: Vec<(Slot, Value)> = r
        .send
        .into_iter()
        .filter(|(to, _)| *to == 1)
        .filter_map(|(_, m)| match m {
            Message::Accept {
                slot,
                value,
                ballot: b,
                ..
            } if b == ballot => Some((slot, value)),
            _ => None,
        })
        .collect();
    proposed.sort_by_key(|p| p.0);
    assert_eq!(proposed, vec![(1, v(2)), (2, Value::Noop), (3, v(3))]);
}

#[test]
fn followers_forward_and_refuse_without_a_leader() {
    let mut c = Cluster::new(3, |cfg| cfg.proposals_queued_max = 2);
    assert_eq!(c.core(1).propose(cmd(1)), Err(ProposeError::NoLeader));
    c.tick(ELECTED_BY);
    assert_eq!(c.core(1).status().leader, Some(3));
    c.core(1).propose(cmd(1)).unwrap();
    c.core(1).propose(cmd(2)).unwrap();
    assert_eq!(c.core(1).propose(cmd(3)), Err(ProposeError::Busy));
    let r = c.core(1).ready();
    assert_eq!(
        r.send,
        vec![(
            3,
            Message::Forward {
                commands: vec![cmd(1), cmd(2)]
            }
        )]
    );
}

#[test]
fn leader_batches_queued_commands_and_keeps_a_window_of_slots() {
    let mut c = Cluster::new(3, |cfg| {
        cfg.batch_commands_max = 3;
        cfg.window_slots_max = 2;
    });
    c.tick(ELECTED_BY);
    for i in 0..10 {
        c.core(3).propose(cmd(i)).unwrap();
    }
    let r = c.core(3).ready();
    let mut slots: Vec<(Slot, usize)> = r
        .send
        .iter()
        .filter(|(to, _)| *to == 1)
        .filter_map(|(_, m)| match m {
            Message::Accept { slot, value, .. } => Some((*slot, value.commands())),
            _ => None,
        })
        .collect();
    slots.sort();
    assert_eq!(
        slots,
        vec![(1, 3), (2, 3)],
        "two slots in flight, three commands each"
    );
    for (to, m) in r.send {
        c.queue.push_back((3, to, m));
    }
    c.settle();
    c.tick(4);
    assert_eq!(commands(&c.delivered[0]).len(), 10);
}

#[test]
fn read_index_is_confirmed_by_a_quorum_and_forwarded_from_followers() {
    let mut c = Cluster::new(3, |_| {});
    c.tick(ELECTED_BY);
    c.core(3).propose(cmd(1)).unwrap();
    c.settle();
    c.core(3).read_index(7);
    c.core(1).read_index(8);
    c.settle();
    assert_eq!(c.reads[2], vec![(7, Some(1))]);
    assert_eq!(c.reads[0], vec![(8, Some(1))]);
    // A leader cut off from every peer cannot confirm, and answers None when it steps down.
    c.down = vec![1, 2];
    c.core(3).read_index(9);
    c.tick(2);
    assert!(c.reads[2].len() == 1, "no answer without a quorum");
    c.tick(20);
    assert_eq!(c.reads[2].last(), Some(&(9, None)));
}

#[test]
fn a_node_behind_the_compaction_point_gets_a_snapshot() {
    let mut c = Cluster::new(3, |_| {});
    c.tick(ELECTED_BY);
    c.down.push(1);
    for i in 0..5 {
        c.core(3).propose(cmd(i)).unwrap();
        c.settle();
    }
    c.tick(2);
    c.core(3).compact(4);
    c.core(2).compact(4);
    c.down.clear();
    c.tick(10);
    assert!(c.snapshots.iter().any(|&(_, asker)| asker == 1));
    c.core(1).install_snapshot(4, config(1, 3).genesis());
    c.tick(6);
    let d = &c.delivered[0];
    assert_eq!(d.last().map(|(s, _)| *s), Some(5));
    assert!(
        d.iter().all(|(s, _)| *s == 5),
        "slots <= 4 came in the snapshot"
    );
}

#[test]
fn a_promise_answering_another_from_does_not_count() {
    // Regression (stale promise): a Promise computed for a Prepare with a higher `from`
    // omits the slots below it; counting it would let the candidate fill chosen slots with
    // no-ops. Only a promise echoing this campaign's (ballot, from) counts.
    let durable = DurableState {
        promised: Ballot { round: 7, node: 2 },
        ..DurableState::default()
    };
    let mut core = Core::new(config(3, 3), durable, config(3, 3).genesis(), 1);
    let r = start_campaign(&mut core, 1);
    let (ballot, from) = r
        .send
        .iter()
        .find_map(|(_, m)| match m {
            Message::Prepare { ballot, from } => Some((*ballot, *from)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        r.persist,
        vec![Persist::Promise(ballot)],
        "ballot durable first"
    );
    core.step(3, Message::Prepare { ballot, from });
    let own = core
        .ready()
        .send
        .into_iter()
        .find(|(_, m)| matches!(m, Message::Promise { .. }))
        .unwrap();
    core.step(3, own.1);
    let stale = Message::Promise {
        ballot,
        from: from + 100,
        through: None,
        accepted: Vec::new(),
        compacted_through: 0,
    };
    core.step(1, stale);
    assert!(
        !core.status().is_leader,
        "a promise for another from counted"
    );
    let fresh = Message::Promise {
        ballot,
        from,
        through: None,
        accepted: Vec::new(),
        compacted_through: 0,
    };
    core.step(1, fresh);
    assert!(core.status().is_leader);
}

#[test]
fn a_read_index_reply_for_an_earlier_incarnation_is_dropped() {
    // Regression (stale read reply): read ids restart at 1 with each incarnation, so the
    // reply to an earlier incarnation's read #1 must not answer this one's read #1.
    let mut c = Cluster::new(3, |_| {});
    c.tick(12);
    assert_eq!(c.leader(), Some(3));
    let incarnation = 1; // Cluster::new gives node 1 incarnation 1
    c.core(1).read_index(1);
    let r = c.core(1).ready();
    assert!(r
        .send
        .iter()
        .any(|(to, m)| *to == 3 && *m == Message::ReadIndex { incarnation, id: 1 }));
    let stale = Message::ReadIndexReply {
        incarnation: incarnation + 1,
        id: 1,
        index: Some(0),
    };
    c.core(1).step(3, stale);
    assert!(c.core(1).ready().reads.is_empty(), "a stale reply answered");
    let fresh = Message::ReadIndexReply {
        incarnation,
        id: 1,
        index: Some(0),
    };
    c.core(1).step(3, fresh);
    assert_eq!(c.core(1).ready().reads, vec![(1, Some(0))]);
}

#[test]
fn a_returning_node_does_not_depose_a_healthy_leader() {
    // Sticky leadership: node 3 (the highest id) comes back while node 2 leads; it hears
    // node 2 within its start-up quiet time and neither campaigns nor bumps a ballot.
    let mut c = Cluster::new(3, |_| {});
    c.tick(ELECTED_BY);
    assert_eq!(c.leader(), Some(3));
    c.down.push(3);
    c.tick(12);
    assert_eq!(c.leader(), Some(2));
    let ballot = c.core(2).status().ballot;
    c.restart(3, 99);
    c.tick(40);
    assert_eq!(c.leader(), Some(2), "the returning node took over");
    assert_eq!(c.core(2).status().ballot, ballot, "an election happened");
    assert_eq!(c.core(3).status().leader, Some(2));
}

#[test]
fn a_node_far_behind_gets_no_pre_vote() {
    // A node whose commit index trails by more than leader_lag_slots_max would have to
    // catch up before it could serve: peers refuse to let it campaign. Nodes 1 and 3 are
    // cut off, so node 2 hears no live leader and only the lag can refuse.
    let mut c = Cluster::new(3, |cfg| cfg.leader_lag_slots_max = 64);
    c.tick(ELECTED_BY);
    for i in 0..100 {
        c.core(3).propose(cmd(i)).unwrap();
        c.settle();
    }
    c.down.extend([1, 3]);
    c.tick(40);
    assert_eq!(
        c.core(2).status().leader,
        None,
        "node 2 still hears a leader"
    );
    let ballot = Ballot { round: 50, node: 1 };
    let ask = |c: &mut Cluster, commit| {
        c.core(2).step(1, Message::PreVote { ballot, commit });
        c.core(2).ready().send.iter().any(|m| {
            *m == (
                1,
                Message::PreVoteReply {
                    ballot,
                    granted: true,
                },
            )
        })
    };
    assert!(!ask(&mut c, 10), "a node 90 slots behind was granted");
    assert!(ask(&mut c, 60), "a node within the lag was refused");
}

#[test]
fn a_leader_that_steps_down_fails_its_queued_proposals_at_once() {
    // Commands queued at the leader (window full) were never put in a slot: when it steps
    // down, its own are reported dropped and a forwarder's are sent back as Refused.
    let mut c = Cluster::new(3, |cfg| {
        cfg.window_slots_max = 1;
        cfg.batch_commands_max = 1;
    });
    c.tick(ELECTED_BY);
    assert_eq!(c.leader(), Some(3));
    c.down.extend([1, 2]);
    for i in 0..3 {
        c.core(3).propose(cmd(i)).unwrap();
    }
    c.core(3).step(
        1,
        Message::Forward {
            commands: vec![cmd(9)],
        },
    );
    c.settle();
    let higher = Ballot { round: 99, node: 2 };
    let ballot = c.core(3).status().ballot;
    let nack = Message::Nack {
        ballot,
        promised: higher,
    };
    c.core(3).step(2, nack);
    let r = c.core(3).ready();
    assert!(!c.core(3).status().is_leader);
    assert_eq!(
        r.dropped,
        vec![cmd(1), cmd(2)],
        "slot 1 holds cmd 0: unknown"
    );
    let refused = Message::Refused {
        commands: vec![cmd(9)],
    };
    assert!(r.send.contains(&(1, refused)));
}
