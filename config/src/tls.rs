//! Consul's TLS keys: the `tls { defaults, internal_rpc, https, grpc }` stanza, and their
//! resolution into the one setting Meridian acts on, [`InternalRpcTls`] (server RPC and
//! everything that dials it). Pure: no I/O.
//!
//! Resolution is Consul's (`agent/config/builder.go` `buildTLSConfig`, `deprecated.go`):
//!
//! ```text
//!  field = tls.internal_rpc.X  ?? tls.defaults.X  ?? deprecated top-level X
//!          (verify_incoming:      internal_rpc ?? verify_incoming_rpc ?? defaults ?? verify_incoming)
//!          (verify_server_hostname: internal_rpc ?? top-level verify_server_hostname)
//!  verify_outgoing |= verify_server_hostname        (CVE-2018-19653)
//! ```
//!
//! `https` and `grpc` are accepted and warned about as having no effect (Meridian serves no
//! HTTPS or external gRPC yet; `consul_keys.rs`). `tls_min_version` and `tls_cipher_suites`
//! are warned about too: Meridian always offers TLS 1.3 and 1.2 with rustls' suites.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// The `tls` stanza (Consul 1.12+). Only `defaults` and `internal_rpc` are typed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Values every protocol inherits unless it sets its own.
    pub defaults: TlsProtocolConfig,
    /// Server RPC (raft, forwarding) and the connections agents make to it.
    pub internal_rpc: TlsProtocolConfig,
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
}

/// The deprecated top-level spellings (`ca_file`, `verify_incoming_rpc`, ...), as set.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DeprecatedTls<'a> {
    pub(crate) ca_file: Option<&'a Path>,
    pub(crate) cert_file: Option<&'a Path>,
    pub(crate) key_file: Option<&'a Path>,
    pub(crate) verify_incoming: Option<bool>,
    pub(crate) verify_incoming_rpc: Option<bool>,
    pub(crate) verify_outgoing: Option<bool>,
    pub(crate) verify_server_hostname: Option<bool>,
}

/// What internal RPC TLS resolves to: the files and the three verify flags, for the agent
/// to hand to `meridian-tls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InternalRpcTls {
    /// CA certificate(s) file.
    pub ca_file: Option<PathBuf>,
    /// This agent's certificate file.
    pub cert_file: Option<PathBuf>,
    /// Its private key file.
    pub key_file: Option<PathBuf>,
    /// Refuse incoming connections without a verified client certificate.
    pub verify_incoming: bool,
    /// Dial servers over TLS (implied by `verify_server_hostname`).
    pub verify_outgoing: bool,
    /// Check that servers' certificates are valid for `server.<dc>.<domain>`.
    pub verify_server_hostname: bool,
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
}

impl TlsConfig {
    fn resolve(&self, dep: &DeprecatedTls<'_>) -> Resolved {
        let (i, d) = (&self.internal_rpc, &self.defaults);
        let path = |p: Option<&Path>| p.map(Path::to_path_buf);
        let verify_incoming = pick([
            (i.verify_incoming, "tls.internal_rpc.verify_incoming"),
            (dep.verify_incoming_rpc, "verify_incoming_rpc"),
            (d.verify_incoming, "tls.defaults.verify_incoming"),
            (dep.verify_incoming, "verify_incoming"),
        ]);
        Resolved {
            ca_file: pick([
                (i.ca_file.clone(), "tls.internal_rpc.ca_file"),
                (d.ca_file.clone(), "tls.defaults.ca_file"),
                (path(dep.ca_file), "ca_file"),
            ]),
            cert_file: pick([
                (i.cert_file.clone(), "tls.internal_rpc.cert_file"),
                (d.cert_file.clone(), "tls.defaults.cert_file"),
                (path(dep.cert_file), "cert_file"),
            ]),
            key_file: pick([
                (i.key_file.clone(), "tls.internal_rpc.key_file"),
                (d.key_file.clone(), "tls.defaults.key_file"),
                (path(dep.key_file), "key_file"),
            ]),
            verify_incoming,
            verify_outgoing: pick([
                (i.verify_outgoing, "tls.internal_rpc.verify_outgoing"),
                (d.verify_outgoing, "tls.defaults.verify_outgoing"),
                (dep.verify_outgoing, "verify_outgoing"),
            ]),
            verify_server_hostname: pick([
                (
                    i.verify_server_hostname,
                    "tls.internal_rpc.verify_server_hostname",
                ),
                (dep.verify_server_hostname, "verify_server_hostname"),
            ]),
        }
    }

    /// Internal RPC TLS as Consul resolves it; `None` when nothing is set.
    pub(crate) fn internal_rpc(&self, dep: &DeprecatedTls<'_>) -> Option<InternalRpcTls> {
        let r = self.resolve(dep);
        let flag = |f: &Option<Found<bool>>| f.as_ref().is_some_and(|f| f.value);
        let file = |f: &Option<Found<PathBuf>>| f.as_ref().map(|f| f.value.clone());
        let verify_server_hostname = flag(&r.verify_server_hostname);
        let out = InternalRpcTls {
            ca_file: file(&r.ca_file),
            cert_file: file(&r.cert_file),
            key_file: file(&r.key_file),
            verify_incoming: flag(&r.verify_incoming),
            verify_outgoing: flag(&r.verify_outgoing) || verify_server_hostname,
            verify_server_hostname,
        };
        (out != InternalRpcTls::default()).then_some(out)
    }

    /// Consul's rules, each error naming the key that set the value at fault and its file.
    pub(crate) fn validate(
        &self,
        dep: &DeprecatedTls<'_>,
        dep_ca_path: Option<&Path>,
    ) -> Result<(), ConfigError> {
        for (key, path) in [
            (
                "tls.internal_rpc.ca_path",
                self.internal_rpc.ca_path.as_deref(),
            ),
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
        if self.defaults.verify_server_hostname.is_some() {
            return Err(ConfigError::invalid(
                "tls.defaults.verify_server_hostname",
                "verify_server_hostname is only valid in the tls.internal_rpc stanza",
            ));
        }
        let r = self.resolve(dep);
        match (&r.cert_file, &r.key_file) {
            (Some(c), None) => return Err(missing_pair(c, "key_file")),
            (None, Some(k)) => return Err(missing_pair(k, "cert_file")),
            _ => {}
        }
        let on = |f: &Option<Found<bool>>| f.as_ref().filter(|f| f.value).map(|f| f.key);
        let outgoing = on(&r.verify_outgoing).map(|k| (k, "")).or_else(|| {
            on(&r.verify_server_hostname).map(|k| (k, " (which implies verify_outgoing)"))
        });
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
                     set tls.defaults.ca_file or tls.internal_rpc.ca_file",
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
        Ok(())
    }
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
