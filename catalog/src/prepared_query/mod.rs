//! Prepared queries (Consul's `/v1/query`): the stored definition, its validation and
//! apply logic, template resolution and execution. Pure and deterministic: no I/O, no clock,
//! no RNG except the seeded shuffle the caller picks.
//!
//! ```text
//!   HTTP POST/PUT ─▶ validate() ─▶ Command::PreparedQuery{Create,Update,Delete} ─▶ apply
//!
//!   HTTP execute / DNS <name>.query.<domain>
//!       State::resolve_query(id_or_name)          exact ID → exact Name → longest template
//!            │                                    prefix (Name "" = catch-all), interpolated
//!            ▼
//!       execute_query(&state, &query, &ExecuteRequest)
//!            health filter → NodeMeta → ServiceMeta → Tags (`!tag`) → shuffle → Near → limit
//!            ▼
//!       QueryResult { service, nodes, dns_ttl, datacenter, failovers }
//! ```
//!
//! The DNS server calls exactly these two functions: [`State::resolve_query`] and
//! [`execute_query`]. When the local answer is empty, the caller (which can reach other
//! datacenters) asks them in the order [`QueryFailover::datacenters_to_try`] gives.

mod apply;
mod error;
mod execute;
mod template;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use apply::{REDACTED_TOKEN, validate};
pub use error::QueryError;
pub use execute::{ExecuteRequest, QueryResult, execute_query};
pub use template::TEMPLATE_NAME_PREFIX_MATCH;

/// A stored prepared query (Consul's `structs.PreparedQuery`). Serializes to Consul's
/// PascalCase JSON, which is also its row in `state.db`. The token is stored as given; the
/// HTTP layer redacts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreparedQuery {
    /// UUID chosen by the server that proposed the create.
    #[serde(rename = "ID")]
    pub id: String,
    /// Optional unique name; a template's name is the prefix it matches.
    pub name: String,
    /// Session the query lives and dies with ("" for none).
    pub session: String,
    /// Token the query executes with ("" for the caller's).
    pub token: String,
    /// Template settings (`Type == ""` for a static query).
    pub template: QueryTemplate,
    /// What to look up and how to filter it.
    pub service: ServiceQuery,
    /// DNS answer options.
    #[serde(rename = "DNS")]
    pub dns: QueryDns,
    /// Raft index that created this query.
    pub create_index: u64,
    /// Raft index that last modified it.
    pub modify_index: u64,
}

impl PreparedQuery {
    /// True for a `name_prefix_match` template.
    pub fn is_template(&self) -> bool {
        !self.template.kind.is_empty()
    }
}

/// Template settings (Consul's `QueryTemplateOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryTemplate {
    /// `""` (not a template) or `name_prefix_match`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Regexp applied to the full queried name; its captures are `${match(N)}`.
    pub regexp: String,
    /// Drop tags that interpolate to "".
    pub remove_empty_tags: bool,
}

/// The service lookup of a query (Consul's `ServiceQuery`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceQuery {
    /// Service name (may contain `${...}` in a template).
    pub service: String,
    /// Namespace (Enterprise; kept for shape compatibility).
    pub namespace: String,
    /// Where to look when the local datacenter has no healthy instance.
    pub failover: QueryFailover,
    /// Check IDs whose status is ignored by the health filter.
    #[serde(rename = "IgnoreCheckIDs")]
    pub ignore_check_ids: Vec<String>,
    /// Exclude instances with any warning check, not only critical ones.
    pub only_passing: bool,
    /// Sort by RTT from this node (`_agent` = the agent that received the request).
    pub near: String,
    /// Required tags; `!tag` excludes. Case-insensitive.
    pub tags: Vec<String>,
    /// Node metadata that must match exactly.
    pub node_meta: BTreeMap<String, String>,
    /// Service metadata that must match exactly.
    pub service_meta: BTreeMap<String, String>,
    /// Only Connect-capable endpoints (none exist yet, so such a query answers nothing).
    pub connect: bool,
}

/// Failover policy (Consul's `QueryFailoverOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryFailover {
    /// Try the N nearest datacenters by RTT.
    #[serde(rename = "NearestN")]
    pub nearest_n: u32,
    /// Then these, in order.
    pub datacenters: Vec<String>,
    /// Or these targets, in order (not combinable with the two above).
    pub targets: Vec<QueryFailoverTarget>,
    /// Meridian's: answer from the failover datacenters even when this one has instances
    /// (Consul #3250), e.g. to send traffic away from a datacenter being drained. Takes
    /// effect with `NearestN`, `Datacenters` or `Targets`. Left out of the JSON when false,
    /// so the definition reads back in Consul's shape.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skip_local: bool,
}

impl QueryFailover {
    /// Whether the local datacenter's answer is passed over for the failover datacenters'.
    pub fn skips_local(&self) -> bool {
        self.skip_local && self.is_set()
    }

    /// Whether any failover is configured.
    pub fn is_set(&self) -> bool {
        self.nearest_n > 0 || !self.datacenters.is_empty() || !self.targets.is_empty()
    }

    /// The other datacenters to ask, in order, when the local one has no instance (as
    /// Consul's): the `Targets` that name a datacenter; else the `NearestN` nearest of
    /// `by_rtt` (known datacenters, nearest first), then `Datacenters` in their order. Each
    /// datacenter once; never `local`.
    pub fn datacenters_to_try(&self, local: &str, by_rtt: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |dc: &str| {
            if !dc.is_empty() && dc != local && !out.iter().any(|d| d == dc) {
                out.push(dc.to_string());
            }
        };
        if !self.targets.is_empty() {
            for t in &self.targets {
                add(&t.datacenter);
            }
            return out;
        }
        let nearest = usize::try_from(self.nearest_n).unwrap_or(usize::MAX);
        for dc in by_rtt.iter().filter(|d| *d != local).take(nearest) {
            add(dc);
        }
        for dc in &self.datacenters {
            add(dc);
        }
        out
    }
}

/// One failover target: a cluster peer or a datacenter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryFailoverTarget {
    /// Cluster peer name.
    pub peer_name: String,
    /// Datacenter name.
    pub datacenter: String,
}

/// DNS options (Consul's `QueryDNSOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct QueryDns {
    /// TTL of DNS answers as a Go duration string ("" = the agent's default).
    #[serde(rename = "TTL")]
    pub ttl: String,
}

impl super::State {
    /// One query by ID (no name lookup, no interpolation).
    pub fn prepared_query(&self, id: &str) -> Option<&PreparedQuery> {
        self.prepared_queries.get(id)
    }

    /// Every query, by ID.
    pub fn prepared_queries(&self) -> impl Iterator<Item = &PreparedQuery> {
        self.prepared_queries.values()
    }
}
