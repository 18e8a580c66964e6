//! The replicated state machine: catalog (nodes, services, checks), KV, sessions,
//! prepared queries and config entries.
//!
//! Pure and deterministic: [`State::apply`] takes a raft index and a [`Request`] and changes
//! only memory. Time comes inside the request (`now_ms`, chosen by the leader). No tokio, sqlx
//! or tonic here.
//!
//! ```text
//!   raft entry ──▶ State::apply(index, req) ──▶ Response (to the proposer)
//!                        │
//!                        └─▶ take_changes(): rows touched, persisted by raft/state_machine.rs
//! ```
//!
//! Tables are `imbl` persistent maps, so cloning a `State` is O(1): readers get an immutable
//! snapshot after each applied batch, and a transaction applies to a clone that is dropped on
//! rollback.

pub mod acl;
pub mod b64;
pub mod command;
pub mod config_entry;
mod coordinates;
mod copy;
mod kv;
pub mod prepared_query;
mod query;
mod registry;
mod requests;
mod restore;
mod rows;
mod session;
#[cfg(test)]
mod tests;
mod txn;
pub mod types;

use imbl::OrdMap;

pub use command::{
    CheckStatusUpdate, Command, CoordinateUpdate, DeregisterOp, KvOp, KvVerb, RegisterOp, Request,
    Response, TxnError, TxnOp, TxnResult,
};
pub use config_entry::ConfigEntry;
pub use copy::{COPY_FORMAT, COPY_VERSION, CopyError};
pub use prepared_query::{ExecuteRequest, PreparedQuery, QueryError, QueryResult, execute_query};
pub use query::{HealthEntry, ServiceRow};
pub use requests::{MAX_REQUESTS, REQUEST_RETENTION_MS, RequestId, RequestRecord};
pub use restore::{RestoreOp, RestoreRow};
pub use rows::{Row, RowChange, RowError, Table};
pub use types::{
    AutopilotSettings, Check, CheckDefinition, HealthStatus, KvEntry, Node, Service,
    ServiceAddress, ServiceCheckRef, Session, SessionBehavior, Weights,
};

/// Check ID of the node liveness check every node carries.
pub const SERF_HEALTH: &str = "serfHealth";

/// Per-table "last modified" indexes, used as `X-Consul-Index` of list reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableIndexes {
    /// Nodes table.
    pub nodes: u64,
    /// Services table.
    pub services: u64,
    /// Checks table.
    pub checks: u64,
    /// KV table (including tombstones).
    pub kv: u64,
    /// Sessions table.
    pub sessions: u64,
    /// Coordinates table.
    #[serde(default)]
    pub coordinates: u64,
    /// Prepared queries table.
    #[serde(default)]
    pub prepared_queries: u64,
    /// Config entries table.
    #[serde(default)]
    pub config_entries: u64,
    /// ACL tokens table.
    #[serde(default)]
    pub acl_tokens: u64,
    /// ACL policies table.
    #[serde(default)]
    pub acl_policies: u64,
    /// ACL roles table.
    #[serde(default)]
    pub acl_roles: u64,
}

/// A KV tombstone: when and at which index a key was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tombstone {
    /// Raft index of the delete.
    pub index: u64,
    /// Leader time of the delete.
    pub at_ms: u64,
}

