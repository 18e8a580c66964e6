//! A member's gossip identity (foca `Identity`): name, address and a bump that orders
//! restarts and tag changes; and the member tags, which travel apart. Pure data; no I/O.
//!
//! foca puts the sender's and the destination's identity in every SWIM header, so the
//! identity is kept compact (~20-40 bytes). Tags (~200 bytes with Consul's) go by custom
//! broadcast when they change, in push-pull state exchanges, and by a direct request on
//! first sight of an identity whose tags are unknown (`runtime/sync.rs`). Changing tags
//! still switches to an identity with a higher bump (foca's `change_identity`), so every
//! member learns that newer tags exist even if the broadcast is lost.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A member's role in the pool (the `role` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A server (Consul's `role=consul`).
    Server,
    /// A client agent (Consul's `role=node`).
    Client,
    /// A WAN gateway.
    Gateway,
}

impl Role {
    /// The tag value, in Consul's spelling.
    pub fn as_tag(self) -> &'static str {
        match self {
            Role::Server => "consul",
            Role::Client => "node",
            Role::Gateway => "gateway",
        }
    }

    /// Parses a `role` tag value.
    pub fn from_tag(value: &str) -> Option<Self> {
        match value {
            "consul" => Some(Role::Server),
            "node" => Some(Role::Client),
            "gateway" => Some(Role::Gateway),
            _ => None,
        }
    }
}

/// Member tags: a string map on the wire, so old and new versions can gossip together;
/// typed accessors for the keys Meridian relies on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tags(pub BTreeMap<String, String>);

impl Tags {
    /// `role`: consul / node / gateway.
    pub const ROLE: &'static str = "role";
    /// `dc`: the datacenter.
    pub const DATACENTER: &'static str = "dc";
    /// `port`: the RPC port (Consul's spelling).
    pub const PORT: &'static str = "port";
    /// `rpc_addr`: the full RPC address, when it differs from the gossip host.
    pub const RPC_ADDR: &'static str = "rpc_addr";
    /// `raft_id`: the server's raft node id.
    pub const RAFT_ID: &'static str = "raft_id";
    /// `build`: the software version (Consul's spelling).
    pub const BUILD: &'static str = "build";

    /// Tags for a member with a role in a datacenter.
    pub fn new(role: Role, datacenter: impl Into<String>) -> Self {
        let mut tags = Self::default();
        tags.set(Self::ROLE, role.as_tag());
        tags.set(Self::DATACENTER, datacenter);
        tags
    }

    /// Sets the RPC address (also `port`).
    pub fn with_rpc_addr(mut self, addr: SocketAddr) -> Self {
        self.set(Self::RPC_ADDR, addr.to_string());
        self.set(Self::PORT, addr.port().to_string());
        self
    }

    /// Sets the raft id.
    pub fn with_raft_id(mut self, id: u64) -> Self {
        self.set(Self::RAFT_ID, id.to_string());
        self
    }

    /// Sets the build version.
    pub fn with_build(mut self, version: impl Into<String>) -> Self {
        self.set(Self::BUILD, version);
        self
    }

    /// Sets any tag.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// Reads any tag.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The role, if tagged with a known one.
    pub fn role(&self) -> Option<Role> {
        self.get(Self::ROLE).and_then(Role::from_tag)
    }

    /// The datacenter.
    pub fn datacenter(&self) -> Option<&str> {
        self.get(Self::DATACENTER)
    }

    /// The RPC address, if tagged and parseable.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.get(Self::RPC_ADDR).and_then(|v| v.parse().ok())
    }

    /// The raft id, if tagged and parseable.
    pub fn raft_id(&self) -> Option<u64> {
        self.get(Self::RAFT_ID).and_then(|v| v.parse().ok())
    }

    /// The build version.
    pub fn build(&self) -> Option<&str> {
        self.get(Self::BUILD)
    }
}

/// A member's tags as published under one identity bump: what tag broadcasts, tag replies
/// and push-pull entries carry. A newer bump supersedes an older one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagsUpdate {
    /// Member name.
    pub name: String,
    /// The identity bump the member had when it published these tags.
    pub bump: u64,
    /// The tags.
    pub tags: Tags,
}

/// foca's identity for a member. `bump` orders incarnations of the same address: a restart
/// starts from the wall clock (microseconds), so it beats anything the previous run used;
/// `renew` and tag changes add one. Tags are not part of it (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeId {
    /// Node name.
    pub name: String,
    /// Gossip address.
    pub addr: SocketAddr,
    /// Incarnation of this name at this address; higher wins.
    pub bump: u64,
}

impl NodeId {
    /// A fresh identity whose bump is the current wall-clock time in microseconds.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        let bump = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            name: name.into(),
            addr,
            bump,
        }
    }

    /// A placeholder identity for announcing to an address whose name we do not know
    /// (foca accepts an announce addressed to any identity with its address).
    pub fn probe_target(addr: SocketAddr) -> Self {
        Self {
            name: String::new(),
            addr,
            bump: 0,
        }
    }

    /// The same member with a higher bump (new tags, or refuting a leave intent).
    pub fn bumped(&self) -> Self {
        Self {
            bump: self.bump.saturating_add(1),
            ..self.clone()
        }
    }
}

impl foca::Identity for NodeId {
    type Addr = SocketAddr;

    fn renew(&self) -> Option<Self> {
        Some(Self {
            bump: self.bump.saturating_add(1),
            ..self.clone()
        })
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn win_addr_conflict(&self, adversary: &Self) -> bool {
        self.bump > adversary.bump
    }
}

#[cfg(test)]
mod tests {
    use foca::Identity;

    use super::*;

    #[test]
    fn renew_and_tag_changes_win_over_the_old_identity() {
        let a = NodeId::new("a", SocketAddr::from(([127, 0, 0, 1], 1)));
        let renewed = a.renew().expect("renews");
        assert!(renewed.win_addr_conflict(&a) && !a.win_addr_conflict(&renewed));
        let tagged = a.bumped();
        assert!(tagged.win_addr_conflict(&a));
        let restarted = NodeId::new("a", a.addr);
        assert!(
            restarted.win_addr_conflict(&a),
            "a restart starts from a later clock"
        );
    }

    #[test]
    fn typed_tags() {
        let rpc = SocketAddr::from(([10, 0, 0, 1], 8300));
        let t = Tags::new(Role::Server, "dc1")
            .with_rpc_addr(rpc)
            .with_raft_id(7)
            .with_build("0.1.0");
        assert_eq!(t.role(), Some(Role::Server));
        assert_eq!(t.get("role"), Some("consul"));
        assert_eq!(t.datacenter(), Some("dc1"));
        assert_eq!(t.rpc_addr(), Some(rpc));
        assert_eq!(t.get("port"), Some("8300"));
        assert_eq!(t.raft_id(), Some(7));
        assert_eq!(t.build(), Some("0.1.0"));
    }

    /// The identity rides in every SWIM header: it must stay small (tags travel apart).
    #[test]
    fn identity_is_compact_on_the_wire() {
        let id = NodeId::new("node-17", SocketAddr::from(([10, 0, 0, 1], 8301)));
        let bytes = postcard::to_allocvec(&id).expect("encodes");
        assert!(bytes.len() <= 32, "{} bytes", bytes.len());
    }
}
