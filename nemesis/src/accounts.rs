//! One Unix account per node slot (`cnemesis1`, `cnemesis2`, ...; membership churn adds
//! slots, so runs with it use more), so that iptables' `owner` match can tell the nodes'
//! traffic apart on loopback. Accounts are created with `useradd --system` when missing
//! (root only) and never removed: they own nothing outside the run's data directories.

use std::process::Command;

/// A node's account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The account name of node `id` (from 1).
pub fn name_of(id: usize) -> String {
    format!("cnemesis{id}")
}

fn id_of(flag: &str, name: &str) -> Option<u32> {
    let out = Command::new("id").arg(flag).arg(name).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// True when this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The accounts of nodes 1..=n, created when missing.
pub fn ensure(n: usize) -> Result<Vec<Account>, String> {
    if !is_root() {
        return Err("not root: cannot create per-node users".into());
    }
    (1..=n).map(ensure_one).collect()
}

/// The account of node slot `id` (from 1), created when missing (needs root).
pub fn ensure_one(id: usize) -> Result<Account, String> {
    let name = name_of(id);
    if id_of("-u", &name).is_none() {
        let status = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/usr/sbin/nologin"])
            .arg(&name)
            .status()
            .map_err(|e| format!("useradd {name}: {e}"))?;
        if !status.success() {
            return Err(format!("useradd {name} failed: {status}"));
        }
    }
    match (id_of("-u", &name), id_of("-g", &name)) {
        (Some(uid), Some(gid)) => Ok(Account { name, uid, gid }),
        _ => Err(format!("cannot read the uid/gid of {name}")),
    }
}
