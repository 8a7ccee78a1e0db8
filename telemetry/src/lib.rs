//! Measurements every layer records and `/metrics` shows: a fixed-bucket [`Histogram`]
//! that many threads record into without a lock, and the Prometheus text exposition
//! format (version 0.0.4) of histograms, counters and gauges ([`prometheus`]).
//!
//! It sits below the log, the storage engine and the server, so each records its own
//! latencies where they happen and the server only reads them; it depends on nothing.

pub mod histogram;
pub mod prometheus;

pub use histogram::{Histogram, HistogramSnapshot, BATCH_BOUNDS, LATENCY_BOUNDS_NANOS};
