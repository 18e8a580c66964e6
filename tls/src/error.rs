//! The errors of this crate, one enum per subsystem: [`GenerateError`] for writing a CA or a
//! certificate (`meridian tls ... create`), [`TlsError`] for loading and reloading the files
//! an agent serves and dials with. Every variant that concerns a file names it, so an operator
//! knows which one to fix. No I/O here.

use std::path::PathBuf;

/// Why a CA or a certificate could not be generated and written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The file to write exists already; nothing was overwritten.
    #[error("{} already exists.", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CA certificate or key given to sign with does not parse.
    #[error("{}: {reason}", path.display())]
    BadCa {
        /// The CA certificate or key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A requested subject alternative name is not a valid DNS name or IP address.
    #[error("invalid subject alternative name {name:?}: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// Every index up to the limit is taken for this certificate's file name prefix.
    #[error("could not find a file name that does not already exist for {prefix}")]
    NoFreeName {
        /// The file name prefix, e.g. `dc1-server-consul`.
        prefix: String,
    },
    /// Key generation or signing failed.
    #[error("generating the certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// Why TLS settings could not be loaded (at start or on reload).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A configured file could not be read.
    #[error("{what} {}: {source}", path.display())]
    Read {
        /// Which setting names the file (`ca_file`, `cert_file`, `key_file`).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A configured file does not hold what it should (no PEM certificate, no private key,
    /// a CA that is not a valid trust anchor).
    #[error("{what} {}: {reason}", path.display())]
    Invalid {
        /// Which setting names the file.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The certificate and the key were read but do not make an identity (the key is not
    /// the certificate's, or rustls refuses the pair).
    #[error("cert_file {} and key_file {}: {reason}", cert.display(), key.display())]
    KeyPair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
    /// The settings are contradictory (a verify flag without the file it needs), or a
    /// reload would switch TLS on or off, which needs a restart.
    #[error("{0}")]
    Settings(String),
    /// rustls refused to build a configuration.
    #[error("building the TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    /// The file the error is about, if it is about one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            TlsError::Read { path, .. } | TlsError::Invalid { path, .. } => Some(path),
            TlsError::KeyPair { cert, .. } => Some(cert),
            _ => None,
        }
    }
}
