//! Row encoding of the state: how each table maps to `(table, key, json)` rows that the
//! SQLite state store persists and snapshots carry. No I/O here.

use serde::{Deserialize, Serialize};

use super::requests::{parse_request_key, request_key};
use super::{KvEntry, RequestRecord, Service, Session, State, TableIndexes, Tombstone};

/// Tables of the state store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum Table {
    /// Applied index and table indexes (one row, key "").
    Meta = 0,
    /// Nodes by name.
    Nodes = 1,
    /// Services by `node\0id`.
    Services = 2,
    /// Checks by `node\0id`.
    Checks = 3,
    /// KV entries by key.
    Kv = 4,
    /// KV tombstones by key.
    Tombstones = 5,
    /// Sessions by ID.
    Sessions = 6,
    /// Lock delays by key.
    LockDelays = 7,
    /// Per-service-name indexes.
    ServiceIndex = 8,
    /// Coordinates by `node\0segment`.
    Coordinates = 9,
    /// Prepared queries by ID.
    PreparedQueries = 10,
    /// Config entries by `kind\0name`.
    ConfigEntries = 11,
    /// Results of recent client writes by request id (exactly-once retries).
    Requests = 12,
    /// ACL tokens by AccessorID.
    AclTokens = 13,
    /// ACL policies by ID.
    AclPolicies = 14,
    /// ACL roles by ID.
    AclRoles = 15,
}

impl Table {
    /// Decodes the numeric table id stored in SQLite.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Meta,
            1 => Self::Nodes,
            2 => Self::Services,
            3 => Self::Checks,
            4 => Self::Kv,
            5 => Self::Tombstones,
            6 => Self::Sessions,
            7 => Self::LockDelays,
            8 => Self::ServiceIndex,
            9 => Self::Coordinates,
            10 => Self::PreparedQueries,
            11 => Self::ConfigEntries,
            12 => Self::Requests,
            13 => Self::AclTokens,
            14 => Self::AclPolicies,
            15 => Self::AclRoles,
            _ => return None,
        })
    }
}

/// Every table, in snapshot order.
const ALL_TABLES: [Table; 16] = [
    Table::Meta,
    Table::Nodes,
    Table::Services,
    Table::Checks,
    Table::Kv,
    Table::Tombstones,
    Table::Sessions,
    Table::LockDelays,
    Table::ServiceIndex,
    Table::Coordinates,
    Table::PreparedQueries,
    Table::ConfigEntries,
    Table::Requests,
    Table::AclTokens,
    Table::AclPolicies,
    Table::AclRoles,
];

/// One persisted row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// Table.
    pub table: Table,
    /// Primary key within the table.
    pub key: String,
    /// JSON value.
    pub value: Vec<u8>,
}

/// A row changed by `apply`: `value == None` means deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChange {
    /// Table.
    pub table: Table,
    /// Key.
    pub key: String,
    /// New JSON value, or `None` if the row is gone.
    pub value: Option<Vec<u8>>,
}

/// A stored row could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("corrupt {table:?} row {key:?}: {source}")]
pub struct RowError {
    table: Table,
    key: String,
    #[source]
    source: serde_json::Error,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    applied: u64,
    tables: TableIndexes,
    #[serde(default)]
    autopilot: Option<super::AutopilotSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acl_bootstrap: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    acl_primary: Option<super::acl::AclPrimary>,
    /// Raft index of the last snapshot restore (0: never).
    #[serde(default, skip_serializing_if = "is_zero")]
    restored: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn pair_key(a: &str, b: &str) -> String {
    format!("{a}\0{b}")
}

fn split_pair(k: &str) -> (String, String) {
    match k.split_once('\0') {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (k.to_string(), String::new()),
    }
}

fn enc<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs (string keys, no non-finite floats) cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

impl State {
    pub(crate) fn service_key(node: &str, id: &str) -> String {
        pair_key(node, id)
    }

