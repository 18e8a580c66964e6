//! Certificate generation for `meridian tls ca create` / `meridian tls cert create`: a CA and
//! CA-signed leaf certificates with Consul's file names and subject alternative names, ECDSA
//! P-256 keys (rcgen over ring).
//!
//! Owns: key generation, certificate parameters, and writing the PEM files without ever
//! overwriting one (`create_new`; a clash is an error naming the file). Does not print: the
//! CLI says what was saved.
//!
//! ```text
//!  create_ca(dir, domain, days) ──▶ <domain>-agent-ca.pem, <domain>-agent-ca-key.pem
//!  create_cert(dir, spec, ca)   ──▶ <dc>-<kind>-<domain>-<n>.pem, ...-<n>-key.pem  (n: first free)
//! ```

use std::fs::OpenOptions;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration as TimeDuration, OffsetDateTime};

use crate::error::GenerateError;

/// Consul's default CA validity (`-days` of `tls ca create`): five years.
pub const DEFAULT_CA_DAYS: u32 = 1825;
/// Consul's default leaf validity (`-days` of `tls cert create`): one year.
pub const DEFAULT_CERT_DAYS: u32 = 365;
/// Highest index tried for a leaf's file name, as Consul's `tls cert create`.
const MAX_INDEX: u32 = 10_000;
/// Certificates start a minute in the past, so a peer whose clock is a little behind does
/// not refuse a certificate made a moment ago.
const BACKDATE: TimeDuration = TimeDuration::minutes(1);

/// What a leaf certificate is for; decides its name, SANs, usages and file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertKind {
    /// A server: `server.<dc>.<domain>`, server and client auth.
    Server,
    /// A client agent: `client.<dc>.<domain>`, server and client auth.
    Client,
    /// A WAN gateway: `gateway.<dc>.<domain>`, server and client auth (it accepts from one
    /// datacenter and dials into another).
    Gateway,
    /// A command-line client: `cli.<dc>.<domain>`, client auth only (Consul's `-cli`).
    Cli,
}

impl CertKind {
    /// The word in the certificate name and the file name (`server`, `client`, ...).
    pub fn label(self) -> &'static str {
        match self {
            CertKind::Server => "server",
            CertKind::Client => "client",
            CertKind::Gateway => "gateway",
            CertKind::Cli => "cli",
        }
    }
}

/// A leaf certificate to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// What it is for.
    pub kind: CertKind,
    /// Its datacenter (`dc1`).
    pub datacenter: String,
    /// The cluster's domain (`consul`; a trailing dot is ignored).
    pub domain: String,
    /// For a server: also valid for `<node>.server.<dc>.<domain>` (Consul's `-node`).
    pub node: Option<String>,
    /// Extra DNS SANs.
    pub dns_names: Vec<String>,
    /// Extra IP SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// Validity in days from now.
    pub days: u32,
}

/// A certificate file and its private key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemPair {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PEM, PKCS#8).
    pub key: PathBuf,
}

// === impl CertSpec ===

impl CertSpec {
    /// A spec of `kind` for `datacenter` and `domain` with Consul's defaults (one year, no
    /// extra names).
    pub fn new(kind: CertKind, datacenter: impl Into<String>, domain: impl Into<String>) -> Self {
        CertSpec {
            kind,
            datacenter: datacenter.into(),
            domain: domain.into(),
            node: None,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            days: DEFAULT_CERT_DAYS,
        }
    }

    /// The certificate's name, its common name and first DNS SAN: `server.dc1.consul`.
    pub fn name(&self) -> String {
        format!(
            "{}.{}.{}",
            self.kind.label(),
            self.datacenter,
            trim_domain(&self.domain)
        )
    }

    /// The file name prefix: `dc1-server-consul` (files are `<prefix>-<n>.pem`).
    pub fn file_prefix(&self) -> String {
        format!(
            "{}-{}-{}",
            self.datacenter,
            self.kind.label(),
            trim_domain(&self.domain)
        )
    }

    /// Every DNS SAN, as Consul: the name, `<node>.server.<dc>.<domain>` for a server with a
    /// node, `localhost`, then the extra ones; no duplicates.
    pub fn dns_sans(&self) -> Vec<String> {
        let mut out = vec![self.name()];
        if let (CertKind::Server, Some(node)) = (self.kind, &self.node) {
            out.push(format!("{node}.{}", self.name()));
        }
        out.push("localhost".into());
        out.extend(self.dns_names.iter().map(|d| d.trim().to_string()));
        dedup(out)
    }

    /// Every IP SAN: `127.0.0.1` (not for `-cli`, as Consul), then the extra ones.
    pub fn ip_sans(&self) -> Vec<IpAddr> {
        let mut out = Vec::new();
        if self.kind != CertKind::Cli {
            out.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        out.extend(self.ip_addresses.iter().copied());
        dedup(out)
    }

    fn params(&self) -> Result<CertificateParams, GenerateError> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, self.name());
        for name in self.dns_sans() {
            let ia5 =
                name.as_str()
                    .try_into()
                    .map_err(|e: rcgen::Error| GenerateError::BadName {
                        name: name.clone(),
                        reason: e.to_string(),
                    })?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        params
            .subject_alt_names
            .extend(self.ip_sans().into_iter().map(SanType::IpAddress));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = match self.kind {
            CertKind::Cli => vec![ExtendedKeyUsagePurpose::ClientAuth],
            _ => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, self.days);
        params.serial_number = Some(random_serial()?);
        Ok(params)
    }
}

