//! Applying [`AclWrite`]s: validation with Consul's texts, link resolution (names to IDs),
//! the built-in objects, and the derived name and secret maps.

use meridian_acl::{
    ANONYMOUS_TOKEN_ID, GLOBAL_MANAGEMENT_ID, GLOBAL_READ_ONLY_ID, RESERVED_ID_PREFIX, Rules,
};

use super::types::{
    AclLink, AclPolicy, AclRole, AclToken, AclWrite, NodeIdentity, TemplatedPolicy,
};
use crate::rows::Table;
use crate::{Response, State};

/// SecretID of the anonymous token.
const ANONYMOUS_SECRET: &str = "anonymous";
/// How far a writer's `create_ms` may be from the leader's clock and still be used.
const CREATE_SKEW_MS: u64 = 10_000;
/// Secrets that name the root authorizers: never a token's.
const ROOT_NAMES: [&str; 3] = ["allow", "deny", "manage"];

fn rejected(text: impl Into<String>) -> Response {
    Response::Rejected(text.into())
}

/// `8-4-4-4-12` hex digits (the only 36-character form `uuid` parses).
fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

fn valid_policy_name(name: &str) -> bool {
    let (head, tail) = name.split_once('/').unwrap_or((name, ""));
    let ok = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (1..=128).contains(&name.len()) && !head.is_empty() && ok(head) && ok(tail)
}

