//! Anti-entropy (Consul's `ae` + `State.SyncFull`): make the catalog's view of this node
//! agree with the agent's local state. A change syncs at once; a full pass also runs every
//! `interval` (scaled with the pool as Consul's `aeScale`) and repairs drift both ways:
//! local services and checks missing or different in the catalog are registered, and the
//! catalog's services and checks of this node that the agent does not own are removed — the
//! agent wins over `/v1/catalog/register` writes for its node. `serfHealth` belongs to the
//! leader and the server's own `consul` service to the server, so both are left alone.
//!
//! The catalog side is [`CatalogSync`]: the local server on a server agent, a server's API
//! over the forward RPC on a client agent.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::LocalState;
use crate::catalog::{Check, Command, DeregisterOp, Node, RegisterOp, SERF_HEALTH, Service};
use crate::cluster::RemoteServers;
use crate::cluster::forward::HttpRequest;
use crate::rpc::{Consistency, RpcError};
use crate::server::ServerHandle;

/// The catalog's services and checks of one node.
pub type NodeState = (Vec<Service>, Vec<Check>);

/// What anti-entropy needs from the catalog. Object-safe.
pub trait CatalogSync: Send + Sync + 'static {
    /// Registers (node if missing, a service and/or checks).
    fn register(&self, op: RegisterOp) -> BoxFuture<'_, Result<(), RpcError>>;
    /// Deregisters a service or a check.
    fn deregister(&self, op: DeregisterOp) -> BoxFuture<'_, Result<(), RpcError>>;
    /// The catalog's services and checks of `node`.
    fn node_state<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<NodeState, RpcError>>;
}

/// A server agent writes through its own server (which forwards to the leader).
pub struct LocalCatalog(pub ServerHandle);

impl CatalogSync for LocalCatalog {
    fn register(&self, op: RegisterOp) -> BoxFuture<'_, Result<(), RpcError>> {
        async move {
            self.0
                .apply(Command::Register(Box::new(op)))
                .await
                .map(|_| ())
        }
        .boxed()
    }

    fn deregister(&self, op: DeregisterOp) -> BoxFuture<'_, Result<(), RpcError>> {
        async move { self.0.apply(Command::Deregister(op)).await.map(|_| ()) }.boxed()
    }

    fn node_state<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<NodeState, RpcError>> {
        async move {
            let view = self.0.read(Consistency::Default).await?;
            let services = view.state.node_services(node).cloned().collect();
            let checks = view.state.node_checks(node).cloned().collect();
            Ok((services, checks))
        }
        .boxed()
    }
}

/// A client agent uses a server's catalog API over the forward RPC.
pub struct RemoteCatalog(pub Arc<RemoteServers>);

impl RemoteCatalog {
    async fn call(&self, method: &str, uri: String, body: Vec<u8>) -> Result<Vec<u8>, RpcError> {
        let resp = self
            .0
            .http(HttpRequest {
                method: method.into(),
                uri,
                headers: vec![("content-type".into(), "application/json".into())],
                body,
                request_id: None,
            })
            .await?;
        match resp.status {
            200 => Ok(resp.body),
            404 => Ok(Vec::new()),
            _ => Err(RpcError::Forward(
                String::from_utf8_lossy(&resp.body).trim().to_string(),
            )),
        }
    }
}

fn path_escape(s: &str) -> String {
    crate::cli::client::escape_path(s)
}

impl CatalogSync for RemoteCatalog {
    fn register(&self, op: RegisterOp) -> BoxFuture<'_, Result<(), RpcError>> {
        async move {
            let body = serde_json::json!({
                "ID": op.node.id, "Node": op.node.node, "Address": op.node.address,
                "SkipNodeUpdate": op.skip_node_update, "Service": op.service, "Checks": op.checks,
            });
            self.call(
                "PUT",
                "/v1/catalog/register".into(),
                body.to_string().into_bytes(),
            )
            .await
            .map(|_| ())
        }
        .boxed()
    }

    fn deregister(&self, op: DeregisterOp) -> BoxFuture<'_, Result<(), RpcError>> {
        async move {
            let mut body = serde_json::json!({ "Node": op.node });
            if let Some(id) = op.service_id {
                body["ServiceID"] = id.into();
            }
            if let Some(id) = op.check_id {
                body["CheckID"] = id.into();
            }
            self.call(
                "PUT",
                "/v1/catalog/deregister".into(),
                body.to_string().into_bytes(),
            )
            .await
            .map(|_| ())
        }
        .boxed()
    }

    fn node_state<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<NodeState, RpcError>> {
        async move {
            let bad = |e: serde_json::Error| RpcError::Forward(format!("catalog answer: {e}"));
            let raw = self
                .call(
                    "GET",
                    format!("/v1/catalog/node/{}", path_escape(node)),
                    Vec::new(),
                )
                .await?;
            let services = if raw.is_empty() {
                Vec::new()
            } else {
                let v: serde_json::Value = serde_json::from_slice(&raw).map_err(bad)?;
                match v.get("Services").cloned() {
                    Some(serde_json::Value::Object(map)) => map
                        .into_values()
                        .map(serde_json::from_value)
                        .collect::<Result<_, _>>()
                        .map_err(bad)?,
                    _ => Vec::new(),
                }
            };
            let raw = self
                .call(
                    "GET",
                    format!("/v1/health/node/{}", path_escape(node)),
                    Vec::new(),
                )
                .await?;
            let checks = if raw.is_empty() {
                Vec::new()
            } else {
                serde_json::from_slice(&raw).map_err(bad)?
            };
            Ok((services, checks))
        }
        .boxed()
    }
}

