//! The server's configuration: `concierge serve` flags and environment variables
//! (parsed by the binary's command line, src/cli/),
//! resolved into a checked [`ServeConfig`], and the data directory's cluster file.
//!
//! This node is the `CONCIERGES` entry equal to `HOST:ACTOR_PORT`; its id is that
//! entry's position counting from 1. Without `CONCIERGES` the node is a one-node
//! cluster. The data directory remembers its member list (`cluster.json`, written
//! atomically): starting it with a different list is refused. A directory made by
//! `concierge snapshot restore` also records a cluster token, mixed into the cluster id.

use crate::http::HttpArgs;
use crate::node::transport::auth::ClusterSecret;
use crate::tls::TlsArgs;
use crate::tls_peer::PeerTlsArgs;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Flags of `concierge serve`, each also an environment variable.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// This node's host name or address.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port for peers.
    #[arg(long, env = "ACTOR_PORT", default_value_t = 23456)]
    pub actor_port: u16,
    /// Port for clients (HTTP).
    #[arg(long, env = "CLIENT_PORT", default_value_t = 8080)]
    pub client_port: u16,
    /// All peers, this node included: a JSON array or a comma list of host:port. Seeds
    /// a brand-new cluster only: later members are added through the cluster itself.
    #[arg(long, env = "CONCIERGES")]
    pub concierges: Option<String>,
    /// Join a running cluster that has added this node (`POST /v1/cluster/members` with
    /// this node's HOST:ACTOR_PORT): the client URL of any member, e.g.
    /// `http://10.0.0.1:8080`. Used only when the data directory is new.
    #[arg(long, env = "JOIN")]
    pub join: Option<String>,
    /// A bearer token for the join's `GET /v1/cluster`, when access control is on.
    #[arg(long, env = "JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// Where this node keeps its data.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Largest value accepted, in bytes.
    #[arg(long, env = "VALUE_BYTES_MAX", default_value_t = 1 << 20)]
    pub value_bytes_max: usize,
    /// How long a request may wait for consensus before answering 504 (or 503).
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    pub request_timeout_ms: u64,
    /// The HTTP server's deadlines and limits.
    #[command(flatten)]
    pub http: HttpArgs,
    /// Most watches this node serves at once; one more is answered 503.
    #[arg(long, env = "WATCHERS_MAX", default_value_t = crate::kv::hub::WATCHERS_MAX_DEFAULT)]
    pub watchers_max: usize,
    /// Memory of the storage engine, in MiB: its two memtables (two fifths each, at most
    /// 64 MiB), the tables' indexes and filters (about 2.5% of the data), and its block
    /// cache (the rest).
    #[arg(long, env = "MEMORY_BUDGET_MIB", default_value_t = MEMORY_BUDGET_MIB_DEFAULT)]
    pub memory_budget_mib: u64,
    /// HTTPS on the client port, and client certificates (src/tls.rs).
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Mutual TLS on the peer port (src/tls_peer.rs).
    #[command(flatten)]
    pub peer_tls: PeerTlsArgs,
    /// A file holding the cluster secret that authenticates the members to each other
    /// (the same on every member; at least 16 bytes; whitespace around it is ignored).
    /// Without a secret, peer links are not authenticated (start-up warns).
    #[arg(long, env = "CLUSTER_SECRET_FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// The cluster secret itself, from the environment variable `CLUSTER_SECRET` only
    /// (no flag: it would show in `ps`). Less safe than the file: whoever can read the
    /// process environment (`docker inspect`, /proc) reads it. Filled by the binary.
    #[arg(skip)]
    pub cluster_secret: Option<String>,
}

/// The storage engine's memory budget by default (`storage::Options`'s), in MiB.
pub const MEMORY_BUDGET_MIB_DEFAULT: u64 = 160;

/// The smallest memory budget accepted, in MiB (two 2 MiB memtables and a 4 MiB cache).
pub const MEMORY_BUDGET_MIB_MIN: u64 = 8;

