//! Anti-entropy (Consul's `ae` + `State.SyncFull`): make the catalog's view of this node
//! agree with the agent's local state. A change syncs at once, and only what changed
//! (`dirty.rs`, [`Syncer::sync_changes`]: one write per changed service or check, nothing
//! read back), so registering n services costs O(n); a full pass also runs every
//! `interval` (scaled with the pool as Consul's `aeScale`) and repairs drift both ways:
//! local services and checks missing or different in the catalog are registered, and the
//! catalog's services and checks of this node that the agent does not own are removed — the
//! agent wins over `/v1/catalog/register` writes for its node. `serfHealth` belongs to the
//! leader and the server's own `consul` service to the server, so both are left alone.
//!
//! The catalog side is [`CatalogSync`]: the local server on a server agent, a server's API
//! over the forward RPC on a client agent. Under ACLs every write carries a token and is
//! vetted first; a refused one is blocked until the next full pass (`sync_acl.rs`). Passes
//! started by a local change skip blocked entries that did not change; the periodic pass
//! (and a changed agent token) tries them all again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::LocalState;
use super::dirty::Kind;
use super::sync_acl::{
    Blocked, Op, Subject, fingerprint, is_acl_refusal, vet_deregister, vet_register,
};
pub use super::sync_acl::{ResolverAuthorizer, SyncAcl, TokenAuthorizer};
use crate::acl::AclError;
use crate::catalog::{Check, Command, DeregisterOp, Node, RegisterOp, SERF_HEALTH, Service};
use crate::cluster::RemoteServers;
use crate::cluster::forward::HttpRequest;
use crate::rpc::{Consistency, RpcError};
use crate::server::ServerHandle;

/// The catalog's row, services and checks of one node.
#[derive(Debug, Clone, Default)]
pub struct NodeState {
    /// The node row, if the catalog has it.
    pub node: Option<Node>,
    /// Its services.
    pub services: Vec<Service>,
    /// Its checks.
    pub checks: Vec<Check>,
}

/// What anti-entropy needs from the catalog. Object-safe. `token` is the secret the write
/// or read is made with (`""`: anonymous); a local server has vetted it already.
pub trait CatalogSync: Send + Sync + 'static {
    /// Registers (node if missing, a service and/or checks).
    fn register<'a>(
        &'a self,
        op: RegisterOp,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), RpcError>>;
    /// Deregisters a service or a check.
    fn deregister<'a>(
        &'a self,
        op: DeregisterOp,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), RpcError>>;
    /// The catalog's row, services and checks of `node`.
    fn node_state<'a>(
        &'a self,
        node: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<NodeState, RpcError>>;
}

/// A server agent writes through its own server (which forwards to the leader).
pub struct LocalCatalog(pub ServerHandle);

impl CatalogSync for LocalCatalog {
    fn register<'a>(&'a self, op: RegisterOp, _: &'a str) -> BoxFuture<'a, Result<(), RpcError>> {
        async move {
            self.0
                .apply(Command::Register(Box::new(op)))
                .await
                .map(|_| ())
        }
        .boxed()
    }

    fn deregister<'a>(
        &'a self,
        op: DeregisterOp,
        _: &'a str,
    ) -> BoxFuture<'a, Result<(), RpcError>> {
        async move { self.0.apply(Command::Deregister(op)).await.map(|_| ()) }.boxed()
    }

    fn node_state<'a>(
        &'a self,
        node: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<NodeState, RpcError>> {
        async move {
            let view = self.0.read(Consistency::Default).await?;
            Ok(NodeState {
                node: view.state.node(node).cloned(),
                services: view.state.node_services(node).cloned().collect(),
                checks: view.state.node_checks(node).cloned().collect(),
            })
        }
        .boxed()
    }
}

/// A client agent uses a server's catalog API over the forward RPC.
pub struct RemoteCatalog(pub Arc<RemoteServers>);

