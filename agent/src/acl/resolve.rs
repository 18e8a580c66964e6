//! Token → [`Authorizer`] (reference/acl.md §5.2, §6.4).
//!
//! - **Server**: from the applied state (stale read: no raft round trip per request). The
//!   result is cached per secret and dropped when the ACL tables' indexes or the bootstrap
//!   marker move, so a write is seen by the next request on every server that applied it.
//! - **Client agent**: asks a server of its datacenter (`GET /v1/internal/acl/resolve`, the
//!   token in `X-Consul-Token`) and trusts the answer for `token_ttl`. When no server
//!   answers, `down_policy` decides: `extend-cache`/`async-cache` keep using an expired
//!   entry (nothing cached: the default policy), `allow`/`deny` allow or deny all. A
//!   server's "ACL not found" is an answer, not an outage: the entry is dropped.
//!
//! `async-cache` is served like `extend-cache` here (the refresh is not in the background).

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use meridian_acl::{ANONYMOUS_TOKEN_ID, Authorizer, Root, Rules};
use meridian_config::AclDownPolicy;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{ACL_NOT_FOUND, AclError, AclSettings, ROOT_ACL};
use crate::catalog::State;
use crate::catalog::acl::AclToken;
use crate::cluster::forward::HttpRequest;
use crate::rpc::{Consistency, Router, RpcError};

/// Secrets that name the root authorizers: refused at resolution.
const ROOT_NAMES: [&str; 3] = ["allow", "deny", "manage"];
/// SecretID of the anonymous token.
const ANONYMOUS_SECRET: &str = "anonymous";
/// Cached authorizers per agent; past this the cache starts over (a burst of distinct bogus
/// tokens must not grow memory).
const CACHE_MAX: usize = 1024;
/// The servers' internal endpoint a client agent resolves through.
pub const RESOLVE_PATH: &str = "/v1/internal/acl/resolve";

/// What a server tells a client agent about a token in the client's datacenter: enough to
/// build the same authorizer the server would.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoteResolution {
    /// The token's AccessorID; `None` for the anonymous token.
    #[serde(rename = "AccessorID")]
    pub accessor_id: Option<String>,
    /// The rules texts of its policies (its roles' included) valid in the datacenter.
    pub policies: Vec<String>,
    /// Service identities valid in the datacenter, by service name.
    pub service_identities: Vec<String>,
    /// Node identities of the datacenter, by node name.
    pub node_identities: Vec<String>,
}

impl RemoteResolution {
    /// The merged rules. A policy text that does not parse grants nothing (the server
    /// stored it, so only a parser difference can cause that).
    fn rules(&self) -> Rules {
        let mut rules = Rules::default();
        for text in &self.policies {
            match Rules::parse(text) {
                Ok(r) => rules.merge(&r),
                Err(e) => tracing::warn!(cause = %e, "resolved policy rules do not parse"),
            }
        }
        for s in &self.service_identities {
            rules.merge(&meridian_acl::service_identity(s));
        }
        for n in &self.node_identities {
            rules.merge(&meridian_acl::node_identity(n));
        }
        rules
    }
}

