//! TLS on the client port: the `TLS_*` flags of `concierge serve`, the PEM files they
//! name (read and checked once, at start-up), the rustls server configuration (with
//! client-certificate authentication when `TLS_CLIENT_CA_FILE` is set), and the HTTP
//! client a follower forwards keepalives to the leader with (HTTPS when TLS is on).
//!
//! Invariants, checked by [`NodeTls::load`] before the node starts:
//! - TLS is on exactly when both `TLS_CERT_FILE` and `TLS_KEY_FILE` are given; one alone,
//!   or a CA flag without them, is refused.
//! - The key is the certificate's (a mismatch is refused), and the certificate is
//!   within its validity period (an expired or not yet valid one is refused; one that
//!   expires within [`EXPIRY_WARNING`] is a warning).
//! - A multi-node cluster serving HTTPS has a trust anchor for forwarding
//!   (`TLS_CA_FILE`, else `TLS_CLIENT_CA_FILE`), and forwards show this node's own
//!   certificate, so they pass the leader's client-certificate check too.
//! - Only the ring provider is used (no OpenSSL, no aws-lc). ALPN is actix-web's
//!   (h2, then HTTP/1.1), as a plain port also serves h2 to a client that asks.

use clap::Args;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A certificate that expires sooner than this after start-up is reported.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(7 * 24 * 3600);

/// The TLS flags of `concierge serve`, each also an environment variable.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsArgs {
    /// This node's certificate (PEM, leaf first): serve HTTPS on the client port.
    /// Needs TLS_KEY_FILE.
    #[arg(long, env = "TLS_CERT_FILE", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of TLS_CERT_FILE (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "TLS_KEY_FILE", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Require every client to present a certificate signed by one of these CAs (PEM).
    #[arg(long, env = "TLS_CLIENT_CA_FILE", value_name = "PEM")]
    pub tls_client_ca: Option<PathBuf>,
    /// The CA(s) of the other nodes' certificates (PEM), trusted when this node forwards
    /// a keepalive to the leader. Default: TLS_CLIENT_CA_FILE.
    #[arg(long, env = "TLS_CA_FILE", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
}

/// Why the TLS material cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

pub(crate) fn err<T>(message: String) -> Result<T, TlsError> {
    Err(TlsError(message))
}

/// The node's TLS, loaded and checked.
pub struct NodeTls {
    /// The server side; None serves plain HTTP.
    pub server: Option<Arc<rustls::ServerConfig>>,
    /// Whether clients must present a certificate.
    pub client_auth: bool,
    /// Trusted when forwarding (PEM); this node's certificate and key (PEM).
    forward_ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    /// What start-up should log as warnings.
    pub warnings: Vec<String>,
}

impl fmt::Debug for NodeTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeTls")
            .field("https", &self.server.is_some())
            .field("client_auth", &self.client_auth)
            .field("forward_ca", &self.forward_ca.is_some())
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// The one crypto provider.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub(crate) fn read(what: &str, flag: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).or_else(|e| {
        err(format!(
            "{flag}: reading the {what} {}: {e}",
            path.display()
        ))
    })
}

/// Every PEM certificate of `bytes`; none is an error.
pub(crate) fn certificates(
    what: &str,
    flag: &str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .or_else(|e| err(format!("{flag}: the {what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return err(format!(
            "{flag}: {} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
            path.display()
        ));
    }
    Ok(certs)
}

/// The trust anchors of a CA file.
pub(crate) fn roots(
    flag: &str,
    path: &Path,
    bytes: &[u8],
) -> Result<rustls::RootCertStore, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    for cert in certificates("CA certificate", flag, path, bytes)? {
        store.add(cert).or_else(|e| {
            err(format!(
                "{flag}: a CA certificate of {}: {e}",
                path.display()
            ))
        })?;
    }
    Ok(store)
}

/// What the leaf certificate says about itself.
struct Leaf {
    not_before: i64,
    not_after: i64,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
}