impl RemoteCatalog {
    async fn call(
        &self,
        method: &str,
        uri: String,
        body: Vec<u8>,
        token: &str,
    ) -> Result<Vec<u8>, RpcError> {
        let mut headers = vec![("content-type".into(), "application/json".into())];
        if !token.is_empty() {
            headers.push(("x-consul-token".into(), token.to_string()));
        }
        let resp = self
            .0
            .http(HttpRequest {
                method: method.into(),
                uri,
                headers,
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
    fn register<'a>(
        &'a self,
        op: RegisterOp,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), RpcError>> {
        async move {
            let body = serde_json::json!({
                "ID": op.node.id, "Node": op.node.node, "Address": op.node.address,
                "SkipNodeUpdate": op.skip_node_update, "Service": op.service, "Checks": op.checks,
                "NodeMeta": op.node.meta, "TaggedAddresses": op.node.tagged_addresses,
            });
            self.call(
                "PUT",
                "/v1/catalog/register".into(),
                body.to_string().into_bytes(),
                token,
            )
            .await
            .map(|_| ())
        }
        .boxed()
    }

    fn deregister<'a>(
        &'a self,
        op: DeregisterOp,
        token: &'a str,
    ) -> BoxFuture<'a, Result<(), RpcError>> {
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
                token,
            )
            .await
            .map(|_| ())
        }
        .boxed()
    }

    fn node_state<'a>(
        &'a self,
        node: &'a str,
        token: &'a str,
    ) -> BoxFuture<'a, Result<NodeState, RpcError>> {
        async move {
            let bad = |e: serde_json::Error| RpcError::Forward(format!("catalog answer: {e}"));
            let raw = self
                .call(
                    "GET",
                    format!("/v1/catalog/node/{}", path_escape(node)),
                    Vec::new(),
                    token,
                )
                .await?;
            let (row, services) = if raw.is_empty() {
                (None, Vec::new())
            } else {
                let v: serde_json::Value = serde_json::from_slice(&raw).map_err(bad)?;
                let row = match v.get("Node") {
                    Some(n) if !n.is_null() => {
                        Some(serde_json::from_value(n.clone()).map_err(bad)?)
                    }
                    _ => None,
                };
                let services = match v.get("Services").cloned() {
                    Some(serde_json::Value::Object(map)) => map
                        .into_values()
                        .map(serde_json::from_value)
                        .collect::<Result<_, _>>()
                        .map_err(bad)?,
                    _ => Vec::new(),
                };
                (row, services)
            };
            let raw = self
                .call(
                    "GET",
                    format!("/v1/health/node/{}", path_escape(node)),
                    Vec::new(),
                    token,
                )
                .await?;
            let checks = if raw.is_empty() {
                Vec::new()
            } else {
                serde_json::from_slice(&raw).map_err(bad)?
            };
            Ok(NodeState {
                node: row,
                services,
                checks,
            })
        }
        .boxed()
    }
}

