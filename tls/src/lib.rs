//! Mutual TLS for Meridian's internal gRPC (server RPC on :8300, WAN gateways) and the
//! HTTPS API, in Consul's
//! terms: `ca_file`, `cert_file`, `key_file`, `verify_incoming`, `verify_outgoing`,
//! `verify_server_hostname`, certificates for `server.<dc>.<domain>` and
//! `gateway.<dc>.<domain>`, and `tls ca create` / `tls cert create`.
//!
//! ```text
//!  generate ── create_ca / create_cert ──▶ PEM files (Consul's names)
//!                                             │
//!  TlsSettings (files + verify flags) ──▶ TlsContext ◀── reload() on SIGHUP
//!                                          │ ArcSwap<ServerConfig>   │ ArcSwap<ClientConfig>
//!                     incoming(listener) ◀─┘                         └─▶ TlsConnector (Service<Uri>)
//!        tonic Server::serve_with_incoming_shutdown          tonic Endpoint::connect_with_connector_lazy
//! ```
//!
//! rustls runs with the ring provider, passed explicitly, never the process default; the
//! crate pulls no aws-lc-rs. Owns: certificate generation, loading, hot reload, the accept
//! stream and the connector. Must not: know about raft, forwarding or the agent's config
//! format (the agent maps its config onto [`TlsSettings`]).

pub mod connector;
pub mod context;
pub mod error;
pub mod fingerprint;
pub mod generate;
pub mod incoming;
mod load;
mod sec1;
pub mod settings;
mod suites;
mod verify;

pub use connector::{ConnectError, TlsClientIo, TlsConnector};
pub use context::TlsContext;
pub use error::{GenerateError, TlsError};
pub use fingerprint::Fingerprints;
pub use generate::{
    CertKind, CertSpec, DEFAULT_CA_DAYS, DEFAULT_CERT_DAYS, PemPair, ca_file_names, create_ca,
    create_cert,
};
pub use incoming::{
    DEFAULT_HANDSHAKE_TIMEOUT, RpcConnectInfo, RpcStream, connect_info, incoming, remote_addr,
};
pub use load::https_client_config;
pub use settings::{MinVersion, Purpose, TlsFiles, TlsSettings};
