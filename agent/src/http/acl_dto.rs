//! Consul's JSON for ACL objects (reference/acl.md §2): PascalCase, RFC 3339 times,
//! `omitempty` fields absent, link names as the linked objects are named now (links to
//! deleted objects left out), `SecretID: "<hidden>"` without `acl:write`, and `Hash`.
//! Also the request bodies (keys folded by `body.rs`). Pure: no I/O.
//!
//! `Hash` is base64 of SHA-256 over the fields Consul hashes (Consul uses BLAKE2b-256; the
//! bytes only matter when mixing with real Consul servers, which Meridian does not).

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::body::GoDuration;
use crate::catalog::State;
use crate::catalog::acl::{
    AclLink, AclPolicy, AclRole, AclToken, NodeIdentity, ServiceIdentity, TemplateVariables,
    TemplatedPolicy,
};

/// What a caller without `acl:write` sees instead of a secret.
pub(super) const HIDDEN: &str = "<hidden>";

/// RFC 3339 with fraction, UTC.
pub(super) fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn hash(parts: &[&str]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p.as_bytes());
        ctx.update(&[0]);
    }
    base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref())
}

fn identities_hash(s: &[ServiceIdentity], n: &[NodeIdentity], t: &[TemplatedPolicy]) -> String {
    let mut out = String::new();
    for i in t {
        out.push_str(&format!(
            "t:{}:{}:{};",
            i.template_name,
            i.name_var().unwrap_or(""),
            i.datacenters.join(",")
        ));
    }
    for i in s {
        out.push_str(&format!(
            "s:{}:{};",
            i.service_name,
            i.datacenters.join(",")
        ));
    }
    for i in n {
        out.push_str(&format!("n:{}:{};", i.node_name, i.datacenter));
    }
    out
}

fn links(state: &State, links: &[AclLink], policy: bool) -> Vec<Value> {
    links
        .iter()
        .filter_map(|l| {
            let name = if policy {
                state.acl_policy(&l.id).map(|p| p.name.clone())
            } else {
                state.acl_role(&l.id).map(|r| r.name.clone())
            }?;
            Some(json!({ "ID": l.id, "Name": name }))
        })
        .collect()
}

fn put_nonempty(m: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if !items.is_empty() {
        m.insert(key.into(), Value::Array(items));
    }
}

fn identities(
    m: &mut Map<String, Value>,
    s: &[ServiceIdentity],
    n: &[NodeIdentity],
    t: &[TemplatedPolicy],
) {
    put_nonempty(
        m,
        "ServiceIdentities",
        s.iter()
            .filter_map(|i| serde_json::to_value(i).ok())
            .collect(),
    );
    put_nonempty(
        m,
        "NodeIdentities",
        n.iter()
            .filter_map(|i| serde_json::to_value(i).ok())
            .collect(),
    );
    put_nonempty(
        m,
        "TemplatedPolicies",
        t.iter()
            .filter_map(|i| serde_json::to_value(i).ok())
            .collect(),
    );
}

/// A token (read, create, update, clone, self, and the list stubs).
pub(super) fn token(state: &State, t: &AclToken, reveal: bool) -> Value {
    let mut m = Map::new();
    m.insert("AccessorID".into(), json!(t.accessor_id));
    let secret = if reveal { t.secret_id.as_str() } else { HIDDEN };
    m.insert("SecretID".into(), json!(secret));
    m.insert("Description".into(), json!(t.description));
    put_nonempty(&mut m, "Policies", links(state, &t.policies, true));
    put_nonempty(&mut m, "Roles", links(state, &t.roles, false));
    identities(
        &mut m,
        &t.service_identities,
        &t.node_identities,
        &t.templated_policies,
    );
    m.insert("Local".into(), json!(t.local));
    if let Some(e) = t.expiration_ms {
        m.insert("ExpirationTime".into(), json!(rfc3339(e)));
    }
    if t.create_ms > 0 {
        m.insert("CreateTime".into(), json!(rfc3339(t.create_ms)));
    }
    let ids = |ls: &[AclLink]| {
        ls.iter()
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    m.insert(
        "Hash".into(),
        json!(hash(&[
            &t.description,
            if t.local { "local" } else { "global" },
            &ids(&t.policies),
            &ids(&t.roles),
            &identities_hash(
                &t.service_identities,
                &t.node_identities,
                &t.templated_policies
            ),
        ])),
    );
    m.insert("CreateIndex".into(), json!(t.create_index));
    m.insert("ModifyIndex".into(), json!(t.modify_index));
    Value::Object(m)
}

/// What `?expanded` adds to a token (§2.1): every policy it holds (its roles' and synthetic
/// identity policies included, those of other datacenters too, as Consul lists them), its
/// roles, and how the answering agent resolves (`ResolvedByAgent`: its node name).
pub(super) struct Expansion<'a> {
    /// `acl.default_policy` of the answering agent.
    pub default_policy: &'a str,
    /// `acl.down_policy` of the answering agent.
    pub down_policy: &'a str,
    /// Its node name.
    pub node: &'a str,
}

