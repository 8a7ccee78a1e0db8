//! The core's limits and timing, all in ticks, counts or bytes, with `validate()`.

use super::membership::{Memberships, RECONFIG_DELAY_SLOTS};
use super::types::NodeId;

/// Configuration of one core. Times are in ticks (the driver decides how long a tick is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node: one of `members`, or a node added to the cluster later (a learner
    /// until a membership change makes it a voter).
    pub id: NodeId,
    /// The voters of the cluster's first membership (distinct, nonzero, at most 64).
    /// Later memberships come from the log (`membership.rs`).
    pub members: Vec<NodeId>,
    /// A node sends a heartbeat to every peer this often.
    pub heartbeat_ticks: u32,
    /// A peer not heard from for this long is suspected (initial timeout).
    pub suspect_ticks: u32,
    /// Each false suspicion raises that peer's timeout by this much (eventually strong).
    pub suspect_ticks_increment: u32,
    /// A peer's timeout never grows past this.
    pub suspect_ticks_max: u32,
    /// A raised timeout falls back by one increment per this many ticks without a false
    /// suspicion.
    pub suspect_decay_ticks: u64,
    /// A node whose commit index trails the highest known by more than this is not
    /// chosen to lead (it would have to catch up first).
    pub leader_lag_slots_max: u64,
    /// The leader keeps at most this many slots past its commit index in flight.
    pub window_slots_max: u64,
    /// At most this many commands go into one slot.
    pub batch_commands_max: usize,
    /// At most this many command bytes go into one slot (a larger single command still goes alone).
    pub batch_bytes_max: usize,
    /// At most this many commands wait (queued at the leader, or to forward at a follower).
    pub proposals_queued_max: usize,
    /// A catch-up request asks for at most this many slots.
    pub catchup_slots_max: u64,
    /// A catch-up reply carries at most about this many value bytes (command bytes plus
    /// `VALUE_OVERHEAD_BYTES` per command), but always at least one slot: keeps replies
    /// well below the transport's frame limit.
    pub catchup_bytes_max: usize,
    /// At most this many read-index requests wait for a leadership confirmation.
    pub reads_pending_max: usize,
    /// A Promise reports at most this many accepted slots; the candidate asks for the
    /// rest in further chunks (recovery in chunks keeps every Promise below a frame).
    pub promise_slots_max: u64,
    /// A Promise reports at most about this many value bytes (as `catchup_bytes_max`
    /// counts them), but always at least one slot.
    pub promise_bytes_max: usize,
}

/// A configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A member id is 0 or listed twice.
    BadMember { id: NodeId },
    /// Too many or too few members.
    MemberCount { count: usize, max: usize },
    /// A limit that must be positive is zero, or the timing is inconsistent.
    BadLimit {
        name: &'static str,
        reason: &'static str,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::BadMember { id } => write!(f, "member id {id} is 0 or repeated"),
            ConfigError::MemberCount { count, max } => {
                write!(f, "{count} members; need 1..={max}")
            }
            ConfigError::BadLimit { name, reason } => write!(f, "config {name}: {reason}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Members are tracked in a u64 bit set.
pub const MEMBERS_MAX: usize = 64;

impl Config {
    /// A configuration with defaults suited to a 10 ms tick.
    pub fn new(id: NodeId, members: Vec<NodeId>) -> Config {
        Config {
            id,
            members,
            heartbeat_ticks: 5,
            suspect_ticks: 30,
            suspect_ticks_increment: 10,
            suspect_ticks_max: 90,
            suspect_decay_ticks: 1000,
            leader_lag_slots_max: 1024,
            window_slots_max: 64,
            batch_commands_max: 512,
            batch_bytes_max: 1 << 20,
            proposals_queued_max: 8192,
            catchup_slots_max: 256,
            catchup_bytes_max: 8 << 20,
            reads_pending_max: 4096,
            promise_slots_max: 4096,
            promise_bytes_max: 8 << 20,
        }
    }

    /// Checks the configuration can work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.members.is_empty() || self.members.len() > MEMBERS_MAX {
            return Err(ConfigError::MemberCount {
                count: self.members.len(),
                max: MEMBERS_MAX,
            });
        }
        for (i, &m) in self.members.iter().enumerate() {
            if m == 0 || self.members[..i].contains(&m) {
                return Err(ConfigError::BadMember { id: m });
            }
        }
        if self.id == 0 {
            return Err(ConfigError::BadMember { id: 0 });
        }
        let positive: [(&'static str, u64); 10] = [
            ("heartbeat_ticks", u64::from(self.heartbeat_ticks)),
            ("suspect_ticks", u64::from(self.suspect_ticks)),
            ("window_slots_max", self.window_slots_max),
            ("batch_commands_max", self.batch_commands_max as u64),
            ("batch_bytes_max", self.batch_bytes_max as u64),
            ("proposals_queued_max", self.proposals_queued_max as u64),
            ("catchup_slots_max", self.catchup_slots_max),
            ("catchup_bytes_max", self.catchup_bytes_max as u64),
            ("promise_slots_max", self.promise_slots_max),
            ("promise_bytes_max", self.promise_bytes_max as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(ConfigError::BadLimit {
                    name,
                    reason: "must be positive",
                });
            }
        }
        if self.suspect_ticks_max < self.suspect_ticks {
            return Err(ConfigError::BadLimit {
                name: "suspect_ticks_max",
                reason: "must be at least suspect_ticks",
            });
        }
        if self.suspect_decay_ticks == 0 {
            return Err(ConfigError::BadLimit {
                name: "suspect_decay_ticks",
                reason: "must be positive",
            });
        }
        if self.leader_lag_slots_max < self.window_slots_max {
            return Err(ConfigError::BadLimit {
                name: "leader_lag_slots_max",
                reason: "must be at least window_slots_max (a healthy follower trails by that)",
            });
        }
        if self.window_slots_max > RECONFIG_DELAY_SLOTS {
            return Err(ConfigError::BadLimit {
                name: "window_slots_max",
                reason: "must be at most RECONFIG_DELAY_SLOTS (a leader must know who votes)",
            });
        }
        if self.suspect_ticks <= self.heartbeat_ticks {
            return Err(ConfigError::BadLimit {
                name: "suspect_ticks",
                reason: "must exceed heartbeat_ticks",
            });
        }
        Ok(())
    }

    /// The cluster's first membership: `members` vote for every slot from 1, and a
    /// change takes effect `RECONFIG_DELAY_SLOTS` slots after the slot it is chosen in.
    pub fn genesis(&self) -> Memberships {
        Memberships::genesis(self.members.clone(), RECONFIG_DELAY_SLOTS)
    }
}
