//! The RPC router: every request names its datacenter and consistency, and the router
//! decides where it is answered.
//!
//! ```text
//!   HTTP / DNS / CLI ──▶ Router::server(dc) ──▶ local ServerHandle (this DC)
//!                  └───▶ Router::federation() ──▶ a WAN gateway ──▶ another DC
//! ```
//!
//! Handlers ask for the local server; requests for another datacenter are relayed whole
//! before they reach a handler (`http::cross_dc`), and DNS asks the federation directly.
//! A client agent has no server and no federation: it forwards to a server, which has both.

use std::sync::Arc;

use crate::cluster::forward::{HttpRequest, HttpResponse};
use crate::cluster::{Federation, RemoteServers};
use crate::server::ServerHandle;

mod error;
pub use error::{Consistency, RpcError};

/// Routes requests to the server that answers for a datacenter.
#[derive(Clone)]
pub struct Router {
    local_dc: String,
    local: Option<ServerHandle>,
    remote: Option<Arc<RemoteServers>>,
    federation: Option<Arc<Federation>>,
}

impl Router {
    /// A router for a server agent.
    pub fn new(local_dc: String, local: ServerHandle) -> Self {
        Self {
            local_dc,
            local: Some(local),
            remote: None,
            federation: None,
        }
    }

    /// The same router, reaching other datacenters through `federation`.
    pub fn with_federation(mut self, federation: Arc<Federation>) -> Self {
        self.federation = Some(federation);
        self
    }

    /// The way to other datacenters (a client agent's is for when its servers are gone).
    pub fn federation(&self) -> Option<&Arc<Federation>> {
        self.federation.as_ref()
    }

    /// A router for a client agent: everything goes to `remote` servers.
    pub fn client(local_dc: String, remote: Arc<RemoteServers>) -> Self {
        Self {
            local_dc,
            local: None,
            remote: Some(remote),
            federation: None,
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

    /// A client agent's request for datacenter `dc`: through one of its servers (which
    /// relays it), and when none answers, a read straight to a local gateway within
    /// `budget` — losing the local servers does not blind an agent to other datacenters.
    /// A write is never sent around the servers: one may have received it.
    pub async fn other_dc_from_client(
        &self,
        dc: &str,
        req: HttpRequest,
        budget: std::time::Duration,
    ) -> Result<HttpResponse, RpcError> {
        let servers = self.remote.as_ref().ok_or(RpcError::NotAServer)?;
        let read = req.is_read();
        match servers.http(req.clone()).await {
            Ok(resp) => Ok(resp),
            Err(e) => match &self.federation {
                Some(f) if read && !f.gateways().is_empty() => {
                    tracing::debug!(cause = %e, "no server answered; asking the gateways directly");
                    f.relay(dc, req, budget).await
                }
                _ => Err(e),
            },
        }
    }

    /// Every datacenter known, nearest first by WAN round trip (the local one alone when
    /// no gateway answers).
    pub async fn datacenters(&self) -> Vec<String> {
        let view = match &self.federation {
            Some(f) => f.view().await,
            None => None,
        };
        let mut out: Vec<String> = view
            .map(|v| v.datacenters.into_iter().map(|d| d.name).collect())
            .unwrap_or_default();
        if !out.contains(&self.local_dc) {
            out.insert(0, self.local_dc.clone());
        }
        out
    }
}