/// `token` with the `?expanded` fields.
pub(super) fn token_expanded(
    state: &State,
    t: &AclToken,
    reveal: bool,
    x: &Expansion<'_>,
) -> Value {
    let mut out = token(state, t, reveal);
    let roles: Vec<&AclRole> = t
        .roles
        .iter()
        .filter_map(|l| state.acl_role(&l.id))
        .collect();
    let mut ids: Vec<&str> = t.policies.iter().map(|l| l.id.as_str()).collect();
    let mut services: Vec<&ServiceIdentity> = t.service_identities.iter().collect();
    let mut nodes: Vec<&NodeIdentity> = t.node_identities.iter().collect();
    let mut templated: Vec<&TemplatedPolicy> = t.templated_policies.iter().collect();
    for r in &roles {
        ids.extend(r.policies.iter().map(|l| l.id.as_str()));
        services.extend(r.service_identities.iter());
        nodes.extend(r.node_identities.iter());
        templated.extend(r.templated_policies.iter());
    }
    ids.sort_unstable();
    ids.dedup();
    let mut policies: Vec<Value> = ids
        .into_iter()
        .filter_map(|id| state.acl_policy(id))
        .map(policy)
        .collect();
    let synthetic = |rules: String, description: String, dcs: Vec<String>| {
        let name = format!(
            "synthetic-policy-{}",
            &hash(&[&rules]).replace(['/', '+', '='], "")[..16]
        );
        policy(&AclPolicy {
            id: String::new(),
            name,
            description,
            rules,
            datacenters: dcs,
            create_index: 0,
            modify_index: 0,
        })
    };
    for s in services {
        let rules = meridian_acl::service_identity_text(&s.service_name);
        let why = format!("synthetic policy for service identity {:?}", s.service_name);
        policies.push(synthetic(rules, why, s.datacenters.clone()));
    }
    for n in nodes {
        let rules = meridian_acl::node_identity_text(&n.node_name);
        let why = format!("synthetic policy for node identity {:?}", n.node_name);
        policies.push(synthetic(rules, why, vec![n.datacenter.clone()]));
    }
    for tp in templated {
        if let Some(p) = synthetic_templated(tp) {
            policies.push(policy(&p));
        }
    }
    let roles: Vec<Value> = roles.into_iter().map(|r| role(state, r)).collect();
    if let Value::Object(m) = &mut out {
        m.insert("ExpandedPolicies".into(), Value::Array(policies));
        m.insert("ExpandedRoles".into(), Value::Array(roles));
        m.insert("AgentACLDefaultPolicy".into(), json!(x.default_policy));
        m.insert("AgentACLDownPolicy".into(), json!(x.down_policy));
        m.insert("ResolvedByAgent".into(), json!(x.node));
    }
    out
}

/// The synthetic policy Consul shows for a templated policy (`?expanded`, and the template
/// preview): ID and name from the rendered rules, as Consul derives them. `None` when the
/// template is unknown or its variables invalid.
pub(super) fn synthetic_templated(tp: &TemplatedPolicy) -> Option<AclPolicy> {
    let rules = tp.rules_text()?;
    let id = meridian_acl::synthetic_policy_id(&rules);
    Some(AclPolicy {
        name: format!("synthetic-policy-{id}"),
        id,
        description: format!(
            "synthetic policy generated from templated policy: {}",
            tp.template_name
        ),
        rules,
        datacenters: tp.datacenters.clone(),
        create_index: 0,
        modify_index: 0,
    })
}

fn policy_hash(p: &AclPolicy) -> String {
    hash(&[&p.name, &p.description, &p.rules, &p.datacenters.join(",")])
}

/// A full policy (`Datacenters` omitted when empty).
pub(super) fn policy(p: &AclPolicy) -> Value {
    let mut m = Map::new();
    m.insert("ID".into(), json!(p.id));
    m.insert("Name".into(), json!(p.name));
    m.insert("Description".into(), json!(p.description));
    m.insert("Rules".into(), json!(p.rules));
    if !p.datacenters.is_empty() {
        m.insert("Datacenters".into(), json!(p.datacenters));
    }
    m.insert("Hash".into(), json!(policy_hash(p)));
    m.insert("CreateIndex".into(), json!(p.create_index));
    m.insert("ModifyIndex".into(), json!(p.modify_index));
    Value::Object(m)
}

/// A policy list stub: no `Rules`, and `Datacenters` is `null` when empty (not omitempty).
pub(super) fn policy_stub(p: &AclPolicy) -> Value {
    let dcs = if p.datacenters.is_empty() {
        Value::Null
    } else {
        json!(p.datacenters)
    };
    json!({
        "ID": p.id, "Name": p.name, "Description": p.description, "Datacenters": dcs,
        "Hash": policy_hash(p), "CreateIndex": p.create_index, "ModifyIndex": p.modify_index,
    })
}

