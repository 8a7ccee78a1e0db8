//! The node processes of one run: spawn, SIGKILL, SIGSTOP/SIGCONT and restart real
//! `concierge serve` processes on loopback, each as its own Unix user when one is given.
//!
//! Nodes live in slots (`nodes[i]`, named `n{i+1}`). The first slots are the cluster's
//! first members; membership churn (`churn.rs`) lays out more slots, each with fresh
//! ports, its own user and an empty data directory, and retires slots whose node was
//! removed or lost its disk. A slot's [`SlotState`] says which: only members are started
//! (and restarted at a heal); a retired slot never runs again, so a lost directory never
//! comes back under its old id.
//!
//! Invariants: a node's ports and data directory never change across restarts; every
//! child is SIGKILLed and reaped when the [`Cluster`] is dropped (also on panic), and
//! each is spawned through `setpriv --pdeathsig KILL`, so it dies even if the harness
//! itself is killed. Spawn only from a thread that outlives the children (the main
//! thread): the parent-death signal fires when the spawning *thread* exits.

use crate::accounts::Account;
use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Laid out, not (yet) known to the cluster; never started.
    Spare,
    /// A member (voter or learner): started, and restarted at a heal.
    Member,
    /// Removed from the cluster, or its disk lost: stopped for good.
    Retired,
}

/// One node.
#[derive(Debug)]
pub struct Node {
    /// The slot number, from 1 (`n{id}` in logs and reports).
    pub id: usize,
    /// The id the cluster gave it (equal to `id` for the first members), once known.
    pub server_id: Option<u64>,
    pub state: SlotState,
    /// `JOIN` for a node added to a running cluster (ignored by the server once its
    /// directory holds a cluster file).
    pub join: Option<String>,
    pub peer_port: u16,
    pub client_port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub account: Option<Account>,
    child: Option<Child>,
    paused: bool,
}

impl Node {
    /// True while the process runs (paused or not).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// True while SIGSTOPped.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// True for a current member (voter or learner).
    pub fn is_member(&self) -> bool {
        self.state == SlotState::Member
    }
}

/// A node process that ended without the harness killing it.
#[derive(Debug, Clone)]
pub struct Exit {
    pub node: usize,
    pub status: String,
}

/// The cluster's processes.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The first members' peer addresses (`CONCIERGES`): it names the cluster, and only
    /// seeds it; nodes added later get it too, and the server ignores it for them.
    concierges: String,
    root: PathBuf,
    seed: u64,
    /// The cluster secret every node gets (`CLUSTER_SECRET`).
    secret: String,
    binary: PathBuf,
    setpriv: bool,
}

/// Picks `count` distinct free loopback ports below the kernel's ephemeral range, so a
/// client connection's local port never takes a port a stopped node will need again;
/// none of `taken` (ports of nodes that may be down right now).
pub fn pick_ports(count: usize, salt: u64, taken: &[u16]) -> Result<Vec<u16>, String> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|w| w.parse::<u32>().ok())
        })
        .unwrap_or(32768);
    let (lo, hi) = if low > 12_000 {
        (10_000u32, low - 1)
    } else {
        (61_000u32, 65_000u32)
    };
    let span = u64::from(hi - lo);
    let mut out = Vec::new();
    let mut x = salt ^ u64::from(std::process::id());
    for _ in 0..10_000 {
        if out.len() == count {
            break;
        }
        let p = (lo as u64 + vfs::splitmix64(&mut x) % span) as u16;
        if !out.contains(&p) && !taken.contains(&p) && TcpListener::bind(("127.0.0.1", p)).is_ok() {
            out.push(p);
        }
    }
    if out.len() == count {
        Ok(out)
    } else {
        Err(format!("found only {} free ports", out.len()))
    }
}

fn has_setpriv() -> bool {
    Command::new("setpriv")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn signal(pid: u32, sig: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("kill -{sig} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{sig} {pid}: {status}"))
    }
}

