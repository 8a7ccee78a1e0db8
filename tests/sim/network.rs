//! The simulated network, shaped like the node's transport: each sender keeps a bounded
//! outbound queue per peer (the oldest frame dropped when full) that holds frames while
//! the link is cut or the peer is down or paused, and delivers them when the link is back,
//! so a frame written for one incarnation of a node can reach its next one. In flight,
//! each message gets a random delay (so reordering), may be dropped or duplicated; a
//! message larger than the frame limit is dropped at send, as `Transport::send` does.
//! Self-addressed messages are never lost.
//!
//! Reconnects are asymmetric, as the transport's are: a node sends only over connections
//! it dialed, and a sender whose connection to a crashed peer broke redials with capped
//! exponential backoff (`peer.rs`). So after a restart the new incarnation's own links
//! work at once while each peer's link back to it opens only at that peer's next dial
//! attempt (when `NetFaults::redial_ticks_max` is nonzero), frames queued there for the
//! old incarnation included.
//!
//! Invariant: a held queue belongs to a live (running or paused) sender process: a
//! sender's crash empties its queues (frames already in flight still arrive, as bytes in
//! a socket buffer may).

use std::collections::{BTreeMap, VecDeque};

use concierge::paxos::{Message, NodeId};

use super::rng::Rng;

/// Fault rates of one run.
#[derive(Clone, Debug)]
pub struct NetFaults {
    pub drop_per_mille: u64,
    pub dup_per_mille: u64,
    pub delay_max: u64,
    /// Frames one sender queues for one peer while it cannot deliver them.
    pub held_max: usize,
    /// Largest encoded message a link carries.
    pub frame_bytes_max: usize,
    /// A sender's first redial after its link to a crashed peer broke comes within its
    /// current backoff (`redial_ticks_min` doubled 0 to 7 times: the link may have
    /// flapped before), each later one after twice the previous wait, capped at
    /// `redial_ticks_max`; 0: links to a restarted node work at once.
    pub redial_ticks_min: u64,
    pub redial_ticks_max: u64,
}

/// One sender's dialer towards a peer that crashed: its next attempt and its backoff.
#[derive(Clone, Copy)]
struct Dialer {
    next_at: u64,
    backoff: u64,
}

pub struct Envelope {
    pub from: NodeId,
    pub to: NodeId,
    pub msg: Message,
}

pub struct Network {
    /// Messages in flight, by delivery tick.
    queue: BTreeMap<u64, Vec<Envelope>>,
    /// Per link (from, to): frames the sender holds until the link is usable.
    held: BTreeMap<(NodeId, NodeId), VecDeque<Envelope>>,
    /// side[i] is the partition side of node i+1; messages between sides wait.
    side: Vec<u8>,
    /// state[i]: whether node i+1 runs, is paused or crashed.
    state: Vec<Proc>,
    /// Per link (from, to) whose addressee crashed: the sender's dialer backing off.
    dialers: BTreeMap<(NodeId, NodeId), Dialer>,
    /// Per link (from, to): not usable before this tick (the sender's next successful
    /// dial after the addressee restarted).
    redial_at: BTreeMap<(NodeId, NodeId), u64>,
    pub faults: NetFaults,
}

/// A node's process as the network sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proc {
    Running,
    /// Stopped (SIGSTOP): sends and receives nothing, keeps its queues.
    Paused,
    /// Gone: its queues are lost; a restart brings a new incarnation.
    Crashed,
}

/// What happened to a message handed to the network.
pub enum Fate {
    Sent,
    /// Sent twice.
    Duplicated,
    Dropped,
    /// Queued at the sender until the link is usable.
    Held,
    /// Larger than a frame: the transport refuses it.
    TooLarge(usize),
}

