//! Why a gateway could not start.

/// Errors of the gateway's start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The flags do not work together.
    #[error(transparent)]
    Options(#[from] crate::options::OptionsError),
    /// A gossip pool could not start.
    #[error("{pool} gossip: {source}")]
    Gossip {
        /// `LAN` or `WAN`.
        pool: &'static str,
        /// Why.
        #[source]
        source: meridian_gossip::GossipError,
    },
    /// A keyring could not be set up.
    #[error("{pool} keyring: {source}")]
    Keyring {
        /// `LAN` or `WAN`.
        pool: &'static str,
        /// Why.
        #[source]
        source: meridian_gossip::KeyringSetupError,
    },
    /// The TLS settings or files are unusable.
    #[error("tls: {0}")]
    Tls(#[from] meridian_tls::TlsError),
    /// A listener could not be bound.
    #[error("binding the {what} listener on {addr}: {source}")]
    Bind {
        /// Which one.
        what: &'static str,
        /// Where.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The data dir could not be made.
    #[error("data dir {path}: {source}")]
    DataDir {
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
