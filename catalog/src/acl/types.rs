//! The ACL rows and the write command that carries them.

use meridian_acl::Rules;
use serde::{Deserialize, Serialize};

/// A link from a token or role to a policy or role: by ID, or by name when written (apply
/// resolves names to IDs, so stored links always carry the ID).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclLink {
    /// ID of the linked object ("" when given by name).
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Its name (as given, or as it was when linked; the API shows the current one).
    #[serde(default)]
    pub name: String,
}

/// `{ServiceName, Datacenters}`: write on the service (and its sidecar), read on all.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceIdentity {
    /// The service.
    pub service_name: String,
    /// Where it applies (every datacenter when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
}

/// `{NodeName, Datacenter}`: write on the node, read on every service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeIdentity {
    /// The node.
    pub node_name: String,
    /// The one datacenter where it applies.
    pub datacenter: String,
}

/// The variables of a templated policy (Consul's JSON key is lowercase `name`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TemplateVariables {
    /// The `name` variable (service, node, gateway, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// `{TemplateName, TemplateVariables, Datacenters}`: a built-in template
/// (`meridian_acl::TEMPLATES`) with its variables, expanded into rules like an identity.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TemplatedPolicy {
    /// `builtin/service`, ...
    pub template_name: String,
    /// Its variables (`None` for templates that take none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_variables: Option<TemplateVariables>,
    /// Where it applies (every datacenter when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datacenters: Vec<String>,
}

impl TemplatedPolicy {
    /// The `name` variable, if set.
    pub fn name_var(&self) -> Option<&str> {
        self.template_variables
            .as_ref()
            .map(|v| v.name.as_str())
            .filter(|n| !n.is_empty())
    }

    /// Whether it applies in datacenter `dc`.
    pub fn applies_in(&self, dc: &str) -> bool {
        self.datacenters.is_empty() || self.datacenters.iter().any(|d| d == dc)
    }

    /// Its rules text (`None` if the template is unknown or the variables invalid: stored
    /// ones were checked when written, so only a newer binary dropping a template can).
    pub fn rules_text(&self) -> Option<String> {
        meridian_acl::template(&self.template_name)?
            .render(self.name_var())
            .ok()
    }
}

/// A token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclToken {
    /// Public id.
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    /// The secret a request presents.
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Linked policies.
    #[serde(default)]
    pub policies: Vec<AclLink>,
    /// Linked roles.
    #[serde(default)]
    pub roles: Vec<AclLink>,
    /// Service identities.
    #[serde(default)]
    pub service_identities: Vec<ServiceIdentity>,
    /// Node identities.
    #[serde(default)]
    pub node_identities: Vec<NodeIdentity>,
    /// Templated policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templated_policies: Vec<TemplatedPolicy>,
    /// Valid only in the datacenter that made it (never replicated).
    #[serde(default)]
    pub local: bool,
    /// Leader unix ms after which the token no longer resolves.
    #[serde(default)]
    pub expiration_ms: Option<u64>,
    /// Leader unix ms of its creation.
    #[serde(default)]
    pub create_ms: u64,
    /// Raft indexes.
    #[serde(default)]
    pub create_index: u64,
    /// Raft indexes.
    #[serde(default)]
    pub modify_index: u64,
}

impl AclToken {
    /// Whether it expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expiration_ms.is_some_and(|e| e <= now_ms)
    }
}

/// A policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclPolicy {
    /// ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Rules in Consul's language (HCL or JSON).
    #[serde(default)]
    pub rules: String,
    /// Datacenters where it applies (all when empty).
    #[serde(default)]
    pub datacenters: Vec<String>,
    /// Raft indexes.
    #[serde(default)]
    pub create_index: u64,
    /// Raft indexes.
    #[serde(default)]
    pub modify_index: u64,
}

/// A role: a named set of policies and identities.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclRole {
    /// ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Linked policies.
    #[serde(default)]
    pub policies: Vec<AclLink>,
    /// Service identities.
    #[serde(default)]
    pub service_identities: Vec<ServiceIdentity>,
    /// Node identities.
    #[serde(default)]
    pub node_identities: Vec<NodeIdentity>,
    /// Templated policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templated_policies: Vec<TemplatedPolicy>,
    /// Raft indexes.
    #[serde(default)]
    pub create_index: u64,
    /// Raft indexes.
    #[serde(default)]
    pub modify_index: u64,
}

