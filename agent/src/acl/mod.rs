//! ACLs on the agent (#17): which token a request carries, what that token may do, and the
//! settings both come from. Owns token extraction (reference/acl.md §5.1), resolution to an
//! [`Authorizer`] (§5.2, §6.4) with its caches, and the recovery token. Must not: render
//! HTTP (the `http` module maps [`AclError`] to responses), write through raft, or decide
//! what an endpoint needs (its handler asks, through `http::acl_authz::Authz`).
//!
//! ```text
//!   request ──token::extract──▶ secret ──Resolver::resolve──▶ Arc<Authorizer>
//!                                          │ server: applied state (cached by ACL indexes)
//!                                          └ client: GET /v1/internal/acl/resolve on a server
//!                                                    (cached token_ttl; down_policy on failure)
//! ```
//!
//! While ACLs are off every request resolves to [`Authorizer::manage`].

mod resolve;
mod token;
mod tokens;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meridian_acl::{Authorizer, Denied, Root, Rules};
use meridian_config::{AclDefaultPolicy, AclDownPolicy, AclTokensConfig, Config};

use crate::server::acl_primary::PrimaryCell;

pub use resolve::{RESOLVE_DC_PARAM, RESOLVE_PATH, RemoteResolution, Resolver, resolution_for};
pub use token::{TokenSource, extract};
pub use tokens::{AgentTokens, PersistError, TOKENS_FILE, TokenKind};

/// Consul's answer to ACL requests while ACLs are off (401).
pub const ACL_DISABLED: &str = "ACL support disabled";
/// An unknown or expired token after bootstrap (403).
pub const ACL_NOT_FOUND: &str = "ACL not found";
/// An unknown token before the ACL system was bootstrapped (403).
pub const ACL_NOT_FOUND_BOOTSTRAP: &str = "ACL system must be bootstrapped before making any requests that require authorization: ACL not found";
/// A root policy name used as a secret (500).
pub const ROOT_ACL: &str = "Cannot resolve root ACL";
/// AccessorID shown for the agent recovery token (Consul's `agent-recovery-token`).
pub const RECOVERY_ACCESSOR: &str = "agent-recovery-token";
/// Reset file in the data directory that allows one more bootstrap (Consul's name).
pub const BOOTSTRAP_RESET_FILE: &str = "acl-bootstrap-reset";

/// Why a token does not resolve, or a request is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AclError {
    /// ACLs are off (ACL endpoints answer 401).
    #[error("{ACL_DISABLED}")]
    Disabled,
    /// No live token has this secret.
    #[error("{}", if *.bootstrapped { ACL_NOT_FOUND } else { ACL_NOT_FOUND_BOOTSTRAP })]
    NotFound {
        /// Whether the ACL system was bootstrapped (the text differs before).
        bootstrapped: bool,
    },
    /// `allow`, `deny` or `manage` as a secret.
    #[error("{ROOT_ACL}")]
    RootName,
    /// The token lacks a permission.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A refusal text from a server (`Permission denied: ...`), passed on as it is.
    #[error("{0}")]
    Refused(String),
    /// The servers could not be asked (a client agent applies `down_policy` first).
    #[error("{0}")]
    Rpc(#[from] crate::rpc::RpcError),
}

/// The ACL settings an agent runs with (from `acl { ... }` and the agent's identity).
#[derive(Debug, Clone)]
pub struct AclSettings {
    /// `acl.enabled`.
    pub enabled: bool,
    /// `acl.default_policy`.
    pub default_policy: AclDefaultPolicy,
    /// `acl.down_policy`.
    pub down_policy: AclDownPolicy,
    /// `acl.token_ttl`: how long a client agent trusts a remote resolution.
    pub token_ttl: Duration,
    /// `acl.tokens` as configured; the values in effect are [`Resolver::tokens`] (the
    /// token API and persisted tokens change them).
    pub tokens: AclTokensConfig,
    /// This agent's datacenter.
    pub datacenter: String,
    /// The ACL primary in effect: `primary_datacenter` (default: `datacenter`) until a
    /// record moves it (`server::acl_primary`).
    pub primary: Arc<PrimaryCell>,
    /// This agent's node name (the recovery token's `agent` rule).
    pub node_name: String,
    /// Where `acl-bootstrap-reset` is looked for (`None` in `-dev` without a data dir).
    pub data_dir: Option<PathBuf>,
    /// `acl.enable_key_list_policy`: KV `?recurse`/`?keys` need `key:list` on the prefix.
    pub enable_key_list_policy: bool,
    /// `acl.enable_token_persistence`: tokens set through the API are saved (`tokens.rs`).
    pub enable_token_persistence: bool,
    /// `acl.enable_token_replication`: a secondary copies global tokens and holds local ones.
    pub enable_token_replication: bool,
}

impl AclSettings {
    /// The settings of `cfg`.
    pub fn from_config(cfg: &Config) -> Arc<Self> {
        Arc::new(AclSettings {
            enabled: cfg.acl.enabled,
            default_policy: cfg.acl.default_policy,
            down_policy: cfg.acl.down_policy,
            token_ttl: cfg.acl.token_ttl,
            tokens: cfg.acl.tokens.clone(),
            datacenter: cfg.datacenter.clone(),
            primary: PrimaryCell::new(&cfg.datacenter, cfg.primary_datacenter()),
            node_name: cfg.node_name.clone(),
            data_dir: cfg.data_dir.clone(),
            enable_key_list_policy: cfg.acl.enable_key_list_policy,
            enable_token_persistence: cfg.acl.enable_token_persistence,
            enable_token_replication: cfg.acl.enable_token_replication,
        })
    }

    /// The root of every chain: the default policy.
    pub fn root(&self) -> Root {
        match self.default_policy {
            AclDefaultPolicy::Allow => Root::Allow,
            AclDefaultPolicy::Deny => Root::Deny,
        }
    }

    /// Whether this agent is in the primary datacenter (the one in effect).
    pub fn is_primary(&self) -> bool {
        self.primary.is_me()
    }

    /// The primary datacenter in effect.
    pub fn primary_datacenter(&self) -> String {
        self.primary.datacenter()
    }

    /// The recovery token's authorizer: `agent "<this node>"` write and `node_prefix ""`
    /// read over deny-all, resolved without any server (reference/acl.md §1).
    pub fn recovery_authorizer(&self) -> Authorizer {
        let text = format!(
            "agent {:?} {{\n  policy = \"write\"\n}}\nnode_prefix \"\" {{\n  policy = \"read\"\n}}\n",
            self.node_name
        );
        // A node name with characters HCL cannot quote would make the text unparseable;
        // then the token holds nothing beyond deny-all, which fails closed.
        let rules = Rules::parse(&text).unwrap_or_default();
        Authorizer::new(rules, Root::Deny, Some(RECOVERY_ACCESSOR.into()))
    }
}
