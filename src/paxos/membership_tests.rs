//! Protocol tests of membership changes on the lossless in-memory network of `tests.rs`
//! (the simulator changes members under faults): growth, shrinking, the quorums that
//! decide after a change, a leader that removes itself, and refused changes.

use super::tests::{commands, config, start_campaign, Cluster, ELECTED_BY};
use super::*;

fn change(base: Slot, voters: &[NodeId], learners: &[NodeId]) -> Change {
    Change {
        base,
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        context: bytes::Bytes::new(),
    }
}

/// Proposes `c` at the leader and runs until its slot is delivered there and every
/// node up has reached the slot it governs from; returns the change's membership id.
fn reconfigure(cl: &mut Cluster, c: Change) -> Slot {
    let leader = cl.leader().expect("a leader");
    let before = cl.core(leader).memberships().latest().id;
    cl.core(leader)
        .reconfigure(c)
        .expect("the leader takes the change");
    cl.settle();
    let latest = cl.core(leader).memberships().latest().clone();
    assert_ne!(latest.id, before, "the change was chosen and applied");
    // The leader fills the slots before the change's first one with no-ops: the next
    // slot to deliver is then governed by the change.
    cl.tick(2);
    let delivered = cl.core(leader).status().delivered_index;
    assert!(
        delivered + 1 >= latest.active_from,
        "delivered {delivered}, the change governs from {}",
        latest.active_from
    );
    latest.id
}

/// Node `id` of voters 1, 2, 3 alone, fed by hand: a window and a delay of 2 slots.
fn lone_core(id: NodeId) -> Core {
    let mut cfg = config(id, 3);
    cfg.window_slots_max = 2;
    let first = Memberships::genesis(vec![1, 2, 3], 2);
    Core::new(cfg, DurableState::default(), first, 1)
}

fn delivered_commands(cl: &Cluster, id: NodeId) -> usize {
    commands(&cl.delivered[id as usize - 1]).len()
}

#[test]
fn a_cluster_grows_to_four_then_shrinks_to_the_two_new_voters_that_then_decide_alone() {
    let mut cl = Cluster::with_spares(3, 1, |_| {});
    cl.tick(ELECTED_BY);
    assert_eq!(cl.leader(), Some(3));
    cl.core(3).propose(super::tests::cmd(1)).unwrap();
    cl.settle();
    let m = reconfigure(&mut cl, change(0, &[1, 2, 3], &[4]));
    assert_eq!(delivered_commands(&cl, 4), 1, "the learner caught up");
    let m = reconfigure(&mut cl, change(m, &[1, 2, 3, 4], &[]));
    let m = reconfigure(&mut cl, change(m, &[2, 3, 4], &[]));
    reconfigure(&mut cl, change(m, &[3, 4], &[]));
    // Nodes 1 and 2 are gone: under the first membership node 3 could decide nothing.
    cl.down = vec![1, 2];
    cl.core(3).propose(super::tests::cmd(2)).unwrap();
    cl.settle();
    assert_eq!(delivered_commands(&cl, 3), 2);
    assert_eq!(delivered_commands(&cl, 4), 2);
    let status = cl.core(4).status();
    assert_eq!(status.membership.voters, vec![3, 4]);
}

#[test]
fn a_slot_of_the_new_membership_waits_for_a_quorum_of_its_voters() {
    let mut cl = Cluster::with_spares(3, 2, |_| {});
    cl.tick(ELECTED_BY);
    let m = reconfigure(&mut cl, change(0, &[1, 2, 3], &[4, 5]));
    let m = reconfigure(&mut cl, change(m, &[1, 2, 3, 4], &[5]));
    reconfigure(&mut cl, change(m, &[1, 2, 3, 4, 5], &[]));
    // Five voters: 3 and 1 are two, not a quorum; the first membership's quorum would do.
    cl.down = vec![2, 4, 5];
    cl.core(3).propose(super::tests::cmd(7)).unwrap();
    cl.tick(3);
    assert_eq!(delivered_commands(&cl, 3), 0, "two of five decided");
    cl.down = vec![2, 4];
    cl.tick(3);
    assert_eq!(delivered_commands(&cl, 3), 1, "three of five decide");
}