    /// The current JSON encoding of one row, or `None` if it does not exist.
    pub(crate) fn encode_row(&self, table: Table, key: &str) -> Option<Vec<u8>> {
        match table {
            Table::Meta => Some(enc(&Meta {
                applied: self.applied,
                tables: self.tables.clone(),
                autopilot: self.autopilot.clone(),
                acl_bootstrap: self.acl_bootstrap,
                acl_primary: self.acl_primary.clone(),
                restored: self.restored,
            })),
            Table::Nodes => self.nodes.get(key).map(enc),
            Table::Services => self.services.get(&split_pair(key)).map(enc),
            Table::Checks => self.checks.get(&split_pair(key)).map(enc),
            Table::Kv => self.kv.get(key).map(enc),
            Table::Tombstones => self.tombstones.get(key).map(enc),
            Table::Sessions => self.sessions.get(key).map(enc),
            Table::LockDelays => self.lock_delays.get(key).map(enc),
            Table::ServiceIndex => self.service_index.get(key).map(enc),
            Table::Coordinates => self.coordinates.get(&split_pair(key)).map(enc),
            Table::PreparedQueries => self.prepared_queries.get(key).map(enc),
            Table::ConfigEntries => self.config_entries.get(&split_pair(key)).map(enc),
            Table::Requests => self.request_row(key).map(enc),
            Table::AclTokens => self.acl_tokens.get(key).map(enc),
            Table::AclPolicies => self.acl_policies.get(key).map(enc),
            Table::AclRoles => self.acl_roles.get(key).map(enc),
        }
    }

    /// Every row of the state, for snapshots.
    pub fn rows(&self) -> Vec<Row> {
        self.rows_of(&ALL_TABLES)
    }

    /// The rows of `tables` only (a catalog copy carries a few).
    pub(crate) fn rows_of(&self, tables: &[Table]) -> Vec<Row> {
        let mut out = Vec::new();
        let want = |t: Table| tables.contains(&t);
        let mut push = |table, key: String, value| out.push(Row { table, key, value });
        if want(Table::Meta) {
            push(
                Table::Meta,
                String::new(),
                enc(&Meta {
                    applied: self.applied,
                    tables: self.tables.clone(),
                    autopilot: self.autopilot.clone(),
                    acl_bootstrap: self.acl_bootstrap,
                    acl_primary: self.acl_primary.clone(),
                    restored: self.restored,
                }),
            );
        }
        if want(Table::Nodes) {
            for (k, v) in &self.nodes {
                push(Table::Nodes, k.clone(), enc(v));
            }
        }
        if want(Table::Services) {
            for ((n, id), v) in &self.services {
                push(Table::Services, pair_key(n, id), enc(v));
            }
        }
        if want(Table::Checks) {
            for ((n, id), v) in &self.checks {
                push(Table::Checks, pair_key(n, id), enc(v));
            }
        }
        if want(Table::Kv) {
            for (k, v) in &self.kv {
                push(Table::Kv, k.clone(), enc(v));
            }
        }
        if want(Table::Tombstones) {
            for (k, v) in &self.tombstones {
                push(Table::Tombstones, k.clone(), enc(v));
            }
        }
        if want(Table::Sessions) {
            for (k, v) in &self.sessions {
                push(Table::Sessions, k.clone(), enc(v));
            }
        }
        if want(Table::LockDelays) {
            for (k, v) in &self.lock_delays {
                push(Table::LockDelays, k.clone(), enc(v));
            }
        }
        if want(Table::ServiceIndex) {
            for (k, v) in &self.service_index {
                push(Table::ServiceIndex, k.clone(), enc(v));
            }
        }
        if want(Table::Coordinates) {
            for ((n, seg), v) in &self.coordinates {
                push(Table::Coordinates, pair_key(n, seg), enc(v));
            }
        }
        if want(Table::PreparedQueries) {
            for (k, v) in &self.prepared_queries {
                push(Table::PreparedQueries, k.clone(), enc(v));
            }
        }
        if want(Table::ConfigEntries) {
            for ((kind, name), v) in &self.config_entries {
                push(Table::ConfigEntries, pair_key(kind, name), enc(v));
            }
        }
        if want(Table::Requests) {
            for (id, v) in &self.requests {
                push(Table::Requests, request_key(v.index, *id), enc(v));
            }
        }
        if want(Table::AclTokens) {
            for (k, v) in &self.acl_tokens {
                push(Table::AclTokens, k.clone(), enc(v));
            }
        }
        if want(Table::AclPolicies) {
            for (k, v) in &self.acl_policies {
                push(Table::AclPolicies, k.clone(), enc(v));
            }
        }
        if want(Table::AclRoles) {
            for (k, v) in &self.acl_roles {
                push(Table::AclRoles, k.clone(), enc(v));
            }
        }
        out
    }

