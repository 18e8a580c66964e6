//! The decisions: one [`Authorizer`] per resolved token (its policies' rules merged, over the
//! default policy as [`Root`]), asked `check(resource, name, need)` by every interface.
//!
//! A rule answers Allow or Deny by Consul's table (`reference/acl.md` §4.4): `write` allows
//! read, list and write; `list` read and list; `read` read only; `deny` nothing. Where no rule
//! matches, the root decides: `allow` permits everything except `acl` rights, `deny` nothing,
//! and `Manage` (ACLs off, or a management token's own rules) everything.

use std::fmt;

use crate::rules::{Labeled, Level, Rules, Scalar};

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read one object or see it in a list.
    Read,
    /// List a KV prefix (`acl.enable_key_list_policy`).
    List,
    /// Create, change or delete.
    Write,
}

impl Need {
    fn as_str(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::List => "list",
            Need::Write => "write",
        }
    }
}

/// A resource family of the rule language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// The ACL API itself (unlabeled).
    Acl,
    /// `/v1/agent/*`, on the serving agent's node name.
    Agent,
    /// User events by name.
    Event,
    /// KV keys.
    Key,
    /// The gossip keyring (unlabeled).
    Keyring,
    /// Mesh configuration (unlabeled; falls back to `operator` when unset).
    Mesh,
    /// Nodes by name.
    Node,
    /// Raft, autopilot and other operator endpoints (unlabeled).
    Operator,
    /// Peering (unlabeled; falls back to `operator` when unset).
    Peering,
    /// Prepared queries by name.
    Query,
    /// Services by name.
    Service,
    /// Sessions, by the session's node name.
    Session,
}

impl Resource {
    /// Its name in `Permission denied` texts.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Acl => "acl",
            Resource::Agent => "agent",
            Resource::Event => "event",
            Resource::Key => "key",
            Resource::Keyring => "keyring",
            Resource::Mesh => "mesh",
            Resource::Node => "node",
            Resource::Operator => "operator",
            Resource::Peering => "peering",
            Resource::Query => "query",
            Resource::Service => "service",
            Resource::Session => "session",
        }
    }

    fn labeled(self) -> Option<Labeled> {
        Some(match self {
            Resource::Agent => Labeled::Agent,
            Resource::Event => Labeled::Event,
            Resource::Key => Labeled::Key,
            Resource::Node => Labeled::Node,
            Resource::Query => Labeled::Query,
            Resource::Service => Labeled::Service,
            Resource::Session => Labeled::Session,
            _ => return None,
        })
    }
}

/// The resources with names (one [`Labeled`] table each).
const LABELED_RESOURCES: [Resource; 7] = [
    Resource::Agent,
    Resource::Event,
    Resource::Key,
    Resource::Node,
    Resource::Query,
    Resource::Service,
    Resource::Session,
];

/// One decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A rule allows it.
    Allow,
    /// A rule denies it.
    Deny,
    /// No rule decides; the next in the chain does.
    Default,
}

/// The end of the chain: the default policy, or everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `default_policy = "allow"`: everything but `acl` rights.
    Allow,
    /// `default_policy = "deny"`.
    Deny,
    /// ACLs off: everything.
    Manage,
}

impl Root {
    fn decide(self, resource: Resource) -> bool {
        match self {
            Root::Manage => true,
            Root::Allow => resource != Resource::Acl,
            Root::Deny => false,
        }
    }
}

/// A refusal, rendered as Consul words it (clients match on `Permission denied`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Denied {
    /// AccessorID of the token, or `None` for the anonymous token.
    pub accessor: Option<String>,
    /// What was asked.
    pub resource: Resource,
    /// The name (empty for unlabeled resources).
    pub name: String,
    /// What was needed.
    pub need: Need,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = if self.resource.labeled().is_some() {
            format!(" on {:?}", self.name)
        } else {
            String::new()
        };
        let perm = format!("'{}:{}'", self.resource.as_str(), self.need.as_str());
        match &self.accessor {
            Some(id) => write!(
                f,
                "Permission denied: token with AccessorID '{id}' lacks permission {perm}{on}"
            ),
            None => write!(
                f,
                "Permission denied: anonymous token lacks permission {perm}{on}. The anonymous \
                 token is used implicitly when a request does not specify a token."
            ),
        }
    }
}

/// Whether a rule at `level` allows `need` (`reference/acl.md` §4.4).
fn enforce(level: Level, need: Need) -> Decision {
    let ok = matches!(
        (level, need),
        (Level::Write, _) | (Level::List, Need::Read | Need::List) | (Level::Read, Need::Read)
    );
    if ok { Decision::Allow } else { Decision::Deny }
}

/// The decisions for one token.
#[derive(Debug, Clone)]
pub struct Authorizer {
    rules: Rules,
    root: Root,
    accessor: Option<String>,
    /// Per labeled resource: every name may be read ([`Self::read_all`]), worked out once
    /// so list filtering under a `service_prefix ""` read token matches no rules per row.
    reads_all: [bool; 7],
}

