//! Replicated record types of the catalog, KV store and sessions.
//!
//! These structs are the single representation of a row: they serialize to Consul's exact
//! PascalCase JSON (what the HTTP API returns) and that same JSON is what the state store
//! persists in SQLite. No I/O here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Health status of a check, as Consul spells it on the wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// The check passes.
    Passing,
    /// The check warns; instances stay in answers unless `only_passing`.
    Warning,
    /// The check fails; instances leave answers. Consul's initial status.
    #[default]
    Critical,
    /// Maintenance mode; treated as critical by filters.
    Maintenance,
}

impl HealthStatus {
    /// Parses Consul's status strings (`passing`, `warning`, `critical`, `maintenance`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "passing" => Some(Self::Passing),
            "warning" => Some(Self::Warning),
            "critical" => Some(Self::Critical),
            "maintenance" => Some(Self::Maintenance),
            _ => None,
        }
    }

    /// The wire string of this status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passing => "passing",
            Self::Warning => "warning",
            Self::Critical => "critical",
            Self::Maintenance => "maintenance",
        }
    }
}

/// A node in the catalog (`GET /v1/catalog/nodes` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    /// Node UUID (may be empty for nodes registered without one).
    #[serde(rename = "ID")]
    pub id: String,
    /// Node name, unique in the datacenter.
    pub node: String,
    /// The node's address.
    pub address: String,
    /// Datacenter the node lives in.
    pub datacenter: String,
    /// `lan`, `wan`, ... → address.
    pub tagged_addresses: BTreeMap<String, String>,
    /// Node metadata.
    pub meta: BTreeMap<String, String>,
    /// Raft index that created this row.
    pub create_index: u64,
    /// Raft index that last modified this row.
    pub modify_index: u64,
}

/// A tagged address of a service: `{"Address": .., "Port": ..}`, PascalCase as Consul's
/// `structs.ServiceAddress` (no JSON tags) writes it. Lowercase keys are read too: rows
/// written before this shape used them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceAddress {
    /// Address.
    #[serde(alias = "address", default)]
    pub address: String,
    /// Port.
    #[serde(alias = "port", default)]
    pub port: u16,
}

/// DNS SRV weights of a service instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Weights {
    /// Weight while passing.
    pub passing: i32,
    /// Weight while warning.
    pub warning: i32,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            passing: 1,
            warning: 1,
        }
    }
}

/// A service instance registered on a node (the `NodeService` of Consul).
///
/// Empty `Kind`, `TaggedAddresses`, `SocketPath` and absent `Locality`, `Proxy`, `Connect`
/// are left out of the JSON, as Consul's `omitempty` does. Meridian does not act on the
/// Connect fields (`Kind`, `Proxy`, `Connect`) or `Locality`: it keeps them as registered
/// (JSON values, keys canonicalized by the HTTP layer) and returns them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Service {
    /// Kind ("" for a typical service; `connect-proxy`, `mesh-gateway`, ...).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Instance ID, unique per node; defaults to the service name.
    #[serde(rename = "ID")]
    pub id: String,
    /// Service name.
    pub service: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Instance address ("" means the node's address).
    pub address: String,
    /// Tagged addresses of the instance.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tagged_addresses: BTreeMap<String, ServiceAddress>,
    /// Service metadata.
    pub meta: BTreeMap<String, String>,
    /// Port.
    pub port: u16,
    /// Unix socket path (instead of address and port).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub socket_path: String,
    /// SRV weights.
    pub weights: Weights,
    /// Whether external writers may change the tags.
    pub enable_tag_override: bool,
    /// Region and zone of the instance, as registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<serde_json::Value>,
    /// Connect proxy configuration, as registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<serde_json::Value>,
    /// Connect settings (`Native`, ...), as registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<serde_json::Value>,
    /// Raft index that created this row.
    pub create_index: u64,
    /// Raft index that last modified this row.
    pub modify_index: u64,
}

impl Service {
    /// Consul's agent fills `lan_ipv4`/`wan_ipv4` (or `lan_ipv6`/`wan_ipv6`) with the
    /// instance's address and port when the address is an IP and those tags are not given
    /// (`agent.go` `addServiceInternal`). Hostnames and empty addresses get nothing.
    pub fn fill_default_tagged_addresses(&mut self) {
        let Ok(ip) = self.address.parse::<std::net::IpAddr>() else {
            return;
        };
        let tags: [&str; 2] = if ip.is_ipv4() {
            ["lan_ipv4", "wan_ipv4"]
        } else {
            ["lan_ipv6", "wan_ipv6"]
        };
        for tag in tags {
            self.tagged_addresses
                .entry(tag.to_string())
                .or_insert_with(|| ServiceAddress {
                    address: self.address.clone(),
                    port: self.port,
                });
        }
    }
}