#[test]
fn a_leader_that_removes_itself_hands_over_and_the_rest_go_on() {
    let mut cl = Cluster::new(3, |_| {});
    cl.tick(ELECTED_BY);
    assert_eq!(cl.leader(), Some(3));
    cl.core(3).reconfigure(change(0, &[1, 2], &[])).unwrap();
    cl.settle();
    // The change is chosen and the leader filled the slots up to where it governs; node 3
    // is gone before it could step down and say so: the others must not wait for it.
    let active_from = cl.core(1).memberships().latest().active_from;
    assert_eq!(cl.core(1).status().delivered_index + 1, active_from);
    cl.down = vec![3];
    cl.tick(ELECTED_BY * 3);
    let leader = cl.leader();
    assert!(
        matches!(leader, Some(1 | 2)),
        "one of the remaining voters leads, not {leader:?}"
    );
    let l = leader.unwrap_or(1);
    cl.core(l).propose(super::tests::cmd(5)).unwrap();
    cl.settle();
    assert_eq!(delivered_commands(&cl, 1), 1);
    assert_eq!(delivered_commands(&cl, 2), 1);
    // Node 3 comes back: it steps down, and stays out.
    cl.down.clear();
    cl.tick(ELECTED_BY);
    assert!(
        !cl.core(3).status().is_leader,
        "a removed leader steps down"
    );
    assert_eq!(cl.leader(), Some(l));
}

#[test]
fn a_leader_that_removes_itself_steps_down_once_the_change_governs() {
    let mut cl = Cluster::new(3, |_| {});
    cl.tick(ELECTED_BY);
    assert_eq!(cl.leader(), Some(3));
    reconfigure(&mut cl, change(0, &[1, 2], &[]));
    cl.tick(ELECTED_BY * 3);
    assert!(
        !cl.core(3).status().is_leader,
        "a removed leader steps down"
    );
    assert!(matches!(cl.leader(), Some(1 | 2)));
}

#[test]
fn changes_are_refused_off_the_leader_when_stale_or_while_one_waits() {
    let mut cl = Cluster::with_spares(3, 1, |_| {});
    cl.tick(ELECTED_BY);
    let add = change(0, &[1, 2, 3], &[4]);
    assert_eq!(
        cl.core(1).reconfigure(add.clone()),
        Err(ReconfigureError::NotLeader)
    );
    let two = change(0, &[1, 2, 3, 4, 5], &[]);
    assert_eq!(
        cl.core(3).reconfigure(two),
        Err(ReconfigureError::Invalid(ChangeError::TooManyVoterChanges))
    );
    cl.core(3).reconfigure(add.clone()).unwrap();
    let other = change(0, &[1, 2], &[]);
    assert_eq!(cl.core(3).reconfigure(other), Err(ReconfigureError::Busy));
    cl.settle();
    assert_eq!(
        cl.core(3).reconfigure(add),
        Err(ReconfigureError::Invalid(ChangeError::Stale {
            base: 0,
            latest: 1
        }))
    );
    // A change reaches every replica at the same slot.
    cl.tick(2);
    let ids: Vec<Slot> = (1..=4)
        .map(|n| cl.core(n).memberships().latest().id)
        .collect();
    assert_eq!(ids, vec![1, 1, 1, 1]);
}

