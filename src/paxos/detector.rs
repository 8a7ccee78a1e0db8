//! Failure detector and Omega leader election.
//!
//! Every node heartbeats every `heartbeat_ticks`. A peer is suspected when nothing came
//! from it for its timeout; a message from a suspected peer proves the suspicion false and
//! raises that peer's timeout by `suspect_ticks_increment`, so once the network is timely
//! again every live peer is eventually trusted forever (an eventually strong detector,
//! Chandra & Toueg's <>S). Omega picks the highest id this node does not suspect (itself
//! included): once the detector is accurate, every live node picks the same leader.

use super::config::Config;
use super::types::NodeId;

/// What this node knows of one peer's liveness.
struct Watch {
    id: NodeId,
    /// Tick of the last message from this peer.
    last_heard: u64,
    /// Ticks of silence after which the peer is suspected. Invariant: >= suspect_ticks.
    timeout: u64,
    /// True while this peer is suspected to have crashed.
    suspected: bool,
}

/// The failure detector and Omega.
pub struct Detector {
    id: NodeId,
    /// Ticks since this core started. Invariant: only grows.
    now: u64,
    /// Every member but this node.
    peers: Vec<Watch>,
    heartbeat_ticks: u64,
    suspect_ticks_increment: u64,
    /// Tick at which the next heartbeat goes out.
    heartbeat_due: u64,
}

impl Detector {
    /// A detector that trusts everyone at start-up.
    pub fn new(config: &Config) -> Detector {
        let peers = config
            .members
            .iter()
            .filter(|&&m| m != config.id)
            .map(|&id| Watch {
                id,
                last_heard: 0,
                timeout: u64::from(config.suspect_ticks),
                suspected: false,
            })
            .collect();
        Detector {
            id: config.id,
            now: 0,
            peers,
            heartbeat_ticks: u64::from(config.heartbeat_ticks),
            suspect_ticks_increment: u64::from(config.suspect_ticks_increment),
            heartbeat_due: 0,
        }
    }

    /// The current tick.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Advances time; returns true when this node must heartbeat now.
    pub fn tick(&mut self) -> bool {
        self.now += 1;
        for p in &mut self.peers {
            if !p.suspected && self.now - p.last_heard > p.timeout {
                p.suspected = true;
            }
        }
        if self.now >= self.heartbeat_due {
            self.heartbeat_due = self.now + self.heartbeat_ticks;
            return true;
        }
        false
    }

    /// A message came from `from`: it is alive.
    pub fn heard(&mut self, from: NodeId) {
        if let Some(p) = self.peers.iter_mut().find(|p| p.id == from) {
            if p.suspected {
                p.suspected = false;
                p.timeout += self.suspect_ticks_increment;
            }
            p.last_heard = self.now;
        }
    }

    /// True if `node` is a peer this node currently suspects.
    pub fn suspects(&self, node: NodeId) -> bool {
        self.peers.iter().any(|p| p.id == node && p.suspected)
    }

    /// Omega: the highest id not suspected, this node included.
    pub fn omega(&self) -> NodeId {
        self.peers
            .iter()
            .filter(|p| !p.suspected)
            .map(|p| p.id)
            .fold(self.id, NodeId::max)
    }

    /// Members trusted, this node included.
    pub fn trusted(&self) -> usize {
        1 + self.peers.iter().filter(|p| !p.suspected).count()
    }

    /// Every peer and whether it is trusted.
    pub fn healthy(&self) -> Vec<(NodeId, bool)> {
        self.peers.iter().map(|p| (p.id, !p.suspected)).collect()
    }

    /// The peers (every member but this node).
    pub fn peer_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers.iter().map(|p| p.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut c = Config::new(1, vec![1, 2, 3]);
        c.heartbeat_ticks = 2;
        c.suspect_ticks = 5;
        c.suspect_ticks_increment = 3;
        c
    }

    #[test]
    fn silent_peer_is_suspected_and_omega_moves_down() {
        let mut d = Detector::new(&config());
        assert_eq!(d.omega(), 3);
        for _ in 0..6 {
            d.tick();
            d.heard(2);
        }
        assert!(d.suspects(3));
        assert!(!d.suspects(2));
        assert_eq!(d.omega(), 2);
    }

    #[test]
    fn false_suspicion_raises_the_timeout() {
        let mut d = Detector::new(&config());
        for _ in 0..6 {
            d.tick();
        }
        assert!(d.suspects(3));
        d.heard(3);
        assert!(!d.suspects(3));
        assert_eq!(d.omega(), 3);
        // Now 8 ticks of silence are tolerated instead of 5.
        for _ in 0..8 {
            d.tick();
        }
        assert!(!d.suspects(3));
        d.tick();
        assert!(d.suspects(3));
    }

    #[test]
    fn heartbeat_fires_every_heartbeat_ticks() {
        let mut d = Detector::new(&config());
        let fired: Vec<bool> = (0..6).map(|_| d.tick()).collect();
        assert_eq!(fired, vec![true, false, true, false, true, false]);
    }
}
