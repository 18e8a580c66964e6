//! Consul's TLS keys: the `tls { defaults, internal_rpc, https, grpc }` stanza, and their
//! resolution into what Meridian acts on, a [`ResolvedTls`] per protocol: server RPC (and
//! everything that dials it) and the HTTPS API. Pure: no I/O.
//!
//! Resolution is Consul's (`agent/config/builder.go` `buildTLSConfig`, `deprecated.go`),
//! with `P` the protocol's block (`internal_rpc` or `https`):
//!
//! ```text
//!  field = tls.P.X  ?? tls.defaults.X  ?? deprecated top-level X
//!          (verify_incoming:  tls.P ?? verify_incoming_rpc|verify_incoming_https ?? defaults ?? verify_incoming)
//!          (verify_server_hostname: internal_rpc ?? top-level verify_server_hostname; RPC only)
//!  verify_outgoing |= verify_server_hostname        (CVE-2018-19653)
//! ```
//!
//! `grpc` is accepted and warned about as having no effect (Meridian serves no external
//! gRPC). `tls_min_version` takes effect with rustls' floor: `TLSv1_0` and `TLSv1_1` offer
//! 1.2 and 1.3 (the agent warns); `tls_cipher_suites` chooses the TLS 1.2 suites.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// The `tls` stanza (Consul 1.12+). `defaults`, `internal_rpc` and `https` are typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Values every protocol inherits unless it sets its own.
    pub defaults: TlsProtocolConfig,
    /// Server RPC (raft, forwarding) and the connections agents make to it.
    pub internal_rpc: TlsProtocolConfig,
    /// The HTTPS API (`ports.https`).
    pub https: TlsProtocolConfig,
}

/// One block of the `tls` stanza.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsProtocolConfig {
    /// PEM file of the CA certificate(s) peers must chain to.
    pub ca_file: Option<PathBuf>,
    /// Consul's directory of CA certificates: refused (use `ca_file`).
    pub ca_path: Option<PathBuf>,
    /// PEM file of this agent's certificate.
    pub cert_file: Option<PathBuf>,
    /// PEM file of its private key.
    pub key_file: Option<PathBuf>,
    /// Require TLS with a client certificate on incoming connections.
    pub verify_incoming: Option<bool>,
    /// Dial over TLS and verify the peer's chain.
    pub verify_outgoing: Option<bool>,
    /// Also verify the peer's name (`server.<dc>.<domain>`); only valid in `internal_rpc`.
    pub verify_server_hostname: Option<bool>,
    /// The lowest TLS version offered: `TLSv1_0` .. `TLSv1_3` (default `TLSv1_2`).
    pub tls_min_version: Option<String>,
    /// Comma-separated TLS 1.2 cipher suites (IANA names); default: all rustls offers.
    pub tls_cipher_suites: Option<String>,
}

/// Which listener's TLS is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProtocol {
    /// Server RPC on :8300 and the connections to it (`tls.internal_rpc`).
    InternalRpc,
    /// The HTTPS API (`tls.https`).
    Https,
}

/// A `tls_min_version` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLSv1_0` (`tls10`).
    V1_0,
    /// `TLSv1_1` (`tls11`).
    V1_1,
    /// `TLSv1_2` (`tls12`), Consul's default.
    #[default]
    V1_2,
    /// `TLSv1_3` (`tls13`).
    V1_3,
}

impl TlsVersion {
    /// Consul's spellings, current (`TLSv1_2`) and pre-1.12 (`tls12`).
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "TLSv1_0" | "tls10" => TlsVersion::V1_0,
            "TLSv1_1" | "tls11" => TlsVersion::V1_1,
            "TLSv1_2" | "tls12" => TlsVersion::V1_2,
            "TLSv1_3" | "tls13" => TlsVersion::V1_3,
            _ => return None,
        })
    }
}

