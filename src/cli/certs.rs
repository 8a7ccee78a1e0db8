//! `concierge certs`: a development CA, one certificate per node and one client
//! certificate, as PEM files in a directory (docs/cli.md, README "A secure cluster"). For trying
//! TLS locally or in Docker compose, not for production: a real deployment's CA lives
//! elsewhere.
//!
//! Files: `ca.pem`, `ca-key.pem`; per node `NAME.pem`, `NAME-key.pem` (names: the node's
//! name and every `--hosts` entry, as DNS names or IP addresses; usable by the node as
//! a server and as a client, for the keepalives it forwards); `client.pem`,
//! `client-key.pem` (client use only). A node certificate also names the node's member
//! entry (`--members`) as the URI `concierge://member/HOST:ACTOR_PORT`, which makes it
//! a peer certificate too (`PEER_TLS_CERT_FILE`, docs/peer-protocol.md). With
//! `--secret`, also `cluster-secret`: 32 random bytes in hex, for `CLUSTER_SECRET_FILE`.
//!
//! Invariants: an existing file is never overwritten (the command refuses before
//! writing anything; with `--keep-existing`, a directory that already holds every file
//! is kept as it is, and one that holds only some is still refused); every key file
//! and the secret are created with mode 0600; certificates are ECDSA P-256, signed by
//! the CA.

use super::exit::{Failure, ERROR};
use clap::Args;
use concierge::node::transport::peer_tls::member_uri;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, Ia5String,
    IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `concierge certs [--out DIR] [--nodes N1,N2,..] [--hosts H1,..] [--client NAME]
/// [--secret] [--keep-existing]`.
#[derive(Args, Debug, Clone)]
pub struct CertsArgs {
    /// The directory the files go to (created if missing).
    #[arg(long, default_value = "certs", value_name = "DIR")]
    pub out: PathBuf,
    /// One certificate per node, named by these host names (the Docker compose
    /// file's by default).
    #[arg(
        long,
        default_value = "concierge-1,concierge-2,concierge-3",
        value_name = "NAME,..."
    )]
    pub nodes: String,
    /// More names every node certificate carries: host names or IP addresses.
    #[arg(
        long,
        default_value = "localhost,127.0.0.1,::1",
        value_name = "HOST,..."
    )]
    pub hosts: String,
    /// Each node's member entry (HOST:ACTOR_PORT as in CONCIERGES), in --nodes order:
    /// its certificate names it as the URI concierge://member/HOST:ACTOR_PORT, so it
    /// can serve as the node's peer certificate (PEER_TLS_CERT_FILE). Default:
    /// NAME:23456 for every node (the Docker compose file's).
    #[arg(long, value_name = "HOST:PORT,...")]
    pub members: Option<String>,
    /// The client certificate's common name.
    #[arg(long, default_value = "client", value_name = "NAME")]
    pub client: String,
    /// How long the node and client certificates are valid (the CA: ten times that).
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Also write `cluster-secret` (mode 0600): 32 random bytes in hex, the same
    /// file for every node's CLUSTER_SECRET_FILE.
    #[arg(long)]
    pub secret: bool,
    /// When DIR already holds every file this command would write, keep them and
    /// succeed without writing (a compose one-shot service that runs at every `up`).
    /// A DIR that holds only some of them is still refused.
    #[arg(long)]
    pub keep_existing: bool,
}

/// The cluster secret's file name (`--secret`).
pub const SECRET_FILE: &str = "cluster-secret";

/// How many random bytes the cluster secret holds (written as twice as many hex digits).
const SECRET_BYTES: usize = 32;

/// What [`make`] did: wrote the files, or found them all there and kept them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    Written(Vec<String>),
    Kept(Vec<String>),
}

/// A fresh cluster secret: [`SECRET_BYTES`] from the OS random source, in hex, and a
/// newline (which the server ignores).
fn make_secret() -> Result<String, Failure> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| Failure::new(ERROR, format!("making the cluster secret: {e}")))?;
    let mut hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.push('\n');
    Ok(hex)
}

fn list(flag: &str, value: &str) -> Result<Vec<String>, Failure> {
    let items: Vec<String> = value
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for item in &items {
        let bad = item.contains(['/', '\\']) || item.starts_with('.');
        if bad {
            return Err(Failure::usage(format!(
                "{flag}: {item:?} is not a host name"
            )));
        }
    }
    Ok(items)
}