#[test]
fn a_candidate_that_learns_a_later_membership_while_campaigning_asks_its_voters() {
    // Node 3 campaigns from slot 1 among the first voters 1, 2, 3 (node 2 is silent);
    // while it waits, catch-up shows that slot 1 removed node 1 and slot 3 added voter 4,
    // so slot 5, its first, is decided by 2, 3 and 4. It must ask node 4: node 1's
    // promise no longer counts, and node 2 never answers.
    let mut core = lone_core(3);
    let r = start_campaign(&mut core, 2);
    let ballot = r
        .send
        .iter()
        .find_map(|(_, m)| match m {
            Message::Prepare { ballot, .. } => Some(*ballot),
            _ => None,
        })
        .expect("the candidate sent prepares");
    core.step(3, Message::Prepare { ballot, from: 1 });
    let own = core.ready().send.into_iter().find(|(to, _)| *to == 3);
    let (_, own) = own.expect("the candidate's own promise");
    core.step(3, own);
    let entries = vec![
        (1, Value::Reconfigure(change(0, &[2, 3], &[]))),
        (2, Value::Noop),
        (3, Value::Reconfigure(change(1, &[2, 3, 4], &[]))),
        (4, Value::Noop),
    ];
    core.step(2, Message::CatchUpReply { entries, commit: 4 });
    let promise = |from| Message::Promise {
        ballot,
        from,
        through: None,
        accepted: Vec::new(),
        compacted_through: 0,
    };
    core.step(1, promise(1));
    let asked = core.ready().send;
    assert!(
        asked.contains(&(4, Message::Prepare { ballot, from: 5 })),
        "node 4 is asked from slot 5: {asked:?}"
    );
    assert!(!core.status().is_leader, "node 1 is no voter of slot 5");
    core.step(4, promise(5));
    assert!(core.status().is_leader);
}

#[test]
fn a_removed_node_that_missed_its_removal_gets_no_pre_vote_but_the_commit_index() {
    // Node 1 learnt that slot 1 removed node 3 (voters 1 and 2 from slot 3 on); node 3,
    // behind, still thinks it votes and asks for a pre-vote: refusing it keeps it from
    // deposing the leaders of 1 and 2 again and again, and a heartbeat with the commit
    // index lets it catch up and learn its removal.
    let mut core = lone_core(1);
    let entries = vec![
        (1, Value::Reconfigure(change(0, &[1, 2], &[]))),
        (2, Value::Noop),
    ];
    core.step(2, Message::CatchUpReply { entries, commit: 2 });
    let ballot = Ballot { round: 5, node: 3 };
    core.step(3, Message::PreVote { ballot, commit: 0 });
    let sent = core.ready().send;
    let refused = Message::PreVoteReply {
        ballot,
        granted: false,
    };
    let told = Message::Heartbeat {
        leading: None,
        commit: 2,
        read_round: 0,
    };
    assert!(sent.contains(&(3, refused)), "{sent:?}");
    assert!(sent.contains(&(3, told)), "{sent:?}");
    // A voter of slot 3 is granted as before.
    let ballot = Ballot { round: 5, node: 2 };
    core.step(2, Message::PreVote { ballot, commit: 2 });
    let granted = Message::PreVoteReply {
        ballot,
        granted: true,
    };
    assert!(core.ready().send.contains(&(2, granted)));
}

#[test]
fn a_delivered_change_says_whether_it_applied_or_was_void() {
    // Slots 1 and 2 both change the first membership (base 0): the first applies and
    // governs from slot 1 + the delay of 2; the second is stale, and void on every
    // replica alike. The driver answers the change's caller from this, not by
    // re-deciding it.
    let mut core = lone_core(1);
    let entries = vec![
        (1, Value::Reconfigure(change(0, &[1, 2], &[]))),
        (2, Value::Reconfigure(change(0, &[1, 2, 3], &[4]))),
        (3, Value::Noop),
    ];
    core.step(2, Message::CatchUpReply { entries, commit: 3 });
    let rd = core.ready();
    assert_eq!(rd.deliver.len(), 3);
    assert_eq!(
        rd.changes,
        vec![
            ChangeDelivered {
                slot: 1,
                governs_from: Some(3)
            },
            ChangeDelivered {
                slot: 2,
                governs_from: None
            },
        ]
    );
    assert_eq!(core.memberships().latest().voters, vec![1, 2]);
}