fn valid_role_name(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn builtin_policy(id: &str, name: &str, rules: String, description: &str) -> AclPolicy {
    AclPolicy {
        id: id.into(),
        name: name.into(),
        description: description.into(),
        rules,
        ..AclPolicy::default()
    }
}

impl State {
    pub(crate) fn acl_apply(&mut self, index: u64, now_ms: u64, w: &AclWrite) -> Response {
        match w {
            AclWrite::Bootstrap { token, reset_index } => {
                if let Some(done) = self.acl_bootstrap
                    && *reset_index != Some(done)
                {
                    return rejected(format!(
                        "Permission denied: ACL bootstrap no longer allowed (reset index: {done})"
                    ));
                }
                self.acl_init(index, now_ms, None);
                let token = AclToken {
                    policies: vec![AclLink {
                        id: GLOBAL_MANAGEMENT_ID.into(),
                        name: String::new(),
                    }],
                    local: false,
                    ..(**token).clone()
                };
                match self.acl_token_set(index, now_ms, &token, true) {
                    Response::Ok => {
                        self.acl_bootstrap = Some(index);
                        self.touch(Table::Meta, String::new());
                        Response::Ok
                    }
                    refused => refused,
                }
            }
            AclWrite::Init { initial_management } => {
                self.acl_init(index, now_ms, initial_management.as_deref());
                Response::Ok
            }
            AclWrite::TokenSet { token, create } => {
                self.acl_token_set(index, now_ms, token, *create)
            }
            AclWrite::TokenDelete { accessor_id } => {
                if accessor_id == ANONYMOUS_TOKEN_ID {
                    return rejected("Delete operation not permitted on the anonymous token");
                }
                match self.acl_tokens.remove(accessor_id) {
                    Some(t) => {
                        self.acl_secrets.remove(&t.secret_id);
                        self.tables.acl_tokens = index;
                        self.touch(Table::AclTokens, accessor_id.clone());
                        Response::Ok
                    }
                    None => rejected("Cannot find token to delete"),
                }
            }
            AclWrite::PolicySet(p) => self.acl_policy_set(index, p),
            AclWrite::PolicyDelete { id } => {
                if id == GLOBAL_MANAGEMENT_ID {
                    return rejected(
                        "Delete operation not permitted on the builtin global-management policy",
                    );
                }
                if id == GLOBAL_READ_ONLY_ID {
                    return rejected(
                        "Delete operation not permitted on the builtin global-read-only policy",
                    );
                }
                if let Some(p) = self.acl_policies.remove(id) {
                    self.acl_policy_names.remove(&p.name);
                    self.tables.acl_policies = index;
                    self.touch(Table::AclPolicies, id.clone());
                }
                Response::Ok
            }
            AclWrite::RoleSet(r) => self.acl_role_set(index, r),
            AclWrite::RoleDelete { id } => {
                if let Some(r) = self.acl_roles.remove(id) {
                    self.acl_role_names.remove(&r.name);
                    self.tables.acl_roles = index;
                    self.touch(Table::AclRoles, id.clone());
                }
                Response::Ok
            }
            AclWrite::Replicate(batch) => {
                self.acl_replicate(index, batch);
                Response::Ok
            }
            AclWrite::SetPrimary(p) => {
                let kept = p.beats(self.acl_primary.as_ref());
                if kept {
                    self.acl_primary = Some(p.clone());
                    self.touch(Table::Meta, String::new());
                }
                Response::Bool(kept)
            }
            AclWrite::ReapExpired { before_ms } => {
                let expired: Vec<String> = self
                    .acl_tokens
                    .values()
                    .filter(|t| t.expired(*before_ms))
                    .map(|t| t.accessor_id.clone())
                    .collect();
                for id in expired {
                    if let Some(t) = self.acl_tokens.remove(&id) {
                        self.acl_secrets.remove(&t.secret_id);
                        self.tables.acl_tokens = index;
                        self.touch(Table::AclTokens, id);
                    }
                }
                Response::Ok
            }
        }
    }

    /// The built-in policies and the anonymous token where missing; global-management's
    /// rules restored; `initial_management` created if its secret is unknown.
    fn acl_init(&mut self, index: u64, now_ms: u64, initial: Option<&AclToken>) {
        let builtins = [
            builtin_policy(
                GLOBAL_MANAGEMENT_ID,
                "global-management",
                meridian_acl::global_management_rules(),
                "Builtin Policy that grants unlimited access",
            ),
            builtin_policy(
                GLOBAL_READ_ONLY_ID,
                "builtin/global-read-only",
                meridian_acl::global_read_only_rules(),
                "Builtin Policy that grants unlimited read-only access to all components",
            ),
        ];
        for b in builtins {
            let drifted = self.acl_policies.get(&b.id).map(|p| p.rules != b.rules);
            match drifted {
                Some(false) => {}
                Some(true) => {
                    // Renames are allowed and kept; the rules are the builtin's.
                    if let Some(p) = self.acl_policies.get(&b.id).cloned() {
                        self.store_policy(
                            index,
                            AclPolicy {
                                rules: b.rules,
                                datacenters: Vec::new(),
                                ..p
                            },
                        );
                    }
                }
                None if self.acl_policy_names.contains_key(&b.name) => {
                    // A user policy holds the name: the builtin still exists, renamed.
                    let name = format!("{}-builtin", b.name.replace('/', "-"));
                    self.store_policy(
                        index,
                        AclPolicy {
                            name,
                            create_index: index,
                            ..b
                        },
                    );
                }
                None => self.store_policy(
                    index,
                    AclPolicy {
                        create_index: index,
                        ..b
                    },
                ),
            }
        }
        if !self.acl_tokens.contains_key(ANONYMOUS_TOKEN_ID) {
            self.store_token(
                index,
                AclToken {
                    accessor_id: ANONYMOUS_TOKEN_ID.into(),
                    secret_id: ANONYMOUS_SECRET.into(),
                    description: "Anonymous Token".into(),
                    create_ms: now_ms,
                    create_index: index,
                    ..AclToken::default()
                },
            );
        }
        if let Some(t) = initial
            && !self.acl_secrets.contains_key(&t.secret_id)
            && !self.acl_tokens.contains_key(&t.accessor_id)
        {
            let token = AclToken {
                description: "Initial Management Token".into(),
                policies: vec![AclLink {
                    id: GLOBAL_MANAGEMENT_ID.into(),
                    name: "global-management".into(),
                }],
                local: false,
                expiration_ms: None,
                create_ms: now_ms,
                create_index: index,
                ..t.clone()
            };
            self.store_token(index, token);
        }
        // The initial management token counts as the bootstrap, also when it came by
        // replication: a secondary promoted to primary (the marker is not replicated) does
        // not reopen `/v1/acl/bootstrap` when it has `initial_management` configured.
        if let Some(t) = initial
            && self.acl_secrets.contains_key(&t.secret_id)
            && self.acl_bootstrap.is_none()
        {
            self.acl_bootstrap = Some(index);
            self.touch(Table::Meta, String::new());
        }
    }

    fn acl_token_set(&mut self, index: u64, now_ms: u64, t: &AclToken, create: bool) -> Response {
        let id = &t.accessor_id;
        let anonymous = id == ANONYMOUS_TOKEN_ID;
        if !is_uuid(id) {
            return rejected("Invalid Token: AccessorID - not a valid UUID");
        }
        if create && id.starts_with(RESERVED_ID_PREFIX) {
            return rejected(format!(
                "Invalid Token: AccessorID - UUIDs with the prefix {RESERVED_ID_PREFIX:?} are reserved"
            ));
        }
        if ROOT_NAMES.contains(&t.secret_id.as_str()) {
            return rejected("Permission denied: Cannot modify root ACL");
        }
        let existing = self.acl_tokens.get(id).cloned();
        match (&existing, create) {
            (Some(_), true) => return rejected("Invalid Token: AccessorID is already in use"),
            (None, false) => return rejected(format!("Cannot find token {id:?}")),
            _ => {}
        }
        if let Some(old) = &existing {
            if old.secret_id != t.secret_id {
                return rejected("Changing a token's SecretID is not permitted");
            }
            if old.local != t.local {
                return rejected(format!("Cannot toggle local mode of {id}"));
            }
            if old.expiration_ms != t.expiration_ms {
                return rejected(format!("Cannot change expiration time of {id}"));
            }
        } else {
            if !anonymous && !is_uuid(&t.secret_id) {
                return rejected("Invalid Token: SecretID - not a valid UUID");
            }
            if self.acl_secrets.contains_key(&t.secret_id)
                || self.acl_tokens.contains_key(&t.secret_id)
                || self.acl_secrets.contains_key(id)
            {
                return rejected("Invalid Token: SecretID is already in use");
            }
        }
        // A new token's CreateTime is the writer's clock when it turned ExpirationTTL into a
        // time (so a 1m TTL is not refused for the forwarding delay), within clock skew of
        // the leader's; otherwise the leader's.
        let created = if t.create_ms > 0 && t.create_ms.abs_diff(now_ms) <= CREATE_SKEW_MS {
            t.create_ms
        } else {
            now_ms
        };
        if let Some(e) = t.expiration_ms
            && existing.is_none()
            && e < created + 60_000
        {
            return rejected(format!(
                "ExpirationTime cannot be less than 1m0s in the future (was {}s)",
                e.saturating_sub(created) / 1000
            ));
        }
        if let Err(e) = check_identities(t) {
            return rejected(e);
        }
        let templated_policies = match check_templated(&t.templated_policies, t.local) {
            Ok(tp) => tp,
            Err(e) => return rejected(e),
        };
        let policies = match self.resolve_policy_links(&t.policies) {
            Ok(p) => p,
            Err(e) => return rejected(e),
        };
        let roles = match self.resolve_role_links(&t.roles) {
            Ok(r) => r,
            Err(e) => return rejected(e),
        };
        let token = AclToken {
            policies,
            roles,
            templated_policies,
            create_ms: existing.as_ref().map_or(created, |o| o.create_ms),
            create_index: existing.as_ref().map_or(index, |o| o.create_index),
            modify_index: index,
            ..t.clone()
        };
        self.store_token(index, token);
        Response::Ok
    }

    fn acl_policy_set(&mut self, index: u64, p: &AclPolicy) -> Response {
        if p.name.is_empty() {
            return rejected("Invalid Policy: no Name is set");
        }
        if !is_uuid(&p.id) {
            return rejected("Policy ID invalid UUID");
        }
        let existing = self.acl_policies.get(&p.id).cloned();
        let builtin = p.id == GLOBAL_MANAGEMENT_ID || p.id == GLOBAL_READ_ONLY_ID;
        if existing.is_none() && p.id.starts_with(RESERVED_ID_PREFIX) {
            return rejected(format!(
                "Invalid Policy: UUIDs with the prefix {RESERVED_ID_PREFIX:?} are reserved"
            ));
        }
        if !valid_policy_name(&p.name) || (p.name.starts_with("builtin/") && !builtin) {
            return rejected(
                "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
            );
        }
        if self
            .acl_policy_names
            .get(&p.name)
            .is_some_and(|other| *other != p.id)
        {
            return rejected(format!(
                "Invalid Policy: A Policy with Name {:?} already exists",
                p.name
            ));
        }
        if let Some(old) = &existing
            && builtin
            && (old.rules != p.rules || old.datacenters != p.datacenters)
        {
            return rejected(if p.id == GLOBAL_MANAGEMENT_ID {
                "Changing the Rules for the builtin global-management policy is not permitted"
            } else {
                "Changing the Rules for the builtin global-read-only policy is not permitted"
            });
        }
        if let Err(e) = Rules::parse(&p.rules) {
            return rejected(e.to_string());
        }
        self.store_policy(
            index,
            AclPolicy {
                create_index: existing.as_ref().map_or(index, |o| o.create_index),
                ..p.clone()
            },
        );
        Response::Ok
    }

    fn acl_role_set(&mut self, index: u64, r: &AclRole) -> Response {
        if r.name.is_empty() {
            return rejected("Invalid Role: no Name is set");
        }
        if !is_uuid(&r.id) {
            return rejected("Role ID invalid UUID");
        }
        if !valid_role_name(&r.name) {
            return rejected(
                "Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed",
            );
        }
        if self
            .acl_role_names
            .get(&r.name)
            .is_some_and(|other| *other != r.id)
        {
            return rejected(format!(
                "Invalid Role: A Role with Name {:?} already exists",
                r.name
            ));
        }
        for s in &r.service_identities {
            if !meridian_acl::valid_identity_name(&s.service_name) {
                return rejected(bad_identity("Service", &s.service_name));
            }
        }
        if let Err(e) = check_nodes(&r.node_identities, "role") {
            return rejected(e);
        }
        let templated_policies = match check_templated(&r.templated_policies, false) {
            Ok(tp) => tp,
            Err(e) => return rejected(e),
        };
        let policies = match self.resolve_policy_links(&r.policies) {
            Ok(p) => p,
            Err(e) => return rejected(e),
        };
        let existing = self.acl_roles.get(&r.id);
        let role = AclRole {
            policies,
            templated_policies,
            create_index: existing.map_or(index, |o| o.create_index),
            modify_index: index,
            ..r.clone()
        };
        if let Some(old) = self.acl_roles.get(&r.id).map(|o| o.name.clone()) {
            self.acl_role_names.remove(&old);
        }
        self.acl_role_names
            .insert(role.name.clone(), role.id.clone());
        self.tables.acl_roles = index;
        self.touch(Table::AclRoles, role.id.clone());
        self.acl_roles.insert(role.id.clone(), role);
        Response::Ok
    }

    fn resolve_policy_links(&self, links: &[AclLink]) -> Result<Vec<AclLink>, String> {
        resolve_links(links, "policy", |l| {
            let p = if l.id.is_empty() {
                self.acl_policy_by_name(&l.name)
            } else {
                self.acl_policies.get(&l.id)
            };
            p.map(|p| (p.id.clone(), p.name.clone()))
        })
    }

    fn resolve_role_links(&self, links: &[AclLink]) -> Result<Vec<AclLink>, String> {
        resolve_links(links, "role", |l| {
            let r = if l.id.is_empty() {
                self.acl_role_by_name(&l.name)
            } else {
                self.acl_roles.get(&l.id)
            };
            r.map(|r| (r.id.clone(), r.name.clone()))
        })
    }

    pub(super) fn store_token(&mut self, index: u64, t: AclToken) {
        if let Some(old) = self.acl_tokens.get(&t.accessor_id) {
            let old_secret = old.secret_id.clone();
            self.acl_secrets.remove(&old_secret);
        }
        self.acl_secrets
            .insert(t.secret_id.clone(), t.accessor_id.clone());
        self.tables.acl_tokens = index;
        self.touch(Table::AclTokens, t.accessor_id.clone());
        let t = AclToken {
            modify_index: index,
            ..t
        };
        self.acl_tokens.insert(t.accessor_id.clone(), t);
    }

    pub(super) fn store_policy(&mut self, index: u64, p: AclPolicy) {
        if let Some(old) = self.acl_policies.get(&p.id).map(|o| o.name.clone()) {
            self.acl_policy_names.remove(&old);
        }
        self.acl_policy_names.insert(p.name.clone(), p.id.clone());
        self.tables.acl_policies = index;
        self.touch(Table::AclPolicies, p.id.clone());
        let p = AclPolicy {
            modify_index: index,
            ..p
        };
        self.acl_policies.insert(p.id.clone(), p);
    }

    /// Rebuilds the derived name and secret maps (after a restore).
    pub(crate) fn index_acl(&mut self) {
        self.acl_secrets = self
            .acl_tokens
            .values()
            .map(|t| (t.secret_id.clone(), t.accessor_id.clone()))
            .collect();
        self.acl_policy_names = self
            .acl_policies
            .values()
            .map(|p| (p.name.clone(), p.id.clone()))
            .collect();
        self.acl_role_names = self
            .acl_roles
            .values()
            .map(|r| (r.name.clone(), r.id.clone()))
            .collect();
    }
}

/// Links as stored: each resolved to the (ID, name) `find` gives, duplicates dropped; a
/// missing one is refused with Consul's text for `kind` (`policy`, `role`).
fn resolve_links(
    links: &[AclLink],
    kind: &str,
    find: impl Fn(&AclLink) -> Option<(String, String)>,
) -> Result<Vec<AclLink>, String> {
    let mut out: Vec<AclLink> = Vec::new();
    for l in links {
        let Some((id, name)) = find(l) else {
            return Err(if l.id.is_empty() {
                format!("No such ACL {kind} with name {:?}", l.name)
            } else {
                format!("cannot find {kind} {}", l.id)
            });
        };
        if !out.iter().any(|o| o.id == id) {
            out.push(AclLink { id, name });
        }
    }
    Ok(out)
}

fn bad_identity(kind: &str, name: &str) -> String {
    format!(
        "{kind} identity {name:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"
    )
}

fn check_nodes(nodes: &[NodeIdentity], on: &str) -> Result<(), String> {
    for n in nodes {
        if !meridian_acl::valid_identity_name(&n.node_name) {
            return Err(bad_identity("Node", &n.node_name));
        }
        if n.datacenter.is_empty() {
            return Err(format!(
                "Node identity is missing the datacenter field on this {on}"
            ));
        }
    }
    Ok(())
}

fn check_identities(t: &AclToken) -> Result<(), String> {
    for s in &t.service_identities {
        if !meridian_acl::valid_identity_name(&s.service_name) {
            return Err(bad_identity("Service", &s.service_name));
        }
        if t.local && !s.datacenters.is_empty() {
            return Err(format!(
                "Service identity {:?} cannot specify a list of datacenters on a local token",
                s.service_name
            ));
        }
    }
    check_nodes(&t.node_identities, "token")
}

/// Templated policies as stored: each names a built-in template and carries the variables
/// its schema wants (those it does not take dropped), none has datacenters on a local
/// token, and duplicates (same template and variables) are dropped. Consul's texts.
pub fn check_templated(
    tps: &[TemplatedPolicy],
    local: bool,
) -> Result<Vec<TemplatedPolicy>, String> {
    let mut out: Vec<TemplatedPolicy> = Vec::new();
    for tp in tps {
        let Some(base) = meridian_acl::template(&tp.template_name) else {
            return Err(format!(
                "templated policy {:?} does not exist",
                tp.template_name
            ));
        };
        base.validate(tp.name_var())
            .map_err(|e| format!("templated policy failed validation. Error: {e}"))?;
        if local && !tp.datacenters.is_empty() {
            return Err(format!(
                "templated policy {:?} cannot specify a list of datacenters on a local token",
                tp.template_name
            ));
        }
        let tp = TemplatedPolicy {
            template_variables: if base.takes_name() {
                tp.template_variables.clone()
            } else {
                None
            },
            ..tp.clone()
        };
        let same = |o: &TemplatedPolicy| {
            o.template_name == tp.template_name && o.template_variables == tp.template_variables
        };
        if !out.iter().any(same) {
            out.push(tp);
        }
    }
    Ok(out)
}