fn rcgen_error(what: &str) -> impl Fn(rcgen::Error) -> Failure + '_ {
    move |e| Failure::new(ERROR, format!("making the {what}: {e}"))
}

/// A certificate's validity: from an hour ago (clock skew) for `days`.
fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
}

/// The CA, self-signed.
fn make_ca(days: u32) -> Result<(Certificate, KeyPair), Failure> {
    let key = KeyPair::generate().map_err(rcgen_error("CA key"))?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "Concierge development CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params, days.saturating_mul(10));
    let cert = params
        .self_signed(&key)
        .map_err(rcgen_error("CA certificate"))?;
    Ok((cert, key))
}

/// A leaf signed by the CA: `names` as its subject alternative names (the first is
/// its common name), and `member` (a member entry) as a URI name.
fn make_leaf(
    names: &[String],
    member: Option<&str>,
    usages: Vec<ExtendedKeyUsagePurpose>,
    days: u32,
    ca: &Certificate,
    ca_key: &KeyPair,
) -> Result<(Certificate, KeyPair), Failure> {
    let what = format!(
        "certificate of {}",
        names.first().map_or("?", |s| s.as_str())
    );
    let key = KeyPair::generate().map_err(rcgen_error(&what))?;
    let mut params = CertificateParams::new(names.to_vec()).map_err(rcgen_error(&what))?;
    if let Some(first) = names.first() {
        params
            .distinguished_name
            .push(DnType::CommonName, first.as_str());
    }
    if let Some(member) = member {
        let uri = Ia5String::try_from(member_uri(member)).map_err(rcgen_error(&what))?;
        params.subject_alt_names.push(SanType::URI(uri));
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = usages;
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let cert = params
        .signed_by(&key, ca, ca_key)
        .map_err(rcgen_error(&what))?;
    Ok((cert, key))
}

/// One file to write: its name, content and mode.
struct Output {
    name: String,
    content: String,
    mode: u32,
}

fn write_new(dir: &Path, out: &Output) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(&out.name);
    let fail = |e: std::io::Error| Failure::new(ERROR, format!("writing {}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(out.mode)
        .open(&path)
        .map_err(fail)?;
    file.write_all(out.content.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)
}

/// Makes the CA and the certificates (and the secret) and writes them, or keeps a
/// complete set already there (`--keep-existing`); says which, with the files' names.
pub fn make(args: &CertsArgs) -> Result<Made, Failure> {
    let nodes = list("--nodes", &args.nodes)?;
    let hosts = list("--hosts", &args.hosts)?;
    let client = list("--client", &args.client)?;
    if args.days == 0 {
        return Err(Failure::usage("--days must be at least 1"));
    }
    let members = match &args.members {
        Some(m) => {
            let members = concierge::config::parse_concierges(m)
                .map_err(|e| Failure::usage(format!("--members: {e}")))?;
            if members.len() != nodes.len() {
                return Err(Failure::usage(format!(
                    "--members lists {} entries for {} --nodes: give one HOST:PORT per node, \
                     in the same order",
                    members.len(),
                    nodes.len()
                )));
            }
            members
        }
        None => nodes.iter().map(|n| format!("{n}:23456")).collect(),
    };
    let [client] = client.as_slice() else {
        return Err(Failure::usage("--client takes one name"));
    };
    let mut names: Vec<&str> = nodes.iter().map(String::as_str).collect();
    names.extend(["ca", "client"]);
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(Failure::usage(format!(
                "{n:?} names two files: node names must differ from each other and from \
                 \"ca\" and \"client\""
            )));
        }
    }

    let (ca, ca_key) = make_ca(args.days)?;
    let key_mode = 0o600;
    let cert_mode = 0o644;
    let mut outputs = vec![
        Output {
            name: "ca.pem".into(),
            content: ca.pem(),
            mode: cert_mode,
        },
        Output {
            name: "ca-key.pem".into(),
            content: ca_key.serialize_pem(),
            mode: key_mode,
        },
    ];
    let both = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    for (node, member) in nodes.iter().zip(&members) {
        let mut sans = vec![node.clone()];
        sans.extend(hosts.iter().filter(|h| *h != node).cloned());
        let (cert, key) = make_leaf(&sans, Some(member), both.clone(), args.days, &ca, &ca_key)?;
        outputs.push(Output {
            name: format!("{node}.pem"),
            content: cert.pem(),
            mode: cert_mode,
        });
        outputs.push(Output {
            name: format!("{node}-key.pem"),
            content: key.serialize_pem(),
            mode: key_mode,
        });
    }
    let (cert, key) = make_leaf(
        std::slice::from_ref(client),
        None,
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        args.days,
        &ca,
        &ca_key,
    )?;
    outputs.push(Output {
        name: "client.pem".into(),
        content: cert.pem(),
        mode: cert_mode,
    });
    outputs.push(Output {
        name: "client-key.pem".into(),
        content: key.serialize_pem(),
        mode: key_mode,
    });
    if args.secret {
        outputs.push(Output {
            name: SECRET_FILE.into(),
            content: make_secret()?,
            mode: key_mode,
        });
    }

    std::fs::create_dir_all(&args.out).map_err(|e| {
        Failure::new(
            ERROR,
            format!("creating the directory {}: {e}", args.out.display()),
        )
    })?;
    let existing: Vec<&str> = outputs
        .iter()
        .filter(|o| args.out.join(&o.name).exists())
        .map(|o| o.name.as_str())
        .collect();
    if args.keep_existing && existing.len() == outputs.len() {
        return Ok(Made::Kept(outputs.into_iter().map(|o| o.name).collect()));
    }
    if !existing.is_empty() {
        return Err(Failure::new(
            ERROR,
            format!(
                "{} already holds {}: refusing to overwrite (use another --out{})",
                args.out.display(),
                existing.join(", "),
                if args.keep_existing {
                    "; --keep-existing keeps only a complete set"
                } else {
                    ""
                }
            ),
        ));
    }
    for out in &outputs {
        write_new(&args.out, out)?;
    }
    Ok(Made::Written(outputs.into_iter().map(|o| o.name).collect()))
}