/// What one protocol's TLS resolves to: the files, the verify flags, the version floor and
/// the cipher suites, for the agent to hand to `meridian-tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedTls {
    /// CA certificate(s) file.
    pub ca_file: Option<PathBuf>,
    /// This agent's certificate file.
    pub cert_file: Option<PathBuf>,
    /// Its private key file.
    pub key_file: Option<PathBuf>,
    /// Refuse incoming connections without a verified client certificate.
    pub verify_incoming: bool,
    /// Dial servers over TLS (implied by `verify_server_hostname`; RPC only).
    pub verify_outgoing: bool,
    /// Check that servers' certificates are valid for `server.<dc>.<domain>` (RPC only).
    pub verify_server_hostname: bool,
    /// The lowest version offered.
    pub min_version: TlsVersion,
    /// The TLS 1.2 suites offered (empty: all).
    pub cipher_suites: Vec<String>,
}

/// The deprecated top-level spellings (`ca_file`, `verify_incoming_rpc`, ...), as set.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DeprecatedTls<'a> {
    pub(crate) ca_file: Option<&'a Path>,
    pub(crate) cert_file: Option<&'a Path>,
    pub(crate) key_file: Option<&'a Path>,
    pub(crate) verify_incoming: Option<bool>,
    pub(crate) verify_incoming_rpc: Option<bool>,
    pub(crate) verify_incoming_https: Option<bool>,
    pub(crate) verify_outgoing: Option<bool>,
    pub(crate) verify_server_hostname: Option<bool>,
    pub(crate) tls_min_version: Option<&'a str>,
    pub(crate) tls_cipher_suites: Option<&'a str>,
}

/// A resolved value and the key that set it (for error messages).
struct Found<T> {
    value: T,
    key: &'static str,
}

