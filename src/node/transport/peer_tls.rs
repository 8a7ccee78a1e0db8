//! Mutual TLS on the peer port: both sides present a certificate from the cluster's CA
//! and check the other's, and a certificate names the member entries (`HOST:ACTOR_PORT`
//! of the member list) its holder may speak for.
//!
//! A member entry is named by a URI subject alternative name
//! `concierge://member/HOST:ACTOR_PORT` ([`member_uri`]); DNS and IP names play no part
//! here (the member list, not host names, is what peers are). Invariants:
//! - Either side's certificate chains to the configured CA (rustls, ring provider),
//!   or the TLS handshake fails; a listener requires a client certificate.
//! - [`check_member`] is the only test of who a certificate speaks for: the listener
//!   applies it to the member entry of the id the dialer's hello claims, before it acts
//!   on anything in that hello; the dialer applies it to the entry it dialed, before it
//!   trusts anything the listener says.
//! - The TLS handshake runs inside the caller's handshake deadline and gate ticket:
//!   this module adds no buffering of its own beyond rustls's.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// The scheme and path before the member entry in a certificate's URI name.
pub const MEMBER_URI_PREFIX: &str = "concierge://member/";

/// The URI subject alternative name that names member entry `addr` (`HOST:ACTOR_PORT`).
pub fn member_uri(addr: &str) -> String {
    format!("{MEMBER_URI_PREFIX}{addr}")
}

/// The member entries a certificate (DER) names, in its order.
pub fn member_names(cert: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut out = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name {
                if let Some(addr) = uri.strip_prefix(MEMBER_URI_PREFIX) {
                    out.push(addr.to_string());
                }
            }
        }
    }
    Ok(out)
}

/// Ok when `cert` names member entry `addr`; else why not.
pub fn check_member(cert: &CertificateDer<'_>, addr: &str) -> Result<(), String> {
    let names = member_names(cert)?;
    if names.iter().any(|n| n == addr) {
        Ok(())
    } else if names.is_empty() {
        Err(format!(
            "its certificate names no member (no {MEMBER_URI_PREFIX}HOST:PORT name), \
             so it cannot be member {addr}"
        ))
    } else {
        Err(format!(
            "its certificate names member(s) {names:?}, not {addr}"
        ))
    }
}

/// The TLS side of the peer port, both roles.
#[derive(Clone)]
pub struct PeerTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

/// Why the listener's TLS handshake failed.
#[derive(Debug)]
pub struct TlsFailure {
    pub message: String,
    /// The other side spoke TLS but its certificate was refused (or missing): a
    /// misconfigured or foreign peer, worth a warning. Otherwise (garbage, a closed or
    /// plaintext connection) it is the noise any open port gets.
    pub about_certificate: bool,
}

impl std::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn about_certificate(e: &std::io::Error) -> bool {
    matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        Some(
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::AlertReceived(_)
        )
    )
}

/// A TLS stream of either role, with the other side's leaf certificate.
pub struct Secured<S> {
    pub stream: S,
    pub peer_cert: CertificateDer<'static>,
}

impl PeerTls {
    /// Both roles from this node's chain (leaf first), its key, and the CA(s) every
    /// member's certificate chains to.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        roots: RootCertStore,
    ) -> Result<PeerTls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(roots);
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| format!("the peer CA: {e}"))?;
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("peer TLS: {e}"))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("the peer certificate and key: {e}"))?;
        let client = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("peer TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainVerifier { roots, provider }))
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("the peer certificate and key: {e}"))?;
        Ok(PeerTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }

    /// The listener's TLS handshake: on success the dialer's certificate chained to the
    /// CA (which member it names is the caller's check, once it knows the claimed id).
    pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
    ) -> Result<Secured<tokio_rustls::server::TlsStream<S>>, TlsFailure> {
        let stream = self.acceptor.accept(stream).await.map_err(|e| TlsFailure {
            about_certificate: about_certificate(&e),
            message: format!("TLS: {e}"),
        })?;
        let peer_cert =
            first_cert(stream.get_ref().1.peer_certificates()).map_err(|message| TlsFailure {
                message,
                about_certificate: true,
            })?;
        Ok(Secured { stream, peer_cert })
    }

    /// The dialer's TLS handshake to member entry `addr`: on success the listener's
    /// certificate chained to the CA and names `addr`.
    pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        addr: &str,
    ) -> Result<Secured<tokio_rustls::client::TlsStream<S>>, String> {
        // The server name only fills SNI; the member name is checked below instead.
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_matches(|c| c == '[' || c == ']');
        let name = ServerName::try_from(host.to_string())
            .or_else(|_| ServerName::try_from("concierge-member"))
            .map_err(|e| format!("TLS: a server name for {addr}: {e}"))?;
        let stream = self.connector.connect(name, stream).await.map_err(|e| {
            if e.to_string().contains("InvalidContentType") {
                format!(
                    "TLS: {e} (the peer answered without TLS: is peer TLS off on it? \
                     every member must set PEER_TLS_* or none)"
                )
            } else {
                format!("TLS: {e}")
            }
        })?;
        let peer_cert = first_cert(stream.get_ref().1.peer_certificates())?;
        check_member(&peer_cert, addr).map_err(|why| format!("member {addr}: {why}"))?;
        Ok(Secured { stream, peer_cert })
    }
}

fn first_cert(
    certs: Option<&[CertificateDer<'static>]>,
) -> Result<CertificateDer<'static>, String> {
    certs
        .and_then(|c| c.first())
        .cloned()
        .ok_or_else(|| "TLS: the other side presented no certificate".to_string())
}

/// Checks the listener's chain to the CA, its validity and key usage, and its
/// handshake signatures, but not a host name: a peer is named by its member URI
/// ([`check_member`], right after the handshake).
#[derive(Debug)]
struct ChainVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
#[path = "peer_tls_tests.rs"]
mod tests;