/// The whole replicated state.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// Last applied raft index.
    pub(crate) applied: u64,
    pub(crate) nodes: OrdMap<String, Node>,
    /// (node, service id) → service.
    pub(crate) services: OrdMap<(String, String), Service>,
    /// Service name → the (node, service id) keys of its instances: derived from `services`
    /// (never stored), so reads of one service do not scan every instance of every service.
    pub(crate) services_by_name: OrdMap<String, imbl::OrdSet<(String, String)>>,
    /// (node, check id) → check.
    pub(crate) checks: OrdMap<(String, String), Check>,
    pub(crate) kv: OrdMap<String, KvEntry>,
    pub(crate) tombstones: OrdMap<String, Tombstone>,
    pub(crate) sessions: OrdMap<String, Session>,
    /// Node → the IDs of its sessions: derived from `sessions` (never stored), so a node's
    /// deregistration or a critical check looks at that node's sessions, not every one.
    pub(crate) sessions_by_node: OrdMap<String, imbl::OrdSet<String>>,
    /// Session ID → the KV keys it holds locked: derived from `kv` (never stored), so
    /// invalidating a session touches its keys only, not every key of the store.
    pub(crate) session_keys: OrdMap<String, imbl::OrdSet<String>>,
    /// Key → unix ms until which the lock may not be acquired (after a session was invalidated).
    pub(crate) lock_delays: OrdMap<String, u64>,
    /// Service name → last index at which any instance, its checks or its node changed.
    pub(crate) service_index: OrdMap<String, u64>,
    /// Autopilot settings, once set through the API (defaults until then).
    pub(crate) autopilot: Option<AutopilotSettings>,
    /// (node, segment) → LAN coordinate.
    pub(crate) coordinates: OrdMap<(String, String), meridian_gossip::coordinate::Coordinate>,
    /// Prepared queries by ID.
    pub(crate) prepared_queries: OrdMap<String, PreparedQuery>,
    /// Query ID → its compiled `Template.Regexp`: derived from `prepared_queries` (never
    /// stored), so a template's regexp is compiled when the query is written, not per execution.
    pub(crate) query_regexes: OrdMap<String, std::sync::Arc<regex::Regex>>,
    /// (kind, name) → config entry.
    pub(crate) config_entries: OrdMap<(String, String), ConfigEntry>,
    /// ACL tokens by AccessorID.
    pub(crate) acl_tokens: OrdMap<String, acl::AclToken>,
    /// SecretID → AccessorID: derived from `acl_tokens` (never stored).
    pub(crate) acl_secrets: OrdMap<String, String>,
    /// ACL policies by ID.
    pub(crate) acl_policies: OrdMap<String, acl::AclPolicy>,
    /// Policy name → ID: derived (never stored).
    pub(crate) acl_policy_names: OrdMap<String, String>,
    /// ACL roles by ID.
    pub(crate) acl_roles: OrdMap<String, acl::AclRole>,
    /// Role name → ID: derived (never stored).
    pub(crate) acl_role_names: OrdMap<String, String>,
    /// The raft index of the ACL bootstrap, once done.
    pub(crate) acl_bootstrap: Option<u64>,
    /// The ACL primary chosen at runtime (`None`: the configured one).
    pub(crate) acl_primary: Option<acl::AclPrimary>,
    /// Raft index of the last snapshot restore (0: never); blocking reads that began before
    /// it return at once, as Consul's do when its state store is abandoned.
    pub(crate) restored: u64,
    pub(crate) tables: TableIndexes,
    /// Request id → the result of its first apply (exactly-once writes; see `requests.rs`).
    pub(crate) requests: OrdMap<RequestId, RequestRecord>,
    /// (leader time, request id) of every remembered request, oldest first: derived from
    /// `requests` (never stored), so expiry does not scan.
    pub(crate) requests_by_age: imbl::OrdSet<(u64, RequestId)>,
    /// Rows touched since the last `take_changes`.
    changes: Vec<(Table, String)>,
}

