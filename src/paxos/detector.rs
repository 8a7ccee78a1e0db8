//! Failure detector and Omega leader election.
//!
//! Every node heartbeats every `heartbeat_ticks`. A peer is suspected when nothing came
//! from it for its timeout; a message from a suspected peer proves the suspicion false and
//! raises that peer's timeout by `suspect_ticks_increment`, up to `suspect_ticks_max`, so
//! once the network is timely again every live peer is eventually trusted (an eventually
//! strong detector, Chandra & Toueg's <>S); a timeout then decays back by one increment per
//! `suspect_decay_ticks` without a false suspicion, so one bad minute does not slow every
//! later failover.
//!
//! The peers are every node of the memberships this node holds (voters and learners):
//! the core replaces the set when the memberships change, keeping what it knew of the
//! peers that stay. Only voters are eligible leaders.
//!
//! Omega, made sticky: a leader this node hears (and does not suspect) stays its choice,
//! so a node that comes back (restart, pause, healed partition) never deposes a healthy
//! leader. Without one, Omega picks the highest id among the trusted nodes (itself
//! included) that are not behind: a node whose reported commit index trails the highest
//! known by more than `leader_lag_slots_max` is passed over until it catches up. Once the
//! detector is accurate and commit indexes are exchanged, every live node picks the same.

use super::config::Config;
use super::types::NodeId;

/// What this node knows of one peer's liveness.
struct Watch {
    id: NodeId,
    /// Tick of the last message from this peer.
    last_heard: u64,
    /// Ticks of silence after which the peer is suspected.
    /// Invariant: suspect_ticks <= timeout <= suspect_ticks_max.
    timeout: u64,
    /// Tick the timeout last changed (decay counts from here).
    changed_at: u64,
    /// True while this peer is suspected to have crashed.
    suspected: bool,
    /// The commit index this peer last reported.
    commit: u64,
}

/// The failure detector and Omega.
pub struct Detector {
    id: NodeId,
    /// Ticks since this core started. Invariant: only grows.
    now: u64,
    /// Every node of the memberships held but this one, by id.
    peers: Vec<Watch>,
    heartbeat_ticks: u64,
    suspect_ticks: u64,
    suspect_ticks_increment: u64,
    suspect_ticks_max: u64,
    suspect_decay_ticks: u64,
    /// Tick at which the next heartbeat goes out.
    heartbeat_due: u64,
}

impl Detector {
    /// A detector that trusts everyone at start-up.
    pub fn new(config: &Config, peers: impl IntoIterator<Item = NodeId>) -> Detector {
        let mut d = Detector {
            id: config.id,
            now: 0,
            peers: Vec::new(),
            heartbeat_ticks: u64::from(config.heartbeat_ticks),
            suspect_ticks: u64::from(config.suspect_ticks),
            suspect_ticks_increment: u64::from(config.suspect_ticks_increment),
            suspect_ticks_max: u64::from(config.suspect_ticks_max),
            suspect_decay_ticks: config.suspect_decay_ticks,
            heartbeat_due: 0,
        };
        d.set_peers(peers);
        d
    }

    /// The peers are now `ids` (this node left out): new ones start trusted, as if just
    /// heard; those that stay keep their state.
    pub fn set_peers(&mut self, ids: impl IntoIterator<Item = NodeId>) {
        let mut old = std::mem::take(&mut self.peers);
        for id in ids {
            if id == self.id || self.peers.iter().any(|p| p.id == id) {
                continue;
            }
            let kept = old
                .iter()
                .position(|p| p.id == id)
                .map(|i| old.swap_remove(i));
            self.peers.push(kept.unwrap_or(Watch {
                id,
                last_heard: self.now,
                timeout: self.suspect_ticks,
                changed_at: self.now,
                suspected: false,
                commit: 0,
            }));
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
            let calm = self.now - p.changed_at >= self.suspect_decay_ticks;
            if !p.suspected && p.timeout > self.suspect_ticks && calm {
                p.timeout = p
                    .timeout
                    .saturating_sub(self.suspect_ticks_increment)
                    .max(self.suspect_ticks);
                p.changed_at = self.now;
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
                p.timeout = (p.timeout + self.suspect_ticks_increment).min(self.suspect_ticks_max);
                p.changed_at = self.now;
            }
            p.last_heard = self.now;
        }
    }

    /// `from` reported that every slot <= `commit` is applied there. The latest report
    /// counts, not the highest: a restart takes a node back to its compaction point.
    pub fn heard_commit(&mut self, from: NodeId, commit: u64) {
        if let Some(p) = self.peers.iter_mut().find(|p| p.id == from) {
            p.commit = commit;
        }
    }

    /// Ticks of silence after which `node` will be suspected.
    #[cfg(test)]
    pub fn timeout(&self, node: NodeId) -> Option<u64> {
        self.peers.iter().find(|p| p.id == node).map(|p| p.timeout)
    }

