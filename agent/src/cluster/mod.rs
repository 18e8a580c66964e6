//! Clustering of a datacenter's servers: the gRPC listener on the server RPC port (8300)
//! that carries raft between servers and forwards requests to the leader, plus the duties
//! that turn gossip into a raft cluster (`-bootstrap-expect`, autopilot).
//!
//! ```text
//!   server A ── raft_rpc::GrpcTransport ──gRPC:8300──▶ raft_rpc::RaftService ──▶ RaftNode (B)
//!   server A ── forward::Forwarder ──────gRPC:8300──▶ forward::ForwardService ─▶ ServerHandle (leader)
//!   server A ── federation::Federation ──gRPC──▶ a WAN gateway ──▶ another datacenter
//! ```
//!
//! With TLS configured (`tls.rs`) the listener accepts through `meridian-tls` and the
//! channels dial through it, verifying servers as `server.<dc>.<domain>`.
//!
//! openraft's messages travel as JSON inside the protobuf envelopes (`wire.rs`): the same
//! encoding the log store uses, so everything raft can store it can also send.

pub mod bootstrap;
pub mod breaker;
mod coalesce;
pub mod copies;
pub mod fanout;
pub mod federation;
pub mod forward;
pub mod listener;
pub mod peer_health;
pub mod raft_rpc;
pub mod remote;
pub mod tls;
pub use meridian_rpc::wire;

pub use federation::Federation;
pub use forward::{ForwardError, Forwarder};
pub use listener::RpcListener;
pub use raft_rpc::GrpcTransport;
pub use remote::RemoteServers;