/// A role (read and list alike).
pub(super) fn role(state: &State, r: &AclRole) -> Value {
    let mut m = Map::new();
    m.insert("ID".into(), json!(r.id));
    m.insert("Name".into(), json!(r.name));
    m.insert("Description".into(), json!(r.description));
    put_nonempty(&mut m, "Policies", links(state, &r.policies, true));
    identities(
        &mut m,
        &r.service_identities,
        &r.node_identities,
        &r.templated_policies,
    );
    let ids: Vec<&str> = r.policies.iter().map(|l| l.id.as_str()).collect();
    m.insert(
        "Hash".into(),
        json!(hash(&[
            &r.name,
            &r.description,
            &ids.join(","),
            &identities_hash(
                &r.service_identities,
                &r.node_identities,
                &r.templated_policies
            ),
        ])),
    );
    m.insert("CreateIndex".into(), json!(r.create_index));
    m.insert("ModifyIndex".into(), json!(r.modify_index));
    Value::Object(m)
}

// === request bodies (keys folded) ===

/// `{"ID"}` or `{"Name"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct LinkBody {
    id: String,
    name: String,
}

impl From<LinkBody> for AclLink {
    fn from(l: LinkBody) -> Self {
        AclLink {
            id: l.id,
            name: l.name,
        }
    }
}

/// `{"ServiceName", "Datacenters"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ServiceIdentityBody {
    servicename: String,
    datacenters: Vec<String>,
}

/// `{"NodeName", "Datacenter"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct NodeIdentityBody {
    nodename: String,
    datacenter: String,
}

/// `{"Name"}` (or `{"name"}`, as Consul writes it): a templated policy's variables.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TemplateVariablesBody {
    pub name: String,
}

/// `{"TemplateName", "TemplateVariables", "Datacenters"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TemplatedPolicyBody {
    templatename: String,
    templatevariables: Option<TemplateVariablesBody>,
    datacenters: Vec<String>,
}

/// Templated policies as written (checked by `acl_templated::check`).
pub(super) fn templated_policies(v: Vec<TemplatedPolicyBody>) -> Vec<TemplatedPolicy> {
    v.into_iter()
        .map(|t| TemplatedPolicy {
            template_name: t.templatename,
            template_variables: t
                .templatevariables
                .map(|v| TemplateVariables { name: v.name }),
            datacenters: t.datacenters,
        })
        .collect()
}

fn service_identities(v: Vec<ServiceIdentityBody>) -> Vec<ServiceIdentity> {
    v.into_iter()
        .map(|s| ServiceIdentity {
            service_name: s.servicename,
            datacenters: s.datacenters,
        })
        .collect()
}

fn node_identities(v: Vec<NodeIdentityBody>) -> Vec<NodeIdentity> {
    v.into_iter()
        .map(|n| NodeIdentity {
            node_name: n.nodename,
            datacenter: n.datacenter,
        })
        .collect()
}

/// A token as written (`PUT /v1/acl/token[/:id]`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct TokenBody {
    pub accessorid: String,
    pub secretid: String,
    pub description: Option<String>,
    pub policies: Vec<LinkBody>,
    pub roles: Vec<LinkBody>,
    pub serviceidentities: Vec<ServiceIdentityBody>,
    pub nodeidentities: Vec<NodeIdentityBody>,
    pub templatedpolicies: Vec<TemplatedPolicyBody>,
    pub local: Option<bool>,
    pub expirationtime: Option<String>,
    pub expirationttl: Option<GoDuration>,
}

impl TokenBody {
    /// The links and identities, as a token carries them.
    pub(super) fn links(
        self,
    ) -> (
        Vec<AclLink>,
        Vec<AclLink>,
        Vec<ServiceIdentity>,
        Vec<NodeIdentity>,
    ) {
        (
            self.policies.into_iter().map(Into::into).collect(),
            self.roles.into_iter().map(Into::into).collect(),
            service_identities(self.serviceidentities),
            node_identities(self.nodeidentities),
        )
    }
}

/// A policy as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PolicyBody {
    pub id: String,
    pub name: String,
    pub description: String,
    pub rules: String,
    pub datacenters: Vec<String>,
}

/// A role as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RoleBody {
    pub id: String,
    pub name: String,
    pub description: String,
    pub policies: Vec<LinkBody>,
    pub serviceidentities: Vec<ServiceIdentityBody>,
    pub nodeidentities: Vec<NodeIdentityBody>,
    pub templatedpolicies: Vec<TemplatedPolicyBody>,
}

impl RoleBody {
    /// The role with `id`.
    pub(super) fn into_role(self, id: String) -> AclRole {
        AclRole {
            id,
            name: self.name,
            description: self.description,
            policies: self.policies.into_iter().map(Into::into).collect(),
            service_identities: service_identities(self.serviceidentities),
            node_identities: node_identities(self.nodeidentities),
            templated_policies: templated_policies(self.templatedpolicies),
            create_index: 0,
            modify_index: 0,
        }
    }
}