/// The encoded size of a message as a frame payload would carry it.
pub fn encoded_bytes(msg: &Message) -> usize {
    match msg {
        Message::Promise { .. }
        | Message::Accept { .. }
        | Message::CatchUpReply { .. }
        | Message::Forward { .. } => rmp_serde::to_vec(msg).map_or(usize::MAX, |v| v.len()),
        _ => 64,
    }
}

impl Network {
    pub fn new(nodes: usize, faults: NetFaults) -> Network {
        Network {
            queue: BTreeMap::new(),
            held: BTreeMap::new(),
            side: vec![0; nodes],
            state: vec![Proc::Running; nodes],
            dialers: BTreeMap::new(),
            redial_at: BTreeMap::new(),
            faults,
        }
    }

    fn idx(n: NodeId) -> usize {
        n as usize - 1
    }

    pub fn connected(&self, a: NodeId, b: NodeId) -> bool {
        self.side[Self::idx(a)] == self.side[Self::idx(b)]
    }

    fn running(&self, n: NodeId) -> bool {
        self.state[Self::idx(n)] == Proc::Running
    }

    /// The sender can write to the link (it has a connection) and the addressee reads it.
    fn usable(&self, now: u64, from: NodeId, to: NodeId) -> bool {
        let dialed = self.redial_at.get(&(from, to)).is_none_or(|&at| now >= at);
        self.connected(from, to) && self.running(from) && self.running(to) && dialed
    }

    pub fn partition(&mut self, side: Vec<u8>) {
        self.side = side;
    }

    pub fn heal(&mut self) {
        self.side.iter_mut().for_each(|s| *s = 0);
    }

    /// Node `n` crashed at `now`: every other live node's link to it breaks and its
    /// dialer starts backing off (one already backing off keeps its schedule).
    pub fn crashed(&mut self, rng: &mut Rng, now: u64, n: NodeId) {
        let (min, max) = (self.faults.redial_ticks_min, self.faults.redial_ticks_max);
        // The crashed node's own dialers die with it; its next incarnation dials afresh.
        self.dialers.retain(|&(from, _), _| from != n);
        self.redial_at.retain(|&(from, _), _| from != n);
        if max == 0 {
            return;
        }
        for from in 1..=self.state.len() as NodeId {
            if from == n || self.state[Self::idx(from)] == Proc::Crashed {
                continue;
            }
            // A link that already flapped (a partition, an earlier crash) redials with a
            // backoff already grown: each sender's starts anywhere from min to max.
            let backoff = (min << rng.below(8)).min(max);
            let next_at = now + rng.range(1, backoff);
            self.dialers
                .entry((from, n))
                .or_insert(Dialer { next_at, backoff });
        }
    }

    /// The senders holding, for `n`, a Promise of `n`'s own ballot (written for an
    /// earlier incarnation of `n`'s campaign).
    pub fn holding_own_promise(&self, n: NodeId) -> Vec<NodeId> {
        let own =
            |e: &Envelope| matches!(&e.msg, Message::Promise { ballot, .. } if ballot.node == n);
        self.held
            .iter()
            .filter(|(&(_, to), q)| to == n && q.iter().any(own))
            .map(|(&(from, _), _)| from)
            .collect()
    }

    /// The link `from -> to` opens at `at` (its sender's next successful dial).
    pub fn redial_at(&mut self, from: NodeId, to: NodeId, at: u64) {
        self.redial_at.insert((from, to), at);
    }

    /// Node `n` restarted at `now`: each peer's link to it opens at that peer's first
    /// dial attempt from now on.
    pub fn restarted(&mut self, now: u64, n: NodeId) {
        let max = self.faults.redial_ticks_max;
        let links: Vec<(NodeId, NodeId)> = self
            .dialers
            .keys()
            .copied()
            .filter(|&(_, to)| to == n)
            .collect();
        for link in links {
            let Some(mut d) = self.dialers.remove(&link) else {
                continue;
            };
            while d.next_at < now {
                d.backoff = (d.backoff * 2).min(max);
                d.next_at += d.backoff;
            }
            self.redial_at.insert(link, d.next_at);
        }
    }

