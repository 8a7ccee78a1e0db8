//! A harness for the client's tests: real `concierge serve` processes on loopback
//! ports with temporary data directories (the server's own tests do the same in
//! tests/common; this crate cannot use `CARGO_BIN_EXE_concierge`, which only the
//! server package's tests get, so it builds and finds the binary itself).
//!
//! Every child is SIGKILLed and reaped when the [`Cluster`] is dropped, also when the
//! test fails; on failure the tail of each node's log is printed.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod proxy;

use concierge_client::{Client, ClientConfig};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `concierge` binary of this build profile. `cargo test --workspace` has just
/// built it (the server's own tests need it), so it is used as it is when no source of
/// the server is newer; otherwise (say, `cargo test -p concierge-client` after an edit)
/// it is built once per test process. Building it alone resolves features for the
/// server package only, which can differ from the workspace's and rebuild every
/// dependency, so it is built only when needed. `CONCIERGE_BIN` names another binary.
pub fn concierge_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("CONCIERGE_BIN") {
            return PathBuf::from(bin);
        }
        // target/<profile>/deps/<test binary> -> target/<profile>/concierge
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
        let bin = profile_dir.join("concierge");
        if !binary_is_fresh(&bin) {
            let target_dir = profile_dir.parent().unwrap();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args(["build", "--quiet", "-p", "concierge", "--bin", "concierge"])
                .arg("--target-dir")
                .arg(target_dir);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let status = build.status().unwrap();
            assert!(status.success(), "building the concierge binary failed");
        }
        assert!(bin.exists(), "no binary at {}", bin.display());
        bin
    })
    .clone()
}

/// Whether `bin` exists and is newer than every source file the server is built from.
fn binary_is_fresh(bin: &std::path::Path) -> bool {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return false;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = ["src", "vfs/src", "wal/src", "sstable/src", "storage/src"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    let mut files = vec![root.join("Cargo.toml"), root.join("Cargo.lock")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return false;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.iter().all(|f| {
        std::fs::metadata(f)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m <= built)
    })
}

/// A free loopback port, never one this process handed out before.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// One node's process and addresses.
pub struct NodeProc {
    pub peer_port: u16,
    pub client_port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
}

/// A cluster of real processes.
pub struct Cluster {
    pub root: PathBuf,
    pub nodes: Vec<NodeProc>,
    pub concierges: String,
}

impl Cluster {
    /// Starts `n` nodes and waits until each is ready.
    pub async fn start(n: usize, tag: &str) -> Cluster {
        let all: Vec<usize> = (0..n).collect();
        let c = Cluster::spawn(n, tag, &all);
        for i in 0..n {
            c.wait_ready(i, Duration::from_secs(30)).await;
        }
        c
    }

    /// Starts only the nodes `which` of an `n`-node cluster, without waiting.
    pub fn spawn(n: usize, tag: &str, which: &[usize]) -> Cluster {
        let bin = concierge_bin();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let root = std::env::temp_dir().join(format!(
            "concierge-client-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&root).unwrap();
        // Every cluster runs with a cluster secret (the authenticated peer handshake).
        std::fs::write(
            root.join("cluster-secret"),
            format!("client-test-secret-{}-{nanos}\n", std::process::id()),
        )
        .unwrap();
        let nodes: Vec<NodeProc> = (0..n)
            .map(|i| NodeProc {
                peer_port: free_port(),
                client_port: free_port(),
                data_dir: root.join(format!("node{}", i + 1)),
                log: root.join(format!("node{}.log", i + 1)),
                child: None,
            })
            .collect();
        let concierges = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = Cluster {
            root,
            nodes,
            concierges,
        };
        for &i in which {
            c.launch(i, &bin);
        }
        c
    }

    fn launch(&mut self, i: usize, bin: &PathBuf) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .env_remove("CLUSTER_SECRET")
            .env("CLUSTER_SECRET_FILE", self.root.join("cluster-secret"))
            .env("HOST", "127.0.0.1")
            .env("ACTOR_PORT", node.peer_port.to_string())
            .env("CLIENT_PORT", node.client_port.to_string())
            .env("CONCIERGES", &self.concierges)
            .env("DATA_DIR", &node.data_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    /// The client address of node `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// Every node's client address, node 0 first.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.endpoint(i)).collect()
    }

    /// The node whose client address is `endpoint`.
    pub fn node_of(&self, endpoint: &str) -> usize {
        (0..self.nodes.len())
            .find(|&i| self.endpoint(i) == endpoint)
            .unwrap_or_else(|| panic!("{endpoint} is no node of this cluster"))
    }

    /// A client of every node with the default settings.
    pub fn client(&self) -> Client {
        Client::new(ClientConfig::new(self.endpoints())).unwrap()
    }

    /// Waits until node `i` answers /ready with 200.
    pub async fn wait_ready(&self, i: usize, limit: Duration) {
        let client = Client::connect([self.endpoint(i)]).unwrap();
        let start = Instant::now();
        loop {
            if client.ready(0).await.is_ok() {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "node {} not ready within {limit:?}",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILLs node `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            for (i, n) in self.nodes.iter().enumerate() {
                let log = std::fs::read_to_string(&n.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                eprintln!("---- node {} log tail ----", i + 1);
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}