/// Row counts of a [`State`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateCounts {
    /// Nodes.
    pub nodes: usize,
    /// Distinct service names.
    pub services: usize,
    /// Service instances.
    pub service_instances: usize,
    /// KV entries.
    pub kv_entries: usize,
    /// Sessions.
    pub sessions: usize,
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last applied raft index.
    pub fn applied_index(&self) -> u64 {
        self.applied
    }

    /// Per-table indexes.
    pub fn table_indexes(&self) -> &TableIndexes {
        &self.tables
    }

    /// How many rows each table holds (the `consul.state.*` gauges).
    pub fn counts(&self) -> StateCounts {
        StateCounts {
            nodes: self.nodes.len(),
            services: self.services_by_name.len(),
            service_instances: self.services.len(),
            kv_entries: self.kv.len(),
            sessions: self.sessions.len(),
        }
    }

    /// Every stored coordinate by (node, segment): a cheap clone (persistent map).
    pub fn coordinate_map(
        &self,
    ) -> OrdMap<(String, String), meridian_gossip::coordinate::Coordinate> {
        self.coordinates.clone()
    }

    /// The autopilot settings stored through the API, if any (`None`: never set).
    pub fn stored_autopilot(&self) -> Option<&AutopilotSettings> {
        self.autopilot.as_ref()
    }

    /// The stored autopilot settings, or Consul's defaults.
    pub fn autopilot(&self) -> AutopilotSettings {
        self.autopilot.clone().unwrap_or_default()
    }

    /// Applies one request at raft `index`. Deterministic: same state, index and request give
    /// the same result everywhere.
    ///
    /// A request whose id was applied before (and not yet forgotten) changes nothing and
    /// answers what its first apply answered: a retried write takes effect once.
    pub fn apply(&mut self, index: u64, req: &Request) -> Response {
        self.applied = index;
        self.touch(Table::Meta, String::new());
        self.expire_requests(req.now_ms);
        let Some(id) = req.request_id else {
            return self.apply_command(index, req);
        };
        if let Some(first) = self.requests.get(&id) {
            return first.response.clone();
        }
        let resp = self.apply_command(index, req);
        self.remember_request(id, req.now_ms, index, &resp);
        resp
    }

    fn apply_command(&mut self, index: u64, req: &Request) -> Response {
        let now = req.now_ms;
        match &req.cmd {
            Command::Register(op) => self.register(index, now, op),
            Command::Deregister(op) => self.deregister(index, now, op),
            Command::Kv(op) => match self.kv_apply(index, now, op) {
                Ok(KvOutcome::Done(ok)) => Response::Bool(ok),
                Ok(KvOutcome::Read(_)) => Response::Bool(true),
                Err(e) => Response::Rejected(e),
            },
            Command::SessionCreate(s) => self.session_create(index, s),
            Command::SessionDestroy { id } => {
                self.session_invalidate(index, now, id);
                Response::Bool(true)
            }
            Command::Txn(ops) => self.txn(index, now, ops),
            Command::CheckUpdate(updates) => self.check_update(index, now, updates),
            Command::ReapTombstones { before_ms } => {
                self.reap_tombstones(*before_ms);
                Response::Ok
            }
            Command::Noop => Response::Ok,
            // Each request as its own entry at this index would be (a nested batch is
            // rejected: the leader never builds one).
            Command::Batch(reqs) => Response::Batch(
                reqs.iter()
                    .map(|r| match r.cmd {
                        Command::Batch(_) => Response::Rejected("nested batch".to_string()),
                        _ => self.apply(index, r),
                    })
                    .collect(),
            ),
            Command::CoordinateUpdate(updates) => {
                self.coordinate_update(index, updates);
                Response::Ok
            }
            Command::AutopilotSet { settings, cas } => {
                let current = self.autopilot.as_ref().map_or(0, |a| a.modify_index);
                if cas.is_some_and(|c| c != current) {
                    return Response::Bool(false);
                }
                let create_index = self.autopilot.as_ref().map_or(index, |a| a.create_index);
                self.autopilot = Some(AutopilotSettings {
                    create_index,
                    modify_index: index,
                    ..settings.clone()
                });
                Response::Bool(true)
            }
            Command::PreparedQueryCreate(q) => self.prepared_query_set(index, q, false),
            Command::PreparedQueryUpdate(q) => self.prepared_query_set(index, q, true),
            Command::PreparedQueryDelete { id } => self.prepared_query_delete(index, id),
            Command::ConfigEntrySet { entry, cas } => self.config_entry_set(index, entry, *cas),
            Command::ConfigEntryDelete { kind, name, cas } => {
                self.config_entry_delete(index, kind, name, *cas)
            }
            Command::Acl(w) => self.acl_apply(index, now, w),
            Command::Restore(op) => self.restore_snapshot(index, op),
        }
    }

    /// Returns the rows touched since the last call, with their current values (`None` =
    /// deleted), in first-touched order. The state store persists these after each batch.
    pub fn take_changes(&mut self) -> Vec<RowChange> {
        let mut seen = std::collections::HashSet::new();
        let touched = std::mem::take(&mut self.changes);
        touched
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .map(|(table, key)| {
                let value = self.encode_row(table, &key);
                RowChange { table, key, value }
            })
            .collect()
    }

    pub(crate) fn touch(&mut self, table: Table, key: String) {
        self.changes.push((table, key));
    }

    fn reap_tombstones(&mut self, before_ms: u64) {
        let old: Vec<String> = self
            .tombstones
            .iter()
            .filter(|(_, t)| t.at_ms < before_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for k in old {
            self.tombstones.remove(&k);
            self.touch(Table::Tombstones, k);
        }
    }
}

/// Outcome of one KV op inside `apply` or a transaction.
#[derive(Debug)]
pub(crate) enum KvOutcome {
    /// A write: whether it took effect.
    Done(bool),
    /// A read: the entries it returned.
    Read(Vec<KvEntry>),
}
