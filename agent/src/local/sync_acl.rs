//! Anti-entropy under ACLs (reference/acl.md §5.8, Consul's `agent/local/state.go`): which
//! token each catalog write carries, whether that token may make it, and what happens when
//! it may not.
//!
//! - Node info: the agent token (→ `default`). A service or check: the token it was
//!   registered with, else `config_file_service_registration` for config-file entries,
//!   else `default`. Every deregistration: the agent token.
//! - The write is vetted here against the token's authorizer as the catalog endpoint vets
//!   it (a server agent applies through its own raft, with no HTTP layer in between), and a
//!   client agent also sends the token, so its server checks again.
//! - A refused write is *blocked*: logged once (`Service registration blocked by ACLs`, ...,
//!   with the ID, never the secret), counted in `acl.blocked.<kind>.<op>`, treated as in
//!   sync, and tried again at the next full pass, not in a tight loop.
//!
//! Pure decisions and counters; the pass itself is in `sync.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::FutureExt;
use futures::future::BoxFuture;
use meridian_acl::{Authorizer, Denied, Need, Resource};
use parking_lot::Mutex;

use super::Registration;
use crate::acl::{AclError, AgentTokens, Resolver};
use crate::catalog::{RegisterOp, Service};
use crate::rpc::{Router, RpcError};

/// Resolves a secret to what it may do (the agent's resolver; a test double in tests).
pub trait TokenAuthorizer: Send + Sync + 'static {
    /// The authorizer of `secret` (`""`: anonymous).
    fn authorize<'a>(&'a self, secret: &'a str)
    -> BoxFuture<'a, Result<Arc<Authorizer>, AclError>>;
}

/// The agent's resolver with the router it resolves through.
pub struct ResolverAuthorizer {
    /// The agent's one resolver.
    pub resolver: Arc<Resolver>,
    /// Its local server or its servers.
    pub router: Router,
}

impl TokenAuthorizer for ResolverAuthorizer {
    fn authorize<'a>(
        &'a self,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<Arc<Authorizer>, AclError>> {
        self.resolver.resolve(&self.router, secret).boxed()
    }
}

/// What anti-entropy knows about ACLs: the agent's tokens and how to resolve them.
pub struct SyncAcl {
    /// The agent's tokens now (the token API changes them).
    pub tokens: Arc<AgentTokens>,
    /// Resolution.
    pub authorizer: Arc<dyn TokenAuthorizer>,
}

impl SyncAcl {
    /// ACLs off (or a test without them): every write allowed, anonymous tokens.
    pub fn open() -> Self {
        struct Manage;
        impl TokenAuthorizer for Manage {
            fn authorize<'a>(
                &'a self,
                _: &'a str,
            ) -> BoxFuture<'a, Result<Arc<Authorizer>, AclError>> {
                futures::future::ready(Ok(Arc::new(Authorizer::manage()))).boxed()
            }
        }
        SyncAcl {
            tokens: Arc::new(AgentTokens::from_config(&Default::default())),
            authorizer: Arc::new(Manage),
        }
    }

    /// The token a service or check syncs with.
    pub fn entry_token(&self, reg: &Registration) -> String {
        if !reg.token.is_empty() {
            reg.token.clone()
        } else if reg.from_config {
            self.tokens.config_file_token()
        } else {
            self.tokens.default_token().unwrap_or_default()
        }
    }
}

/// What a write is about (log text and metric name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A service.
    Service,
    /// A check.
    Check,
    /// The node's own info.
    Node,
}

/// Registration or deregistration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Register or update.
    Registration,
    /// Deregister.
    Deregistration,
}

impl Subject {
    fn as_str(self) -> &'static str {
        match self {
            Subject::Service => "service",
            Subject::Check => "check",
            Subject::Node => "node",
        }
    }
}

/// Blocked writes: counters for `/v1/agent/metrics`, and which entries wait for the next
/// full pass.
#[derive(Default)]
pub struct Blocked {
    counts: [AtomicU64; 6],
    /// (subject, op, id) → a fingerprint of what was refused; a change to the entry makes
    /// the next pass try again.
    waiting: Mutex<HashMap<(Subject, Op, String), u64>>,
}

fn slot(subject: Subject, op: Op) -> usize {
    let s = match subject {
        Subject::Service => 0,
        Subject::Check => 2,
        Subject::Node => 4,
    };
    s + usize::from(op == Op::Deregistration)
}

