//! Where DNS answers come from: the agent's view of the catalog through the one RPC router.
//!
//! A server agent reads its own applied state (stale by default, as Consul's
//! `dns_config.allow_stale`); a client agent, which holds no catalog, asks a server with the
//! same HTTP API request a user would make (`/v1/health/service/:name?stale`), forwarded
//! over the server RPC. Another datacenter is asked the same HTTP request through the WAN
//! gateways (a server) or through a server (a client agent), under [`CROSS_DC_DNS_TIMEOUT`]:
//! an unknown datacenter is NXDOMAIN, an unreachable one SERVFAIL, never a hang. On a
//! server, an unreachable datacenter's services and nodes are answered from the copy of
//! its catalog the gateways keep, when there is one (a client agent gets the same through
//! its server, since it asks with `?stale`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use meridian_acl::{Need, Resource};
use serde::Deserialize;

use super::acl::{DnsAcl, instance_visible};

use crate::catalog::{ExecuteRequest, HealthEntry, HealthStatus, State, execute_query};
use crate::cluster::copies::{COPY_MARGIN, CatalogCopy};
use crate::cluster::forward::{HttpRequest, HttpResponse};
use crate::cluster::{Federation, RemoteServers};
use crate::rpc::{Consistency, Router, RpcError};

/// One service instance as DNS needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Instance {
    /// Node name.
    pub(super) node: String,
    /// The node's address.
    pub(super) node_address: String,
    /// Node metadata (TXT records).
    pub(super) node_meta: BTreeMap<String, String>,
    /// The instance's own address ("" means the node's).
    pub(super) service_address: String,
    /// Port (SRV).
    pub(super) port: u16,
    /// Tags (tag lookups).
    pub(super) tags: Vec<String>,
    /// The worst status among the node's and the instance's checks.
    pub(super) status: HealthStatus,
}

/// A node as DNS needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NodeRecord {
    /// Node name.
    pub(super) node: String,
    /// Address.
    pub(super) address: String,
    /// Metadata (TXT records).
    pub(super) meta: BTreeMap<String, String>,
}

/// A name that owns an address, for PTR answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owner {
    /// `<node>.node.<dc>.<domain>`.
    Node(String),
    /// `<service>.service.<dc>.<domain>`.
    Service(String),
}

/// What a prepared query gave DNS.
#[derive(Debug, Clone, Default)]
pub(super) struct QueryAnswer {
    /// The service looked up.
    pub(super) service: String,
    /// Its instances, filtered and ordered by the query.
    pub(super) instances: Vec<Instance>,
    /// The query's `DNS.TTL`, which overrides the agent's TTLs.
    pub(super) ttl: Option<std::time::Duration>,
    /// The datacenter that answered, when it is known ("" when not).
    pub(super) datacenter: String,
}

/// What a cached answer was built from (see [`Source::cache_generation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Generation {
    /// Applied raft index of the local state.
    pub(super) applied: u64,
    /// Version of the agent's ACL tokens.
    pub(super) tokens: u64,
}

/// Reads the catalog for DNS.
#[derive(Clone)]
pub struct Source {
    router: Router,
    /// This agent's node name (`_agent` for prepared queries).
    node: String,
    /// Answer from any server's state (`allow_stale`); otherwise ask the leader.
    allow_stale: bool,
    /// With `allow_stale`, a server whose last contact with the leader is older than this
    /// asks the leader instead (`max_stale`).
    max_stale_ms: u64,
    /// Which answers the DNS token may see (§5.6 of reference/acl.md).
    acl: DnsAcl,
}

impl Source {
    /// A source reading through `router`.
    pub fn new(
        router: Router,
        node: String,
        allow_stale: bool,
        max_stale: std::time::Duration,
    ) -> Self {
        Self {
            router,
            node,
            allow_stale,
            max_stale_ms: u64::try_from(max_stale.as_millis()).unwrap_or(u64::MAX),
            acl: DnsAcl::default(),
        }
    }

    /// This agent's node name.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// Filters answers with the agent's DNS token, resolved by `resolver`.
    pub fn with_acl(mut self, resolver: Arc<crate::acl::Resolver>) -> Self {
        self.acl = DnsAcl(Some(resolver));
        self
    }

