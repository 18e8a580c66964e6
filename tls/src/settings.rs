//! What an agent's TLS is made of: the three files and Consul's three verify flags, and the
//! rules between them (Consul's `tlsutil` checks). Plain data; no I/O.

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

/// The files plus Consul's verify flags for internal RPC.
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
    }
}
