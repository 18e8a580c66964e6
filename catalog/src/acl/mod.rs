//! ACL objects in the replicated state (#17): tokens, policies and roles (with their service
//! and node identities and templated policies), the bootstrap
//! marker, and the writes that change them, validated in `apply` with Consul's texts
//! (`reference/acl.md` §2.5) so every server refuses the same way.
//!
//! Rows are stored in the shape below (times as leader unix milliseconds); the HTTP API
//! renders Consul's JSON from them (RFC 3339 times, `<hidden>` secrets, link names as they
//! are now). Name and secret lookups use derived maps, never stored, rebuilt on restore.
//!
//! ```text
//!   AclTokenSet ─▶ validate (ids, secret unique, links exist) ─▶ tokens[accessor]
//!   secret ──▶ tokens_by_secret ──▶ token ──▶ policies + roles' policies + identities + templated ──▶ Rules
//! ```

mod apply;
mod replicate;
#[cfg(test)]
mod tests;
mod types;

pub use apply::check_templated;
pub use types::{
    AclLink, AclPolicy, AclPrimary, AclReplicated, AclRole, AclToken, AclWrite, NodeIdentity,
    ServiceIdentity, TemplateVariables, TemplatedPolicy, TokenResolution,
};

use meridian_acl::Rules;

use super::State;

impl State {
    /// The token with this SecretID, unless it expired before `now_ms`.
    pub fn acl_token_by_secret(&self, secret: &str, now_ms: u64) -> Option<&AclToken> {
        let accessor = self.acl_secrets.get(secret)?;
        self.acl_tokens.get(accessor).filter(|t| !t.expired(now_ms))
    }

    /// The token with this AccessorID (expired ones included: the API shows them until
    /// they are reaped).
    pub fn acl_token(&self, accessor: &str) -> Option<&AclToken> {
        self.acl_tokens.get(accessor)
    }

    /// Every token, by AccessorID.
    pub fn acl_tokens(&self) -> impl Iterator<Item = &AclToken> {
        self.acl_tokens.values()
    }

    /// A policy by ID.
    pub fn acl_policy(&self, id: &str) -> Option<&AclPolicy> {
        self.acl_policies.get(id)
    }

    /// A policy by name.
    pub fn acl_policy_by_name(&self, name: &str) -> Option<&AclPolicy> {
        self.acl_policy_names
            .get(name)
            .and_then(|id| self.acl_policies.get(id))
    }

    /// Every policy, by ID.
    pub fn acl_policies(&self) -> impl Iterator<Item = &AclPolicy> {
        self.acl_policies.values()
    }

    /// A role by ID.
    pub fn acl_role(&self, id: &str) -> Option<&AclRole> {
        self.acl_roles.get(id)
    }

    /// A role by name.
    pub fn acl_role_by_name(&self, name: &str) -> Option<&AclRole> {
        self.acl_role_names
            .get(name)
            .and_then(|id| self.acl_roles.get(id))
    }

    /// Every role, by ID.
    pub fn acl_roles(&self) -> impl Iterator<Item = &AclRole> {
        self.acl_roles.values()
    }

    /// The raft index of the bootstrap, once the ACL system was bootstrapped.
    pub fn acl_bootstrap_index(&self) -> Option<u64> {
        self.acl_bootstrap
    }

    /// The stored ACL primary record, if a primary was ever chosen at runtime (without
    /// one, the configured `primary_datacenter` is in effect).
    pub fn acl_primary(&self) -> Option<&AclPrimary> {
        self.acl_primary.as_ref()
    }

    /// The rules `token` holds in datacenter `dc`: its policies and its roles' policies
    /// (those scoped to other datacenters dropped), and its roles' and its own service and
    /// node identities and templated policies, merged. Policies are parsed here; the agent caches the result by
    /// the ACL tables' indexes.
    pub fn acl_token_rules(&self, token: &AclToken, dc: &str) -> TokenResolution {
        let mut rules = Rules::default();
        let mut policy_ids: Vec<&str> = token.policies.iter().map(|l| l.id.as_str()).collect();
        let mut services: Vec<&ServiceIdentity> = token.service_identities.iter().collect();
        let mut nodes: Vec<&NodeIdentity> = token.node_identities.iter().collect();
        let mut templated: Vec<&TemplatedPolicy> = token.templated_policies.iter().collect();
        for link in &token.roles {
            if let Some(role) = self.acl_roles.get(&link.id) {
                policy_ids.extend(role.policies.iter().map(|l| l.id.as_str()));
                services.extend(role.service_identities.iter());
                nodes.extend(role.node_identities.iter());
                templated.extend(role.templated_policies.iter());
            }
        }
        policy_ids.sort_unstable();
        policy_ids.dedup();
        let mut broken = Vec::new();
        let mut applied = 0;
        for id in policy_ids {
            let Some(p) = self.acl_policies.get(id) else {
                continue;
            };
            if !p.datacenters.is_empty() && !p.datacenters.iter().any(|d| d == dc) {
                continue;
            }
            match Rules::parse(&p.rules) {
                Ok(r) => {
                    rules.merge(&r);
                    applied += 1;
                }
                // Stored rules were valid when written; a newer parser refusing them
                // grants nothing from that policy and says so.
                Err(e) => broken.push(format!("{}: {e}", p.name)),
            }
        }
        for s in services {
            if s.datacenters.is_empty() || s.datacenters.iter().any(|d| d == dc) {
                rules.merge(&meridian_acl::service_identity(&s.service_name));
                applied += 1;
            }
        }
        for n in nodes {
            if n.datacenter == dc {
                rules.merge(&meridian_acl::node_identity(&n.node_name));
                applied += 1;
            }
        }
        for t in templated.into_iter().filter(|t| t.applies_in(dc)) {
            match t.rules_text().map(|text| Rules::parse(&text)) {
                Some(Ok(r)) => {
                    rules.merge(&r);
                    applied += 1;
                }
                _ => broken.push(format!("templated policy {}", t.template_name)),
            }
        }
        TokenResolution {
            rules,
            applied,
            broken,
        }
    }
}