    pub fn is_partitioned(&self) -> bool {
        self.side.iter().any(|&s| s != 0)
    }

    /// Node `n` runs, pauses or crashes; a crash loses its outbound queues (returns how
    /// many frames were lost).
    pub fn set_state(&mut self, n: NodeId, state: Proc) -> usize {
        self.state[Self::idx(n)] = state;
        if state != Proc::Crashed {
            return 0;
        }
        let mut lost = 0;
        self.held.retain(|&(from, _), q| {
            if from == n {
                lost += q.len();
            }
            from != n
        });
        lost
    }

    fn hold(&mut self, e: Envelope) {
        let q = self.held.entry((e.from, e.to)).or_default();
        if q.len() >= self.faults.held_max {
            q.pop_front();
        }
        q.push_back(e);
    }

    fn schedule(&mut self, at: u64, e: Envelope) {
        self.queue.entry(at).or_default().push(e);
    }

    pub fn send(
        &mut self,
        rng: &mut Rng,
        now: u64,
        from: NodeId,
        to: NodeId,
        msg: Message,
    ) -> Fate {
        if from == to {
            self.schedule(now + 1, Envelope { from, to, msg });
            return Fate::Sent;
        }
        let bytes = encoded_bytes(&msg);
        if bytes > self.faults.frame_bytes_max {
            return Fate::TooLarge(bytes);
        }
        if !self.usable(now, from, to) {
            self.hold(Envelope { from, to, msg });
            return Fate::Held;
        }
        if rng.chance(self.faults.drop_per_mille) {
            return Fate::Dropped;
        }
        let mut fate = Fate::Sent;
        // The transport writes a frame once: only messages the protocol itself may
        // retransmit are duplicated (a Forward or Refused is delivered at most once, which
        // is what lets a refused command be failed as not applied).
        let once = matches!(msg, Message::Forward { .. } | Message::Refused { .. });
        if rng.chance(self.faults.dup_per_mille) && !once {
            let at = now + rng.range(1, self.faults.delay_max);
            let copy = Envelope {
                from,
                to,
                msg: msg.clone(),
            };
            self.schedule(at, copy);
            fate = Fate::Duplicated;
        }
        let at = now + rng.range(1, self.faults.delay_max);
        self.schedule(at, Envelope { from, to, msg });
        fate
    }

    /// Moves held frames of every usable link back in flight, in their order.
    pub fn release(&mut self, rng: &mut Rng, now: u64) {
        let ready: Vec<(NodeId, NodeId)> = self
            .held
            .keys()
            .copied()
            .filter(|&(f, t)| self.usable(now, f, t))
            .collect();
        for link in ready {
            if let Some(q) = self.held.remove(&link) {
                let at = now + rng.range(1, self.faults.delay_max);
                for e in q {
                    self.schedule(at, e);
                }
            }
        }
    }

    /// Every message due at or before `now` whose addressee runs, shuffled (reordering
    /// within a tick). A message whose link was cut or whose addressee went down meanwhile
    /// goes back to its sender's queue (or is lost with a crashed sender).
    pub fn due(&mut self, rng: &mut Rng, now: u64) -> Vec<Envelope> {
        let mut out = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if *entry.key() > now {
                break;
            }
            out.extend(entry.remove());
        }
        for i in (1..out.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            out.swap(i, j);
        }
        let mut deliver = Vec::with_capacity(out.len());
        for e in out {
            let sender = self.state[Self::idx(e.from)];
            if e.from == e.to {
                match sender {
                    Proc::Running => deliver.push(e),
                    Proc::Paused => self.schedule(now + 1, e),
                    Proc::Crashed => {}
                }
            } else if self.connected(e.from, e.to) && self.running(e.to) {
                deliver.push(e);
            } else if sender != Proc::Crashed {
                self.hold(e);
            }
        }
        deliver
    }
}