/// One ACL write, replicated through raft. IDs and secrets of new objects are chosen by the
/// proposing server, so apply is deterministic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AclWrite {
    /// The one-time bootstrap: stores the built-in objects if missing and `token` linked to
    /// global-management. Refused once bootstrapped unless `reset_index` names the index of
    /// that bootstrap (Consul's `acl-bootstrap-reset` file).
    Bootstrap {
        /// The management token to create.
        token: Box<AclToken>,
        /// The reset index from the data directory's reset file, if one was given.
        reset_index: Option<u64>,
    },
    /// Stores the built-in policies and the anonymous token where missing, restores
    /// global-management's rules if they drifted, and creates `initial_management` (a
    /// token linked to global-management with that SecretID) if no token has it. Run by
    /// the primary datacenter's leader when it takes office.
    Init {
        /// `acl.tokens.initial_management`, with the AccessorID chosen for it.
        initial_management: Option<Box<AclToken>>,
    },
    /// Creates (`create`) or updates a token.
    TokenSet {
        /// The token as written.
        token: Box<AclToken>,
        /// Create (refused if the AccessorID exists) or update (refused if it does not).
        create: bool,
    },
    /// Deletes a token by AccessorID.
    TokenDelete {
        /// AccessorID.
        accessor_id: String,
    },
    /// Creates or updates a policy (by ID).
    PolicySet(Box<AclPolicy>),
    /// Deletes a policy by ID.
    PolicyDelete {
        /// ID.
        id: String,
    },
    /// Creates or updates a role (by ID).
    RoleSet(Box<AclRole>),
    /// Deletes a role by ID.
    RoleDelete {
        /// ID.
        id: String,
    },
    /// Deletes tokens that expired before `before_ms` (the leader's reaper).
    ReapExpired {
        /// Cutoff in unix ms.
        before_ms: u64,
    },
    /// A batch copied from the primary datacenter by a secondary's leader (`reference/acl.md`
    /// §6.2): rows stored as the primary has them, without the write checks (the primary
    /// made them; links may name objects not copied yet), and deletes of rows it no
    /// longer has.
    Replicate(Box<AclReplicated>),
    /// Records which datacenter is the ACL primary (a promotion, a config change on
    /// reload, or another datacenter's record learned through the gateways). Kept only if
    /// it [beats](AclPrimary::beats) the record held, so applying it twice, late or out of
    /// order ends in the same record everywhere.
    SetPrimary(AclPrimary),
}

/// The ACL primary datacenter in effect and the epoch of that choice. Every move raises
/// the epoch; datacenters exchange records and keep the one that [beats](Self::beats).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AclPrimary {
    /// The primary datacenter.
    pub datacenter: String,
    /// The choice's epoch (0: only the configured `primary_datacenter`, never stored).
    pub epoch: u64,
}

impl AclPrimary {
    /// Whether this record replaces `held`: a higher epoch wins; at equal epochs the
    /// lexically smallest datacenter name, so every datacenter settles on the same one.
    pub fn beats(&self, held: Option<&AclPrimary>) -> bool {
        match held {
            None => self.epoch > 0 && !self.datacenter.is_empty(),
            Some(h) => {
                self.epoch > h.epoch || (self.epoch == h.epoch && self.datacenter < h.datacenter)
            }
        }
    }
}

/// One replication batch (see [`AclWrite::Replicate`]).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AclReplicated {
    /// Policies to store.
    pub policies: Vec<AclPolicy>,
    /// Policy IDs to delete.
    pub policy_deletes: Vec<String>,
    /// Roles to store.
    pub roles: Vec<AclRole>,
    /// Role IDs to delete.
    pub role_deletes: Vec<String>,
    /// Global tokens to store.
    pub tokens: Vec<AclToken>,
    /// Token AccessorIDs to delete.
    pub token_deletes: Vec<String>,
}

/// What a token holds in one datacenter.
#[derive(Debug, Clone, Default)]
pub struct TokenResolution {
    /// The merged rules.
    pub rules: Rules,
    /// How many policies and identities contributed (0: only the default policy applies).
    pub applied: usize,
    /// Policies whose stored rules no longer parse, with why (they grant nothing).
    pub broken: Vec<String>,
}