    /// What every answer read from this agent's own state depends on, for the answer cache
    /// ([`super::cache`]): the applied index of the state a stale read sees and the version
    /// of the agent's tokens. `None` when answers are not read from a local state without
    /// waiting (a client agent, `allow_stale = false`, a server past `max_stale`): those are
    /// never cached.
    pub(super) fn cache_generation(&self) -> Option<Generation> {
        if self.router.remote().is_some() || !self.allow_stale {
            return None;
        }
        let server = self.router.server(None).ok()?;
        if server.last_contact_ms() > self.max_stale_ms {
            return None;
        }
        Some(Generation {
            applied: server.applied_now(),
            tokens: self.acl.version(),
        })
    }

    /// The agent's own datacenter.
    pub(super) fn local_dc(&self) -> &str {
        self.router.local_dc()
    }

    /// Every known datacenter, nearest first (this one first).
    pub(super) async fn datacenters(&self) -> Vec<String> {
        self.router.datacenters().await
    }

    /// Every instance of `service` (any health) in `dc`; an unreachable datacenter is
    /// answered from the gateways' copy of its catalog when there is one.
    pub(super) async fn instances(
        &self,
        dc: Option<&str>,
        service: &str,
    ) -> Result<Vec<Instance>, RpcError> {
        let authz = self.acl.authorizer(&self.router).await?;
        let all = self.instances_with(dc, service, true).await?;
        Ok(visible(&authz, service, all))
    }

    /// [`Self::instances`] from the datacenter itself, never from a copy: failover to the
    /// nearest datacenter must pick one that answers now, not the last copy of a lost one.
    pub(super) async fn live_instances(
        &self,
        dc: &str,
        service: &str,
    ) -> Result<Vec<Instance>, RpcError> {
        let authz = self.acl.authorizer(&self.router).await?;
        let all = self.instances_with(Some(dc), service, false).await?;
        Ok(visible(&authz, service, all))
    }