/// The definition part of a check as the catalog keeps it (`Definition` in Consul's JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct CheckDefinition {
    /// HTTP URL of an HTTP check.
    #[serde(rename = "HTTP", skip_serializing_if = "String::is_empty")]
    pub http: String,
    /// Headers of an HTTP check.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    /// Method of an HTTP check.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Body of an HTTP check.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub body: String,
    /// TLS server name for HTTPS checks.
    #[serde(rename = "TLSServerName", skip_serializing_if = "String::is_empty")]
    pub tls_server_name: String,
    /// Skip TLS verification.
    #[serde(rename = "TLSSkipVerify", skip_serializing_if = "std::ops::Not::not")]
    pub tls_skip_verify: bool,
    /// `host:port` of a TCP check.
    #[serde(rename = "TCP", skip_serializing_if = "String::is_empty")]
    pub tcp: String,
    /// Interval (Go duration string).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub interval: String,
    /// Timeout (Go duration string).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub timeout: String,
    /// Reap the service after this long critical (Go duration string).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deregister_critical_service_after: String,
}

/// A health check in the catalog (`HealthCheck` of Consul).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Check {
    /// Node the check belongs to.
    pub node: String,
    /// Check ID, unique per node.
    #[serde(rename = "CheckID")]
    pub check_id: String,
    /// Human name.
    pub name: String,
    /// Current status.
    pub status: HealthStatus,
    /// Notes.
    pub notes: String,
    /// Last output.
    pub output: String,
    /// Owning service instance ("" for node checks).
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    /// Owning service name ("" for node checks).
    pub service_name: String,
    /// Tags of the owning service.
    pub service_tags: Vec<String>,
    /// Check type (`http`, `tcp`, `ttl`, `script`, or "").
    #[serde(rename = "Type")]
    pub check_type: String,
    /// The definition.
    pub definition: CheckDefinition,
    /// Raft index that created this row.
    pub create_index: u64,
    /// Raft index that last modified this row.
    pub modify_index: u64,
}

/// A KV entry (`GET /v1/kv/:key` element).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct KvEntry {
    /// Index of the lock acquisitions.
    pub lock_index: u64,
    /// Key.
    pub key: String,
    /// Opaque client flags.
    pub flags: u64,
    /// Value (base64 on the wire; `null` when empty).
    #[serde(with = "crate::b64")]
    pub value: Option<Vec<u8>>,
    /// Session holding the lock, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session: Option<String>,
    /// Raft index that created this row.
    pub create_index: u64,
    /// Raft index that last modified this row.
    pub modify_index: u64,
}

/// What happens to a session's locks when it is invalidated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SessionBehavior {
    /// Locks are released (default).
    #[default]
    Release,
    /// Locked keys are deleted.
    Delete,
}

/// A service check a session is tied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceCheckRef {
    /// Check ID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Namespace (Enterprise; kept for shape compatibility).
    #[serde(default)]
    pub namespace: String,
}

/// A session (`GET /v1/session/info/:id` element).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Session {
    /// Session UUID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Name.
    pub name: String,
    /// Node the session is tied to.
    pub node: String,
    /// Lock delay in integer nanoseconds, as Go clients expect.
    pub lock_delay: u64,
    /// Behaviour on invalidation.
    pub behavior: SessionBehavior,
    /// TTL as a Go duration string ("" for none).
    #[serde(rename = "TTL")]
    pub ttl: String,
    /// Node checks the session is tied to.
    pub node_checks: Vec<String>,
    /// Service checks the session is tied to.
    pub service_checks: Vec<ServiceCheckRef>,
    /// Raft index that created this row.
    pub create_index: u64,
    /// Raft index that last modified this row.
    pub modify_index: u64,
}

/// Autopilot settings as stored in raft (Consul's `AutopilotConfig`), changed with
/// `PUT /v1/operator/autopilot/configuration`. Durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutopilotSettings {
    /// Remove failed servers automatically (quorum permitting).
    pub cleanup_dead_servers: bool,
    /// A server whose last contact with the leader is older than this is unhealthy.
    pub last_contact_threshold_ms: u64,
    /// A server more than this many entries behind the leader is unhealthy.
    pub max_trailing_logs: u64,
    /// Never remove servers below this many voters (0 = no floor).
    pub min_quorum: u32,
    /// How long a new server must be healthy before it may vote.
    pub server_stabilization_time_ms: u64,
    /// Raft index that first stored settings.
    pub create_index: u64,
    /// Raft index of the last change.
    pub modify_index: u64,
}

impl Default for AutopilotSettings {
    /// Consul's defaults.
    fn default() -> Self {
        Self {
            cleanup_dead_servers: true,
            last_contact_threshold_ms: 200,
            max_trailing_logs: 250,
            min_quorum: 0,
            server_stabilization_time_ms: 10_000,
            create_index: 0,
            modify_index: 0,
        }
    }
}
