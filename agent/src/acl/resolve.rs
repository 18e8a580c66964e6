//! Token → [`Authorizer`] (reference/acl.md §5.2, §6.4).
//!
//! - **Server**: from the applied state (stale read: no raft round trip per request). The
//!   result is cached per secret and dropped when the ACL tables' indexes or the bootstrap
//!   marker move, so a write is seen by the next request on every server that applied it.
//! - **Secondary server without token replication** (reference/acl.md §6.4): as a client
//!   agent, but asking the primary datacenter through the gateways.
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

use super::{ACL_NOT_FOUND, AclError, AclSettings, AgentTokens, ROOT_ACL};
use crate::catalog::State;
use crate::catalog::acl::{AclToken, TemplatedPolicy};
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
/// [`RESOLVE_PATH`]'s parameter naming the datacenter the rules are wanted for (a
/// secondary's server asking the primary); default: the answering server's.
pub const RESOLVE_DC_PARAM: &str = "for_dc";

/// What a server tells a client agent about a token in the client's datacenter: enough to
/// build the same authorizer the server would.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemoteResolution {
    /// The token's AccessorID; `None` for the anonymous token.
    #[serde(rename = "AccessorID")]
    pub accessor_id: Option<String>,
    /// The rules texts of its policies (its roles' included) valid in the datacenter, and
    /// of its (and its roles') templated policies there, rendered.
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
    let mut templated: Vec<&TemplatedPolicy> = token.templated_policies.iter().collect();
    for link in &token.roles {
        if let Some(role) = state.acl_role(&link.id) {
            policy_ids.extend(role.policies.iter().map(|l| l.id.as_str()));
            add_identities(&role.service_identities, &role.node_identities);
            templated.extend(role.templated_policies.iter());
        }
    }
    policy_ids.sort_unstable();
    policy_ids.dedup();
    let mut policies: Vec<String> = policy_ids
        .into_iter()
        .filter_map(|id| state.acl_policy(id))
        .filter(|p| p.datacenters.is_empty() || p.datacenters.iter().any(|d| d == dc))
        .map(|p| p.rules.clone())
        .collect();
    // Templated policies travel rendered, as policy texts: the client needs no template
    // table, and one a client does not know still grants what the server resolved.
    policies.extend(
        templated
            .into_iter()
            .filter(|t| t.applies_in(dc))
            .filter_map(TemplatedPolicy::rules_text),
    );
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
    tokens: Arc<AgentTokens>,
    local: Mutex<HashMap<String, LocalEntry>>,
    remote: Mutex<HashMap<String, RemoteEntry>>,
}

impl Resolver {
    /// A resolver with empty caches. The agent's tokens are the configured ones, overridden
    /// by persisted ones when `enable_token_persistence` is on and there is a data dir.
    pub fn new(settings: Arc<AclSettings>) -> Self {
        let tokens = match &settings.data_dir {
            Some(dir) if settings.enabled && settings.enable_token_persistence => {
                AgentTokens::load(&settings.tokens, dir)
            }
            _ => AgentTokens::from_config(&settings.tokens),
        };
        Resolver {
            tokens: Arc::new(tokens),
            settings,
            local: Mutex::new(HashMap::new()),
            remote: Mutex::new(HashMap::new()),
        }
    }

    /// The settings it resolves with.
    pub fn settings(&self) -> &Arc<AclSettings> {
        &self.settings
    }

    /// The agent's own tokens as they are now.
    pub fn tokens(&self) -> &Arc<AgentTokens> {
        &self.tokens
    }

    /// Whether tokens live in this datacenter: in the primary in effect, or in a secondary
    /// that replicates tokens with a replication token in effect (else `Local tokens are
    /// disabled`, and token reads go to the primary; reference/acl.md §6.3).
    pub fn tokens_here(&self) -> bool {
        self.settings.is_primary()
            || (self.settings.enable_token_replication && self.tokens.replication_token().is_some())
    }

    /// What `secret` (`""` = anonymous) may do here. ACLs off: everything.
    pub async fn resolve(
        &self,
        router: &Router,
        secret: &str,
    ) -> Result<Arc<Authorizer>, AclError> {
        let secret = if secret.is_empty() {
            ANONYMOUS_SECRET
        } else {
            secret
        };
        if let Some(answer) = self.without_servers(secret) {
            return answer;
        }
        match router.local() {
            Some(server) if self.tokens_here() => {
                let view = server.read(Consistency::Stale).await?;
                self.resolve_in_state(&view.state, secret)
            }
            // A secondary without token replication: tokens live in the primary.
            Some(_) => self.resolve_through_servers(router, secret).await,
            None => self.resolve_through_servers(router, secret).await,
        }
    }

