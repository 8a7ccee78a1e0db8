//! A harness for multi-process tests: real `concierge serve` processes on loopback
//! ports with temporary data directories, and a small HTTP client over reqwest.
//!
//! Every child is SIGKILLed and reaped when the [`Cluster`] is dropped, also when the
//! test fails; on failure the tail of each node's log is printed.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod sse;

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One node's process and addresses.
pub struct NodeProc {
    pub id: u32,
    pub peer_port: u16,
    pub client_port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub stopped: bool,
}

/// A cluster of real processes.
pub struct Cluster {
    pub root: PathBuf,
    pub nodes: Vec<NodeProc>,
    pub concierges: String,
    pub http: Client,
    /// Extra environment of every node (flags of `concierge serve`); includes
    /// `CLUSTER_SECRET_FILE` unless the cluster was spawned unauthenticated.
    pub env: Vec<(String, String)>,
    /// Extra environment of one node (by index), after `env`.
    pub node_env: Vec<Vec<(String, String)>>,
    /// `http`, or `https` for a cluster serving TLS (then `http` trusts its CA).
    pub scheme: &'static str,
}

/// Writes a fresh cluster secret file in `root` (every process test's cluster runs with
/// one, so the authenticated peer handshake is the path they exercise).
pub fn write_secret_file(root: &std::path::Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path = root.join("cluster-secret");
    std::fs::write(
        &path,
        format!("test-secret-{}-{nanos}\n", std::process::id()),
    )
    .unwrap();
    path
}

/// A free loopback port (bound then released), never one this process handed out
/// before: the kernel may give a just-released port again, and two nodes of one cluster
/// then got the same address (seen in CI: "entry ... appears twice").
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

/// A fresh temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("concierge-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An HTTP answer: status, selected headers and the body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    pub fn revision(&self) -> u64 {
        self.header("x-concierge-revision")
            .expect("every answer carries X-Concierge-Revision")
            .parse()
            .unwrap()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an error answer per API.md: this status, `{"error": code, "message"}`,
    /// and the revision and leader headers every answer carries.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text());
        let body = self.json();
        assert_eq!(body["error"], code, "{body}");
        assert!(body["message"].is_string(), "{body}");
        assert!(self.header("x-concierge-revision").is_some(), "{body}");
        assert!(self.header("x-concierge-leader").is_some(), "{body}");
    }
}

impl Cluster {
    /// Starts `n` nodes and waits until every one is ready.
    pub async fn start(n: usize, tag: &str) -> Cluster {
        let c = Cluster::spawn(n, tag);
        for i in 0..n {
            c.wait_ready(i, Duration::from_secs(30)).await;
        }
        c
    }

    /// Starts `n` nodes with extra environment variables and waits until each is ready.
    pub async fn start_with_env(n: usize, tag: &str, env: &[(&str, &str)]) -> Cluster {
        let c = Cluster::spawn_with_env(n, tag, env);
        for i in 0..n {
            c.wait_ready(i, Duration::from_secs(30)).await;
        }
        c
    }

    /// Starts `n` node processes without waiting.
    pub fn spawn(n: usize, tag: &str) -> Cluster {
        Cluster::spawn_with_env(n, tag, &[])
    }

    /// Starts `n` node processes with extra environment variables, without waiting;
    /// with a cluster secret unless `env` names one.
    pub fn spawn_with_env(n: usize, tag: &str, env: &[(&str, &str)]) -> Cluster {
        let mut c = Cluster::prepare(n, tag, env, true);
        for i in 0..n {
            c.launch(i);
        }
        c
    }

    /// Starts `n` node processes WITHOUT a cluster secret (unauthenticated peers: the
    /// one-command local default), without waiting.
    pub fn spawn_unauthenticated(n: usize, tag: &str) -> Cluster {
        let mut c = Cluster::prepare(n, tag, &[], false);
        for i in 0..n {
            c.launch(i);
        }
        c
    }

    /// Starts `n` nodes serving HTTPS, node `i` with the environment `node_env[i]`
    /// beside `env`, talked to with `http` (which trusts their CA); waits until each
    /// is ready.
    pub async fn start_https(
        n: usize,
        tag: &str,
        env: &[(&str, &str)],
        node_env: Vec<Vec<(String, String)>>,
        http: Client,
    ) -> Cluster {
        let mut c = Cluster::prepare(n, tag, env, true);
        c.node_env = node_env;
        c.scheme = "https";
        c.http = http;
        for i in 0..n {
            c.launch(i);
        }
        for i in 0..n {
            c.wait_ready(i, Duration::from_secs(30)).await;
        }
        c
    }

    /// The cluster's processes, none started yet (fresh ports and directories; start
    /// each with `launch`); with a cluster secret file when `secret` and `env` names none.
    pub fn prepare(n: usize, tag: &str, env: &[(&str, &str)], secret: bool) -> Cluster {
        let root = temp_dir(tag);
        let mut nodes = Vec::new();
        for i in 0..n {
            nodes.push(NodeProc {
                id: i as u32 + 1,
                peer_port: free_port(),
                client_port: free_port(),
                data_dir: root.join(format!("node{}", i + 1)),
                log: root.join(format!("node{}.log", i + 1)),
                child: None,
                stopped: false,
            });
        }
        let concierges = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = Cluster {
            root,
            nodes,
            concierges,
            http: Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            node_env: Vec::new(),
            scheme: "http",
        };
        let named = env
            .iter()
            .any(|(k, _)| *k == "CLUSTER_SECRET_FILE" || *k == "CLUSTER_SECRET");
        if secret && !named {
            let file = write_secret_file(&c.root);
            c.env.push((
                "CLUSTER_SECRET_FILE".into(),
                file.to_string_lossy().into_owned(),
            ));
        }
        c
    }

