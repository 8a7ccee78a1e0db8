//! The simulated network, shaped like the node's transport: each sender keeps a bounded
//! outbound queue per peer (the oldest frame dropped when full) that holds frames while
//! the link is cut or the peer is down or paused, and delivers them when the link is back,
//! so a frame written for one incarnation of a node can reach its next one. In flight,
//! each message gets a random delay (so reordering), may be dropped or duplicated; a
//! message larger than the frame limit is dropped at send, as `Transport::send` does.
//! Self-addressed messages are never lost.
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

    /// The sender can write to the link and the addressee reads it.
    fn usable(&self, from: NodeId, to: NodeId) -> bool {
        self.connected(from, to) && self.running(from) && self.running(to)
    }

    pub fn partition(&mut self, side: Vec<u8>) {
        self.side = side;
    }

    pub fn heal(&mut self) {
        self.side.iter_mut().for_each(|s| *s = 0);
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
        if !self.usable(from, to) {
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
            .filter(|&(f, t)| self.usable(f, t))
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