impl Blocked {
    /// Records a refused write: logged, counted, held until the next full pass.
    pub fn record(&self, subject: Subject, op: Op, id: &str, fingerprint: u64, why: &str) {
        self.counts[slot(subject, op)].fetch_add(1, Ordering::Relaxed);
        self.waiting
            .lock()
            .insert((subject, op, id.to_string()), fingerprint);
        let what = match (subject, op) {
            (Subject::Service, Op::Registration) => "Service registration blocked by ACLs",
            (Subject::Service, Op::Deregistration) => "Service deregistration blocked by ACLs",
            (Subject::Check, Op::Registration) => "Check registration blocked by ACLs",
            (Subject::Check, Op::Deregistration) => "Check deregistration blocked by ACLs",
            (Subject::Node, _) => "Node info update blocked by ACLs",
        };
        match subject {
            Subject::Service => tracing::warn!(service = id, cause = why, "{what}"),
            Subject::Check => tracing::warn!(check = id, cause = why, "{what}"),
            Subject::Node => tracing::warn!(node = id, cause = why, "{what}"),
        }
    }

    /// Whether this write was refused as it is now and waits for the next full pass.
    pub fn waiting(&self, subject: Subject, op: Op, id: &str, fingerprint: u64) -> bool {
        self.waiting
            .lock()
            .get(&(subject, op, id.to_string()))
            .is_some_and(|f| *f == fingerprint)
    }

    /// Forgets an entry (written, or gone).
    pub fn clear(&self, subject: Subject, op: Op, id: &str) {
        self.waiting.lock().remove(&(subject, op, id.to_string()));
    }

    /// A full pass: everything is tried again.
    pub fn retry_all(&self) {
        self.waiting.lock().clear();
    }

    /// `acl.blocked.<subject>.<op>` → count, for the metrics endpoint.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for subject in [Subject::Service, Subject::Check, Subject::Node] {
            for op in [Op::Registration, Op::Deregistration] {
                let name = format!(
                    "acl.blocked.{}.{}",
                    subject.as_str(),
                    match op {
                        Op::Registration => "registration",
                        Op::Deregistration => "deregistration",
                    }
                );
                out.push((name, self.counts[slot(subject, op)].load(Ordering::Relaxed)));
            }
        }
        out
    }
}

