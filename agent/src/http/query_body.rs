//! The prepared-query request body (`POST /v1/query`, `PUT /v1/query/:id`) and the
//! response shapes of the `/v1/query` endpoints, in Consul's JSON (reference/consul.md §2.9).
//!
//! Input keys are folded like every body here (`Service`, `service`, `onlyPassing` all
//! work), and `null` counts as absent because Go clients send `"Tags": null`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::decode;
use super::error::ApiError;
use crate::catalog::prepared_query::{
    QueryDns, QueryFailover, QueryFailoverTarget, QueryTemplate, REDACTED_TOKEN, ServiceQuery,
};
use crate::catalog::{Check, HealthEntry, Node, PreparedQuery, QueryResult, Service};

/// A query definition as clients send it (folded keys).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct QueryBody {
    pub(super) id: String,
    name: String,
    session: String,
    token: String,
    template: TemplateBody,
    service: ServiceBody,
    dns: DnsBody,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TemplateBody {
    r#type: String,
    regexp: String,
    removeemptytags: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ServiceBody {
    service: String,
    namespace: String,
    failover: FailoverBody,
    ignorecheckids: Vec<String>,
    onlypassing: bool,
    near: String,
    tags: Vec<String>,
    nodemeta: BTreeMap<String, String>,
    servicemeta: BTreeMap<String, String>,
    connect: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FailoverBody {
    /// Signed so that a negative value is a named 400, not a decode error.
    nearestn: i64,
    datacenters: Vec<String>,
    targets: Vec<TargetBody>,
    /// Meridian's `SkipLocal`.
    skiplocal: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct TargetBody {
    peername: String,
    datacenter: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DnsBody {
    ttl: String,
}

/// Drops `null` members of objects, recursively.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

impl QueryBody {
    /// Decodes a body; errors are 400s naming the field.
    pub(super) fn decode(body: &[u8]) -> Result<Self, ApiError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => {
                let cleaned = serde_json::to_vec(&strip_nulls(v))
                    .map_err(|e| ApiError::internal(format!("re-encoding body: {e}")))?;
                decode(&cleaned, false)
            }
            // Let the shared decoder phrase the syntax error (or the empty-body one).
            Err(_) => decode(body, false),
        }
    }

    /// The catalog query with ID `id`.
    pub(super) fn into_query(self, id: String) -> Result<PreparedQuery, ApiError> {
        let s = self.service;
        let nearest_n = u32::try_from(s.failover.nearestn).map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid prepared query: bad Service.Failover.NearestN: {} must be >= 0",
                s.failover.nearestn
            ))
        })?;
        Ok(PreparedQuery {
            id,
            name: self.name,
            session: self.session,
            token: self.token,
            template: QueryTemplate {
                kind: self.template.r#type,
                regexp: self.template.regexp,
                remove_empty_tags: self.template.removeemptytags,
            },
            service: ServiceQuery {
                service: s.service,
                namespace: s.namespace,
                failover: QueryFailover {
                    nearest_n,
                    datacenters: s.failover.datacenters,
                    targets: s
                        .failover
                        .targets
                        .into_iter()
                        .map(|t| QueryFailoverTarget {
                            peer_name: t.peername,
                            datacenter: t.datacenter,
                        })
                        .collect(),
                    skip_local: s.failover.skiplocal,
                },
                ignore_check_ids: s.ignorecheckids,
                only_passing: s.onlypassing,
                near: s.near,
                tags: s.tags,
                node_meta: s.nodemeta,
                service_meta: s.servicemeta,
                connect: s.connect,
            },
            dns: QueryDns { ttl: self.dns.ttl },
            create_index: 0,
            modify_index: 0,
        })
    }
}

/// `{"CreateIndex", "ModifyIndex"}` of a query.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RaftIndex {
    create_index: u64,
    modify_index: u64,
}

/// A query as list/get/explain return it: token redacted. Go's embedded `RaftIndex`
/// flattens to top-level `CreateIndex`/`ModifyIndex`; the reference shows a nested
/// `RaftIndex` object, so both are present.
#[derive(Serialize)]
pub(super) struct QueryOut {
    #[serde(flatten)]
    query: PreparedQuery,
    #[serde(rename = "RaftIndex")]
    raft_index: RaftIndex,
}

impl From<&PreparedQuery> for QueryOut {
    fn from(q: &PreparedQuery) -> Self {
        Self::shown(q, false)
    }
}

impl QueryOut {
    /// `q` as shown to a caller; its captured token only when `token` (acl:write).
    pub(super) fn shown(q: &PreparedQuery, token: bool) -> Self {
        let mut query = q.clone();
        if !token {
            query.token = REDACTED_TOKEN.to_string();
        }
        Self {
            query,
            raft_index: RaftIndex {
                create_index: q.create_index,
                modify_index: q.modify_index,
            },
        }
    }
}

/// One `Nodes[]` element of an execute response (Consul's `CheckServiceNode`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct NodeOut {
    node: Node,
    service: Service,
    checks: Vec<Check>,
}

/// `{"TTL": ...}`.
#[derive(Serialize)]
struct DnsOut {
    #[serde(rename = "TTL")]
    ttl: String,
}

/// `GET /v1/query/:id/execute` (Consul's `PreparedQueryExecuteResponse`, top-level fields).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ExecuteOut {
    service: String,
    nodes: Vec<NodeOut>,
    #[serde(rename = "DNS")]
    dns: DnsOut,
    datacenter: String,
    failovers: u32,
}

impl From<QueryResult> for ExecuteOut {
    fn from(r: QueryResult) -> Self {
        Self {
            service: r.service,
            nodes: r
                .nodes
                .into_iter()
                .map(|e: HealthEntry| NodeOut {
                    node: e.node,
                    service: e.service,
                    checks: e.checks,
                })
                .collect(),
            dns: DnsOut { ttl: r.dns_ttl_raw },
            datacenter: r.datacenter,
            failovers: r.failovers,
        }
    }
}
