//! `AgentError`: why an agent could not start or stopped.

use std::net::SocketAddr;

/// Why an agent failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The configuration is unusable at runtime.
    #[error("configuration: {0}")]
    Config(String),
    /// A feature this build does not have yet.
    #[error("{0}")]
    Unsupported(String),
    /// The TLS files could not be loaded (the error names the file).
    #[error("TLS: {0}")]
    Tls(#[from] meridian_tls::TlsError),
    /// The data directory could not be created or read.
    #[error("data directory: {0}")]
    DataDir(#[source] std::io::Error),
    /// A listener could not be bound.
    #[error("failed to bind {what} listener on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Raft or its storage failed.
    #[error("raft: {0}")]
    Raft(#[from] crate::raft::RaftError),
    /// The LAN gossip pool could not start.
    #[error("gossip: {0}")]
    Gossip(#[from] crate::gossip::GossipError),
    /// A subsystem failed while running.
    #[error("{0}")]
    Fatal(String),
}
