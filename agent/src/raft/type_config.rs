//! The openraft type configuration of Meridian's single raft group: node ids, node addresses,
//! the log payload ([`Request`]) and the apply result ([`Response`]).
//!
//! Only types live here; storage and network adapters are in sibling modules.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::{Request, Response};

/// A raft member: where to reach it and what it is called.
///
/// Stored inside raft membership entries and snapshots, so the serde shape is part of the
/// on-disk format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerNode {
    /// Address of the server's RPC listener (`host:8300`), used by the raft transport.
    pub rpc_addr: String,
    /// The server's node name.
    pub name: String,
    /// The server's node ID (UUID), shown as the raft `ID` as in Consul's raft protocol 3.
    #[serde(default)]
    pub node_id: String,
}

impl fmt::Display for ServerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.rpc_addr)
    }
}

openraft::declare_raft_types!(
    /// Type configuration of the Meridian raft group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = ServerNode,
);

/// Log id (leader id + index) of this type config.
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
/// A persisted vote.
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
/// One raft log entry.
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
/// A membership config together with the log id it was proposed at.
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
/// Snapshot metadata (last included log id and membership).
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
/// Snapshot bytes as produced by the state machine: see `raft::state_machine`.
pub type SnapshotData = Vec<u8>;
/// A complete snapshot: metadata plus bytes.
pub type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, SnapshotData>;