/// Logs a write as Consul's anti-entropy does: services at info (`Synced service:
/// service=web`), checks and the node at debug (a check's every status change is a write).
fn log_written(subject: Subject, op: Op, id: &str) {
    match (subject, op) {
        (Subject::Service, Op::Registration) => info!(service = %id, "Synced service"),
        (Subject::Service, Op::Deregistration) => info!(service = %id, "Deregistered service"),
        (Subject::Check, Op::Registration) => debug!(check = %id, "Synced check"),
        (Subject::Check, Op::Deregistration) => debug!(check = %id, "Deregistered check"),
        (Subject::Node, _) => debug!(node = %id, "Synced node info"),
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
    /// `node_meta`: synced to the catalog's row with the agent token.
    pub meta: std::collections::BTreeMap<String, String>,
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

/// How many of a change-driven pass's writes are in flight at once.
const SYNC_CONCURRENCY: usize = 64;

/// One write of a change-driven pass: what [`Syncer::write`] takes, and the marks it
/// settles once written.
type Job<'a> = (
    Subject,
    Op,
    &'a String,
    String,
    Write,
    Vec<(Kind, String, u64)>,
);

/// One catalog write anti-entropy wants to make.
enum Write {
    Register(Box<RegisterOp>),
    /// The deregistration and the service it belongs to (for the ACL check).
    Deregister(DeregisterOp, Option<String>),
}

/// Anti-entropy for one agent: where it writes, as whom, and what is blocked.
pub struct Syncer {
    catalog: Arc<dyn CatalogSync>,
    node: NodeInfo,
    acl: SyncAcl,
    blocked: Blocked,
    /// A token did not resolve because the ACL system is not bootstrapped yet (a new
    /// cluster whose leader is about to create the initial management token): the next
    /// full pass comes sooner than `interval`.
    before_bootstrap: AtomicBool,
}

impl Syncer {
    /// A syncer writing to `catalog` as `node`, under `acl`.
    pub fn new(catalog: Arc<dyn CatalogSync>, node: NodeInfo, acl: SyncAcl) -> Self {
        Syncer {
            catalog,
            node,
            acl,
            blocked: Blocked::default(),
            before_bootstrap: AtomicBool::new(false),
        }
    }

    /// `acl.blocked.<subject>.<op>` counters, for `/v1/agent/metrics`.
    pub fn blocked_counters(&self) -> Vec<(String, u64)> {
        self.blocked.counters()
    }

    /// One anti-entropy pass; `full` also retries the writes ACLs blocked before.
    pub async fn sync(&self, local: &LocalState, full: bool) -> Result<usize, RpcError> {
        if full {
            self.blocked.retry_all();
        }
        let name = local.node().to_string();
        let agent_token = self.acl.tokens.agent_token();
        let remote = self.catalog.node_state(&name, &agent_token).await?;
        let node_row = Node {
            id: self.node.id.clone(),
            node: name.clone(),
            address: self.node.address.clone(),
            datacenter: self.node.datacenter.clone(),
            ..Node::default()
        };
        let mut writes = self
            .sync_node_info(&remote, &node_row, &agent_token)
            .await?;
        // What this pass covers: every change marked before it reads the local state.
        let covered = local.pending();
        let services = local.services();
        let checks = local.checks();
        for s in &services {
            if remote
                .services
                .iter()
                .any(|c| c.id == s.id && same_service(s, c))
            {
                self.blocked
                    .clear(Subject::Service, Op::Registration, &s.id);
                continue;
            }
            let own: Vec<Check> = checks
                .iter()
                .filter(|c| c.check.service_id == s.id)
                .map(|c| c.check.clone())
                .collect();
            let op = RegisterOp {
                node: node_row.clone(),
                skip_node_update: true,
                service: Some(s.clone()),
                checks: own,
            };
            let token = self.acl.entry_token(&local.service_registration(&s.id));
            let w = Write::Register(Box::new(op));
            writes += self
                .write(Subject::Service, Op::Registration, &s.id, &token, w)
                .await?;
        }
        for c in &checks {
            let id = &c.check.check_id;
            if remote
                .checks
                .iter()
                .any(|k| &k.check_id == id && same_check(&c.check, k))
            {
                self.blocked.clear(Subject::Check, Op::Registration, id);
                continue;
            }
            let (token, w) = self.check_write(local, &node_row, id, c.check.clone());
            writes += self
                .write(Subject::Check, Op::Registration, id, &token, w)
                .await?;
        }
        for s in remote
            .services
            .iter()
            .filter(|s| s.id != "consul" && !services.iter().any(|l| l.id == s.id))
        {
            let op = DeregisterOp {
                node: name.clone(),
                service_id: Some(s.id.clone()),
                ..Default::default()
            };
            let w = Write::Deregister(op, Some(s.service.clone()));
            writes += self
                .write(Subject::Service, Op::Deregistration, &s.id, &agent_token, w)
                .await?;
        }
        for c in remote.checks.iter().filter(|c| {
            c.check_id != SERF_HEALTH && !checks.iter().any(|l| l.check.check_id == c.check_id)
        }) {
            let op = DeregisterOp {
                node: name.clone(),
                check_id: Some(c.check_id.clone()),
                ..Default::default()
            };
            let w = Write::Deregister(op, Some(c.service_name.clone()));
            writes += self
                .write(
                    Subject::Check,
                    Op::Deregistration,
                    &c.check_id,
                    &agent_token,
                    w,
                )
                .await?;
        }
        local.settle(&covered.all());
        Ok(writes)
    }

    /// A check's own registration (without its service, whose name it carries), under
    /// the token it was registered with: the same write for the full and the change pass.
    fn check_write(
        &self,
        local: &LocalState,
        node_row: &Node,
        id: &str,
        mut check: Check,
    ) -> (String, Write) {
        if let Some(svc) = local.service(&check.service_id) {
            check.service_name = svc.service;
        }
        let op = RegisterOp {
            node: node_row.clone(),
            skip_node_update: true,
            service: None,
            checks: vec![check],
        };
        let token = self.acl.entry_token(&local.check_registration(id));
        (token, Write::Register(Box::new(op)))
    }

    /// Syncs only the entries changed since they were last synced (`dirty.rs`): a changed
    /// service is registered with its checks, a removed one deregistered (its checks go
    /// with it), a changed check registered or deregistered alone. Nothing is read back
    /// from the catalog, and the writes go out together; drift made behind the agent's
    /// back is left to the full pass.
    pub async fn sync_changes(&self, local: &LocalState) -> Result<usize, RpcError> {
        let pending = local.pending();
        if pending.is_empty() {
            return Ok(0);
        }
        let name = local.node().to_string();
        let agent_token = self.acl.tokens.agent_token();
        let node_row = Node {
            id: self.node.id.clone(),
            node: name.clone(),
            address: self.node.address.clone(),
            datacenter: self.node.datacenter.clone(),
            ..Node::default()
        };
        let mut jobs: Vec<Job<'_>> = Vec::new();
        let mut registered = std::collections::HashSet::new();
        for (id, e) in &pending.services {
            let settles = vec![(Kind::Service, id.clone(), e.seq)];
            let job = match local.service(id) {
                Some(s) => {
                    registered.insert(id.as_str());
                    let op = RegisterOp {
                        node: node_row.clone(),
                        skip_node_update: true,
                        service: Some(s),
                        checks: local.service_checks(id),
                    };
                    let token = self.acl.entry_token(&local.service_registration(id));
                    let w = Write::Register(Box::new(op));
                    (Subject::Service, Op::Registration, id, token, w, settles)
                }
                None => {
                    let op = DeregisterOp {
                        node: name.clone(),
                        service_id: Some(id.clone()),
                        ..Default::default()
                    };
                    let w = Write::Deregister(op, Some(e.service.clone()));
                    let token = agent_token.clone();
                    (Subject::Service, Op::Deregistration, id, token, w, settles)
                }
            };
            jobs.push(job);
        }
        for (id, e) in &pending.checks {
            let settle = (Kind::Check, id.clone(), e.seq);
            let job = match local.check(id) {
                // Its service's registration in this batch carries it.
                Some(c) if registered.contains(c.check.service_id.as_str()) => {
                    if let Some(j) = jobs
                        .iter_mut()
                        .find(|j| j.0 == Subject::Service && *j.2 == c.check.service_id)
                    {
                        j.5.push(settle);
                    }
                    continue;
                }
                Some(c) => {
                    let (token, w) = self.check_write(local, &node_row, id, c.check);
                    (Subject::Check, Op::Registration, id, token, w, vec![settle])
                }
                None => {
                    let op = DeregisterOp {
                        node: name.clone(),
                        check_id: Some(id.clone()),
                        ..Default::default()
                    };
                    let w = Write::Deregister(op, Some(e.service.clone()));
                    let token = agent_token.clone();
                    (
                        Subject::Check,
                        Op::Deregistration,
                        id,
                        token,
                        w,
                        vec![settle],
                    )
                }
            };
            jobs.push(job);
        }
        let writes: Vec<BoxFuture<'_, _>> = jobs
            .into_iter()
            .map(|(subject, op, id, token, w, settles)| {
                async move { (self.write(subject, op, id, &token, w).await, settles) }.boxed()
            })
            .collect();
        let results: Vec<_> = futures::stream::iter(writes)
            .buffer_unordered(SYNC_CONCURRENCY)
            .collect()
            .await;
        let mut writes = 0;
        let mut done = Vec::new();
        let mut failed = None;
        for (r, settles) in results {
            match r {
                Ok(n) => {
                    writes += n;
                    done.extend(settles);
                }
                Err(e) => failed = Some(e),
            }
        }
        local.settle(&done);
        match failed {
            Some(e) => Err(e),
            None => Ok(writes),
        }
    }

    /// Node info (`node_meta`) with the agent token: registers this node as the agent knows it when the catalog's row differs, or when the
    /// catalog shows none: not registered yet, or hidden from a token without `node:read`
    /// (as Consul does, the write then tells which, and is blocked if the token may not).
    async fn sync_node_info(
        &self,
        remote: &NodeState,
        fallback: &Node,
        token: &str,
    ) -> Result<usize, RpcError> {
        let row = remote.node.as_ref().unwrap_or(fallback);
        if remote.node.is_some() && row.meta == self.node.meta {
            self.blocked
                .clear(Subject::Node, Op::Registration, &row.node);
            return Ok(0);
        }
        let mut want = row.clone();
        want.meta = self.node.meta.clone();
        let op = RegisterOp {
            node: want,
            skip_node_update: false,
            service: None,
            checks: Vec::new(),
        };
        let id = row.node.clone();
        self.write(
            Subject::Node,
            Op::Registration,
            &id,
            token,
            Write::Register(Box::new(op)),
        )
        .await
    }

    /// Makes one write as `token` unless ACLs refuse it; 1 if written, 0 if blocked (now or
    /// still, as it was refused before).
    async fn write(
        &self,
        subject: Subject,
        op: Op,
        id: &str,
        token: &str,
        w: Write,
    ) -> Result<usize, RpcError> {
        // The token is part of it: re-registering with another token is tried at once.
        let fp = match &w {
            Write::Register(o) => fingerprint(&(o, token)),
            Write::Deregister(o, _) => fingerprint(&(o, token)),
        };
        if self.blocked.waiting(subject, op, id, fp) {
            return Ok(0);
        }
        let authz = match self.acl.authorizer.authorize(token).await {
            Ok(a) => a,
            Err(AclError::Rpc(e)) => return Err(e),
            Err(refused) => {
                if matches!(
                    refused,
                    AclError::NotFound {
                        bootstrapped: false
                    }
                ) {
                    self.before_bootstrap.store(true, Ordering::Relaxed);
                }
                self.blocked
                    .record(subject, op, id, fp, &refused.to_string());
                return Ok(0);
            }
        };
        let vetted = match &w {
            Write::Register(o) => vet_register(&authz, o),
            Write::Deregister(o, service) => vet_deregister(&authz, &o.node, service.as_deref()),
        };
        if let Err(denied) = vetted {
            self.blocked
                .record(subject, op, id, fp, &denied.to_string());
            return Ok(0);
        }
        let written = match w {
            Write::Register(o) => self.catalog.register(*o, token).await,
            Write::Deregister(o, _) => self.catalog.deregister(o, token).await,
        };
        match written {
            Ok(()) => {
                self.blocked.clear(subject, op, id);
                log_written(subject, op, id);
                Ok(1)
            }
            Err(e) if is_acl_refusal(&e) => {
                self.blocked.record(subject, op, id, fp, &e.to_string());
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Runs anti-entropy until `token` is cancelled: a pass on every local change
    /// (coalesced), a full pass at least every `interval` and when asked for
    /// ([`LocalState::request_full_sync`]); failures retry after a short backoff.
    pub async fn run(
        self: Arc<Self>,
        local: Arc<LocalState>,
        interval: Duration,
        token: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(100);
        let mut full = true;
        let mut early = Duration::from_secs(1);
        loop {
            if full {
                // Sticky across the change-driven passes in between, which skip the
                // entries this flag is about.
                self.before_bootstrap.store(false, Ordering::Relaxed);
            }
            let pass = if full {
                self.sync(&local, true).await
            } else {
                self.sync_changes(&local).await
            };
            match pass {
                Ok(n) => {
                    if n > 0 {
                        debug!(writes = n, "anti-entropy synced");
                    }
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
            // Writes refused only because ACLs are not bootstrapped yet are retried soon
            // (1 s, doubling up to `interval`), not a minute later.
            let next_full = if self.before_bootstrap.load(Ordering::Relaxed) {
                let wait = early.min(interval);
                early = (early * 2).min(interval);
                wait
            } else {
                early = Duration::from_secs(1);
                interval
            };
            full = tokio::select! {
                biased;
                _ = token.cancelled() => return,
                _ = local.full_sync_requested() => true,
                _ = local.changed() => false,
                _ = tokio::time::sleep(next_full) => true,
            };
        }
    }
}
