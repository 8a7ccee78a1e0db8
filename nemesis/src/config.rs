//! The command line, parsed in two steps (ripgrep's habit): raw flags ([`Args`]), then
//! a checked [`Config`] that the rest of the harness trusts.

use crate::faults::FaultKind;
use clap::Parser;
use std::path::PathBuf;

/// Raw command-line flags.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "concierge-nemesis",
    about = "Runs a real Concierge cluster under kills, pauses and partitions and checks linearizability."
)]
pub struct Args {
    /// Seconds of workload under faults.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Seed of the fault schedule and of every client's choices (default: the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Cluster size: 3 or 5.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Comma list of fault kinds: kill, stop, partition, members (membership churn:
    /// grow to 5 voters, lose a disk, replace it, shrink to 3), or all, or none.
    #[arg(long, default_value = "kill,stop,partition")]
    pub faults: String,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Keys the clients share.
    #[arg(long, default_value_t = 4)]
    pub keys: usize,
    /// Directory for node data, logs, the history and the summary (default:
    /// /tmp/concierge-nemesis-SEED). Must be traversable by other users.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The `concierge` binary (default: target/release/concierge).
    #[arg(long, env = "CONCIERGE_BIN")]
    pub binary: Option<PathBuf>,
    /// Client request timeout in milliseconds.
    #[arg(long, default_value_t = 1500)]
    pub timeout_ms: u64,
    /// Upper bound of each client's random pause between operations, milliseconds.
    #[arg(long, default_value_t = 10)]
    pub think_ms: u64,
    /// Fraction of writes sent with an Idempotency-Key and retried with it when the
    /// outcome is unknown, to learn the answer (0.0..=1.0).
    #[arg(long, default_value_t = 0.5)]
    pub resolve_fraction: f64,
    /// The cluster must acknowledge a write within this many seconds of the faults
    /// healing (and of a full restart).
    #[arg(long, default_value_t = 10)]
    pub recovery_bound_s: u64,
    /// Time budget of the linearizability search, seconds.
    #[arg(long, default_value_t = 300)]
    pub check_seconds: u64,
    /// Read consistency of the clients' gets: linearizable, or serializable (stale reads
    /// allowed: a self-test that the checker catches them under partitions).
    #[arg(long, default_value = "linearizable")]
    pub reads: String,
    /// Keep the node data directories and history even when the run passes.
    #[arg(long)]
    pub keep: bool,
    /// Only run the checker on a saved history.jsonl and exit.
    #[arg(long)]
    pub check_only: Option<PathBuf>,
}

/// A checked configuration. Invariants: `nodes` is 3 or 5; `clients`, `keys` and
/// `seconds` are at least 1 and bounded; `resolve_fraction` is in 0..=1.
#[derive(Debug, Clone)]
pub struct Config {
    pub seconds: u64,
    pub seed: u64,
    pub nodes: usize,
    pub faults: Vec<FaultKind>,
    /// Membership churn (`members` in `--faults`), beside the process faults.
    pub members: bool,
    pub clients: usize,
    pub keys: usize,
    pub out: PathBuf,
    pub binary: PathBuf,
    pub timeout_ms: u64,
    pub think_ms: u64,
    pub resolve_fraction: f64,
    pub recovery_bound_s: u64,
    pub check_seconds: u64,
    pub keep: bool,
    pub reads: String,
}

/// Largest values accepted for the bounded flags.
pub const SECONDS_MAX: u64 = 24 * 3600;
pub const CLIENTS_MAX: usize = 64;
pub const KEYS_MAX: usize = 64;

/// Parses `--faults`: the process faults, and whether membership churn is on.
pub fn parse_faults(text: &str) -> Result<(Vec<FaultKind>, bool), String> {
    let mut out = Vec::new();
    let mut members = false;
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let kinds: &[FaultKind] = match word {
            "kill" => &[FaultKind::Kill],
            "stop" | "pause" => &[FaultKind::Stop],
            "partition" => &[FaultKind::Partition],
            "members" | "membership" => {
                members = true;
                &[]
            }
            "all" => {
                members = true;
                &[FaultKind::Kill, FaultKind::Stop, FaultKind::Partition]
            }
            "none" => &[],
            other => {
                return Err(format!(
                    "unknown fault {other:?} (kill, stop, partition, members, all, none)"
                ))
            }
        };
        for k in kinds {
            if !out.contains(k) {
                out.push(*k);
            }
        }
    }
    Ok((out, members))
}