/// A fingerprint of a value's JSON (FNV-1a): equal entries, equal fingerprints.
pub fn fingerprint<T: serde::Serialize>(v: &T) -> u64 {
    serde_json::to_vec(v)
        .unwrap_or_default()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// Whether a server's refusal is an ACL one (403 `Permission denied…` or `ACL not found`).
pub fn is_acl_refusal(e: &RpcError) -> bool {
    match e {
        RpcError::Rejected(text) | RpcError::Forward(text) => {
            text.contains("Permission denied") || text.contains("ACL not found")
        }
        _ => false,
    }
}

/// The service names a registration writes: the service, a proxy's destination, and a
/// `sidecar_service`'s (default `<name>-sidecar-proxy`).
pub fn service_names(s: &Service) -> Vec<String> {
    let mut names = vec![s.service.clone()];
    let field = |v: &serde_json::Value, k: &str| -> Option<String> {
        let obj = v.as_object()?;
        obj.iter()
            .find(|(key, _)| key.replace('_', "").eq_ignore_ascii_case(k))
            .and_then(|(_, v)| v.as_str().map(str::to_string))
            .filter(|n| !n.is_empty())
    };
    if s.kind == "connect-proxy"
        && let Some(dest) = s
            .proxy
            .as_ref()
            .and_then(|p| field(p, "destinationservicename"))
    {
        names.push(dest);
    }
    if let Some(sidecar) = s.connect.as_ref().and_then(|c| {
        c.as_object()?
            .iter()
            .find(|(k, _)| k.replace('_', "").eq_ignore_ascii_case("sidecarservice"))
            .map(|(_, v)| v.clone())
    }) && !sidecar.is_null()
    {
        names.push(
            field(&sidecar, "name").unwrap_or_else(|| format!("{}-sidecar-proxy", s.service)),
        );
    }
    names
}

/// Whether `authz` may make `op` (Consul's `vetRegisterWithACL`): node:write if the node
/// row is written, service:write on every name the service writes, and per check
/// service:write on its service when bound to one, else node:write.
pub fn vet_register(authz: &Authorizer, op: &RegisterOp) -> Result<(), Denied> {
    if !op.skip_node_update {
        authz.check(Resource::Node, &op.node.node, Need::Write)?;
    }
    if let Some(s) = &op.service {
        for name in service_names(s) {
            authz.check(Resource::Service, &name, Need::Write)?;
        }
    }
    for c in &op.checks {
        match op.service.as_ref().filter(|s| s.id == c.service_id) {
            Some(s) => authz.check(Resource::Service, &s.service, Need::Write)?,
            None if !c.service_name.is_empty() => {
                authz.check(Resource::Service, &c.service_name, Need::Write)?
            }
            None => authz.check(Resource::Node, &op.node.node, Need::Write)?,
        }
    }
    Ok(())
}

/// Whether `authz` may deregister on `node` (Consul's `vetDeregisterWithACL`): node:write
/// on the node covers everything on it; otherwise service:write on the service a service
/// or service check belongs to (`service`), node:write for a node check.
pub fn vet_deregister(authz: &Authorizer, node: &str, service: Option<&str>) -> Result<(), Denied> {
    if authz.allowed(Resource::Node, node, Need::Write) {
        return Ok(());
    }
    match service.filter(|s| !s.is_empty()) {
        Some(name) => authz.check(Resource::Service, name, Need::Write),
        None => authz.check(Resource::Node, node, Need::Write),
    }
}

#[cfg(test)]
mod tests {
    use meridian_acl::{Root, Rules};
    use serde_json::json;

    use super::*;
    use crate::catalog::{Check, Node};

    fn authz(rules: &str) -> Authorizer {
        Authorizer::new(
            Rules::parse(rules).expect("rules"),
            Root::Deny,
            Some("a".into()),
        )
    }

    fn op(service: Service) -> RegisterOp {
        RegisterOp {
            node: Node {
                node: "n1".into(),
                ..Node::default()
            },
            skip_node_update: true,
            service: Some(service),
            checks: Vec::new(),
        }
    }

    #[test]
    fn a_proxy_needs_write_on_itself_and_its_destination() {
        let proxy = Service {
            id: "web-sidecar-proxy".into(),
            service: "web-sidecar-proxy".into(),
            kind: "connect-proxy".into(),
            proxy: Some(json!({"DestinationServiceName": "web"})),
            ..Service::default()
        };
        let web_only = authz("service \"web\" { policy = \"write\" }");
        assert!(vet_register(&web_only, &op(proxy.clone())).is_err());
        let identity = Authorizer::new(meridian_acl::service_identity("web"), Root::Deny, None);
        assert!(vet_register(&identity, &op(proxy)).is_ok());
        let with_sidecar = Service {
            id: "web".into(),
            service: "web".into(),
            connect: Some(json!({"SidecarService": {}})),
            ..Service::default()
        };
        assert!(vet_register(&web_only, &op(with_sidecar.clone())).is_err());
        assert!(vet_register(&identity, &op(with_sidecar)).is_ok());
    }

    #[test]
    fn node_checks_need_node_write_and_node_write_deregisters_anything() {
        let mut o = op(Service::default());
        o.service = None;
        o.checks = vec![Check {
            check_id: "mem".into(),
            ..Check::default()
        }];
        assert!(vet_register(&authz("node \"n1\" { policy = \"write\" }"), &o).is_ok());
        assert!(vet_register(&authz("service_prefix \"\" { policy = \"write\" }"), &o).is_err());
        let node_writer = authz("node \"n1\" { policy = \"write\" }");
        assert!(vet_deregister(&node_writer, "n1", Some("web")).is_ok());
        let web = authz("service \"web\" { policy = \"write\" }");
        assert!(vet_deregister(&web, "n1", Some("web")).is_ok());
        assert!(vet_deregister(&web, "n1", Some("db")).is_err());
        assert!(vet_deregister(&web, "n1", None).is_err());
    }

    #[test]
    fn blocked_entries_wait_until_they_change_or_a_full_pass() {
        let b = Blocked::default();
        b.record(Subject::Service, Op::Registration, "web", 7, "x");
        assert!(b.waiting(Subject::Service, Op::Registration, "web", 7));
        assert!(!b.waiting(Subject::Service, Op::Registration, "web", 8));
        b.retry_all();
        assert!(!b.waiting(Subject::Service, Op::Registration, "web", 7));
        let counts = b.counters();
        assert!(counts.contains(&("acl.blocked.service.registration".into(), 1)));
        assert!(counts.contains(&("acl.blocked.node.deregistration".into(), 0)));
    }
}
