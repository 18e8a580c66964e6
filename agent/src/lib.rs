//! Meridian agent: a Consul-compatible service-discovery agent.
//!
//! # Layout
//!
//! ```text
//!   main.rs / cli/      flags → Config → agent::run; HTTP-API client subcommands
//!   acl/                ACL tokens: extraction, resolution to an Authorizer, caches
//!   agent/              lifecycle: bind sockets + open storage, spawn subsystems, shut down
//!   http/               axum API in Consul's shapes ──┐
//!   dns/                DNS on 8600 (hickory) over the same router
//!   local/              the agent's own services and checks, check runners, anti-entropy
//!   rpc/                router: which server answers a datacenter's request
//!   cluster/            gRPC on 8300: raft between servers, forwarding to the leader
//!   server/             ServerHandle: apply/read through raft; leader duties (sessions TTL,
//!                       self-registration, tombstone reaping)
//!   raft/ + store/      openraft adapters; raft log and state machine in SQLite
//!   snapshot.rs         the /v1/snapshot archive (gzipped tar, SHA256SUMS-checked)
//!   single_flight.rs    identical requests in flight share one answer (blocking reads)
//!   catalog/            the pure, deterministic state machine (no I/O)
//! ```
//!
//! Reads never wait on raft unless `?consistent` asks: they use the immutable state
//! snapshot published after every applied batch. Writes go through raft, are fsynced in the
//! log before they are acknowledged, and carry the leader's clock so `apply` is
//! deterministic.

pub mod acl;
pub mod agent;
pub use meridian_catalog as catalog;
pub mod cli;
pub mod cluster;
pub mod dns;
#[doc(hidden)]
pub mod fuzzing;
pub use meridian_gossip as gossip;
pub mod http;
pub mod local;
pub mod logs;
pub mod raft;
pub mod rpc;
pub mod server;
mod single_flight;
pub mod snapshot;
pub mod store;
pub mod telemetry;
