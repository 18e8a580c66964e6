//! Wire types of Meridian's internal RPC, generated from `proto/meridian/v1/*.proto` with
//! protox + tonic-prost-build at build time (no external `protoc`).
//!
//! - `raft.proto`: the server-to-server raft transport on port 8300.
//! - `rpc.proto`: request forwarding (follower → leader, datacenter → datacenter).
//!
//! Conversions to domain types live with the domain code; this crate holds no logic.

// Generated code: its docs come from the .proto comments, and lints are not ours to fix.
#![allow(unreachable_pub, missing_docs, clippy::all)]

/// Version 1 of the internal protocol.
pub mod v1 {
    tonic::include_proto!("meridian.v1");
}