/// `token`'s resolution in datacenter `dc` (the server side of [`RESOLVE_PATH`]); mirrors
/// `State::acl_token_rules`, keeping texts instead of parsed rules.
pub fn resolution_for(state: &State, token: &AclToken, dc: &str) -> RemoteResolution {
    let mut policy_ids: Vec<&str> = token.policies.iter().map(|l| l.id.as_str()).collect();
    let mut services: Vec<String> = Vec::new();
    let mut nodes: Vec<String> = Vec::new();
    let mut add_identities =
        |si: &[crate::catalog::acl::ServiceIdentity], ni: &[crate::catalog::acl::NodeIdentity]| {
            services.extend(
                si.iter()
                    .filter(|s| s.datacenters.is_empty() || s.datacenters.iter().any(|d| d == dc))
                    .map(|s| s.service_name.clone()),
            );
            nodes.extend(
                ni.iter()
                    .filter(|n| n.datacenter == dc)
                    .map(|n| n.node_name.clone()),
            );
        };
    add_identities(&token.service_identities, &token.node_identities);
    for link in &token.roles {
        if let Some(role) = state.acl_role(&link.id) {
            policy_ids.extend(role.policies.iter().map(|l| l.id.as_str()));
            add_identities(&role.service_identities, &role.node_identities);
        }
    }
    policy_ids.sort_unstable();
    policy_ids.dedup();
    let policies = policy_ids
        .into_iter()
        .filter_map(|id| state.acl_policy(id))
        .filter(|p| p.datacenters.is_empty() || p.datacenters.iter().any(|d| d == dc))
        .map(|p| p.rules.clone())
        .collect();
    RemoteResolution {
        accessor_id: (token.accessor_id != ANONYMOUS_TOKEN_ID).then(|| token.accessor_id.clone()),
        policies,
        service_identities: services,
        node_identities: nodes,
    }
}

/// The ACL tables' indexes and the bootstrap marker: a cached server-side resolution is
/// good while these stand still.
type Indexes = (u64, u64, u64, Option<u64>);

fn indexes(state: &State) -> Indexes {
    let t = state.table_indexes();
    (
        t.acl_tokens,
        t.acl_policies,
        t.acl_roles,
        state.acl_bootstrap_index(),
    )
}

struct LocalEntry {
    at: Indexes,
    expires_ms: Option<u64>,
    authorizer: Arc<Authorizer>,
}

struct RemoteEntry {
    fetched: Instant,
    authorizer: Arc<Authorizer>,
}

/// Resolves secrets to authorizers, with the caches described in the module docs.
pub struct Resolver {
    settings: Arc<AclSettings>,
    local: Mutex<HashMap<String, LocalEntry>>,
    remote: Mutex<HashMap<String, RemoteEntry>>,
}

impl Resolver {
    /// A resolver with empty caches.
    pub fn new(settings: Arc<AclSettings>) -> Self {
        Resolver {
            settings,
            local: Mutex::new(HashMap::new()),
            remote: Mutex::new(HashMap::new()),
        }
    }

    /// The settings it resolves with.
    pub fn settings(&self) -> &Arc<AclSettings> {
        &self.settings
    }

    /// What `secret` (`""` = anonymous) may do here. ACLs off: everything.
    pub async fn resolve(
        &self,
        router: &Router,
        secret: &str,
    ) -> Result<Arc<Authorizer>, AclError> {
        if !self.settings.enabled {
            return Ok(Arc::new(Authorizer::manage()));
        }
        let secret = if secret.is_empty() {
            ANONYMOUS_SECRET
        } else {
            secret
        };
        if ROOT_NAMES.contains(&secret) {
            return Err(AclError::RootName);
        }
        if self.settings.is_recovery(secret) {
            return Ok(Arc::new(self.settings.recovery_authorizer()));
        }
        match router.local() {
            Some(server) => {
                let view = server.read(Consistency::Stale).await?;
                self.resolve_in_state(&view.state, secret)
            }
            None => self.resolve_through_servers(router, secret).await,
        }
    }