/// `concierge certs`: makes the files and says how to use them.
pub fn certs(args: CertsArgs) -> Result<u8, Failure> {
    let dir = args.out.display();
    match make(&args)? {
        Made::Written(files) => println!("wrote into {dir}: {}", files.join(" ")),
        Made::Kept(files) => {
            println!("kept what {dir} already holds: {}", files.join(" "));
            return Ok(super::exit::OK);
        }
    }
    println!("a node serves HTTPS with (NAME: one of --nodes):");
    println!(
        "  TLS_CERT_FILE={dir}/NAME.pem TLS_KEY_FILE={dir}/NAME-key.pem TLS_CA_FILE={dir}/ca.pem"
    );
    println!("  (and TLS_CLIENT_CA_FILE={dir}/ca.pem to require client certificates)");
    println!("and mutual TLS between peers with (each certificate names its --members entry):");
    println!(
        "  PEER_TLS_CERT_FILE={dir}/NAME.pem PEER_TLS_KEY_FILE={dir}/NAME-key.pem PEER_TLS_CA_FILE={dir}/ca.pem"
    );
    if args.secret {
        println!("and every node authenticates its peers with:");
        println!("  CLUSTER_SECRET_FILE={dir}/{SECRET_FILE}");
    }
    println!("a client trusts it with:");
    println!("  concierge --cacert {dir}/ca.pem [--cert {dir}/client.pem --key {dir}/client-key.pem] ...");
    Ok(super::exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn args(out: &Path) -> CertsArgs {
        CertsArgs {
            out: out.to_path_buf(),
            nodes: "n1,n2".into(),
            hosts: "localhost,127.0.0.1".into(),
            members: None,
            client: "client".into(),
            days: 30,
            secret: false,
            keep_existing: false,
        }
    }

    fn temp(tag: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        std::env::temp_dir().join(format!(
            "concierge-certs-{tag}-{}-{nanos}",
            std::process::id()
        ))
    }

    #[test]
    fn keys_are_private_and_nothing_is_overwritten() {
        let dir = temp("modes");
        let Made::Written(files) = make(&args(&dir)).unwrap() else {
            panic!("a fresh directory is written");
        };
        assert_eq!(files.len(), 2 + 2 * 2 + 2, "{files:?}");
        for f in &files {
            let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
            if f.ends_with("-key.pem") {
                assert_eq!(mode, 0o600, "{f}");
            } else {
                assert_eq!(mode & 0o022, 0, "{f}: {mode:o}");
            }
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{f}");
        }
        let before = std::fs::read(dir.join("ca.pem")).unwrap();
        let err = make(&args(&dir)).unwrap_err();
        assert!(
            err.message.contains("refusing to overwrite"),
            "{}",
            err.message
        );
        assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), before);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn node_certificates_name_their_member_entries() {
        use concierge::node::transport::peer_tls::member_names;
        use rustls::pki_types::pem::PemObject;
        let dir = temp("members");
        let mut a = args(&dir);
        a.members = Some("127.0.0.1:7001,127.0.0.1:7002".into());
        make(&a).unwrap();
        for (node, member) in [("n1", "127.0.0.1:7001"), ("n2", "127.0.0.1:7002")] {
            let pem = std::fs::read(dir.join(format!("{node}.pem"))).unwrap();
            let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
            assert_eq!(member_names(&der).unwrap(), vec![member.to_string()]);
        }
        let pem = std::fs::read(dir.join("client.pem")).unwrap();
        let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap();
        assert!(
            member_names(&der).unwrap().is_empty(),
            "a client is no member"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let dir = temp("members-count");
        let mut a = args(&dir);
        a.members = Some("127.0.0.1:7001".into());
        assert!(make(&a)
            .unwrap_err()
            .message
            .contains("one HOST:PORT per node"));
        assert!(!dir.exists());
    }

    #[test]
    fn the_secret_is_private_random_and_long_enough() {
        let (d1, d2) = (temp("secret-1"), temp("secret-2"));
        let mut secrets = Vec::new();
        for dir in [&d1, &d2] {
            let mut a = args(dir);
            a.secret = true;
            let Made::Written(files) = make(&a).unwrap() else {
                panic!("a fresh directory is written");
            };
            assert!(files.iter().any(|f| f == SECRET_FILE), "{files:?}");
            let path = dir.join(SECRET_FILE);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let text = std::fs::read_to_string(&path).unwrap();
            let secret = text.trim();
            assert_eq!(secret.len(), 2 * SECRET_BYTES, "{text:?}");
            assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()), "{text:?}");
            let taken =
                concierge::node::transport::auth::ClusterSecret::new(secret.as_bytes().to_vec());
            assert!(taken.is_ok(), "the server takes it");
            secrets.push(secret.to_string());
        }
        assert_ne!(secrets[0], secrets[1], "two runs, two secrets");
        let plain = temp("secret-none");
        make(&args(&plain)).unwrap();
        assert!(!plain.join(SECRET_FILE).exists(), "only with --secret");
        for dir in [d1, d2, plain] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn keep_existing_keeps_a_complete_set_and_refuses_a_partial_one() {
        let dir = temp("keep");
        let mut a = args(&dir);
        a.secret = true;
        a.keep_existing = true;
        let Made::Written(files) = make(&a).unwrap() else {
            panic!("a fresh directory is written");
        };
        let before: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect();
        assert_eq!(make(&a).unwrap(), Made::Kept(files.clone()));
        for (f, content) in files.iter().zip(&before) {
            assert_eq!(&std::fs::read(dir.join(f)).unwrap(), content, "{f} changed");
        }
        // Without the flag, the same directory is refused.
        a.keep_existing = false;
        assert!(make(&a).is_err());
        // A partial set (a lost node key) is refused even with it.
        a.keep_existing = true;
        std::fs::remove_file(dir.join("n2-key.pem")).unwrap();
        let err = make(&a).unwrap_err();
        assert!(err.message.contains("complete set"), "{}", err.message);
        assert!(!dir.join("n2-key.pem").exists(), "nothing written");
        // A set made without --secret is not complete for a run with it.
        let plain = temp("keep-plain");
        let mut b = args(&plain);
        make(&b).unwrap();
        b.secret = true;
        b.keep_existing = true;
        assert!(make(&b).is_err());
        for d in [dir, plain] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn bad_names_are_refused_before_writing() {
        let dir = temp("names");
        for (nodes, client) in [
            ("n1,../x", "client"),
            ("n1,n1", "client"),
            ("ca", "client"),
            ("n1", "a,b"),
        ] {
            let mut a = args(&dir);
            a.nodes = nodes.into();
            a.client = client.into();
            assert!(make(&a).is_err(), "{nodes} {client}");
        }
        assert!(!dir.exists());
    }
}