    /// The answers no server is asked for: ACLs off, a root name, the recovery token.
    fn without_servers(&self, secret: &str) -> Option<Result<Arc<Authorizer>, AclError>> {
        if !self.settings.enabled {
            return Some(Ok(Arc::new(Authorizer::manage())));
        }
        if ROOT_NAMES.contains(&secret) {
            return Some(Err(AclError::RootName));
        }
        if self.tokens.is_recovery(secret) {
            return Some(Ok(Arc::new(self.settings.recovery_authorizer())));
        }
        None
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
            // The bootstrap marker is the primary's (not replicated).
            return Err(AclError::NotFound {
                bootstrapped: state.acl_bootstrap_index().is_some() || !self.settings.is_primary(),
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

    /// A client agent's resolution through its servers, or a secondary server's through
    /// the primary datacenter, cached for `token_ttl`.
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
        let mut req = HttpRequest {
            method: "GET".into(),
            uri: RESOLVE_PATH.into(),
            headers: vec![("x-consul-token".into(), secret.to_string())],
            body: Vec::new(),
            request_id: None,
        };
        let resp = match router.remote() {
            Some(servers) => servers.http(req).await?,
            None => {
                // A secondary's server asks the primary, for the rules valid here.
                let dc: String =
                    form_urlencoded::byte_serialize(self.settings.datacenter.as_bytes()).collect();
                req.uri = format!("{RESOLVE_PATH}?{RESOLVE_DC_PARAM}={dc}");
                let primary = self.settings.primary_datacenter();
                let federation = router
                    .federation()
                    .ok_or_else(|| RpcError::NoPathToDatacenter(primary.clone()))?;
                let budget = req.budget(crate::cluster::federation::CROSS_DC_TIMEOUT);
                federation.relay(&primary, req, budget).await?
            }
        };
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

#[cfg(test)]
mod tests {
    use meridian_acl::{Need, Resource};
    use meridian_config::{AclDefaultPolicy, AclTokensConfig};

    use super::*;
    use crate::catalog::acl::{AclLink, AclPolicy, AclWrite};
    use crate::catalog::{Command, Request};

    const SECRET: &str = "aaaaaaaa-1111-2222-3333-444455556666";

    fn settings(default_policy: AclDefaultPolicy) -> Arc<AclSettings> {
        Arc::new(AclSettings {
            enabled: true,
            default_policy,
            down_policy: AclDownPolicy::ExtendCache,
            token_ttl: std::time::Duration::from_secs(30),
            tokens: AclTokensConfig {
                agent_recovery: Some("recovery".into()),
                ..AclTokensConfig::default()
            },
            datacenter: "dc1".into(),
            primary: crate::server::acl_primary::PrimaryCell::new("dc1", "dc1"),
            node_name: "n1".into(),
            data_dir: None,
            enable_key_list_policy: false,
            enable_token_persistence: false,
            enable_token_replication: false,
        })
    }

    fn apply(s: &mut State, index: u64, now: u64, w: AclWrite) {
        let r = s.apply(index, &Request::new(now, Command::Acl(w)));
        assert_eq!(r, crate::catalog::Response::Ok);
    }

    fn policy(rules: &str) -> AclWrite {
        AclWrite::PolicySet(Box::new(AclPolicy {
            id: "bbbbbbbb-1111-2222-3333-444455556666".into(),
            name: "p".into(),
            rules: rules.into(),
            ..AclPolicy::default()
        }))
    }

    fn token(expiration_ms: Option<u64>) -> AclWrite {
        AclWrite::TokenSet {
            token: Box::new(AclToken {
                accessor_id: "cccccccc-1111-2222-3333-444455556666".into(),
                secret_id: SECRET.into(),
                policies: vec![AclLink {
                    id: String::new(),
                    name: "p".into(),
                }],
                expiration_ms,
                ..AclToken::default()
            }),
            create: true,
        }
    }

    #[test]
    fn a_policy_change_is_seen_by_the_next_resolution_despite_the_cache() {
        let r = Resolver::new(settings(AclDefaultPolicy::Deny));
        let mut s = State::new();
        let now = crate::server::unix_ms();
        apply(
            &mut s,
            1,
            now,
            AclWrite::Init {
                initial_management: None,
            },
        );
        apply(
            &mut s,
            2,
            now,
            policy("key_prefix \"app/\" { policy = \"read\" }"),
        );
        apply(&mut s, 3, now, token(None));
        let a = r.resolve_in_state(&s, SECRET).expect("resolves");
        assert!(a.allowed(Resource::Key, "app/x", Need::Read));
        assert!(!a.allowed(Resource::Key, "app/x", Need::Write));
        apply(
            &mut s,
            4,
            now,
            policy("key_prefix \"app/\" { policy = \"write\" }"),
        );
        let a = r.resolve_in_state(&s, SECRET).expect("resolves");
        assert!(a.allowed(Resource::Key, "app/x", Need::Write));
        // Anonymous has no policies: the default policy (deny) decides, named as anonymous.
        let anon = r.resolve_in_state(&s, "anonymous").expect("anonymous");
        let denied = anon
            .check(Resource::Key, "foo", Need::Read)
            .expect_err("denied");
        assert!(denied.to_string().starts_with(
            "Permission denied: anonymous token lacks permission 'key:read' on \"foo\""
        ));
    }

    #[test]
    fn a_policy_scoped_to_another_datacenter_leaves_only_the_default_policy() {
        let r = Resolver::new(settings(AclDefaultPolicy::Deny));
        let mut s = State::new();
        let now = crate::server::unix_ms();
        apply(
            &mut s,
            1,
            now,
            AclWrite::Init {
                initial_management: None,
            },
        );
        apply(
            &mut s,
            2,
            now,
            AclWrite::PolicySet(Box::new(AclPolicy {
                id: "bbbbbbbb-1111-2222-3333-444455556666".into(),
                name: "p".into(),
                rules: "key_prefix \"\" { policy = \"write\" }".into(),
                datacenters: vec!["dc2".into()],
                ..AclPolicy::default()
            })),
        );
        apply(&mut s, 3, now, token(None));
        let a = r.resolve_in_state(&s, SECRET).expect("resolves");
        assert!(
            !a.allowed(Resource::Key, "x", Need::Read),
            "dc2's policy applies in dc1"
        );
        let remote = resolution_for(
            &s,
            s.acl_token_by_secret(SECRET, now).expect("token"),
            "dc1",
        );
        assert!(remote.policies.is_empty(), "{remote:?}");
        let there = resolution_for(
            &s,
            s.acl_token_by_secret(SECRET, now).expect("token"),
            "dc2",
        );
        assert_eq!(there.policies.len(), 1);
    }

    #[test]
    fn an_expired_token_is_not_found_and_unknown_tokens_name_the_bootstrap() {
        let r = Resolver::new(settings(AclDefaultPolicy::Allow));
        let mut s = State::new();
        let now = crate::server::unix_ms();
        let err = r.resolve_in_state(&s, SECRET).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(crate::acl::ACL_NOT_FOUND_BOOTSTRAP));
        // Written two minutes ago to expire 30 s ago (apply checks the 1m minimum against
        // the writer's clock).
        apply(
            &mut s,
            1,
            now - 120_000,
            AclWrite::Init {
                initial_management: None,
            },
        );
        apply(&mut s, 2, now - 120_000, policy("acl = \"read\""));
        apply(&mut s, 3, now - 120_000, token(Some(now - 30_000)));
        let err = r.resolve_in_state(&s, SECRET).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(crate::acl::ACL_NOT_FOUND_BOOTSTRAP));
    }

    #[test]
    fn root_names_are_refused_and_the_recovery_token_is_local() {
        let r = Resolver::new(settings(AclDefaultPolicy::Allow));
        for root in ["allow", "deny", "manage"] {
            let err = r
                .without_servers(root)
                .and_then(|a| a.err())
                .map(|e| e.to_string());
            assert_eq!(err.as_deref(), Some(ROOT_ACL));
        }
        assert!(
            r.without_servers(SECRET).is_none(),
            "a real token is asked for"
        );
        let a = r
            .without_servers("recovery")
            .and_then(Result::ok)
            .expect("recovery");
        assert!(a.allowed(Resource::Agent, "n1", Need::Write));
        assert!(a.allowed(Resource::Node, "other", Need::Read));
        assert!(!a.allowed(Resource::Key, "x", Need::Read));
    }
}