impl Config {
    /// Checks the flags.
    pub fn from_args(a: &Args) -> Result<Config, String> {
        if a.nodes != 3 && a.nodes != 5 {
            return Err(format!("--nodes must be 3 or 5, not {}", a.nodes));
        }
        if a.seconds == 0 || a.seconds > SECONDS_MAX {
            return Err(format!("--seconds must be in 1..={SECONDS_MAX}"));
        }
        if a.clients == 0 || a.clients > CLIENTS_MAX {
            return Err(format!("--clients must be in 1..={CLIENTS_MAX}"));
        }
        if a.keys == 0 || a.keys > KEYS_MAX {
            return Err(format!("--keys must be in 1..={KEYS_MAX}"));
        }
        if !(0.0..=1.0).contains(&a.resolve_fraction) {
            return Err("--resolve-fraction must be in 0..=1".into());
        }
        if a.timeout_ms < 100 || a.timeout_ms > 60_000 {
            return Err("--timeout-ms must be in 100..=60000".into());
        }
        if a.think_ms > 10_000 || a.recovery_bound_s == 0 || a.recovery_bound_s > 600 {
            return Err("--think-ms must be <= 10000, --recovery-bound-s in 1..=600".into());
        }
        let seed = a.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs())
        });
        let binary = a
            .binary
            .clone()
            .unwrap_or_else(|| PathBuf::from("target/release/concierge"));
        if !binary.is_file() {
            return Err(format!(
                "no concierge binary at {} (build it with `cargo build --release`, or pass --binary)",
                binary.display()
            ));
        }
        let binary =
            std::fs::canonicalize(&binary).map_err(|e| format!("{}: {e}", binary.display()))?;
        let out = a
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/concierge-nemesis-{seed}")));
        if a.reads != "linearizable" && a.reads != "serializable" {
            return Err("--reads must be linearizable or serializable".into());
        }
        let (faults, members) = parse_faults(&a.faults)?;
        Ok(Config {
            seconds: a.seconds,
            seed,
            nodes: a.nodes,
            faults,
            members,
            clients: a.clients,
            keys: a.keys,
            out,
            binary,
            timeout_ms: a.timeout_ms,
            think_ms: a.think_ms,
            resolve_fraction: a.resolve_fraction,
            recovery_bound_s: a.recovery_bound_s,
            check_seconds: a.check_seconds,
            keep: a.keep,
            reads: a.reads.clone(),
        })
    }

    /// `--faults` as a comma list (`none` when empty).
    pub fn fault_names(&self) -> String {
        let mut names: Vec<&str> = self.faults.iter().map(|f| f.name()).collect();
        if self.members {
            names.push("members");
        }
        if names.is_empty() {
            "none".into()
        } else {
            names.join(",")
        }
    }

    /// The command line that replays this run's schedule and client choices.
    pub fn replay_command(&self) -> String {
        let faults = self.fault_names();
        format!(
            "concierge-nemesis --seed {} --seconds {} --nodes {} --faults {} --clients {} --keys {} --timeout-ms {} --think-ms {} --resolve-fraction {} --reads {}",
            self.seed,
            self.seconds,
            self.nodes,
            faults,
            self.clients,
            self.keys,
            self.timeout_ms,
            self.think_ms,
            self.resolve_fraction,
            self.reads
        )
    }
}

#[cfg(test)]
mod tests {
    use super::parse_faults;
    use crate::faults::FaultKind;

    #[test]
    fn fault_lists_parse() {
        assert_eq!(
            parse_faults("kill, partition,kill").unwrap(),
            (vec![FaultKind::Kill, FaultKind::Partition], false)
        );
        assert_eq!(
            parse_faults("kill,members").unwrap(),
            (vec![FaultKind::Kill], true)
        );
        let (all, members) = parse_faults("all").unwrap();
        assert_eq!((all.len(), members), (3, true));
        assert_eq!(parse_faults("none").unwrap(), (vec![], false));
        assert!(parse_faults("flood").is_err());
    }
}