    /// True if `node` is a peer this node currently suspects.
    #[cfg(test)]
    pub fn suspects(&self, node: NodeId) -> bool {
        self.peers.iter().any(|p| p.id == node && p.suspected)
    }

    /// Omega (see the module doc): `leader` if this node hears it, else the highest id
    /// among trusted voters whose commit index is within `lag_max` of the highest known;
    /// `own_commit` is this node's. Falls back to this node (which campaigns only if it
    /// votes).
    pub fn omega(
        &self,
        leader: Option<NodeId>,
        own_commit: u64,
        lag_max: u64,
        votes: impl Fn(NodeId) -> bool,
    ) -> NodeId {
        if let Some(l) = leader {
            if l == self.id || self.peers.iter().any(|p| p.id == l && !p.suspected) {
                return l;
            }
        }
        let trusted = || self.peers.iter().filter(|p| !p.suspected);
        let top = trusted().map(|p| p.commit).fold(own_commit, u64::max);
        let eligible = |commit: u64| commit.saturating_add(lag_max) >= top;
        let own = (eligible(own_commit) && votes(self.id)).then_some(self.id);
        trusted()
            .filter(|p| eligible(p.commit) && votes(p.id))
            .map(|p| p.id)
            .fold(own, |best, id| Some(best.map_or(id, |b| b.max(id))))
            .unwrap_or(self.id)
    }

    /// True if `node` is this node or a peer it trusts.
    pub fn trusts(&self, node: NodeId) -> bool {
        node == self.id || self.peers.iter().any(|p| p.id == node && !p.suspected)
    }

    /// Every peer and whether it is trusted.
    pub fn healthy(&self) -> Vec<(NodeId, bool)> {
        self.peers.iter().map(|p| (p.id, !p.suspected)).collect()
    }

    /// Every peer and the commit index it last reported (0 before any report).
    pub fn reported_commits(&self) -> Vec<(NodeId, u64)> {
        self.peers.iter().map(|p| (p.id, p.commit)).collect()
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
        c.suspect_ticks_max = 11;
        c.suspect_decay_ticks = 40;
        c
    }

    #[test]
    fn timeouts_are_capped_and_decay_back() {
        let mut d = Detector::new(&config(), [1, 2, 3]);
        for _ in 0..5 {
            // Silence long enough to be suspected, then a message: a false suspicion.
            for _ in 0..20 {
                d.tick();
                d.heard(2);
            }
            d.heard(3);
        }
        assert_eq!(d.timeout(3), Some(11), "5 raises of 3 from 5, capped at 11");
        for _ in 0..200 {
            d.tick();
            d.heard(2);
            d.heard(3);
        }
        assert_eq!(
            d.timeout(3),
            Some(5),
            "a calm peer's timeout decays to the base"
        );
    }

    #[test]
    fn omega_keeps_a_heard_leader_and_passes_over_a_lagging_node() {
        let mut d = Detector::new(&config(), [1, 2, 3]);
        d.heard_commit(2, 100);
        d.heard_commit(3, 10);
        assert_eq!(
            d.omega(None, 100, 50, |_| true),
            2,
            "3 is behind by more than 50"
        );
        assert_eq!(
            d.omega(None, 100, 95, |_| true),
            3,
            "within the lag, the highest id"
        );
        assert_eq!(
            d.omega(Some(1), 100, 50, |_| true),
            1,
            "a heard leader stays"
        );
        for _ in 0..6 {
            d.tick();
            d.heard(3);
        }
        assert!(d.suspects(2));
        assert_eq!(
            d.omega(Some(2), 100, 50, |_| true),
            1,
            "a suspected leader is dropped"
        );
    }

    #[test]
    fn silent_peer_is_suspected_and_omega_moves_down() {
        let mut d = Detector::new(&config(), [1, 2, 3]);
        assert_eq!(d.omega(None, 0, 0, |_| true), 3);
        for _ in 0..6 {
            d.tick();
            d.heard(2);
        }
        assert!(d.suspects(3));
        assert!(!d.suspects(2));
        assert_eq!(d.omega(None, 0, 0, |_| true), 2);
    }

    #[test]
    fn false_suspicion_raises_the_timeout() {
        let mut d = Detector::new(&config(), [1, 2, 3]);
        for _ in 0..6 {
            d.tick();
        }
        assert!(d.suspects(3));
        d.heard(3);
        assert!(!d.suspects(3));
        assert_eq!(d.omega(None, 0, 0, |_| true), 3);
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
        let mut d = Detector::new(&config(), [1, 2, 3]);
        let fired: Vec<bool> = (0..6).map(|_| d.tick()).collect();
        assert_eq!(fired, vec![true, false, true, false, true, false]);
    }
}