    /// A new node's process, not started (fresh ports and directory; the next id, so
    /// node `i` keeps id `i + 1`): the cluster must add it before it joins.
    pub fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        self.nodes.push(NodeProc {
            id: i as u32 + 1,
            peer_port: free_port(),
            client_port: free_port(),
            data_dir: self.root.join(format!("node{}", i + 1)),
            log: self.root.join(format!("node{}.log", i + 1)),
            child: None,
            stopped: false,
        });
        i
    }

    /// Starts (or restarts) node `i`'s process.
    pub fn launch(&mut self, i: usize) {
        let concierges = self.concierges.clone();
        let node_env = self.node_env.get(i).cloned().unwrap_or_default();
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "node {} is running", node.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_concierge"))
            .arg("serve")
            .env_remove("CLUSTER_SECRET")
            .env_remove("CLUSTER_SECRET_FILE")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(node_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HOST", "127.0.0.1")
            .env("ACTOR_PORT", node.peer_port.to_string())
            .env("CLIENT_PORT", node.client_port.to_string())
            .env("CONCIERGES", concierges)
            .env("DATA_DIR", &node.data_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        node.child = Some(child);
        node.stopped = false;
    }

    /// SIGKILLs node `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&mut self, i: usize, sig: &str) {
        let pid = self.nodes[i].child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{sig} {pid}");
    }

    /// SIGSTOPs node `i`.
    pub fn pause(&mut self, i: usize) {
        self.signal(i, "STOP");
        self.nodes[i].stopped = true;
    }

    /// SIGCONTs node `i`.
    pub fn resume(&mut self, i: usize) {
        self.signal(i, "CONT");
        self.nodes[i].stopped = false;
    }

    /// The base URL of node `i`.
    pub fn url(&self, i: usize, path: &str) -> String {
        format!(
            "{}://127.0.0.1:{}{path}",
            self.scheme, self.nodes[i].client_port
        )
    }

    /// Sends a request to node `i`; None when the connection failed or timed out.
    pub async fn try_call(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Option<Answer> {
        self.try_call_within(i, method, path, body, headers, Duration::from_secs(15))
            .await
    }

    /// [`Cluster::try_call`] giving up after `limit`.
    pub async fn try_call_within(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
        limit: Duration,
    ) -> Option<Answer> {
        let mut req = self.http.request(method, self.url(i, path)).timeout(limit);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.ok()?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.ok()?.to_vec();
        Some(Answer {
            status,
            headers,
            body,
        })
    }

    /// Sends a request to node `i`, which must answer.
    pub async fn call(
        &self,
        i: usize,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Answer {
        self.try_call(i, method.clone(), path, body, headers)
            .await
            .unwrap_or_else(|| panic!("node {} did not answer {method} {path}", i + 1))
    }

    pub async fn get(&self, i: usize, path: &str) -> Answer {
        self.call(i, Method::GET, path, None, &[]).await
    }

    pub async fn put(&self, i: usize, path: &str, value: &[u8]) -> Answer {
        self.call(i, Method::PUT, path, Some(value.to_vec()), &[])
            .await
    }

    pub async fn delete(&self, i: usize, path: &str) -> Answer {
        self.call(i, Method::DELETE, path, None, &[]).await
    }

    pub async fn post(&self, i: usize, path: &str, body: &str) -> Answer {
        self.call(i, Method::POST, path, Some(body.as_bytes().to_vec()), &[])
            .await
    }

    /// Waits until node `i` answers /ready with 200.
    pub async fn wait_ready(&self, i: usize, limit: Duration) {
        let start = Instant::now();
        loop {
            if let Some(a) = self.try_call(i, Method::GET, "/ready", None, &[]).await {
                if a.status == StatusCode::OK {
                    return;
                }
            }
            assert!(
                start.elapsed() < limit,
                "node {} not ready within {limit:?}",
                i + 1
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The leader's index as node `i` sees it (None when it knows none or is down).
    pub async fn leader_seen_by(&self, i: usize) -> Option<usize> {
        let a = self
            .try_call(i, Method::GET, "/v1/cluster", None, &[])
            .await?;
        a.json()["leader_id"].as_u64().map(|id| id as usize - 1)
    }

    /// Waits until every running, unpaused node agrees on one leader among them.
    pub async fn wait_leader(&self, limit: Duration) -> usize {
        let start = Instant::now();
        loop {
            let mut seen = Vec::new();
            for (i, n) in self.nodes.iter().enumerate() {
                if n.child.is_some() && !n.stopped {
                    seen.push(self.leader_seen_by(i).await);
                }
            }
            if let Some(Some(l)) = seen.first() {
                let alive = self.nodes[*l].child.is_some() && !self.nodes[*l].stopped;
                if alive && seen.iter().all(|s| *s == Some(*l)) {
                    return *l;
                }
            }
            assert!(
                start.elapsed() < limit,
                "no agreed leader within {limit:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A running node other than `not`.
    pub fn other_than(&self, not: usize) -> usize {
        (0..self.nodes.len())
            .find(|&i| i != not && self.nodes[i].child.is_some() && !self.nodes[i].stopped)
            .expect("another running node")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].stopped {
                let _ = self.nodes[i].child.as_ref().map(|c| {
                    Command::new("kill")
                        .arg("-CONT")
                        .arg(c.id().to_string())
                        .status()
                });
            }
            self.kill(i);
        }
        if std::thread::panicking() {
            for n in &self.nodes {
                let log = std::fs::read_to_string(&n.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("---- node {} log tail ----", n.id);
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}