fn leaf(cert: &CertificateDer<'_>) -> Result<Leaf, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let validity = parsed.validity();
    let mut out = Leaf {
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        dns: Vec::new(),
        ips: Vec::new(),
    };
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => out.dns.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        out.ips.push(IpAddr::from(a));
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        out.ips.push(IpAddr::from(a));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// Whether a certificate with these names is valid for `host` (wildcards as one
/// leftmost label).
fn names_host(leaf: &Leaf, host: &str) -> bool {
    if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return leaf.ips.contains(&ip);
    }
    let host = host.to_ascii_lowercase();
    leaf.dns.iter().any(|d| {
        let d = d.to_ascii_lowercase();
        match d.strip_prefix("*.") {
            Some(rest) => host
                .split_once('.')
                .is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
            None => d == host,
        }
    })
}

pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whether `host` is a loopback name or address (plain HTTP there reaches no network).
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_matches(|c| c == '[' || c == ']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl NodeTls {
    /// Plain HTTP.
    pub fn off() -> NodeTls {
        NodeTls {
            server: None,
            client_auth: false,
            forward_ca: None,
            identity: None,
            warnings: Vec::new(),
        }
    }

    /// Reads and checks the files `args` names, for a node serving clients at `host`
    /// in a cluster of `members` nodes.
    pub fn load(args: &TlsArgs, host: &str, members: usize) -> Result<NodeTls, TlsError> {
        let (cert_path, key_path) = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => (c, k),
            (None, None) => {
                if args.tls_client_ca.is_some() || args.tls_ca.is_some() {
                    return err("TLS_CLIENT_CA_FILE and TLS_CA_FILE need TLS on: \
                                set TLS_CERT_FILE and TLS_KEY_FILE too"
                        .into());
                }
                let mut off = NodeTls::off();
                if members > 1 && !is_loopback(host) {
                    off.warnings.push(format!(
                        "serving clients over plain HTTP on {host}, which is not a loopback \
                         address: requests and values cross the network unencrypted; set \
                         TLS_CERT_FILE and TLS_KEY_FILE to serve HTTPS"
                    ));
                }
                return Ok(off);
            }
            (Some(_), None) => return err("TLS_CERT_FILE is set but TLS_KEY_FILE is not".into()),
            (None, Some(_)) => return err("TLS_KEY_FILE is set but TLS_CERT_FILE is not".into()),
        };
        let mut warnings = Vec::new();
        let cert_pem = read("certificate", "TLS_CERT_FILE", cert_path)?;
        let key_pem = read("key", "TLS_KEY_FILE", key_path)?;
        let chain = certificates("certificate", "TLS_CERT_FILE", cert_path, &cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).or_else(|e| {
            err(format!(
                "TLS_KEY_FILE: {} holds no usable PEM private key: {e}",
                key_path.display()
            ))
        })?;

        let info = leaf(&chain[0])
            .or_else(|e| err(format!("TLS_CERT_FILE: {}: {e}", cert_path.display())))?;
        let now = now_unix();
        if info.not_after < now {
            return err(format!(
                "TLS_CERT_FILE: {} expired (not after {} s since the epoch, now {now})",
                cert_path.display(),
                info.not_after
            ));
        }
        if info.not_before > now {
            return err(format!(
                "TLS_CERT_FILE: {} is not valid yet (not before {} s since the epoch, now {now}); \
                 is the clock right?",
                cert_path.display(),
                info.not_before
            ));
        }
        let left = info.not_after - now;
        if u64::try_from(left).is_ok_and(|s| s < EXPIRY_WARNING.as_secs()) {
            warnings.push(format!(
                "TLS_CERT_FILE: {} expires in {} hours",
                cert_path.display(),
                left / 3600
            ));
        }
        if !names_host(&info, host) {
            warnings.push(format!(
                "TLS_CERT_FILE: {} does not name HOST {host} (it names {:?} {:?}): clients \
                 and other nodes that connect to {host} will refuse it",
                cert_path.display(),
                info.dns,
                info.ips
            ));
        }

        let provider = provider();
        let signing_key = provider
            .key_provider
            .load_private_key(key.clone_key())
            .or_else(|e| err(format!("TLS_KEY_FILE: {}: {e}", key_path.display())))?;
        let certified = rustls::sign::CertifiedKey::new(chain.clone(), signing_key);
        if let Err(e) = certified.keys_match() {
            return err(format!(
                "TLS_KEY_FILE {} is not the key of TLS_CERT_FILE {}: {e}",
                key_path.display(),
                cert_path.display()
            ));
        }

        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .or_else(|e| err(format!("TLS: {e}")))?;
        let client_ca_pem = match &args.tls_client_ca {
            Some(p) => Some((p, read("CA certificate", "TLS_CLIENT_CA_FILE", p)?)),
            None => None,
        };
        let builder = match &client_ca_pem {
            Some((path, pem)) => {
                let store = roots("TLS_CLIENT_CA_FILE", path, pem)?;
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(store),
                    Arc::clone(&provider),
                )
                .build()
                .or_else(|e| err(format!("TLS_CLIENT_CA_FILE {}: {e}", path.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let server = builder
            .with_single_cert(chain, key)
            .or_else(|e| err(format!("TLS_CERT_FILE and TLS_KEY_FILE: {e}")))?;

        let forward_ca = match (&args.tls_ca, &client_ca_pem) {
            (Some(p), _) => {
                let pem = read("CA certificate", "TLS_CA_FILE", p)?;
                roots("TLS_CA_FILE", p, &pem)?;
                Some(pem)
            }
            (None, Some((_, pem))) => Some(pem.clone()),
            (None, None) => None,
        };
        if forward_ca.is_none() && members > 1 {
            return err(
                "a cluster of several nodes serving HTTPS needs TLS_CA_FILE (the CA \
                        of the nodes' certificates): followers forward keepalives to the \
                        leader over HTTPS and check its certificate against it"
                    .into(),
            );
        }
        Ok(NodeTls {
            server: Some(Arc::new(server)),
            client_auth: client_ca_pem.is_some(),
            forward_ca,
            identity: Some((cert_pem, key_pem)),
            warnings,
        })
    }

    /// `https` when TLS is on, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.server.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The client a follower forwards keepalives to the leader with: every request
    /// ends after `timeout`; with TLS on it trusts the forwarding CA and shows this
    /// node's certificate.
    pub fn forward_client(&self, timeout: Duration) -> Result<reqwest::Client, TlsError> {
        let builder = reqwest::Client::builder().timeout(timeout);
        let builder = if self.server.is_some() {
            concierge_client::Tls {
                ca_pem: self.forward_ca.clone(),
                identity_pem: self.identity.clone(),
            }
            .apply(builder)
            .or_else(|e| err(format!("the forwarding client: {e}")))?
        } else {
            builder
        };
        builder
            .build()
            .or_else(|e| err(format!("building the forwarding client: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_of(dns: &[&str], ips: &[&str]) -> Leaf {
        Leaf {
            not_before: 0,
            not_after: 0,
            dns: dns.iter().map(|s| s.to_string()).collect(),
            ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn a_certificate_names_a_host_by_name_address_or_wildcard() {
        let l = leaf_of(&["n1", "*.example.org"], &["127.0.0.1", "::1"]);
        assert!(names_host(&l, "n1"));
        assert!(names_host(&l, "N1"));
        assert!(names_host(&l, "a.example.org"));
        assert!(!names_host(&l, "a.b.example.org"));
        assert!(!names_host(&l, "example.org"));
        assert!(names_host(&l, "127.0.0.1"));
        assert!(names_host(&l, "[::1]"));
        assert!(!names_host(&l, "10.0.0.1"));
        assert!(!names_host(&l, "n2"));
    }

    /// A CA-signed certificate for 127.0.0.1 valid from `from` to `to` (seconds from
    /// now), its key, and the CA's PEM.
    fn cert(from: i64, to: i64) -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::default();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::seconds(from);
        params.not_after = now + time::Duration::seconds(to);
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        (cert.pem(), key.serialize_pem(), ca.pem())
    }

    /// A directory for one test's files, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(test: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("concierge-tls-{test}-{}", std::process::id()));
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn files(scratch: &Scratch, tag: &str, cert: &str, key: &str, ca: &str) -> TlsArgs {
        let dir = scratch.0.join(tag);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in [("c.pem", cert), ("k.pem", key), ("ca.pem", ca)] {
            std::fs::write(dir.join(name), text).unwrap();
        }
        TlsArgs {
            tls_cert: Some(dir.join("c.pem")),
            tls_key: Some(dir.join("k.pem")),
            tls_client_ca: None,
            tls_ca: Some(dir.join("ca.pem")),
        }
    }

    #[test]
    fn good_files_load_and_bad_ones_are_refused_with_the_reason() {
        let scratch = Scratch::new("refusals");
        let day = 24 * 3600;
        let (c, k, ca) = cert(-day, 365 * day);
        let good = NodeTls::load(&files(&scratch, "good", &c, &k, &ca), "127.0.0.1", 3).unwrap();
        assert_eq!(good.scheme(), "https");
        assert!(good.warnings.is_empty(), "{:?}", good.warnings);
        assert!(good.forward_client(Duration::from_secs(1)).is_ok());
        let other_host = NodeTls::load(&files(&scratch, "host", &c, &k, &ca), "n9", 3).unwrap();
        assert!(
            other_host.warnings[0].contains("does not name HOST n9"),
            "{:?}",
            other_host.warnings
        );

        let (_, other_key, _) = cert(-day, day);
        let e = NodeTls::load(
            &files(&scratch, "mismatch", &c, &other_key, &ca),
            "127.0.0.1",
            3,
        )
        .unwrap_err();
        assert!(e.0.contains("is not the key of"), "{e}");
        let (old, old_key, _) = cert(-2 * day, -day);
        let e = NodeTls::load(
            &files(&scratch, "expired", &old, &old_key, &ca),
            "127.0.0.1",
            3,
        )
        .unwrap_err();
        assert!(e.0.contains("expired"), "{e}");
        let (early, early_key, _) = cert(day, 2 * day);
        let e = NodeTls::load(
            &files(&scratch, "early", &early, &early_key, &ca),
            "127.0.0.1",
            3,
        )
        .unwrap_err();
        assert!(e.0.contains("not valid yet"), "{e}");
        let (soon, soon_key, _) = cert(-day, day);
        let w = NodeTls::load(
            &files(&scratch, "soon", &soon, &soon_key, &ca),
            "127.0.0.1",
            3,
        )
        .unwrap();
        assert!(w.warnings[0].contains("expires in"), "{:?}", w.warnings);
        let e = NodeTls::load(&files(&scratch, "garbage", "junk", &k, &ca), "127.0.0.1", 3)
            .unwrap_err();
        assert!(e.0.contains("no PEM certificate"), "{e}");
        let e =
            NodeTls::load(&files(&scratch, "nokey", &c, "junk", &ca), "127.0.0.1", 3).unwrap_err();
        assert!(e.0.contains("TLS_KEY_FILE"), "{e}");
        let mut no_anchor = files(&scratch, "anchor", &c, &k, &ca);
        no_anchor.tls_ca = None;
        let e = NodeTls::load(&no_anchor, "127.0.0.1", 3).unwrap_err();
        assert!(e.0.contains("TLS_CA_FILE"), "{e}");
        assert!(NodeTls::load(&no_anchor, "127.0.0.1", 1).is_ok());
    }

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["10.0.0.1", "n1", "0.0.0.0", "example.org"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn half_a_configuration_is_refused_and_plaintext_warns_off_loopback() {
        let args = |cert: bool, key: bool, ca: bool| TlsArgs {
            tls_cert: cert.then(|| "/c.pem".into()),
            tls_key: key.then(|| "/k.pem".into()),
            tls_client_ca: None,
            tls_ca: ca.then(|| "/ca.pem".into()),
        };
        assert!(NodeTls::load(&args(true, false, false), "h", 1).is_err());
        assert!(NodeTls::load(&args(false, true, false), "h", 1).is_err());
        assert!(NodeTls::load(&args(false, false, true), "h", 1).is_err());
        let missing = NodeTls::load(&args(true, true, false), "h", 1).unwrap_err();
        assert!(missing.0.contains("/c.pem"), "{missing}");
        let off = NodeTls::load(&TlsArgs::default(), "10.0.0.2", 3).unwrap();
        assert_eq!(off.scheme(), "http");
        assert_eq!(off.warnings.len(), 1, "{:?}", off.warnings);
        for (host, n) in [("127.0.0.1", 3), ("10.0.0.2", 1)] {
            let quiet = NodeTls::load(&TlsArgs::default(), host, n).unwrap();
            assert!(quiet.warnings.is_empty(), "{host} {n}");
        }
    }
}
