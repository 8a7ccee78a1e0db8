//! Stopping a long-running client command (`lock`, `elect`) by SIGINT or SIGTERM, with
//! the exit code a shell reports for the signal (128 + N).

use super::exit::Failure;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// The exit code of a stop by signal N, as shells report it.
pub fn signal_code(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(255)
}

/// SIGINT and SIGTERM, listened for from now on.
pub struct StopSignals {
    int: Signal,
    term: Signal,
}

impl StopSignals {
    /// Starts listening (before the work they may interrupt begins).
    pub fn listen() -> Result<StopSignals, Failure> {
        let on = |kind: SignalKind| {
            signal(kind).map_err(|e| Failure::error(format!("listening for signals: {e}")))
        };
        Ok(StopSignals {
            int: on(SignalKind::interrupt())?,
            term: on(SignalKind::terminate())?,
        })
    }

    /// Resolves on the next SIGINT or SIGTERM with the code to exit with.
    pub async fn next(&mut self) -> u8 {
        tokio::select! {
            _ = self.int.recv() => signal_code(2),
            _ = self.term.recv() => signal_code(15),
        }
    }
}