impl Cluster {
    /// Lays out `n` nodes under `root` (data dirs owned by their accounts) without
    /// starting them.
    pub fn new(
        binary: &Path,
        root: &Path,
        n: usize,
        accounts: Option<&[Account]>,
        seed: u64,
    ) -> Result<Cluster, String> {
        let ports = pick_ports(2 * n, seed, &[])?;
        let setpriv = has_setpriv();
        let mut nodes = Vec::new();
        for i in 0..n {
            let data_dir = root.join(format!("node{}", i + 1));
            std::fs::create_dir_all(&data_dir)
                .map_err(|e| format!("{}: {e}", data_dir.display()))?;
            let account = accounts.and_then(|a| a.get(i)).cloned();
            if let Some(acc) = &account {
                std::os::unix::fs::chown(&data_dir, Some(acc.uid), Some(acc.gid))
                    .map_err(|e| format!("chown {}: {e}", data_dir.display()))?;
            }
            nodes.push(Node {
                id: i + 1,
                server_id: Some(i as u64 + 1),
                state: SlotState::Member,
                join: None,
                peer_port: ports.get(2 * i).copied().unwrap_or_default(),
                client_port: ports.get(2 * i + 1).copied().unwrap_or_default(),
                data_dir,
                log: root.join(format!("node{}.log", i + 1)),
                account,
                child: None,
                paused: false,
            });
        }
        let concierges = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        if accounts.is_some() && !setpriv {
            return Err("setpriv (util-linux) is needed to run nodes as their own users".into());
        }
        Ok(Cluster {
            nodes,
            concierges,
            root: root.to_path_buf(),
            seed,
            secret: format!("nemesis-cluster-secret-{seed:016x}-{}", std::process::id()),
            binary: binary.to_path_buf(),
            setpriv,
        })
    }

    /// Lays out one more slot (a [`SlotState::Spare`]): fresh ports, an empty data
    /// directory owned by `account`. Returns its index.
    pub fn add_slot(&mut self, account: Option<Account>) -> Result<usize, String> {
        let i = self.nodes.len();
        let taken: Vec<u16> = self
            .nodes
            .iter()
            .flat_map(|n| [n.peer_port, n.client_port])
            .collect();
        let ports = pick_ports(2, self.seed ^ (i as u64).wrapping_mul(0x9E37_79B9), &taken)?;
        let data_dir = self.root.join(format!("node{}", i + 1));
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
        if let Some(acc) = &account {
            std::os::unix::fs::chown(&data_dir, Some(acc.uid), Some(acc.gid))
                .map_err(|e| format!("chown {}: {e}", data_dir.display()))?;
        }
        self.nodes.push(Node {
            id: i + 1,
            server_id: None,
            state: SlotState::Spare,
            join: None,
            peer_port: ports.first().copied().unwrap_or_default(),
            client_port: ports.get(1).copied().unwrap_or_default(),
            data_dir,
            log: self.root.join(format!("node{}.log", i + 1)),
            account,
            child: None,
            paused: false,
        });
        Ok(i)
    }

