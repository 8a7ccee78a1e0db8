//! The consensus core: pure Multi-Paxos, no I/O, no clock, no randomness of its own
//! (see DESIGN.md). Reading order: `types` (the vocabulary and the `Ready` contract),
//! `message`, `membership` (who votes for which slot), `config`, `detector` (failure detector + Omega), `acceptor`, `proposer`
//! (phase 1/2, window, batching), `learner` (delivery, catch-up), `read_index`, `core`.

mod acceptor;
mod config;
mod core;
mod detector;
mod learner;
mod membership;
mod message;
mod proposer;
mod read_index;
mod types;

pub use self::config::{Config, ConfigError, MEMBERS_MAX};
pub use self::core::{Core, ReconfigureError};
pub use self::membership::{ChangeError, Membership, Memberships, RECONFIG_DELAY_SLOTS};
pub use self::message::Message;
pub use self::types::{
    Ballot, Change, ChangeDelivered, DurableState, NodeId, Persist, ProposeError, Ready, Slot,
    Status, Value,
};

#[cfg(test)]
mod membership_tests;
#[cfg(test)]
mod tests;