/// The CA's file names for `domain`: `consul-agent-ca.pem`, `consul-agent-ca-key.pem`.
pub fn ca_file_names(domain: &str) -> (String, String) {
    let d = trim_domain(domain);
    (format!("{d}-agent-ca.pem"), format!("{d}-agent-ca-key.pem"))
}

/// Creates a CA valid for `days` and writes `<domain>-agent-ca.pem` and
/// `<domain>-agent-ca-key.pem` into `dir` (an empty path is the working directory).
/// Refuses, naming the file, if either exists.
pub fn create_ca(dir: &Path, domain: &str, days: u32) -> Result<PemPair, GenerateError> {
    let (cert_name, key_name) = ca_file_names(domain);
    let files = PemPair {
        cert: dir.join(cert_name),
        key: dir.join(key_name),
    };
    for path in [&files.cert, &files.key] {
        if path.exists() {
            return Err(GenerateError::Exists { path: path.clone() });
        }
    }
    let key = KeyPair::generate()?;
    let serial = random_serial_bytes()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    // Consul names its CA after the serial ("Consul Agent CA <n>") so two CAs are told apart.
    let [a, b, c, d, e, f, g, h, ..] = serial;
    let tag = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Meridian Agent CA {tag}"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Meridian");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    set_validity(&mut params, days);
    let cert = params.self_signed(&key)?;
    write_pair(&files, &cert.pem(), &key.serialize_pem())?;
    Ok(files)
}

/// Creates a certificate for `spec`, signed by the CA in `ca`, and writes it to the first
/// free `<prefix>-<n>.pem` / `<prefix>-<n>-key.pem` in `dir` (n from 0, as Consul).
pub fn create_cert(dir: &Path, spec: &CertSpec, ca: &PemPair) -> Result<PemPair, GenerateError> {
    let prefix = spec.file_prefix();
    let files = (0..=MAX_INDEX)
        .map(|n| PemPair {
            cert: dir.join(format!("{prefix}-{n}.pem")),
            key: dir.join(format!("{prefix}-{n}-key.pem")),
        })
        .find(|f| !f.cert.exists() && !f.key.exists())
        .ok_or(GenerateError::NoFreeName { prefix })?;
    let ca_pem = read(&ca.cert)?;
    let ca_key_pem = read(&ca.key)?;
    let ca_key = crate::sec1::key_pair(&ca_key_pem).map_err(|reason| GenerateError::BadCa {
        path: ca.key.clone(),
        reason,
    })?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|e| GenerateError::BadCa {
        path: ca.cert.clone(),
        reason: format!("not a PEM certificate: {e}"),
    })?;
    let key = KeyPair::generate()?;
    let cert = spec.params()?.signed_by(&key, &issuer)?;
    write_pair(&files, &cert.pem(), &key.serialize_pem())?;
    Ok(files)
}

/// Writes the certificate, then the key (owner-only), each only if absent. If the key cannot
/// be written the certificate is removed again, so no half pair is left behind.
fn write_pair(files: &PemPair, cert: &str, key: &str) -> Result<(), GenerateError> {
    write_new(&files.cert, cert, 0o644)?;
    if let Err(e) = write_new(&files.key, key, 0o600) {
        let _ = std::fs::remove_file(&files.cert);
        return Err(e);
    }
    Ok(())
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), GenerateError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => GenerateError::Exists {
                path: path.to_path_buf(),
            },
            _ => GenerateError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|source| GenerateError::Io {
            path: path.to_path_buf(),
            source,
        })
}

fn read(path: &Path) -> Result<String, GenerateError> {
    std::fs::read_to_string(path).map_err(|source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn set_validity(params: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + TimeDuration::days(i64::from(days));
}

/// A random serial number.
fn random_serial() -> Result<SerialNumber, GenerateError> {
    random_serial_bytes().map(|b| SerialNumber::from_slice(&b))
}

/// 16 random bytes, top bit clear (a positive serial, as RFC 5280 asks).
fn random_serial_bytes() -> Result<[u8; 16], GenerateError> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| GenerateError::Rcgen(rcgen::Error::RingUnspecified))?;
    bytes[0] &= 0x7f;
    Ok(bytes)
}

fn trim_domain(domain: &str) -> &str {
    domain.trim_matches('.')
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sans_follow_consul() {
        let mut s = CertSpec::new(CertKind::Server, "dc1", "consul.");
        s.node = Some("n1".into());
        s.dns_names = vec!["a.example".into(), "localhost".into()];
        assert_eq!(s.name(), "server.dc1.consul");
        assert_eq!(s.file_prefix(), "dc1-server-consul");
        assert_eq!(
            s.dns_sans(),
            [
                "server.dc1.consul",
                "n1.server.dc1.consul",
                "localhost",
                "a.example"
            ]
        );
        assert_eq!(s.ip_sans(), [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let g = CertSpec::new(CertKind::Gateway, "dc2", "consul");
        assert_eq!(g.name(), "gateway.dc2.consul");
        assert_eq!(g.file_prefix(), "dc2-gateway-consul");
        assert_eq!(ca_file_names("consul").0, "consul-agent-ca.pem");
    }
}