    /// Rebuilds a state from rows (a snapshot or the SQLite tables).
    pub fn restore(rows: impl IntoIterator<Item = Row>) -> Result<Self, RowError> {
        let mut s = State::default();
        for row in rows {
            let Row { table, key, value } = row;
            let err = |source| RowError {
                table,
                key: key.clone(),
                source,
            };
            match table {
                Table::Meta => {
                    let m: Meta = serde_json::from_slice(&value).map_err(err)?;
                    s.applied = m.applied;
                    s.tables = m.tables;
                    s.autopilot = m.autopilot;
                    s.acl_bootstrap = m.acl_bootstrap;
                    s.acl_primary = m.acl_primary;
                    s.restored = m.restored;
                }
                Table::Nodes => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    s.nodes.insert(key, v);
                }
                Table::Services => {
                    let v: Service = serde_json::from_slice(&value).map_err(err)?;
                    let key = split_pair(&key);
                    s.index_service(&v.service, &key);
                    s.services.insert(key, v);
                }
                Table::Checks => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    s.checks.insert(split_pair(&key), v);
                }
                Table::Kv => {
                    let v: KvEntry = serde_json::from_slice(&value).map_err(err)?;
                    if let Some(sid) = v.session.as_deref() {
                        s.index_session_key(&key, None, Some(sid));
                    }
                    s.kv.insert(key, v);
                }
                Table::Tombstones => {
                    let v: Tombstone = serde_json::from_slice(&value).map_err(err)?;
                    s.tombstones.insert(key, v);
                }
                Table::Sessions => {
                    let v: Session = serde_json::from_slice(&value).map_err(err)?;
                    s.index_node_session(&v.node, &key, true);
                    s.sessions.insert(key, v);
                }
                Table::LockDelays => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    s.lock_delays.insert(key, v);
                }
                Table::ServiceIndex => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    s.service_index.insert(key, v);
                }
                Table::Coordinates => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    s.coordinates.insert(split_pair(&key), v);
                }
                Table::PreparedQueries => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    s.index_query_regex(&v);
                    s.prepared_queries.insert(key, v);
                }
                Table::ConfigEntries => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    s.config_entries.insert(split_pair(&key), v);
                }
                Table::Requests => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    let v: RequestRecord = v;
                    // A key that is not a request key cannot come from `rows()`: skip rather
                    // than refuse the whole state over a row that only serves retries.
                    match parse_request_key(&key) {
                        Some((Some(_), id)) => {
                            s.insert_request(id, v);
                        }
                        // Written before keys carried the index: the next persist deletes
                        // the old row and writes the record under its new key.
                        Some((None, id)) => {
                            let new_key = request_key(v.index, id);
                            s.insert_request(id, v);
                            s.touch(Table::Requests, key);
                            s.touch(Table::Requests, new_key);
                        }
                        None => {}
                    }
                }
                Table::AclTokens => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    s.acl_tokens.insert(key, v);
                }
                Table::AclPolicies => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    s.acl_policies.insert(key, v);
                }
                Table::AclRoles => {
                    let v = serde_json::from_slice(&value).map_err(err)?;
                    s.acl_roles.insert(key, v);
                }
            }
        }
        s.index_acl();
        Ok(s)
    }
}