    async fn instances_with(
        &self,
        dc: Option<&str>,
        service: &str,
        copy_ok: bool,
    ) -> Result<Vec<Instance>, RpcError> {
        match self.backend(dc).await? {
            Backend::Local(state) => Ok(local_instances(&state, service)),
            Backend::Remote(remote) => {
                let path = format!("/v1/health/service/{}", escape(service));
                match remote_get::<Vec<RemoteEntry>>(
                    remote,
                    &path,
                    dc,
                    copy_ok,
                    self.acl.secret().as_deref(),
                )
                .await
                {
                    Ok(rows) => Ok(rows.into_iter().map(RemoteEntry::into_instance).collect()),
                    Err(e) if copy_ok => Ok(local_instances(
                        &remote.copy_instead(e).await?.state,
                        service,
                    )),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Runs the prepared query `name` (a name, an ID, or a name a template matches) in `dc`;
    /// `None` when no query matches. Its instances are filtered with the query's captured
    /// token if it has one, else the DNS token (§5.6): here for a query this server
    /// stores, by the server asked (which gets the DNS token) otherwise.
    pub(super) async fn query(
        &self,
        dc: Option<&str>,
        name: &str,
    ) -> Result<Option<QueryAnswer>, RpcError> {
        match self.backend(dc).await? {
            Backend::Local(state) => {
                let Some(q) = state.resolve_query(name) else {
                    return Ok(None);
                };
                let req = ExecuteRequest {
                    datacenter: dc.unwrap_or(self.router.local_dc()),
                    agent_node: &self.node,
                    near: None,
                    limit: 0,
                    shuffle_seed: rand::random(),
                };
                let mut result = execute_query(&state, &q, &req);
                let secret = if q.token.is_empty() {
                    self.acl.secret().unwrap_or_default()
                } else {
                    q.token.clone()
                };
                let authz = self.acl.authorizer_of(&self.router, &secret).await?;
                // Filtered before failover is judged, as Consul's Execute: instances all
                // hidden here send the question to the failover datacenters.
                result
                    .nodes
                    .retain(|e| instance_visible(&authz, &e.service.service, &e.node.node));
                let skip_local = q.service.failover.skips_local();
                if (result.nodes.is_empty() || skip_local)
                    && q.service.failover.is_set()
                    && let Some(answer) = self.failover(&q, &secret, &authz).await
                {
                    return Ok(Some(answer));
                }
                if skip_local {
                    result.nodes.clear();
                }
                Ok(Some(QueryAnswer {
                    service: result.service,
                    instances: result.nodes.into_iter().map(instance).collect(),
                    ttl: result.dns_ttl,
                    datacenter: result.datacenter,
                }))
            }
            Backend::Remote(remote) => {
                let path = format!("/v1/query/{}/execute", escape(name));
                let found: Option<RemoteExecute> =
                    remote_get(remote, &path, dc, true, self.acl.secret().as_deref()).await?;
                Ok(found.map(RemoteExecute::into_answer))
            }
        }
    }

    /// The answer of the first failover datacenter of `q` with instances `authz` (the
    /// resolved `secret`) may see (Consul's order; all asked at once).
    async fn failover(
        &self,
        q: &crate::catalog::PreparedQuery,
        secret: &str,
        authz: &meridian_acl::Authorizer,
    ) -> Option<QueryAnswer> {
        let federation = self.router.federation()?;
        let by_rtt = self.router.datacenters().await;
        let dcs = q
            .service
            .failover
            .datacenters_to_try(self.router.local_dc(), &by_rtt);
        let answer = federation
            .execute_query_elsewhere(q, &dcs, 0, CROSS_DC_DNS_TIMEOUT, secret, |node, svc| {
                instance_visible(authz, svc, node)
            })
            .await
            .ok()?;
        let r: RemoteExecute = serde_json::from_value(answer.body).ok()?;
        Some(r.into_answer())
    }

    /// One node, if it exists in `dc`.
    pub(super) async fn node(
        &self,
        dc: Option<&str>,
        node: &str,
    ) -> Result<Option<NodeRecord>, RpcError> {
        let authz = self.acl.authorizer(&self.router).await?;
        if !authz.allowed(Resource::Node, node, Need::Read) {
            return Ok(None);
        }
        match self.backend(dc).await? {
            Backend::Local(state) => Ok(state.node(node).map(|n| NodeRecord {
                node: n.node.clone(),
                address: n.address.clone(),
                meta: n.meta.clone(),
            })),
            Backend::Remote(remote) => {
                let path = format!("/v1/catalog/node/{}", escape(node));
                match remote_get::<Option<RemoteNodeServices>>(
                    remote,
                    &path,
                    dc,
                    true,
                    self.acl.secret().as_deref(),
                )
                .await
                {
                    Ok(found) => Ok(found.map(|f| f.node.into_record())),
                    Err(e) => {
                        let copy = remote.copy_instead(e).await?;
                        Ok(copy.state.node(node).map(|n| NodeRecord {
                            node: n.node.clone(),
                            address: n.address.clone(),
                            meta: n.meta.clone(),
                        }))
                    }
                }
            }
        }
    }

    /// Nodes (and, on a server, service instances) whose address is `ip`, in the local DC.
    pub(super) async fn owners_of(&self, ip: IpAddr) -> Result<Vec<Owner>, RpcError> {
        let authz = self.acl.authorizer(&self.router).await?;
        let mut owners = self.owners_unfiltered(ip).await?;
        owners.retain(|o| match o {
            Owner::Node(n) => authz.allowed(Resource::Node, n, Need::Read),
            Owner::Service(s) => authz.allowed(Resource::Service, s, Need::Read),
        });
        Ok(owners)
    }

    async fn owners_unfiltered(&self, ip: IpAddr) -> Result<Vec<Owner>, RpcError> {
        let same = |a: &str| a.parse::<IpAddr>().ok() == Some(ip);
        match self.backend(None).await? {
            Backend::Local(state) => {
                let mut out: Vec<Owner> = state
                    .nodes()
                    .filter(|n| same(&n.address))
                    .map(|n| Owner::Node(n.node.clone()))
                    .collect();
                let mut services: Vec<String> = state
                    .services()
                    .filter(|s| same(&s.address))
                    .map(|s| s.service.clone())
                    .collect();
                services.dedup();
                out.extend(services.into_iter().map(Owner::Service));
                Ok(out)
            }
            Backend::Remote(remote) => {
                let nodes: Vec<RemoteNode> = remote_get(
                    remote,
                    "/v1/catalog/nodes",
                    None,
                    true,
                    self.acl.secret().as_deref(),
                )
                .await?;
                Ok(nodes
                    .into_iter()
                    .filter(|n| same(&n.address))
                    .map(|n| Owner::Node(n.node))
                    .collect())
            }
        }
    }

    async fn backend<'a>(&'a self, dc: Option<&'a str>) -> Result<Backend<'a>, RpcError> {
        if let Some(remote) = self.router.remote() {
            return Ok(Backend::Remote(match dc {
                Some(dc) if dc != self.router.local_dc() => Via::Client(&self.router, dc),
                _ => Via::Servers(remote),
            }));
        }
        if let Some(dc) = dc.filter(|d| *d != self.router.local_dc()) {
            let federation = self
                .router
                .federation()
                .ok_or_else(|| RpcError::NoPathToDatacenter(dc.to_string()))?;
            return Ok(Backend::Remote(Via::Gateways(federation, dc)));
        }
        let server = self.router.server(dc)?;
        if self.allow_stale {
            let view = server.read(Consistency::Stale).await?;
            if view.last_contact_ms <= self.max_stale_ms {
                return Ok(Backend::Local(view.state));
            }
        }
        Ok(Backend::Local(
            server.read(Consistency::Default).await?.state,
        ))
    }
}

/// The instances of `service` the DNS token may see (none without service:read).
fn visible(authz: &meridian_acl::Authorizer, service: &str, all: Vec<Instance>) -> Vec<Instance> {
    all.into_iter()
        .filter(|i| instance_visible(authz, service, &i.node))
        .collect()
}

/// Longest a DNS question about another datacenter waits for it.
pub(super) const CROSS_DC_DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

enum Backend<'a> {
    Local(Arc<State>),
    Remote(Via<'a>),
}

/// How an HTTP API request reaches the state that answers it.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// A server of this datacenter (on a client agent; it relays `?dc=` itself).
    Servers(&'a RemoteServers),
    /// Another datacenter, through this datacenter's gateways.
    Gateways(&'a Federation, &'a str),
    /// Another datacenter from a client agent: through a server, and through the gateways
    /// directly when no server answers (DNS asks only reads).
    Client(&'a Router, &'a str),
}

impl Via<'_> {
    async fn http(self, req: HttpRequest) -> Result<HttpResponse, RpcError> {
        match self {
            Via::Servers(r) => r.http(req).await,
            // The margin is kept for the catalog copy, should the datacenter be cut off.
            Via::Gateways(f, dc) => {
                f.relay(dc, req, CROSS_DC_DNS_TIMEOUT.saturating_sub(COPY_MARGIN))
                    .await
            }
            Via::Client(router, dc) => {
                router
                    .other_dc_from_client(dc, req, CROSS_DC_DNS_TIMEOUT)
                    .await
            }
        }
    }
}

impl Via<'_> {
    /// After `failed`: the catalog copy of an unreachable datacenter, asked of this
    /// datacenter's gateways (a server only); otherwise `failed` itself.
    async fn copy_instead(self, failed: RpcError) -> Result<CatalogCopy, RpcError> {
        let Via::Gateways(f, dc) = self else {
            return Err(failed);
        };
        if !failed.is_unreachable() {
            return Err(failed);
        }
        match f.catalog_copy(dc, COPY_MARGIN).await {
            Ok(copy) => {
                f.copies().served(dc);
                Ok(copy)
            }
            Err(e) => {
                tracing::debug!(datacenter = %dc, cause = %e, "no catalog copy for DNS");
                Err(failed)
            }
        }
    }
}

/// Built from borrowed rows: cloning whole nodes, services and checks per query (as
/// `health_entries` does) was a fifth of the CPU of a DNS answer under load.
fn local_instances(state: &State, service: &str) -> Vec<Instance> {
    state
        .service_health(service)
        .map(|(node, svc, status)| Instance {
            node: node.node.clone(),
            node_address: node.address.clone(),
            node_meta: node.meta.clone(),
            service_address: svc.address.clone(),
            port: svc.port,
            tags: svc.tags.clone(),
            status,
        })
        .collect()
}

fn instance(e: HealthEntry) -> Instance {
    let status = e.aggregate();
    Instance {
        node: e.node.node,
        node_address: e.node.address,
        node_meta: e.node.meta,
        service_address: e.service.address,
        port: e.service.port,
        tags: e.service.tags,
        status,
    }
}

/// A path segment, percent-encoded.
fn escape(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET path?stale[&dc=]` on a server, decoded; 404 is `None`-like (an empty default).
/// Without `copy_ok`, an answer a server gave from the gateways' copy of an unreachable
/// datacenter (`X-Meridian-Copy`) is that datacenter's failure. `token` (the DNS token,
/// while ACLs are on) is sent as `X-Consul-Token`, so the server filters as this agent would.
async fn remote_get<T: serde::de::DeserializeOwned + Default>(
    remote: Via<'_>,
    path: &str,
    dc: Option<&str>,
    copy_ok: bool,
    token: Option<&str>,
) -> Result<T, RpcError> {
    let mut uri = format!("{path}?stale");
    if let Some(dc) = dc {
        uri.push_str("&dc=");
        uri.push_str(&escape(dc));
    }
    let headers = token
        .filter(|t| !t.is_empty())
        .map(|t| ("x-consul-token".to_string(), t.to_string()))
        .into_iter()
        .collect();
    let resp = remote
        .http(HttpRequest {
            method: "GET".into(),
            uri,
            headers,
            body: Vec::new(),
            request_id: None,
        })
        .await?;
    if !copy_ok
        && resp
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(crate::http::COPY_HEADER))
    {
        return Err(RpcError::Forward(format!(
            "datacenter {:?} answered only from the gateways' copy of its catalog",
            dc.unwrap_or_default()
        )));
    }
    match resp.status {
        200 => serde_json::from_slice(&resp.body)
            .map_err(|e| RpcError::Forward(format!("{path}: undecodable answer: {e}"))),
        404 => Ok(T::default()),
        _ => {
            let text = String::from_utf8_lossy(&resp.body);
            if text.contains("No path to datacenter") {
                Err(RpcError::NoPathToDatacenter(
                    dc.unwrap_or_default().to_string(),
                ))
            } else if text.contains("No cluster leader") {
                Err(RpcError::NoLeader)
            } else {
                Err(RpcError::Forward(format!("{path}: {} {text}", resp.status)))
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RemoteNode {
    node: String,
    address: String,
    meta: BTreeMap<String, String>,
}

impl RemoteNode {
    fn into_record(self) -> NodeRecord {
        NodeRecord {
            node: self.node,
            address: self.address,
            meta: self.meta,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RemoteService {
    address: String,
    port: u16,
    tags: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RemoteCheck {
    status: HealthStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RemoteEntry {
    node: RemoteNode,
    service: RemoteService,
    checks: Vec<RemoteCheck>,
}

impl RemoteEntry {
    fn into_instance(self) -> Instance {
        let status = self
            .checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(HealthStatus::Passing);
        Instance {
            node: self.node.node,
            node_address: self.node.address,
            node_meta: self.node.meta,
            service_address: self.service.address,
            port: self.service.port,
            tags: self.service.tags.unwrap_or_default(),
            status,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RemoteNodeServices {
    node: RemoteNode,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RemoteDns {
    #[serde(rename = "TTL")]
    ttl: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RemoteExecute {
    service: String,
    nodes: Vec<RemoteEntry>,
    datacenter: String,
    #[serde(rename = "DNS")]
    dns: RemoteDns,
}

impl RemoteExecute {
    /// Another server's execute response as DNS needs it.
    fn into_answer(self) -> QueryAnswer {
        QueryAnswer {
            datacenter: self.datacenter,
            service: self.service,
            instances: self
                .nodes
                .into_iter()
                .map(RemoteEntry::into_instance)
                .collect(),
            ttl: meridian_config::duration::parse_go_duration(&self.dns.ttl).ok(),
        }
    }
}
