//! Reading the PEM files and building the rustls configurations from them, with the ring
//! provider given explicitly (never the process default, so a second provider compiled in
//! by some dependency cannot make rustls panic; rust-stack.md §3.3).
//!
//! Server: the certificate and key, and, with `verify_incoming`, a `WebPkiClientVerifier`
//! over the CA that requires a client certificate. Client (only with `verify_outgoing`):
//! the CA as roots, the certificate and key as client identity when present, and the name
//! check per `verify_server_hostname`. TLS 1.3 and 1.2 (or 1.3 only, `tls_min_version`),
//! the TLS 1.2 suites `tls_cipher_suites` choose; ALPN `h2` for gRPC, `h2` and `http/1.1`
//! for the HTTPS API. Also the SHA-256 fingerprints of the certificate and the CAs, so an
//! operator can see which ones a process holds after a reload. Reads files; keeps no state.

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
use crate::settings::{MinVersion, Purpose, TlsSettings};
use crate::suites;
use crate::verify::{ChainOnlyVerifier, UnverifiedServer};

/// TLS 1.3 first; 1.2 for peers that lack it (Consul's default minimum is 1.2).
static TLS12_UP: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];
/// `tls_min_version = "TLSv1_3"`.
static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
/// gRPC is HTTP/2.
const ALPN_H2: &[u8] = b"h2";
/// The HTTPS API speaks both.
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The ring provider, explicitly, with the TLS 1.2 suites `settings` choose (TLS 1.3 ones all kept).
fn provider_for(s: &TlsSettings) -> Result<Arc<CryptoProvider>, TlsError> {
    let mut p = rustls::crypto::ring::default_provider();
    if let Some(tls12) = suites::select(&s.cipher_suites)? {
        p.cipher_suites
            .retain(|c| c.tls13().is_some() || tls12.contains(c));
    }
    Ok(Arc::new(p))
}

fn versions(s: &TlsSettings) -> &'static [&'static SupportedProtocolVersion] {
    match s.min_version {
        MinVersion::Tls13 => TLS13_ONLY,
        _ => TLS12_UP,
    }
}

fn alpn(s: &TlsSettings) -> Vec<Vec<u8>> {
    match s.purpose {
        Purpose::Https => vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()],
        _ => vec![ALPN_H2.to_vec()],
    }
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
    let provider = provider_for(s)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions(s))?;
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
    cfg.alpn_protocols = alpn(s);
    Ok(Some(cfg))
}

fn client_config(s: &TlsSettings) -> Result<Option<ClientConfig>, TlsError> {
    let Some(ca) = s.files.ca_file.as_ref().filter(|_| s.dials_tls()) else {
        return Ok(None);
    };
    let provider = provider_for(s)?;
    let webpki =
        WebPkiServerVerifier::builder_with_provider(read_roots(ca)?, Arc::clone(&provider))
            .build()
            .map_err(|e| invalid("ca_file", ca, e.to_string()))?;
    let builder =
        ClientConfig::builder_with_provider(provider).with_protocol_versions(versions(s))?;
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
    cfg.alpn_protocols = alpn(s);
    Ok(Some(cfg))
}

/// A client configuration for an HTTPS API (the CLI): the CA in `ca_file` as roots (the name
/// dialled is checked), or no verification at all when `verify` is false (Consul's
/// `CONSUL_HTTP_SSL_VERIFY=false`); a client certificate when `identity` names one; ALPN
/// `h2` and `http/1.1`.
pub fn https_client_config(
    ca_file: Option<&Path>,
    identity: Option<(&Path, &Path)>,
    verify: bool,
) -> Result<ClientConfig, TlsError> {
    let settings = TlsSettings {
        purpose: Purpose::Https,
        ..TlsSettings::default()
    };
    let provider = provider_for(&settings)?;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions(&settings))?;
    let builder = match (ca_file, verify) {
        (_, false) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(UnverifiedServer(
                provider.signature_verification_algorithms,
            ))),
        (Some(ca), true) => builder.with_root_certificates(read_roots(ca)?),
        (None, true) => {
            return Err(TlsError::Settings(
                "HTTPS needs the CA that signed the agent's certificate: set -ca-file \
                 (CONSUL_CACERT), or CONSUL_HTTP_SSL_VERIFY=false to skip verification"
                    .into(),
            ));
        }
    };
    let mut cfg = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs("client_cert", cert)?, read_key(key)?)
            .map_err(|e| key_pair(cert, key, e))?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn(&settings);
    Ok(cfg)
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
