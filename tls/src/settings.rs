//! What an agent's TLS is made of: the three files, Consul's three verify flags, what the
//! TLS is for (internal RPC or the HTTPS API), the lowest version and the TLS 1.2 cipher
//! suites, and the rules between them (Consul's `tlsutil` checks). Plain data; no I/O.

use std::path::PathBuf;

use crate::error::TlsError;

/// The PEM files of one TLS identity (Consul's `ca_file`, `cert_file`, `key_file`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate(s) peers must chain to.
    pub ca_file: Option<PathBuf>,
    /// This agent's certificate (chain), presented to peers.
    pub cert_file: Option<PathBuf>,
    /// Its private key.
    pub key_file: Option<PathBuf>,
}

/// What a TLS configuration serves: decides ALPN and whether plaintext is ever accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Purpose {
    /// Internal gRPC (server RPC on :8300, gateways): ALPN `h2`; plaintext is accepted
    /// unless `verify_incoming`, as on Consul's RPC port.
    #[default]
    Rpc,
    /// The HTTPS API: ALPN `h2` and `http/1.1`; plaintext is always refused.
    Https,
}

impl Purpose {
    /// How logs name a connection of this kind.
    pub fn label(self) -> &'static str {
        match self {
            Purpose::Rpc => "RPC",
            Purpose::Https => "HTTPS",
        }
    }
}

/// The lowest TLS version offered (Consul's `tls_min_version`). rustls speaks 1.2 and 1.3
/// only, so Consul's `TLSv1_0` and `TLSv1_1` mean 1.2 here (the config layer warns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MinVersion {
    /// TLS 1.2 and 1.3 (Consul's default, `TLSv1_2`).
    #[default]
    Tls12,
    /// TLS 1.3 only (`TLSv1_3`).
    Tls13,
}

/// The files plus Consul's verify flags, version floor and cipher suites.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// The files.
    pub files: TlsFiles,
    /// Require every incoming connection to be TLS with a client certificate that chains to
    /// the CA. Off: plaintext and TLS without a client certificate are both accepted.
    pub verify_incoming: bool,
    /// Dial peers over TLS and check that their certificate chains to the CA.
    pub verify_outgoing: bool,
    /// Also check that a peer's certificate is valid for the name dialled
    /// (`server.<dc>.<domain>`). Implies `verify_outgoing`.
    pub verify_server_hostname: bool,
    /// What this TLS serves.
    pub purpose: Purpose,
    /// The lowest version offered.
    pub min_version: MinVersion,
    /// Consul's `tls_cipher_suites`: the TLS 1.2 suites offered, by their IANA (Go) names;
    /// empty offers all of rustls'. TLS 1.3 suites are not configurable, as in Consul.
    pub cipher_suites: Vec<String>,
}

impl TlsSettings {
    /// Whether this agent can accept TLS (it has a certificate and key).
    pub fn serves_tls(&self) -> bool {
        self.files.cert_file.is_some() && self.files.key_file.is_some()
    }

    /// Whether outgoing connections use TLS (`verify_outgoing`, or `verify_server_hostname`
    /// which implies it, as Consul since CVE-2018-19653).
    pub fn dials_tls(&self) -> bool {
        self.verify_outgoing || self.verify_server_hostname
    }

    /// Consul's rules: a certificate needs its key and the other way round; dialling with
    /// TLS needs a CA; verifying incoming connections needs a CA and a certificate.
    pub fn check(&self) -> Result<(), TlsError> {
        let f = &self.files;
        match (&f.cert_file, &f.key_file) {
            (Some(c), None) => {
                return Err(TlsError::Settings(format!(
                    "cert_file {} is set but key_file is not; set both or neither",
                    c.display()
                )));
            }
            (None, Some(k)) => {
                return Err(TlsError::Settings(format!(
                    "key_file {} is set but cert_file is not; set both or neither",
                    k.display()
                )));
            }
            _ => {}
        }
        if self.dials_tls() && f.ca_file.is_none() {
            let why = if self.verify_outgoing {
                "verify_outgoing"
            } else {
                "verify_server_hostname (which implies verify_outgoing)"
            };
            return Err(TlsError::Settings(format!(
                "{why} is set but no ca_file is: outgoing TLS needs the CA to verify peers"
            )));
        }
        if self.verify_incoming && f.ca_file.is_none() {
            return Err(TlsError::Settings(
                "verify_incoming is set but no ca_file is: client certificates are verified against it".into(),
            ));
        }
        if self.verify_incoming && !self.serves_tls() {
            return Err(TlsError::Settings(
                "verify_incoming is set but cert_file and key_file are not: the server needs its own certificate".into(),
            ));
        }
        if self.purpose == Purpose::Https && !self.serves_tls() {
            return Err(TlsError::Settings(
                "the HTTPS port needs a certificate: set cert_file and key_file".into(),
            ));
        }
        crate::suites::select(&self.cipher_suites)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(ca: bool, cert: bool, key: bool) -> TlsFiles {
        TlsFiles {
            ca_file: ca.then(|| "ca.pem".into()),
            cert_file: cert.then(|| "c.pem".into()),
            key_file: key.then(|| "k.pem".into()),
        }
    }

    #[test]
    fn consuls_rules_hold() {
        let s = |files, vi, vo, vsh| TlsSettings {
            files,
            verify_incoming: vi,
            verify_outgoing: vo,
            verify_server_hostname: vsh,
            ..TlsSettings::default()
        };
        assert!(
            s(files(false, false, false), false, false, false)
                .check()
                .is_ok()
        );
        assert!(s(files(true, true, true), true, true, true).check().is_ok());
        let err = |x: TlsSettings| x.check().unwrap_err().to_string();
        assert!(err(s(files(true, true, false), false, false, false)).contains("key_file"));
        assert!(err(s(files(true, false, true), false, false, false)).contains("cert_file"));
        assert!(err(s(files(false, false, false), false, true, false)).contains("ca_file"));
        assert!(err(s(files(false, false, false), false, false, true)).contains("implies"));
        assert!(err(s(files(false, true, true), true, false, false)).contains("ca_file"));
        assert!(err(s(files(true, false, false), true, false, false)).contains("cert_file"));
        assert!(s(files(true, false, false), false, false, true).dials_tls());
        let https = |files| TlsSettings {
            files,
            purpose: Purpose::Https,
            ..TlsSettings::default()
        };
        assert!(https(files(false, true, true)).check().is_ok());
        assert!(err(https(files(true, false, false))).contains("HTTPS port needs a certificate"));
        let suites = |names: &[&str]| TlsSettings {
            cipher_suites: names.iter().map(|n| n.to_string()).collect(),
            ..TlsSettings::default()
        };
        assert!(
            suites(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"])
                .check()
                .is_ok()
        );
        assert!(err(suites(&["TLS_BOGUS"])).contains("TLS_BOGUS"));
    }
}