/// This node as registrations carry it (created if the leader has not registered it yet).
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Node ID.
    pub id: String,
    /// Advertised address.
    pub address: String,
    /// Datacenter.
    pub datacenter: String,
}

/// Whether a catalog row matches the local one, ignoring what the catalog adds.
fn same_service(local: &Service, cat: &Service) -> bool {
    let mut c = cat.clone();
    c.create_index = local.create_index;
    c.modify_index = local.modify_index;
    c == *local
}

fn same_check(local: &Check, cat: &Check) -> bool {
    local.name == cat.name
        && local.status == cat.status
        && local.output == cat.output
        && local.service_id == cat.service_id
        && local.notes == cat.notes
        && local.definition == cat.definition
}

/// One full anti-entropy pass.
pub async fn sync_full(
    local: &LocalState,
    catalog: &dyn CatalogSync,
    node: &NodeInfo,
) -> Result<usize, RpcError> {
    let name = local.node().to_string();
    let (cat_services, cat_checks) = catalog.node_state(&name).await?;
    let node_row = Node {
        id: node.id.clone(),
        node: name.clone(),
        address: node.address.clone(),
        datacenter: node.datacenter.clone(),
        ..Node::default()
    };
    let mut writes = 0;
    let services = local.services();
    let checks = local.checks();
    for s in &services {
        let in_sync = cat_services
            .iter()
            .any(|c| c.id == s.id && same_service(s, c));
        if !in_sync {
            let own: Vec<Check> = checks
                .iter()
                .filter(|c| c.check.service_id == s.id)
                .map(|c| c.check.clone())
                .collect();
            catalog
                .register(RegisterOp {
                    node: node_row.clone(),
                    skip_node_update: true,
                    service: Some(s.clone()),
                    checks: own,
                })
                .await?;
            writes += 1;
        }
    }
    for c in &checks {
        let in_sync = cat_checks
            .iter()
            .any(|k| k.check_id == c.check.check_id && same_check(&c.check, k));
        if !in_sync {
            catalog
                .register(RegisterOp {
                    node: node_row.clone(),
                    skip_node_update: true,
                    service: None,
                    checks: vec![c.check.clone()],
                })
                .await?;
            writes += 1;
        }
    }
    for s in cat_services
        .iter()
        .filter(|s| s.id != "consul" && !services.iter().any(|l| l.id == s.id))
    {
        catalog
            .deregister(DeregisterOp {
                node: name.clone(),
                service_id: Some(s.id.clone()),
                ..Default::default()
            })
            .await?;
        writes += 1;
    }
    for c in cat_checks.iter().filter(|c| {
        c.check_id != SERF_HEALTH && !checks.iter().any(|l| l.check.check_id == c.check_id)
    }) {
        catalog
            .deregister(DeregisterOp {
                node: name.clone(),
                check_id: Some(c.check_id.clone()),
                ..Default::default()
            })
            .await?;
        writes += 1;
    }
    Ok(writes)
}

/// Runs anti-entropy until `token` is cancelled: a pass on every local change (coalesced)
/// and at least every `interval`; failures retry after a short backoff.
pub async fn run(
    local: Arc<LocalState>,
    catalog: Arc<dyn CatalogSync>,
    node: NodeInfo,
    interval: Duration,
    token: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match sync_full(&local, catalog.as_ref(), &node).await {
            Ok(0) => backoff = Duration::from_millis(100),
            Ok(n) => {
                debug!(writes = n, "anti-entropy synced");
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                debug!(cause = %e, "anti-entropy failed; retrying");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                if backoff >= Duration::from_secs(5) {
                    warn!(cause = %e, "anti-entropy keeps failing");
                }
                continue;
            }
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = local.changed() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
