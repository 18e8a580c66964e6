//! Commands replicated through raft and the responses `apply` produces.
//!
//! A command carries everything `apply` needs to be deterministic: the leader picks
//! timestamps (`now_ms`) and IDs (session and prepared-query UUIDs) before proposing. No I/O here.

use serde::{Deserialize, Serialize};

use super::types::{Check, KvEntry, Node, Service, Session};

/// One raft log payload: a command plus the leader's wall clock when it was proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Unix milliseconds chosen by the leader; apply uses this instead of a clock.
    pub now_ms: u64,
    /// What to do.
    pub cmd: Command,
    /// Unique id of the client write this is (kept across retries): a second copy with the
    /// same id answers the first result and changes nothing. `None` for the leader's own
    /// housekeeping, which is never retried, and in entries written before ids existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<super::RequestId>,
}

impl Request {
    /// A request without an id (never deduplicated).
    pub fn new(now_ms: u64, cmd: Command) -> Self {
        Self {
            now_ms,
            cmd,
            request_id: None,
        }
    }
}

impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.cmd.name(), self.now_ms)
    }
}

/// A state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Catalog register (node, optional service, checks).
    Register(Box<RegisterOp>),
    /// Catalog deregister of a node, a service or a check.
    Deregister(DeregisterOp),
    /// One KV operation.
    Kv(KvOp),
    /// Create a session (ID chosen by the leader).
    SessionCreate(Session),
    /// Destroy (invalidate) a session.
    SessionDestroy {
        /// Session ID.
        id: String,
    },
    /// An atomic transaction.
    Txn(Vec<TxnOp>),
    /// Update the status and output of existing checks (agent TTL endpoints, health runs).
    CheckUpdate(Vec<CheckStatusUpdate>),
    /// Forget KV tombstones created before `before_ms`.
    ReapTombstones {
        /// Cutoff in unix milliseconds.
        before_ms: u64,
    },
    /// A no-op used for barriers and leader confirmation.
    Noop,
    /// Store agents' network coordinates (updates for unknown nodes are skipped).
    CoordinateUpdate(Vec<CoordinateUpdate>),
    /// Replace the autopilot settings; with `cas`, only if their `modify_index` matches.
    AutopilotSet {
        /// New settings (indexes are set by apply).
        settings: super::types::AutopilotSettings,
        /// Check-and-set index.
        cas: Option<u64>,
    },
    /// Store a new prepared query (ID chosen by the proposing server).
    PreparedQueryCreate(Box<super::PreparedQuery>),
    /// Replace an existing prepared query (same ID; create index kept).
    PreparedQueryUpdate(Box<super::PreparedQuery>),
    /// Delete a prepared query.
    PreparedQueryDelete {
        /// Query ID.
        id: String,
    },
    /// Upsert a config entry; with `cas`, only if its `ModifyIndex` matches (0: absent).
    ConfigEntrySet {
        /// The entry (indexes are set by apply).
        entry: Box<super::ConfigEntry>,
        /// Check-and-set index.
        cas: Option<u64>,
    },
    /// Delete a config entry; with `cas`, only if its `ModifyIndex` matches.
    ConfigEntryDelete {
        /// Kind.
        kind: String,
        /// Name.
        name: String,
        /// Check-and-set index.
        cas: Option<u64>,
    },
    /// An ACL write (tokens, policies, roles, bootstrap).
    Acl(crate::acl::AclWrite),
    /// Replace the whole state with a snapshot's rows (`PUT /v1/snapshot`).
    Restore(Box<super::RestoreOp>),
    /// Several client writes proposed together as one raft entry (the leader's group
    /// proposal): applied in order, each exactly as if it were its own entry at this index,
    /// with its own request id and clock. Answered with [`Response::Batch`], one answer per
    /// request in the same order. Never nested.
    Batch(Vec<Request>),
}

impl Command {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Register(_) => "register",
            Command::Deregister(_) => "deregister",
            Command::Kv(_) => "kv",
            Command::SessionCreate(_) => "session-create",
            Command::SessionDestroy { .. } => "session-destroy",
            Command::Txn(_) => "txn",
            Command::CheckUpdate(_) => "check-update",
            Command::ReapTombstones { .. } => "reap-tombstones",
            Command::Noop => "noop",
            Command::CoordinateUpdate(_) => "coordinate-update",
            Command::AutopilotSet { .. } => "autopilot-set",
            Command::PreparedQueryCreate(_) => "prepared-query-create",
            Command::PreparedQueryUpdate(_) => "prepared-query-update",
            Command::PreparedQueryDelete { .. } => "prepared-query-delete",
            Command::ConfigEntrySet { .. } => "config-entry-set",
            Command::ConfigEntryDelete { .. } => "config-entry-delete",
            Command::Restore(_) => "restore",
            Command::Batch(_) => "batch",
            Command::Acl(w) => match w {
                crate::acl::AclWrite::Bootstrap { .. } => "acl-bootstrap",
                crate::acl::AclWrite::Init { .. } => "acl-init",
                crate::acl::AclWrite::TokenSet { .. } => "acl-token-set",
                crate::acl::AclWrite::TokenDelete { .. } => "acl-token-delete",
                crate::acl::AclWrite::PolicySet(_) => "acl-policy-set",
                crate::acl::AclWrite::PolicyDelete { .. } => "acl-policy-delete",
                crate::acl::AclWrite::RoleSet(_) => "acl-role-set",
                crate::acl::AclWrite::RoleDelete { .. } => "acl-role-delete",
                crate::acl::AclWrite::ReapExpired { .. } => "acl-reap-expired",
                crate::acl::AclWrite::Replicate(_) => "acl-replicate",
                crate::acl::AclWrite::SetPrimary(_) => "acl-set-primary",
            },
        }
    }
}