impl Authorizer {
    /// `rules` (the merge of the token's policies) over `root`; `accessor` names the token in
    /// refusals (`None`: the anonymous token).
    pub fn new(rules: Rules, root: Root, accessor: Option<String>) -> Self {
        let mut a = Self {
            rules,
            root,
            accessor,
            reads_all: [false; 7],
        };
        for kind in LABELED_RESOURCES {
            if let Some(l) = kind.labeled() {
                a.reads_all[l as usize] = a.read_all(kind);
            }
        }
        a
    }

    /// Everything allowed: ACLs are off.
    pub fn manage() -> Self {
        Self::new(Rules::default(), Root::Manage, None)
    }

    /// What the token's own rules say, without the root.
    pub fn decide(&self, resource: Resource, name: &str, need: Need) -> Decision {
        if let Some(kind) = resource.labeled() {
            return match self.rules.table(kind).lookup(name) {
                Some(rule) => enforce(rule.level, need),
                None => Decision::Default,
            };
        }
        let scalar = |s| self.rules.scalar(s);
        let level = match resource {
            Resource::Acl => scalar(Scalar::Acl),
            Resource::Keyring => scalar(Scalar::Keyring),
            Resource::Operator => scalar(Scalar::Operator),
            Resource::Mesh => scalar(Scalar::Mesh).or(scalar(Scalar::Operator)),
            Resource::Peering => scalar(Scalar::Peering).or(scalar(Scalar::Operator)),
            _ => None,
        };
        level.map_or(Decision::Default, |l| enforce(l, need))
    }

    /// Whether the token may: its rules, then the root.
    pub fn allowed(&self, resource: Resource, name: &str, need: Need) -> bool {
        if need == Need::Read
            && let Some(l) = resource.labeled()
            && self.reads_all[l as usize]
        {
            return true;
        }
        self.resolve(resource, self.decide(resource, name, need))
    }

    fn resolve(&self, resource: Resource, d: Decision) -> bool {
        match d {
            Decision::Allow => true,
            Decision::Deny => false,
            Decision::Default => self.root.decide(resource),
        }
    }

    /// [`Self::allowed`], or the refusal to send back.
    pub fn check(&self, resource: Resource, name: &str, need: Need) -> Result<(), Denied> {
        if self.allowed(resource, name, need) {
            Ok(())
        } else {
            Err(self.denied(resource, name, need))
        }
    }

    /// The refusal for `need` on `name`.
    pub fn denied(&self, resource: Resource, name: &str, need: Need) -> Denied {
        Denied {
            accessor: self.accessor.clone(),
            resource,
            name: name.to_string(),
            need,
        }
    }

    /// Recursive delete under `prefix` (KV `DELETE ?recurse`, txn `delete-tree`): denied if
    /// any rule at or below the prefix does not grant write, or the longest prefix rule
    /// covering it does not; allowed if that rule grants write; else the root decides.
    pub fn key_write_prefix(&self, prefix: &str) -> Result<(), Denied> {
        let t = self.rules.table(Labeled::Key);
        let below = t
            .exact
            .range(prefix.to_string()..)
            .chain(t.prefix.range(prefix.to_string()..))
            .take_while(|(k, _)| k.starts_with(prefix))
            .any(|(_, r)| r.level != Level::Write);
        let decision = if below {
            Decision::Deny
        } else {
            let covering = t
                .prefix
                .iter()
                .filter(|(k, _)| prefix.starts_with(k.as_str()))
                .max_by_key(|(k, _)| k.len());
            match covering {
                Some((_, r)) => enforce(r.level, Need::Write),
                None => Decision::Default,
            }
        };
        if self.resolve(Resource::Key, decision) {
            Ok(())
        } else {
            Err(self.denied(Resource::Key, prefix, Need::Write))
        }
    }

    /// Read of every name of `resource` (`ServiceReadAll` / `NodeReadAll`): a `""` prefix
    /// rule that allows read and no rule that denies it; without rules, the root.
    pub fn read_all(&self, resource: Resource) -> bool {
        let Some(kind) = resource.labeled() else {
            return self.allowed(resource, "", Need::Read);
        };
        let t = self.rules.table(kind);
        let any_deny = t
            .exact
            .values()
            .chain(t.prefix.values())
            .any(|r| enforce(r.level, Need::Read) == Decision::Deny);
        if any_deny {
            return false;
        }
        match t.prefix.get("") {
            Some(r) => enforce(r.level, Need::Read) == Decision::Allow,
            None => t.exact.is_empty() && t.prefix.is_empty() && self.root.decide(resource),
        }
    }

    /// Whether this token may manage ACLs (`acl = "write"`, or ACLs off).
    pub fn is_manager(&self) -> bool {
        self.allowed(Resource::Acl, "", Need::Write)
    }
}