/// The environment variable that may hold the cluster secret itself.
pub const CLUSTER_SECRET_ENV: &str = "CLUSTER_SECRET";

/// A checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    /// This node's id (position in `members`, from 1; 0 while a joining node's id is
    /// still to be learnt from the cluster).
    pub id: u32,
    /// (id, peer address) of every member, this node included.
    pub members: Vec<(u32, String)>,
    /// Address peers connect to (`HOST:ACTOR_PORT`).
    pub peer_addr: String,
    /// Address clients connect to (`HOST:CLIENT_PORT`).
    pub client_addr: String,
    pub data_dir: PathBuf,
    pub value_bytes_max: usize,
    pub request_timeout: Duration,
    pub http: HttpArgs,
    pub watchers_max: usize,
    /// The storage engine's options (its memory budget from `MEMORY_BUDGET_MIB`).
    pub storage: storage::Options,
    /// The TLS files, checked when the node starts (`tls::NodeTls::load`).
    pub tls: TlsArgs,
    /// The peer TLS files, checked when the node starts (`tls_peer::load`).
    pub peer_tls: PeerTlsArgs,
    /// The secret peers authenticate each other with; None = unauthenticated peers.
    pub cluster_secret: Option<ClusterSecret>,
    /// `JOIN`: a member's client URL to join through when the data directory is new.
    pub join: Option<String>,
    pub join_token: Option<String>,
}

