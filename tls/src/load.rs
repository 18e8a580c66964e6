//! Reading the PEM files and building the rustls configurations from them, with the ring
//! provider given explicitly (never the process default, so a second provider compiled in
//! by some dependency cannot make rustls panic; rust-stack.md §3.3).
//!
//! Server: the certificate and key, and, with `verify_incoming`, a `WebPkiClientVerifier`
//! over the CA that requires a client certificate. Client (only with `verify_outgoing`):
//! the CA as roots, the certificate and key as client identity when present, and the name
//! check per `verify_server_hostname`. TLS 1.3 and 1.2; ALPN `h2` (gRPC). Also the SHA-256
//! fingerprints of the certificate and the CAs, so an operator can see which ones a
//! process holds after a reload. Reads files; keeps no state.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::error::TlsError;
use crate::fingerprint::{Fingerprints, sha256};
use crate::settings::TlsSettings;
use crate::verify::ChainOnlyVerifier;

/// TLS 1.3 first; 1.2 for peers that lack it (Consul's default minimum is 1.2).
static VERSIONS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
/// gRPC is HTTP/2.
const ALPN_H2: &[u8] = b"h2";

/// The ring provider, explicitly.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Both configurations `settings` call for (a server one when there is a certificate, a
/// client one when outgoing connections use TLS), and the fingerprints of the files.
pub(crate) fn build(settings: &TlsSettings) -> Result<Built, TlsError> {
    settings.check()?;
    Ok(Built {
        server: server_config(settings)?,
        client: client_config(settings)?,
        fingerprints: fingerprints(settings)?,
    })
}

/// What [`build`] made.
pub(crate) struct Built {
    pub(crate) server: Option<ServerConfig>,
    pub(crate) client: Option<ClientConfig>,
    pub(crate) fingerprints: Fingerprints,
}

/// The SHA-256 fingerprints of the first certificate of `cert_file` and of every
/// certificate of `ca_file`.
fn fingerprints(s: &TlsSettings) -> Result<Fingerprints, TlsError> {
    let cert = match &s.files.cert_file {
        Some(path) => read_certs("cert_file", path)?.first().map(sha256),
        None => None,
    };
    let cas = match &s.files.ca_file {
        Some(path) => read_certs("ca_file", path)?.iter().map(sha256).collect(),
        None => Vec::new(),
    };
    Ok(Fingerprints { cert, cas })
}

fn server_config(s: &TlsSettings) -> Result<Option<ServerConfig>, TlsError> {
    let (Some(cert), Some(key)) = (&s.files.cert_file, &s.files.key_file) else {
        return Ok(None);
    };
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(VERSIONS)?;
    let builder = match (&s.files.ca_file, s.verify_incoming) {
        (Some(ca), true) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(read_roots(ca)?, provider)
                .build()
                .map_err(|e| invalid("ca_file", ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        // `check` refused verify_incoming without a CA.
        _ => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(read_certs("cert_file", cert)?, read_key(key)?)
        .map_err(|e| key_pair(cert, key, e))?;
    cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Some(cfg))
}

fn client_config(s: &TlsSettings) -> Result<Option<ClientConfig>, TlsError> {
    let Some(ca) = s.files.ca_file.as_ref().filter(|_| s.dials_tls()) else {
        return Ok(None);
    };
    let provider = provider();
    let webpki =
        WebPkiServerVerifier::builder_with_provider(read_roots(ca)?, Arc::clone(&provider))
            .build()
            .map_err(|e| invalid("ca_file", ca, e.to_string()))?;
    let builder = ClientConfig::builder_with_provider(provider).with_protocol_versions(VERSIONS)?;
    let builder = if s.verify_server_hostname {
        builder.with_webpki_verifier(webpki)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier::new(webpki)))
    };
    let mut cfg = match (&s.files.cert_file, &s.files.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(read_certs("cert_file", cert)?, read_key(key)?)
            .map_err(|e| key_pair(cert, key, e))?,
        _ => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Some(cfg))
}

/// Every certificate in a PEM file; at least one.
pub(crate) fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(what, path, format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(what, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, SEC1 or PKCS#1).
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read("key_file", path)?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| invalid("key_file", path, format!("holds no PEM private key: {e}")))
}

/// The CA file as a root store; every certificate in it must be a usable trust anchor.
fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("ca_file", path)? {
        roots
            .add(cert)
            .map_err(|e| invalid("ca_file", path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(what: &'static str, path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::Invalid {
        what,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn key_pair(cert: &Path, key: &Path, e: rustls::Error) -> TlsError {
    let reason = match e {
        rustls::Error::InconsistentKeys(_) => "the key does not belong to the certificate".into(),
        other => other.to_string(),
    };
    TlsError::KeyPair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason,
    }
}
