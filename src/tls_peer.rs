//! Peer TLS at start-up: the `PEER_TLS_*` flags of `concierge serve`, the PEM files
//! they name (read and checked once), turned into the transport's
//! [`PeerTls`](crate::node::transport::peer_tls::PeerTls).
//!
//! The peer port has flags of its own rather than reusing the client port's
//! certificate: a peer certificate must name its member entry
//! (`concierge://member/HOST:ACTOR_PORT`) and be trusted by a cluster CA that admits
//! members only, while the client port's certificate may come from a CA clients
//! trust for other reasons. `concierge certs` makes node certificates fit for both, so
//! a development cluster points both at the same files.
//!
//! Invariants, checked by [`load`] before the node starts (a failure exits 2):
//! - Peer TLS is on exactly when all three of `PEER_TLS_CERT_FILE`, `PEER_TLS_KEY_FILE`
//!   and `PEER_TLS_CA_FILE` are given; one or two of them are refused.
//! - The key is the certificate's, the certificate is within its validity period,
//!   chains to `PEER_TLS_CA_FILE`, is fit for TLS client and server use, and names this
//!   node's member entry.

use crate::node::transport::peer_tls::{check_member, PeerTls};
use crate::tls::{certificates, err, now_unix, provider, read, roots, TlsError};
use clap::Args;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivateKeyDer, UnixTime};
use std::path::PathBuf;
use std::sync::Arc;

/// The peer-TLS flags of `concierge serve`, each also an environment variable.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerTlsArgs {
    /// This node's peer certificate (PEM, leaf first), from the cluster CA, naming
    /// this node's member entry as the URI concierge://member/HOST:ACTOR_PORT. Turns on
    /// mutual TLS on the peer port; needs PEER_TLS_KEY_FILE and PEER_TLS_CA_FILE.
    #[arg(long, env = "PEER_TLS_CERT_FILE", value_name = "PEM")]
    pub peer_tls_cert: Option<PathBuf>,
    /// The private key of PEER_TLS_CERT_FILE (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "PEER_TLS_KEY_FILE", value_name = "PEM")]
    pub peer_tls_key: Option<PathBuf>,
    /// The cluster CA(s) (PEM): every member's peer certificate must chain to one.
    #[arg(long, env = "PEER_TLS_CA_FILE", value_name = "PEM")]
    pub peer_tls_ca: Option<PathBuf>,
}

/// Reads and checks the files `args` names for the member `member` (`HOST:ACTOR_PORT`);
/// `Ok(None)` when peer TLS is off.
pub fn load(args: &PeerTlsArgs, member: &str) -> Result<Option<Arc<PeerTls>>, TlsError> {
    let (cert_path, key_path, ca_path) =
        match (&args.peer_tls_cert, &args.peer_tls_key, &args.peer_tls_ca) {
            (None, None, None) => return Ok(None),
            (Some(c), Some(k), Some(a)) => (c, k, a),
            _ => {
                let missing: Vec<&str> = [
                    ("PEER_TLS_CERT_FILE", args.peer_tls_cert.is_none()),
                    ("PEER_TLS_KEY_FILE", args.peer_tls_key.is_none()),
                    ("PEER_TLS_CA_FILE", args.peer_tls_ca.is_none()),
                ]
                .into_iter()
                .filter_map(|(name, absent)| absent.then_some(name))
                .collect();
                return err(format!(
                    "peer TLS needs PEER_TLS_CERT_FILE, PEER_TLS_KEY_FILE and PEER_TLS_CA_FILE \
                     together; missing: {}",
                    missing.join(", ")
                ));
            }
        };
    let cert_pem = read("certificate", "PEER_TLS_CERT_FILE", cert_path)?;
    let key_pem = read("key", "PEER_TLS_KEY_FILE", key_path)?;
    let ca_pem = read("CA certificate", "PEER_TLS_CA_FILE", ca_path)?;
    let chain = certificates("certificate", "PEER_TLS_CERT_FILE", cert_path, &cert_pem)?;
    let store = roots("PEER_TLS_CA_FILE", ca_path, &ca_pem)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).or_else(|e| {
        err(format!(
            "PEER_TLS_KEY_FILE: {} holds no usable PEM private key: {e}",
            key_path.display()
        ))
    })?;
    let cert_name = cert_path.display();

    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .or_else(|e| err(format!("PEER_TLS_KEY_FILE: {}: {e}", key_path.display())))?;
    if let Err(e) = rustls::sign::CertifiedKey::new(chain.clone(), signing_key).keys_match() {
        return err(format!(
            "PEER_TLS_KEY_FILE {} is not the key of PEER_TLS_CERT_FILE {cert_name}: {e}",
            key_path.display()
        ));
    }
    // Chains to the CA, is within its validity period and fit for client use (what
    // every listener checks of it); server use is checked by every dialer alike.
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now_unix()).unwrap_or(0),
    ));
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(store.clone()),
        Arc::clone(&provider),
    )
    .build()
    .or_else(|e| err(format!("PEER_TLS_CA_FILE {}: {e}", ca_path.display())))?;
    verifier
        .verify_client_cert(&chain[0], &chain[1..], now)
        .or_else(|e| {
            err(format!(
                "PEER_TLS_CERT_FILE {cert_name} is not a valid client certificate from \
                 PEER_TLS_CA_FILE {}: {e}",
                ca_path.display()
            ))
        })?;
    check_member(&chain[0], member).or_else(|why| {
        err(format!(
            "PEER_TLS_CERT_FILE {cert_name}: this node is member {member} (HOST:ACTOR_PORT), \
             but {why}; make it with `concierge certs --members`"
        ))
    })?;
    let tls = PeerTls::new(chain, key, store).or_else(|e| err(format!("peer TLS: {e}")))?;
    Ok(Some(Arc::new(tls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_or_two_of_the_three_flags_are_refused() {
        let args = |c: bool, k: bool, a: bool| PeerTlsArgs {
            peer_tls_cert: c.then(|| "/c.pem".into()),
            peer_tls_key: k.then(|| "/k.pem".into()),
            peer_tls_ca: a.then(|| "/ca.pem".into()),
        };
        assert!(load(&args(false, false, false), "h:1").unwrap().is_none());
        for (c, k, a) in [
            (true, false, false),
            (false, true, false),
            (false, false, true),
            (true, true, false),
            (true, false, true),
            (false, true, true),
        ] {
            let e = load(&args(c, k, a), "h:1").unwrap_err();
            assert!(e.0.contains("missing"), "{e}");
        }
    }
}