    /// A server's resolution from its applied state.
    pub fn resolve_in_state(
        &self,
        state: &State,
        secret: &str,
    ) -> Result<Arc<Authorizer>, AclError> {
        let now = crate::server::unix_ms();
        let at = indexes(state);
        if let Some(e) = self.local.lock().get(secret)
            && e.at == at
            && e.expires_ms.is_none_or(|x| x > now)
        {
            return Ok(Arc::clone(&e.authorizer));
        }
        let Some(token) = state.acl_token_by_secret(secret, now) else {
            self.local.lock().remove(secret);
            return Err(AclError::NotFound {
                bootstrapped: state.acl_bootstrap_index().is_some(),
            });
        };
        let resolution = state.acl_token_rules(token, &self.settings.datacenter);
        for why in &resolution.broken {
            tracing::warn!(policy = %why, "stored policy rules do not parse; they grant nothing");
        }
        let accessor = (token.accessor_id != ANONYMOUS_TOKEN_ID).then(|| token.accessor_id.clone());
        let authorizer = Arc::new(Authorizer::new(
            resolution.rules,
            self.settings.root(),
            accessor,
        ));
        let mut cache = self.local.lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            secret.to_string(),
            LocalEntry {
                at,
                expires_ms: token.expiration_ms,
                authorizer: Arc::clone(&authorizer),
            },
        );
        Ok(authorizer)
    }

    /// A client agent's resolution through its servers, cached for `token_ttl`.
    async fn resolve_through_servers(
        &self,
        router: &Router,
        secret: &str,
    ) -> Result<Arc<Authorizer>, AclError> {
        let cached = self.remote.lock().get(secret).map(|e| {
            (
                e.fetched.elapsed() < self.settings.token_ttl,
                Arc::clone(&e.authorizer),
            )
        });
        if let Some((true, authorizer)) = &cached {
            return Ok(Arc::clone(authorizer));
        }
        match self.ask_servers(router, secret).await {
            Ok(authorizer) => {
                self.remember(secret, &authorizer);
                Ok(authorizer)
            }
            Err(AclError::Rpc(e)) => {
                tracing::warn!(cause = %e, down_policy = self.settings.down_policy.as_str(),
                    "could not resolve an ACL token through the servers");
                Ok(self.when_down(secret, cached.map(|(_, a)| a)))
            }
            Err(other) => {
                self.remote.lock().remove(secret);
                Err(other)
            }
        }
    }

    fn remember(&self, secret: &str, authorizer: &Arc<Authorizer>) {
        let mut cache = self.remote.lock();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(
            secret.to_string(),
            RemoteEntry {
                fetched: Instant::now(),
                authorizer: Arc::clone(authorizer),
            },
        );
    }

    /// `down_policy` when the servers cannot be asked.
    fn when_down(&self, secret: &str, cached: Option<Arc<Authorizer>>) -> Arc<Authorizer> {
        let root = match self.settings.down_policy {
            AclDownPolicy::ExtendCache | AclDownPolicy::AsyncCache => {
                if let Some(a) = cached {
                    // Extend: trust it for another TTL before asking again.
                    self.remember(secret, &a);
                    return a;
                }
                self.settings.root()
            }
            AclDownPolicy::Allow => Root::Allow,
            AclDownPolicy::Deny => Root::Deny,
        };
        Arc::new(Authorizer::new(Rules::default(), root, None))
    }

    async fn ask_servers(
        &self,
        router: &Router,
        secret: &str,
    ) -> Result<Arc<Authorizer>, AclError> {
        let servers = router.remote().ok_or(RpcError::NoServers)?;
        let req = HttpRequest {
            method: "GET".into(),
            uri: RESOLVE_PATH.into(),
            headers: vec![("x-consul-token".into(), secret.to_string())],
            body: Vec::new(),
            request_id: None,
        };
        let resp = servers.http(req).await?;
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        match StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR) {
            StatusCode::OK => {
                let r: RemoteResolution = serde_json::from_slice(&resp.body).map_err(|e| {
                    RpcError::Forward(format!("bad ACL resolution from a server: {e}"))
                })?;
                Ok(Arc::new(Authorizer::new(
                    r.rules(),
                    self.settings.root(),
                    r.accessor_id.clone(),
                )))
            }
            StatusCode::FORBIDDEN if text.contains(ACL_NOT_FOUND) => Err(AclError::NotFound {
                bootstrapped: text.trim() == ACL_NOT_FOUND,
            }),
            StatusCode::FORBIDDEN => Err(AclError::Refused(text)),
            _ if text.contains(ROOT_ACL) => Err(AclError::RootName),
            // No leader, ACLs off on the server, anything else: the servers cannot
            // resolve now, which is what down_policy is for.
            status => Err(AclError::Rpc(RpcError::Forward(format!(
                "server answered {status}: {}",
                text.trim()
            )))),
        }
    }
}