    /// The slot of the member the cluster calls `server_id`.
    pub fn slot_of(&self, server_id: u64) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| n.server_id == Some(server_id) && n.is_member())
    }

    /// The slots of the current members, in order.
    pub fn members(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes.get(i).is_some_and(Node::is_member))
            .collect()
    }

    /// SIGKILLs node `i` and retires its slot: it is never started again.
    pub fn retire(&mut self, i: usize) {
        self.kill(i);
        if let Some(n) = self.nodes.get_mut(i) {
            n.state = SlotState::Retired;
        }
    }

    /// Loses node `i`'s disk: SIGKILL, retire the slot, delete the data directory.
    pub fn lose_disk(&mut self, i: usize) -> Result<(), String> {
        self.retire(i);
        let Some(n) = self.nodes.get(i) else {
            return Err(format!("no node {i}"));
        };
        match std::fs::remove_dir_all(&n.data_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("wiping {}: {e}", n.data_dir.display())),
        }
    }

    /// The base URL of node `i` (from 0).
    pub fn url(&self, i: usize) -> String {
        let port = self.nodes.get(i).map_or(0, |n| n.client_port);
        format!("http://127.0.0.1:{port}")
    }

    /// The peer address of node `i` as the cluster knows it.
    pub fn peer_addr(&self, i: usize) -> String {
        let port = self.nodes.get(i).map_or(0, |n| n.peer_port);
        format!("127.0.0.1:{port}")
    }

    /// The client address of node `i`.
    pub fn client_addr(&self, i: usize) -> String {
        let port = self.nodes.get(i).map_or(0, |n| n.client_port);
        format!("127.0.0.1:{port}")
    }

    /// Starts node `i` (no-op when it runs). A retired or spare slot is refused.
    pub fn start(&mut self, i: usize) -> Result<(), String> {
        let concierges = self.concierges.clone();
        let secret = self.secret.clone();
        let binary = self.binary.clone();
        let setpriv = self.setpriv;
        let node = self.nodes.get_mut(i).ok_or(format!("no node {i}"))?;
        if node.child.is_some() {
            return Ok(());
        }
        if node.state != SlotState::Member {
            return Err(format!("n{} is not a member ({:?})", node.id, node.state));
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .map_err(|e| format!("{}: {e}", node.log.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = if setpriv {
            let mut c = Command::new("setpriv");
            c.args(["--pdeathsig", "KILL"]);
            if let Some(acc) = &node.account {
                c.arg(format!("--reuid={}", acc.uid))
                    .arg(format!("--regid={}", acc.gid))
                    .arg("--clear-groups");
            }
            c.arg("--").arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        cmd.env_remove("JOIN");
        if let Some(join) = &node.join {
            cmd.env("JOIN", join);
        }
        let child = cmd
            .arg("serve")
            // Authenticated peers, as a deployment should run them. The environment
            // rather than a file: each node runs as its own user.
            .env_remove("CLUSTER_SECRET_FILE")
            .env("CLUSTER_SECRET", &secret)
            .env("HOST", "127.0.0.1")
            .env("ACTOR_PORT", node.peer_port.to_string())
            .env("CLIENT_PORT", node.client_port.to_string())
            .env("CONCIERGES", concierges)
            .env("DATA_DIR", &node.data_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawning node {}: {e}", node.id))?;
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// SIGKILLs node `i` and reaps it (resuming it first if paused is not needed:
    /// SIGKILL ends a stopped process too).
    pub fn kill(&mut self, i: usize) {
        if let Some(node) = self.nodes.get_mut(i) {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            node.paused = false;
        }
    }

    /// SIGSTOPs node `i` (no-op unless it runs unpaused).
    pub fn pause(&mut self, i: usize) -> Result<(), String> {
        if let Some(node) = self.nodes.get_mut(i) {
            if let (Some(child), false) = (&node.child, node.paused) {
                signal(child.id(), "STOP")?;
                node.paused = true;
            }
        }
        Ok(())
    }

    /// SIGCONTs node `i` (no-op unless paused).
    pub fn resume(&mut self, i: usize) -> Result<(), String> {
        if let Some(node) = self.nodes.get_mut(i) {
            if let (Some(child), true) = (&node.child, node.paused) {
                signal(child.id(), "CONT")?;
                node.paused = false;
            }
        }
        Ok(())
    }

    /// Reaps nodes that exited on their own since the last call: each is a finding (a
    /// crash, or a refusal to start).
    pub fn reap_exited(&mut self) -> Vec<Exit> {
        let mut out = Vec::new();
        for node in &mut self.nodes {
            let status: Option<ExitStatus> = node
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = status {
                node.child = None;
                node.paused = false;
                out.push(Exit {
                    node: node.id,
                    status: status.to_string(),
                });
            }
        }
        out
    }

    /// The last `lines` lines of node `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let Some(node) = self.nodes.get(i) else {
            return String::new();
        };
        let text = std::fs::read_to_string(&node.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGKILLs and reaps every node.
    pub fn kill_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}
