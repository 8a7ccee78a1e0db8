//! The deterministic simulation harness: seeded RNG, network, cluster driver, checker.

pub mod checker;
pub mod churn;
pub mod cluster;
pub mod describe;
pub mod disk;
pub mod network;
pub mod rng;
pub mod voters;