/// A configuration that cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// `CONCIERGES` did not parse.
    BadConcierges { value: String, reason: String },
    /// `HOST:ACTOR_PORT` is not in `CONCIERGES`.
    NotAMember { this: String, members: Vec<String> },
    /// The data directory belongs to another cluster.
    OtherCluster {
        data_dir: PathBuf,
        recorded: Vec<String>,
        given: Vec<String>,
    },
    /// The cluster file could not be read or written.
    ClusterFile { path: PathBuf, reason: String },
    /// A limit is unusable.
    BadLimit { name: &'static str, reason: String },
    /// The cluster secret is missing, unreadable or too short.
    BadSecret { source: String, reason: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadConcierges { value, reason } => write!(
                f,
                "CONCIERGES {value:?} is not a JSON array or comma list of host:port: {reason}"
            ),
            ConfigError::NotAMember { this, members } => write!(
                f,
                "this node's HOST:ACTOR_PORT {this} is not one of CONCIERGES {members:?}; \
                 set HOST and ACTOR_PORT to this node's entry"
            ),
            ConfigError::OtherCluster {
                data_dir,
                recorded,
                given,
            } => write!(
                f,
                "data directory {} belongs to the cluster {recorded:?}, but CONCIERGES is {given:?}; \
                 use a fresh DATA_DIR or the original CONCIERGES",
                data_dir.display()
            ),
            ConfigError::ClusterFile { path, reason } => {
                write!(f, "cluster file {}: {reason}", path.display())
            }
            ConfigError::BadLimit { name, reason } => write!(f, "{name}: {reason}"),
            ConfigError::BadSecret { source, reason } => {
                write!(f, "cluster secret from {source}: {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses `CONCIERGES`: a JSON array of strings or a comma-separated list.
pub fn parse_concierges(value: &str) -> Result<Vec<String>, ConfigError> {
    let bad = |reason: &str| ConfigError::BadConcierges {
        value: value.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = value.trim();
    let raw: Vec<String> = if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<String>>(trimmed).map_err(|e| bad(&e.to_string()))?
    } else {
        trimmed.split(',').map(str::to_string).collect()
    };
    let members: Vec<String> = raw.iter().map(|m| m.trim().to_string()).collect();
    if members.is_empty() || members.iter().any(String::is_empty) {
        return Err(bad("an entry is empty"));
    }
    for m in &members {
        match m.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => return Err(bad(&format!("entry {m:?} is not host:port"))),
        }
    }
    for (i, m) in members.iter().enumerate() {
        if members[..i].contains(m) {
            return Err(bad(&format!("entry {m:?} appears twice")));
        }
    }
    Ok(members)
}

impl ServeConfig {
    /// Checks the flags and finds this node among the members.
    pub fn resolve(args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
        let peer_addr = format!("{}:{}", args.host, args.actor_port);
        let client_addr = format!("{}:{}", args.host, args.client_port);
        let members = match &args.concierges {
            Some(v) if !v.trim().is_empty() => parse_concierges(v)?,
            _ => vec![peer_addr.clone()],
        };
        // A joining node learns its id from the cluster (`server::join`); 0 until then.
        let position = match members.iter().position(|m| *m == peer_addr) {
            Some(p) => p as u32 + 1,
            None if args.join.is_some() => 0,
            None => {
                return Err(ConfigError::NotAMember {
                    this: peer_addr.clone(),
                    members: members.clone(),
                })
            }
        };
        if args.value_bytes_max == 0 {
            return Err(ConfigError::BadLimit {
                name: "VALUE_BYTES_MAX",
                reason: "must be at least 1".into(),
            });
        }
        if args.watchers_max == 0 {
            return Err(ConfigError::BadLimit {
                name: "WATCHERS_MAX",
                reason: "must be at least 1".into(),
            });
        }
        if args.request_timeout_ms < 100 {
            return Err(ConfigError::BadLimit {
                name: "REQUEST_TIMEOUT_MS",
                reason: "must be at least 100".into(),
            });
        }
        args.http
            .check()
            .map_err(|(name, reason)| ConfigError::BadLimit { name, reason })?;
        let budget_mib = args.memory_budget_mib;
        let storage = (MEMORY_BUDGET_MIB_MIN..=1 << 30)
            .contains(&budget_mib)
            .then(|| storage::Options::with_memory_budget(budget_mib << 20))
            .filter(|o| o.validate().is_ok())
            .ok_or_else(|| ConfigError::BadLimit {
                name: "MEMORY_BUDGET_MIB",
                reason: format!("must be {MEMORY_BUDGET_MIB_MIN} to 2^30 (MiB), not {budget_mib}"),
            })?;
        let cluster_secret = resolve_secret(args)?;
        Ok(ServeConfig {
            id: position,
            members: members
                .into_iter()
                .enumerate()
                .map(|(i, m)| (i as u32 + 1, m))
                .collect(),
            peer_addr,
            client_addr,
            data_dir: args.data_dir.clone(),
            value_bytes_max: args.value_bytes_max,
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            http: args.http.clone(),
            watchers_max: args.watchers_max,
            storage,
            tls: args.tls.clone(),
            peer_tls: args.peer_tls.clone(),
            cluster_secret,
            join: args.join.clone().filter(|j| !j.trim().is_empty()),
            join_token: args.join_token.clone(),
        })
    }

    /// The member addresses in id order.
    pub fn member_addrs(&self) -> Vec<String> {
        self.members.iter().map(|(_, a)| a.clone()).collect()
    }
}

/// The cluster secret from `--cluster-secret-file` or `CLUSTER_SECRET` (not both),
/// trimmed of surrounding whitespace and at least `SECRET_BYTES_MIN` bytes long.
fn resolve_secret(args: &ServeArgs) -> Result<Option<ClusterSecret>, ConfigError> {
    let (source, bytes) = match (&args.cluster_secret_file, &args.cluster_secret) {
        (None, None) => return Ok(None),
        (Some(path), Some(_)) => {
            return Err(ConfigError::BadSecret {
                source: format!("CLUSTER_SECRET_FILE {}", path.display()),
                reason: format!("{CLUSTER_SECRET_ENV} is set too; set only one of them"),
            })
        }
        (Some(path), None) => {
            let source = format!("CLUSTER_SECRET_FILE {}", path.display());
            match std::fs::read(path) {
                Ok(bytes) => (source, bytes),
                Err(e) => {
                    return Err(ConfigError::BadSecret {
                        source,
                        reason: format!("cannot read it: {e}"),
                    })
                }
            }
        }
        (None, Some(value)) => (CLUSTER_SECRET_ENV.to_string(), value.clone().into_bytes()),
    };
    let trimmed = bytes.trim_ascii().to_vec();
    ClusterSecret::new(trimmed)
        .map(Some)
        .map_err(|e| ConfigError::BadSecret {
            source,
            reason: e.to_string(),
        })
}

/// The cluster file's content.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct ClusterFile {
    /// The cluster's first members (`CONCIERGES` of its first start), in id order.
    pub members: Vec<String>,
    /// Set by `concierge snapshot restore`: mixed into the cluster id peers check in
    /// their handshake, so a restored cluster never talks to the one it was backed up
    /// from (nor to one restored from another backup). Absent (0) otherwise.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub token: u64,
    /// Set when the node joined a running cluster: its id (given by the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u32>,
    /// Set when the node joined: the members at the time, dialed until it catches up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<crate::node::MemberAddr>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Name of the cluster file inside the data directory.
pub const CLUSTER_FILE: &str = "cluster.json";

/// The cluster file of `data_dir`, if it has one.
pub fn read_cluster_file(
    fs: &dyn vfs::Fs,
    data_dir: &Path,
) -> Result<Option<ClusterFile>, ConfigError> {
    let path = data_dir.join(CLUSTER_FILE);
    if !fs.exists(&path) {
        return Ok(None);
    }
    let file_err = |reason: String| ConfigError::ClusterFile {
        path: path.clone(),
        reason,
    };
    let bytes = fs.read_all(&path).map_err(|e| file_err(e.to_string()))?;
    let file: ClusterFile =
        serde_json::from_slice(&bytes).map_err(|e| file_err(format!("unreadable: {e}")))?;
    if file.id == Some(0) || file.members.is_empty() {
        return Err(file_err("no first members, or node id 0".into()));
    }
    Ok(Some(file))
}

/// Records the member list in a fresh data directory, or checks it matches the one
/// recorded there. Returns the directory's cluster file. A directory of a node that
/// joined a running cluster (its file records its id) is taken as it is: `CONCIERGES`
/// only seeds a brand-new cluster.
pub fn check_cluster_file(
    fs: &dyn vfs::Fs,
    data_dir: &Path,
    members: &[String],
) -> Result<ClusterFile, ConfigError> {
    if let Some(recorded) = read_cluster_file(fs, data_dir)? {
        if recorded.id.is_some() {
            return Ok(recorded);
        }
        if recorded.members != members {
            return Err(ConfigError::OtherCluster {
                data_dir: data_dir.to_path_buf(),
                recorded: recorded.members,
                given: members.to_vec(),
            });
        }
        return Ok(recorded);
    }
    let file = ClusterFile {
        members: members.to_vec(),
        ..ClusterFile::default()
    };
    write_cluster_file(fs, data_dir, &file)?;
    Ok(file)
}

/// Writes the cluster file of a data directory (creating the directory).
pub fn write_cluster_file(
    fs: &dyn vfs::Fs,
    data_dir: &Path,
    file: &ClusterFile,
) -> Result<(), ConfigError> {
    let path = data_dir.join(CLUSTER_FILE);
    let file_err = |reason: String| ConfigError::ClusterFile {
        path: path.clone(),
        reason,
    };
    fs.create_dir_all(data_dir)
        .map_err(|e| file_err(format!("creating the data directory: {e}")))?;
    let bytes = serde_json::to_vec(file).map_err(|e| file_err(e.to_string()))?;
    fs.write_atomic(&path, &bytes)
        .map_err(|e| file_err(format!("writing: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn args(concierges: Option<&str>, port: u16) -> ServeArgs {
        ServeArgs {
            host: "10.0.0.2".into(),
            actor_port: port,
            client_port: 8080,
            concierges: concierges.map(str::to_string),
            data_dir: "./data".into(),
            value_bytes_max: 1 << 20,
            request_timeout_ms: 5000,
            http: HttpArgs::default(),
            watchers_max: 10,
            memory_budget_mib: MEMORY_BUDGET_MIB_DEFAULT,
            tls: TlsArgs::default(),
            peer_tls: PeerTlsArgs::default(),
            cluster_secret_file: None,
            cluster_secret: None,
            join: None,
            join_token: None,
        }
    }

    #[test]
    fn the_cluster_secret_comes_from_a_file_or_the_environment_and_is_long_enough() {
        let dir = std::env::temp_dir().join(format!("concierge-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "0123456789abcdef0123\n").unwrap();
        let short = dir.join("short");
        std::fs::write(&short, "  short-secret \n").unwrap();

        assert_eq!(
            ServeConfig::resolve(&args(None, 7)).unwrap().cluster_secret,
            None
        );
        let mut a = args(None, 7);
        a.cluster_secret_file = Some(good.clone());
        let from_file = ServeConfig::resolve(&a).unwrap().cluster_secret;
        assert_eq!(
            from_file,
            Some(ClusterSecret::new(b"0123456789abcdef0123".to_vec()).unwrap()),
            "the trailing newline is not part of the secret"
        );
        a.cluster_secret = Some("0123456789abcdef0123".into());
        let both = ServeConfig::resolve(&a).unwrap_err();
        assert!(both.to_string().contains("only one"), "{both}");
        a.cluster_secret_file = None;
        assert_eq!(ServeConfig::resolve(&a).unwrap().cluster_secret, from_file);

        for bad in ["", "   ", "fifteen-bytes!!"] {
            a.cluster_secret = Some(bad.into());
            let err = ServeConfig::resolve(&a).unwrap_err();
            assert!(matches!(err, ConfigError::BadSecret { .. }), "{err}");
            assert!(err.to_string().contains("at least 16"), "{err}");
        }
        a.cluster_secret = None;
        a.cluster_secret_file = Some(short);
        let err = ServeConfig::resolve(&a).unwrap_err();
        assert!(err.to_string().contains("12 bytes"), "{err}");
        a.cluster_secret_file = Some(dir.join("missing"));
        let err = ServeConfig::resolve(&a).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_memory_budget_sizes_the_storage_engine_and_too_little_is_refused() {
        let mut a = args(None, 7000);
        let default = ServeConfig::resolve(&a).unwrap().storage;
        assert_eq!(default.memory_budget_bytes, 160 << 20);
        assert_eq!(
            default.block_cache_bytes(),
            32 << 20,
            "two 64 MiB memtables"
        );
        assert_eq!(default, storage::Options::default());
        a.memory_budget_mib = 64;
        let small = ServeConfig::resolve(&a).unwrap().storage;
        assert_eq!(small.memory_budget_bytes, 64 << 20);
        assert!(small.write_buffer_bytes < 64 << 20);
        assert!(small.block_cache_bytes() > 0);
        for bad in [0, 7, (1 << 30) + 1] {
            a.memory_budget_mib = bad;
            assert!(
                matches!(
                    ServeConfig::resolve(&a),
                    Err(ConfigError::BadLimit {
                        name: "MEMORY_BUDGET_MIB",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_watch_limit_of_zero_is_refused() {
        let mut a = args(None, 7000);
        a.watchers_max = 0;
        assert!(matches!(
            ServeConfig::resolve(&a),
            Err(ConfigError::BadLimit {
                name: "WATCHERS_MAX",
                ..
            })
        ));
        a.watchers_max = 1;
        assert_eq!(ServeConfig::resolve(&a).unwrap().watchers_max, 1);
    }

    #[test]
    fn concierges_parse_as_json_or_comma_list() {
        let want = vec!["a:1".to_string(), "b:2".to_string()];
        assert_eq!(parse_concierges(r#"["a:1","b:2"]"#), Ok(want.clone()));
        assert_eq!(parse_concierges(" a:1 , b:2 "), Ok(want));
        assert!(parse_concierges("a:1,,b:2").is_err());
        assert!(parse_concierges("[\"a:1\"").is_err());
        assert!(parse_concierges("a:1,a:1").is_err());
        assert!(parse_concierges("a").is_err());
        assert!(parse_concierges("a:99999").is_err());
    }

    #[test]
    fn this_node_is_found_by_host_and_actor_port() {
        let c = ServeConfig::resolve(&args(Some("10.0.0.1:7,10.0.0.2:7,10.0.0.3:7"), 7)).unwrap();
        assert_eq!(c.id, 2);
        assert_eq!(c.members.len(), 3);
        assert_eq!(c.client_addr, "10.0.0.2:8080");
        let err = ServeConfig::resolve(&args(Some("10.0.0.1:7,10.0.0.3:7"), 7)).unwrap_err();
        assert!(err.to_string().contains("10.0.0.2:7"), "{err}");
        let solo = ServeConfig::resolve(&args(None, 9)).unwrap();
        assert_eq!((solo.id, solo.members.len()), (1, 1));
    }

    #[test]
    fn data_dir_refuses_another_cluster() {
        let fs = Arc::new(vfs::SimFs::new());
        let dir = Path::new("/d");
        let three: Vec<String> = vec!["a:1".into(), "b:1".into(), "c:1".into()];
        check_cluster_file(fs.as_ref(), dir, &three).unwrap();
        check_cluster_file(fs.as_ref(), dir, &three).unwrap();
        let err = check_cluster_file(fs.as_ref(), dir, &three[..2]).unwrap_err();
        assert!(matches!(err, ConfigError::OtherCluster { .. }), "{err}");
    }

    #[test]
    fn a_restored_directory_keeps_its_cluster_token() {
        let fs = Arc::new(vfs::SimFs::new());
        let dir = Path::new("/r");
        let three: Vec<String> = vec!["a:1".into(), "b:1".into(), "c:1".into()];
        let file = ClusterFile {
            members: three.clone(),
            token: 77,
            ..ClusterFile::default()
        };
        write_cluster_file(fs.as_ref(), dir, &file).unwrap();
        assert_eq!(
            check_cluster_file(fs.as_ref(), dir, &three).unwrap().token,
            77
        );
        assert_eq!(
            check_cluster_file(fs.as_ref(), Path::new("/n"), &three)
                .unwrap()
                .token,
            0
        );
    }

    #[test]
    fn a_joined_directory_is_taken_as_it_is_whatever_concierges_says() {
        let fs = Arc::new(vfs::SimFs::new());
        let dir = Path::new("/j");
        let file = ClusterFile {
            members: vec!["a:1".into(), "b:1".into()],
            token: 0,
            id: Some(4),
            peers: vec![crate::node::MemberAddr {
                id: 4,
                peer_addr: "d:1".into(),
                client_addr: String::new(),
            }],
        };
        write_cluster_file(fs.as_ref(), dir, &file).unwrap();
        let seen = check_cluster_file(fs.as_ref(), dir, &["d:1".to_string()]).unwrap();
        assert_eq!(seen, file);
        // A file naming node 0 is refused, not guessed at.
        let bad = ClusterFile {
            id: Some(0),
            ..file
        };
        write_cluster_file(fs.as_ref(), dir, &bad).unwrap();
        assert!(read_cluster_file(fs.as_ref(), dir).is_err());
    }

    #[test]
    fn a_joining_node_needs_not_be_a_first_member() {
        let mut a = args(Some("10.0.0.1:7,10.0.0.3:7"), 7);
        a.join = Some("http://10.0.0.1:8080".into());
        let c = ServeConfig::resolve(&a).unwrap();
        assert_eq!(c.id, 0);
        assert_eq!(c.join.as_deref(), Some("http://10.0.0.1:8080"));
    }
}
