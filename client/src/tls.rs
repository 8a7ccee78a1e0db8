//! [`Tls`]: what the client trusts and shows when an endpoint is `https://`: the CA
//! that signed the nodes' certificates, and a certificate of its own for a cluster
//! that asks for one (`TLS_CLIENT_CA_FILE` on the server).
//!
//! Invariants: with a CA given, only that CA is trusted (not the system's roots);
//! without one, the system's roots are. A client certificate always comes with its
//! key. The key's bytes are never printed (`Debug` shows only whether it is set).

use crate::error::Error;
use std::fmt;
use std::path::Path;

/// TLS settings of a client; the default trusts the system's roots and shows no
/// certificate.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// PEM certificates to trust instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate (chain) and PEM private key shown to a node that asks.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("ca", &self.ca_pem.is_some())
            .field("identity", &self.identity_pem.is_some())
            .finish()
    }
}

fn read(what: &str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::InvalidArgument(format!("reading the {what} {}: {e}", path.display())))
}

impl Tls {
    /// Reads the files: `ca` (PEM certificates to trust), `cert` and `key` (a PEM
    /// certificate and its private key; both or neither).
    pub fn from_files(
        ca: Option<&Path>,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Tls, Error> {
        let ca_pem = ca.map(|p| read("CA certificate", p)).transpose()?;
        let identity_pem = match (cert, key) {
            (Some(c), Some(k)) => Some((read("client certificate", c)?, read("client key", k)?)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::InvalidArgument(
                    "a client certificate needs its key".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(Error::InvalidArgument(
                    "a client key needs its certificate".into(),
                ))
            }
        };
        Ok(Tls {
            ca_pem,
            identity_pem,
        })
    }

    /// Sets these on an HTTP client builder (rustls; every endpoint is checked
    /// against the trusted CAs, by the host name or address in its URL).
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, Error> {
        let mut builder = builder.use_rustls_tls();
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::InvalidArgument(format!("the CA certificate: {e}")))?;
            if certs.is_empty() {
                return Err(Error::InvalidArgument(
                    "the CA certificate file holds no PEM certificate".into(),
                ));
            }
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &self.identity_pem {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                Error::InvalidArgument(format!("the client certificate and key: {e}"))
            })?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_needs_its_key_and_files_must_exist() {
        let p = Path::new("/nonexistent/concierge-ca.pem");
        assert!(Tls::from_files(None, Some(p), None).is_err());
        assert!(Tls::from_files(None, None, Some(p)).is_err());
        let err = Tls::from_files(Some(p), None, None).unwrap_err();
        assert!(err.to_string().contains("concierge-ca.pem"), "{err}");
        assert_eq!(Tls::from_files(None, None, None), Ok(Tls::default()));
    }

    #[test]
    fn garbage_is_refused_and_keys_are_not_printed() {
        let tls = Tls {
            ca_pem: Some(b"not a certificate".to_vec()),
            identity_pem: Some((b"x".to_vec(), b"SECRET".to_vec())),
        };
        assert!(tls.apply(reqwest::Client::builder()).is_err());
        assert!(!format!("{tls:?}").contains("SECRET"));
    }
}
