//! The RPC router: every request names its datacenter and consistency, and the router
//! decides where it is answered.
//!
//! ```text
//!   HTTP / DNS / CLI ──▶ Router::server(dc) ──▶ local ServerHandle (this DC)
//!                                      └──────▶ another DC: through a WAN gateway (later)
//! ```
//!
//! Today one datacenter exists, so a request for any other one fails with Consul's
//! `No path to datacenter`. Forwarding to the leader over gRPC (clustering) and to other
//! datacenters (federation) plug in here without changing callers.

use std::sync::Arc;

use crate::cluster::RemoteServers;
use crate::raft::RaftError;
use crate::server::ServerHandle;

/// How fresh a read must be (Consul's consistency modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// The leader answers without confirming leadership.
    #[default]
    Default,
    /// Any server answers from its local state, even without a leader.
    Stale,
    /// The leader confirms leadership with a quorum first.
    Consistent,
}

impl Consistency {
    /// The `X-Consul-Effective-Consistency` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "leader",
            Self::Stale => "stale",
            Self::Consistent => "consistent",
        }
    }
}

/// Why an RPC failed. Messages are Consul's where clients match on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The datacenter has no leader (or this server lost it).
    #[error("No cluster leader")]
    NoLeader,
    /// The datacenter is unknown or unreachable.
    #[error("No path to datacenter")]
    NoPathToDatacenter(String),
    /// The state machine rejected the command; the text is user-facing.
    #[error("{0}")]
    Rejected(String),
    /// The raft layer failed.
    #[error("raft: {0}")]
    Raft(RaftError),
    /// The agent is shutting down.
    #[error("agent is shutting down")]
    ShuttingDown,
    /// A client agent knows no server (Consul's wording).
    #[error("No known Consul servers")]
    NoServers,
    /// This agent has no local server for this request.
    #[error("this request needs a server; client agents forward it")]
    NotAServer,
    /// A forwarded request could not be understood on the way.
    #[error("rpc forwarding: {0}")]
    Forward(String),
    /// A write may or may not have been applied: the leader was lost (or stopped answering)
    /// after the request reached it, and retries found no answer before the deadline.
    /// Unlike [`RpcError::NoLeader`] this does not mean "not applied".
    #[error(
        "write outcome unknown: the leader was lost after the request was sent; it may or may not have been applied"
    )]
    OutcomeUnknown,
}

impl From<RaftError> for RpcError {
    fn from(e: RaftError) -> Self {
        if e.is_no_leader() {
            RpcError::NoLeader
        } else if e.is_indeterminate() {
            RpcError::OutcomeUnknown
        } else {
            RpcError::Raft(e)
        }
    }
}

/// Routes requests to the server that answers for a datacenter.
#[derive(Clone)]
pub struct Router {
    local_dc: String,
    local: Option<ServerHandle>,
    remote: Option<Arc<RemoteServers>>,
}

impl Router {
    /// A router for a server agent.
    pub fn new(local_dc: String, local: ServerHandle) -> Self {
        Self {
            local_dc,
            local: Some(local),
            remote: None,
        }
    }

    /// A router for a client agent: everything goes to `remote` servers.
    pub fn client(local_dc: String, remote: Arc<RemoteServers>) -> Self {
        Self {
            local_dc,
            local: None,
            remote: Some(remote),
        }
    }

    /// The local server, if this agent is one.
    pub fn local(&self) -> Option<&ServerHandle> {
        self.local.as_ref()
    }

    /// The servers a client agent forwards to.
    pub fn remote(&self) -> Option<&Arc<RemoteServers>> {
        self.remote.as_ref()
    }

    /// The local datacenter's name.
    pub fn local_dc(&self) -> &str {
        &self.local_dc
    }

    /// The server handle answering for `dc` (`None` or "" means the local one).
    pub fn server(&self, dc: Option<&str>) -> Result<&ServerHandle, RpcError> {
        match dc {
            None | Some("") => self.local.as_ref().ok_or(RpcError::NotAServer),
            Some(dc) if dc == self.local_dc => self.local.as_ref().ok_or(RpcError::NotAServer),
            Some(dc) => Err(RpcError::NoPathToDatacenter(dc.to_string())),
        }
    }

    /// Every datacenter known, nearest first (just the local one until federation).
    pub fn datacenters(&self) -> Vec<String> {
        vec![self.local_dc.clone()]
    }
}