/// The first candidate that is set, in precedence order.
fn pick<T, const N: usize>(candidates: [(Option<T>, &'static str); N]) -> Option<Found<T>> {
    candidates
        .into_iter()
        .find_map(|(v, key)| v.map(|value| Found { value, key }))
}

/// The resolution with, for each value, the key it came from.
struct Resolved {
    ca_file: Option<Found<PathBuf>>,
    cert_file: Option<Found<PathBuf>>,
    key_file: Option<Found<PathBuf>>,
    verify_incoming: Option<Found<bool>>,
    verify_outgoing: Option<Found<bool>>,
    verify_server_hostname: Option<Found<bool>>,
    tls_min_version: Option<Found<String>>,
    tls_cipher_suites: Option<Found<String>>,
}

/// `tls.<block>.<field>` for each protocol, spelled out so errors can name a `&'static str`.
macro_rules! key {
    ($proto:expr, $field:literal) => {
        match $proto {
            TlsProtocol::InternalRpc => concat!("tls.internal_rpc.", $field),
            TlsProtocol::Https => concat!("tls.https.", $field),
        }
    };
}

impl TlsConfig {
    fn block(&self, proto: TlsProtocol) -> &TlsProtocolConfig {
        match proto {
            TlsProtocol::InternalRpc => &self.internal_rpc,
            TlsProtocol::Https => &self.https,
        }
    }

    fn resolve(&self, proto: TlsProtocol, dep: &DeprecatedTls<'_>) -> Resolved {
        let (p, d) = (self.block(proto), &self.defaults);
        let path = |p: Option<&Path>| p.map(Path::to_path_buf);
        let string = |s: Option<&str>| s.map(str::to_string);
        let (dep_incoming, dep_incoming_key) = match proto {
            TlsProtocol::InternalRpc => (dep.verify_incoming_rpc, "verify_incoming_rpc"),
            TlsProtocol::Https => (dep.verify_incoming_https, "verify_incoming_https"),
        };
        let rpc = proto == TlsProtocol::InternalRpc;
        Resolved {
            ca_file: pick([
                (p.ca_file.clone(), key!(proto, "ca_file")),
                (d.ca_file.clone(), "tls.defaults.ca_file"),
                (path(dep.ca_file), "ca_file"),
            ]),
            cert_file: pick([
                (p.cert_file.clone(), key!(proto, "cert_file")),
                (d.cert_file.clone(), "tls.defaults.cert_file"),
                (path(dep.cert_file), "cert_file"),
            ]),
            key_file: pick([
                (p.key_file.clone(), key!(proto, "key_file")),
                (d.key_file.clone(), "tls.defaults.key_file"),
                (path(dep.key_file), "key_file"),
            ]),
            verify_incoming: pick([
                (p.verify_incoming, key!(proto, "verify_incoming")),
                (dep_incoming, dep_incoming_key),
                (d.verify_incoming, "tls.defaults.verify_incoming"),
                (dep.verify_incoming, "verify_incoming"),
            ]),
            // The HTTPS listener dials nothing.
            verify_outgoing: pick([
                (p.verify_outgoing, key!(proto, "verify_outgoing")),
                (d.verify_outgoing, "tls.defaults.verify_outgoing"),
                (dep.verify_outgoing, "verify_outgoing"),
            ])
            .filter(|_| rpc),
            verify_server_hostname: pick([
                (
                    p.verify_server_hostname,
                    key!(proto, "verify_server_hostname"),
                ),
                (dep.verify_server_hostname, "verify_server_hostname"),
            ])
            .filter(|_| rpc),
            tls_min_version: pick([
                (p.tls_min_version.clone(), key!(proto, "tls_min_version")),
                (d.tls_min_version.clone(), "tls.defaults.tls_min_version"),
                (string(dep.tls_min_version), "tls_min_version"),
            ]),
            tls_cipher_suites: pick([
                (
                    p.tls_cipher_suites.clone(),
                    key!(proto, "tls_cipher_suites"),
                ),
                (
                    d.tls_cipher_suites.clone(),
                    "tls.defaults.tls_cipher_suites",
                ),
                (string(dep.tls_cipher_suites), "tls_cipher_suites"),
            ]),
        }
    }

    /// `proto`'s TLS as Consul resolves it; `None` when none of its keys is set.
    pub(crate) fn resolved(
        &self,
        proto: TlsProtocol,
        dep: &DeprecatedTls<'_>,
    ) -> Option<ResolvedTls> {
        let r = self.resolve(proto, dep);
        let flag = |f: &Option<Found<bool>>| f.as_ref().is_some_and(|f| f.value);
        let file = |f: &Option<Found<PathBuf>>| f.as_ref().map(|f| f.value.clone());
        let verify_server_hostname = flag(&r.verify_server_hostname);
        let out = ResolvedTls {
            ca_file: file(&r.ca_file),
            cert_file: file(&r.cert_file),
            key_file: file(&r.key_file),
            verify_incoming: flag(&r.verify_incoming),
            verify_outgoing: flag(&r.verify_outgoing) || verify_server_hostname,
            verify_server_hostname,
            // Validation refused anything else.
            min_version: r
                .tls_min_version
                .as_ref()
                .and_then(|v| TlsVersion::parse(&v.value))
                .unwrap_or_default(),
            cipher_suites: r
                .tls_cipher_suites
                .as_ref()
                .map(|f| suites(&f.value))
                .unwrap_or_default(),
        };
        (out != ResolvedTls::default()).then_some(out)
    }

    /// Consul's rules, each error naming the key that set the value at fault and its file.
    /// `https_port` says whether the HTTPS listener is on (it then needs a certificate).
    pub(crate) fn validate(
        &self,
        dep: &DeprecatedTls<'_>,
        dep_ca_path: Option<&Path>,
        https_port: bool,
    ) -> Result<(), ConfigError> {
        for (key, path) in [
            (
                "tls.internal_rpc.ca_path",
                self.internal_rpc.ca_path.as_deref(),
            ),
            ("tls.https.ca_path", self.https.ca_path.as_deref()),
            ("tls.defaults.ca_path", self.defaults.ca_path.as_deref()),
            ("ca_path", dep_ca_path),
        ] {
            if let Some(p) = path {
                return Err(ConfigError::invalid(
                    key,
                    format!(
                        "{} is a directory of CA certificates, which Meridian does not support; \
                         put the CA certificate(s) in one PEM file and set ca_file instead",
                        p.display()
                    ),
                ));
            }
        }
        for (key, set) in [
            (
                "tls.defaults.verify_server_hostname",
                self.defaults.verify_server_hostname,
            ),
            (
                "tls.https.verify_server_hostname",
                self.https.verify_server_hostname,
            ),
        ] {
            if set.is_some() {
                return Err(ConfigError::invalid(
                    key,
                    "verify_server_hostname is only valid in the tls.internal_rpc stanza",
                ));
            }
        }
        validate_protocol(&self.resolve(TlsProtocol::InternalRpc, dep))?;
        let https = self.resolve(TlsProtocol::Https, dep);
        validate_protocol(&https)?;
        if https_port && (https.cert_file.is_none() || https.key_file.is_none()) {
            return Err(ConfigError::invalid(
                "ports.https",
                "the HTTPS listener needs a certificate: set tls.https.cert_file and \
                 tls.https.key_file (or tls.defaults.*)",
            ));
        }
        Ok(())
    }
}

/// One protocol's rules: cert and key together, the verify flags' files present, a known
/// `tls_min_version`, a non-empty cipher suite list.
fn validate_protocol(r: &Resolved) -> Result<(), ConfigError> {
    match (&r.cert_file, &r.key_file) {
        (Some(c), None) => return Err(missing_pair(c, "key_file")),
        (None, Some(k)) => return Err(missing_pair(k, "cert_file")),
        _ => {}
    }
    let on = |f: &Option<Found<bool>>| f.as_ref().filter(|f| f.value).map(|f| f.key);
    let outgoing = on(&r.verify_outgoing)
        .map(|k| (k, ""))
        .or_else(|| on(&r.verify_server_hostname).map(|k| (k, " (which implies verify_outgoing)")));
    if let (Some((key, implied)), None) = (outgoing, &r.ca_file) {
        return Err(ConfigError::invalid(
            key,
            format!(
                "is set{implied} but no ca_file is: set tls.defaults.ca_file or \
                 tls.internal_rpc.ca_file to the CA that signed the servers' certificates"
            ),
        ));
    }
    if let Some(key) = on(&r.verify_incoming) {
        if r.ca_file.is_none() {
            return Err(ConfigError::invalid(
                key,
                "is set but no ca_file is: client certificates are verified against it; \
                 set tls.defaults.ca_file",
            ));
        }
        if r.cert_file.is_none() {
            return Err(ConfigError::invalid(
                key,
                "is set but cert_file and key_file are not: the server needs its own \
                 certificate (tls.defaults.cert_file, tls.defaults.key_file)",
            ));
        }
    }
    if let Some(v) = &r.tls_min_version
        && TlsVersion::parse(&v.value).is_none()
    {
        return Err(ConfigError::invalid(
            v.key,
            format!(
                "{:?} is not a TLS version; use TLSv1_0, TLSv1_1, TLSv1_2 or TLSv1_3",
                v.value
            ),
        ));
    }
    if let Some(c) = &r.tls_cipher_suites
        && suites(&c.value).is_empty()
    {
        return Err(ConfigError::invalid(
            c.key,
            "names no cipher suite; list IANA names separated by commas, or remove the key",
        ));
    }
    Ok(())
}

/// `tls_cipher_suites`' comma-separated names.
fn suites(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn missing_pair(set: &Found<PathBuf>, missing: &str) -> ConfigError {
    ConfigError::invalid(
        set.key,
        format!(
            "{} is set but no {missing} is; a certificate and its key go together",
            set.value.display()
        ),
    )
}
