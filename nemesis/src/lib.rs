//! # concierge-nemesis
//!
//! A nemesis harness in the manner of Jepsen and etcd's robustness tests: it starts a
//! real 3- or 5-node `concierge serve` cluster on loopback, drives it with concurrent
//! clients while a seeded schedule kills, pauses and partitions nodes, and then checks
//! what the clients saw.
//!
//! Reading order:
//! - [`history`]: what an operation record holds ([`history::Op`]).
//! - [`model`] and [`checker`]: the sequential specification of a versioned key and the
//!   Wing & Gong / Lowe linearizability search over each key's history; [`violation`]
//!   turns a failed search into a report.
//! - [`cluster`], [`accounts`] and [`firewall`]: node processes (each as its own Unix
//!   user) and iptables rules that cut traffic between those users.
//! - [`faults`]: the seeded fault schedule, applied by [`inject`]; [`membership`]: the
//!   seeded cycle of membership changes (grow to 5, lose a disk, replace it, shrink to
//!   3), carried out by [`churn`] through [`member_api`]; [`pool`]: the current members
//!   the requests go to; [`client`] and
//!   [`watch`]: the workload and the watch follower; [`probes`]: the harness's own
//!   requests (readiness, leader, recovery probes, final reads); [`checks`]: the other
//!   checks; [`run`]: one run end to end; [`summary`]: the report.
//!
//! `docs/nemesis.md` explains the faults, the checks and how to replay a seed.

pub mod accounts;
pub mod checker;
pub mod checks;
pub mod churn;
pub mod client;
pub mod cluster;
pub mod config;
pub mod faults;
pub mod firewall;
pub mod history;
pub mod inject;
pub mod member_api;
pub mod membership;
pub mod model;
pub mod pool;
pub mod probes;
pub mod rng;
pub mod run;
pub mod summary;
pub mod violation;
pub mod watch;

#[cfg(test)]
mod checker_tests;
