//! The `acl { ... }` block: Consul's ACL settings, typed, with Consul's defaults
//! (`agent/config/default.go`; reference/acl.md §1).
//!
//! Owns the key names, defaults and value checks (`default_policy`, `down_policy`), so a bad
//! value is an error naming its file and key. The deprecated spellings (`tokens.master`,
//! `acl_master_token`, `acl_datacenter`, ...) are moved onto these keys per layer in
//! `consul_keys.rs`. Must not: resolve tokens or do I/O.
//!
//! `enabled = true` starts as it does in Consul: enforcement covers every endpoint family of
//! reference/acl.md §5.3 and DNS. (The `MERIDIAN_ACL_PREVIEW=1` gate of earlier versions is
//! gone; the variable is ignored.)

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::serde_go;

/// ACL settings (`acl { ... }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AclConfig {
    /// Whether ACLs are on. Default false.
    pub enabled: bool,
    /// The last authorizer of every chain: `allow` or `deny`. Default `allow`.
    pub default_policy: AclDefaultPolicy,
    /// What a remote resolution failure yields. Default `extend-cache`.
    pub down_policy: AclDownPolicy,
    /// How long a resolved token stays cached where it was resolved remotely. Default 30s.
    #[serde(with = "serde_go")]
    pub token_ttl: Duration,
    /// Cache lifetime of remotely resolved policies. Default 30s.
    #[serde(with = "serde_go")]
    pub policy_ttl: Duration,
    /// Cache lifetime of remotely resolved roles. Default 30s.
    #[serde(with = "serde_go")]
    pub role_ttl: Duration,
    /// KV recurse and `?keys` need `key:list` on the prefix. Default false.
    pub enable_key_list_policy: bool,
    /// A secondary datacenter replicates global tokens. Default false.
    pub enable_token_replication: bool,
    /// Agent tokens set over the API are saved in the data dir. Default false.
    pub enable_token_persistence: bool,
    /// The agent's special tokens.
    pub tokens: AclTokensConfig,
}

impl Default for AclConfig {
    fn default() -> Self {
        AclConfig {
            enabled: false,
            default_policy: AclDefaultPolicy::Allow,
            down_policy: AclDownPolicy::ExtendCache,
            token_ttl: Duration::from_secs(30),
            policy_ttl: Duration::from_secs(30),
            role_ttl: Duration::from_secs(30),
            enable_key_list_policy: false,
            enable_token_replication: false,
            enable_token_persistence: false,
            tokens: AclTokensConfig::default(),
        }
    }
}

/// `acl.tokens { ... }`: secrets the agent itself holds. `Debug` shows which are set, never
/// their values (configs are printed in errors and test failures).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AclTokensConfig {
    /// The primary leader makes a `global-management` token with this secret.
    pub initial_management: Option<String>,
    /// Node registration and anti-entropy; falls back to `default`.
    pub agent: Option<String>,
    /// Resolved locally: agent write on this node, node read everywhere.
    pub agent_recovery: Option<String>,
    /// Used for requests that carry no token (instead of anonymous).
    pub default: Option<String>,
    /// Secondaries replicate with it.
    pub replication: Option<String>,
    /// Config-file services and checks without their own token; falls back to `default`.
    pub config_file_service_registration: Option<String>,
    /// DNS lookups; falls back to `default`.
    pub dns: Option<String>,
}

impl fmt::Debug for AclTokensConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |t: &Option<String>| t.as_ref().map(|_| "<set>");
        f.debug_struct("AclTokensConfig")
            .field("initial_management", &set(&self.initial_management))
            .field("agent", &set(&self.agent))
            .field("agent_recovery", &set(&self.agent_recovery))
            .field("default", &set(&self.default))
            .field("replication", &set(&self.replication))
            .field(
                "config_file_service_registration",
                &set(&self.config_file_service_registration),
            )
            .field("dns", &set(&self.dns))
            .finish()
    }
}

/// `acl.default_policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AclDefaultPolicy {
    /// Everything not denied is allowed, except ACL management and snapshots.
    #[default]
    Allow,
    /// Everything not allowed is denied.
    Deny,
}

impl AclDefaultPolicy {
    /// Consul's spelling, as echoed in `X-Consul-Default-ACL-Policy`.
    pub fn as_str(self) -> &'static str {
        match self {
            AclDefaultPolicy::Allow => "allow",
            AclDefaultPolicy::Deny => "deny",
        }
    }
}

impl TryFrom<String> for AclDefaultPolicy {
    type Error = String;

    fn try_from(v: String) -> Result<Self, String> {
        match v.as_str() {
            "allow" => Ok(AclDefaultPolicy::Allow),
            "deny" => Ok(AclDefaultPolicy::Deny),
            _ => Err(format!("invalid ACL default policy {v:?}")),
        }
    }
}

impl From<AclDefaultPolicy> for String {
    fn from(p: AclDefaultPolicy) -> String {
        p.as_str().to_string()
    }
}

impl fmt::Display for AclDefaultPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `acl.down_policy`: what a failed remote resolution yields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AclDownPolicy {
    /// Reuse an expired cached entry; nothing cached → the default policy.
    #[default]
    ExtendCache,
    /// Like `ExtendCache`, refreshing in the background.
    AsyncCache,
    /// Allow everything (no ACL management).
    Allow,
    /// Deny everything.
    Deny,
}

impl AclDownPolicy {
    /// Consul's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AclDownPolicy::ExtendCache => "extend-cache",
            AclDownPolicy::AsyncCache => "async-cache",
            AclDownPolicy::Allow => "allow",
            AclDownPolicy::Deny => "deny",
        }
    }
}

impl TryFrom<String> for AclDownPolicy {
    type Error = String;

    fn try_from(v: String) -> Result<Self, String> {
        match v.as_str() {
            "extend-cache" => Ok(AclDownPolicy::ExtendCache),
            "async-cache" => Ok(AclDownPolicy::AsyncCache),
            "allow" => Ok(AclDownPolicy::Allow),
            "deny" => Ok(AclDownPolicy::Deny),
            _ => Err(format!("invalid ACL down policy {v:?}")),
        }
    }
}

impl From<AclDownPolicy> for String {
    fn from(p: AclDownPolicy) -> String {
        p.as_str().to_string()
    }
}
