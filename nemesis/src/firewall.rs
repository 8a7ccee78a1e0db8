//! Network partitions on loopback with iptables: every rule lives in one chain,
//! [`CHAIN`], jumped to from `OUTPUT`, and drops TCP packets that one node's Unix user
//! sends to another node's peer or client port (`-m owner --uid-owner`). Each node dials
//! one outbound connection per peer, so cutting both directions of a pair silences it.
//!
//! Invariants: leftovers of an earlier run are removed before the chain is created; the
//! chain and its jump are removed when the [`Firewall`] is dropped (also on panic); no
//! rule outside the chain is ever touched.

use std::process::{Command, Stdio};

/// The chain holding every rule the harness adds.
pub const CHAIN: &str = "CONCIERGE-NEMESIS";

/// The iptables chain of one run.
#[derive(Debug)]
pub struct Firewall {
    installed: bool,
}

fn iptables(args: &[&str]) -> Result<(), String> {
    let out = Command::new("iptables")
        .arg("-w")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("iptables: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "iptables {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Removes the jump and the chain if an earlier run left them.
pub fn remove_leftovers() {
    for _ in 0..16 {
        if iptables(&["-D", "OUTPUT", "-j", CHAIN]).is_err() {
            break;
        }
    }
    let _ = iptables(&["-F", CHAIN]);
    let _ = iptables(&["-X", CHAIN]);
}

impl Firewall {
    /// Cleans leftovers and sets up the empty chain; Err (with the reason) when iptables
    /// is missing or unusable, and partitions must be skipped.
    pub fn setup() -> Result<Firewall, String> {
        iptables(&["-L", "OUTPUT", "-n"]).map_err(|e| {
            format!("{e} (install it with `apt-get install -y iptables`; it needs root)")
        })?;
        remove_leftovers();
        iptables(&["-N", CHAIN])?;
        let fw = Firewall { installed: true };
        iptables(&["-I", "OUTPUT", "1", "-j", CHAIN])?;
        Ok(fw)
    }

    /// Drops every TCP packet that user `uid` sends on loopback to one of `ports`.
    pub fn cut(&self, uid: u32, ports: &[u16]) -> Result<(), String> {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        let uid = uid.to_string();
        let ports = ports.join(",");
        iptables(&[
            "-A",
            CHAIN,
            "-o",
            "lo",
            "-p",
            "tcp",
            "-m",
            "owner",
            "--uid-owner",
            &uid,
            "-m",
            "multiport",
            "--dports",
            &ports,
            "-j",
            "DROP",
        ])
    }

    /// Removes every rule (the chain stays, empty).
    pub fn heal(&self) -> Result<(), String> {
        iptables(&["-F", CHAIN])
    }

    /// The rules now in the chain (for the fault log).
    pub fn rules(&self) -> usize {
        Command::new("iptables")
            .args(["-w", "-S", CHAIN])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| l.starts_with("-A"))
                    .count()
            })
            .unwrap_or(0)
    }
}

impl Drop for Firewall {
    fn drop(&mut self) {
        if self.installed {
            remove_leftovers();
            self.installed = false;
        }
    }
}