/// A catalog registration: upsert node, then optionally a service and checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RegisterOp {
    /// The node (indexes are ignored; apply sets them).
    pub node: Node,
    /// Do not touch the node row if it exists.
    pub skip_node_update: bool,
    /// Optional service instance.
    pub service: Option<Service>,
    /// Checks (node checks have an empty `service_id`).
    pub checks: Vec<Check>,
}

/// A catalog deregistration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DeregisterOp {
    /// Node name.
    pub node: String,
    /// Only this service instance (and its checks).
    pub service_id: Option<String>,
    /// Only this check.
    pub check_id: Option<String>,
}

/// The KV verbs of Consul (`PUT /v1/kv` flags and `/v1/txn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvVerb {
    /// Unconditional set.
    Set,
    /// Set if `index` matches (0 = only if absent).
    Cas,
    /// Acquire the lock with `session`.
    Lock,
    /// Release the lock held by `session`.
    Unlock,
    /// Read one key (txn only).
    Get,
    /// Read one key, no error if missing (txn only).
    GetOrEmpty,
    /// Read a prefix (txn only).
    GetTree,
    /// Fail unless the key's ModifyIndex equals `index` (txn only).
    CheckIndex,
    /// Fail unless the key is locked by `session` (txn only).
    CheckSession,
    /// Fail if the key exists (txn only).
    CheckNotExists,
    /// Delete one key.
    Delete,
    /// Delete a prefix.
    DeleteTree,
    /// Delete if `index` matches.
    DeleteCas,
}

impl KvVerb {
    /// Parses Consul's txn verb spelling (`get-tree`, `delete-cas`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "set" => Self::Set,
            "cas" => Self::Cas,
            "lock" => Self::Lock,
            "unlock" => Self::Unlock,
            "get" => Self::Get,
            "get-or-empty" => Self::GetOrEmpty,
            "get-tree" => Self::GetTree,
            "check-index" => Self::CheckIndex,
            "check-session" => Self::CheckSession,
            "check-not-exists" => Self::CheckNotExists,
            "delete" => Self::Delete,
            "delete-tree" => Self::DeleteTree,
            "delete-cas" => Self::DeleteCas,
            _ => return None,
        })
    }

    /// True for verbs that never change state.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Self::Get
                | Self::GetOrEmpty
                | Self::GetTree
                | Self::CheckIndex
                | Self::CheckSession
                | Self::CheckNotExists
        )
    }
}

/// One KV operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvOp {
    /// The verb.
    pub verb: KvVerb,
    /// Key (or prefix for tree verbs).
    pub key: String,
    /// Value for writes.
    pub value: Option<Vec<u8>>,
    /// Client flags.
    pub flags: u64,
    /// CAS / check index.
    pub index: u64,
    /// Session for lock / unlock / check-session.
    pub session: Option<String>,
}

impl KvOp {
    /// A bare op with the given verb and key.
    pub fn new(verb: KvVerb, key: impl Into<String>) -> Self {
        Self {
            verb,
            key: key.into(),
            value: None,
            flags: 0,
            index: 0,
            session: None,
        }
    }
}

/// One operation of a transaction. Only KV ops for now; Node/Service/Check ops come later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    /// A KV op.
    Kv(KvOp),
}

/// A status/output change of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStatusUpdate {
    /// Node.
    pub node: String,
    /// Check ID.
    pub check_id: String,
    /// New status.
    pub status: super::types::HealthStatus,
    /// New output.
    pub output: String,
}

/// One node's LAN coordinate (Consul's `structs.Coordinate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordinateUpdate {
    /// Node name.
    pub node: String,
    /// Network segment (always `""` here).
    pub segment: String,
    /// The coordinate.
    pub coord: meridian_gossip::coordinate::Coordinate,
}

/// The result of one applied command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// The command changed nothing worth reporting.
    Ok,
    /// A KV write or delete: `true` if it took effect (what `PUT /v1/kv` returns).
    Bool(bool),
    /// A session was created.
    SessionCreated(String),
    /// A transaction committed with these results.
    TxnCommitted(Vec<TxnResult>),
    /// A transaction rolled back with these errors.
    TxnRolledBack(Vec<TxnError>),
    /// The command was rejected; nothing changed. The text is user-facing.
    Rejected(String),
    /// The answers to a [`Command::Batch`], in its order.
    Batch(Vec<Response>),
}

/// One result of a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnResult {
    /// A KV entry (writes return it without its value, as Consul does).
    Kv(KvEntry),
}

/// One error of a rolled-back transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TxnError {
    /// Index of the failing op.
    pub op_index: usize,
    /// What went wrong.
    pub what: String,
}
