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
use crate::server::ServerHandle;

mod error;
pub use error::{Consistency, RpcError};

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
