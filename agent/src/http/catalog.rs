//! `/v1/catalog/*` and `/v1/health/*`: registration, deregistration, and the discovery
//! reads with `tag`, `passing`, `node-meta` and `filter`.
//!
//! ACLs (reference/acl.md §5.3): reads prune what the token may not read before `filter`
//! (`acl_filter_catalog.rs`), never a 403; `node/:n` without node:read is `null`.
//! Register and deregister are vetted against the current catalog first
//! (`acl_catalog_write.rs`) and denied with Consul's 403 texts.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Serialize;
use serde_json::Value;

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_filter_catalog::{self as acl_filter, Readable};
use super::acl_filter_kv::mark_filtered;
use super::dto::RegisterBody;
use super::error::ApiError;
use super::params::Params;
use super::read::{blocking, json_body, list_readable, parse_filter, passes, source};
use crate::catalog::{
    Check, DeregisterOp, HealthEntry, HealthStatus, Node, Service, ServiceAddress, ServiceRow,
    Weights,
};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/catalog/register", put(register))
        .route("/v1/catalog/deregister", put(deregister))
        .route("/v1/catalog/datacenters", get(datacenters))
        .route("/v1/catalog/nodes", get(nodes))
        .route("/v1/catalog/services", get(services))
        .route("/v1/catalog/service/{name}", get(service))
        .route("/v1/catalog/node/{node}", get(node))
        .route("/v1/catalog/node-services/{node}", get(node_services))
        .route("/v1/health/service/{name}", get(health_service))
        .route("/v1/health/checks/{name}", get(health_checks))
        .route("/v1/health/node/{node}", get(health_node))
        .route("/v1/health/state/{state}", get(health_state))
}

async fn register(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: RegisterBody = super::body::decode(&body, false)?;
    let dc = p
        .dc()
        .map(str::to_string)
        .or_else(|| (!b.datacenter.is_empty()).then(|| b.datacenter.clone()));
    let server = st.router.server(dc.as_deref())?;
    let op = b.into_op(st.router.local_dc())?;
    super::acl_catalog_write::vet_register(&st, &authz, server, &op).await?;
    server
        .apply(crate::catalog::Command::Register(Box::new(op)))
        .await?;
    Ok(json_body(&true))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(super) struct DeregisterBody {
    datacenter: String,
    node: String,
    serviceid: String,
    checkid: String,
    namespace: String,
}

async fn deregister(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: DeregisterBody = super::body::decode(&body, false)?;
    if b.node.is_empty() {
        return Err(ApiError::bad_request("Missing node name"));
    }
    let dc = p
        .dc()
        .map(str::to_string)
        .or_else(|| (!b.datacenter.is_empty()).then(|| b.datacenter.clone()));
    let server = st.router.server(dc.as_deref())?;
    let _ = b.namespace;
    let op = DeregisterOp {
        node: b.node,
        service_id: (!b.serviceid.is_empty()).then_some(b.serviceid),
        check_id: (!b.checkid.is_empty()).then_some(b.checkid),
    };
    super::acl_catalog_write::vet_deregister(&st, &authz, server, &op).await?;
    server
        .apply(crate::catalog::Command::Deregister(op))
        .await?;
    Ok(json_body(&true))
}

async fn datacenters(State(st): State<ApiState>) -> Result<Response, ApiError> {
    Ok(json_body(&st.router.datacenters().await))
}

/// `node-meta=key:value` pairs (repeatable; all must match).
fn node_meta(p: &Params) -> Result<Vec<(String, String)>, ApiError> {
    p.get_all("node-meta")
        .map(|v| match v.split_once(':') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None => Err(ApiError::bad_request(format!(
                "Invalid node-meta parameter {v:?}: expected key:value"
            ))),
        })
        .collect()
}

fn meta_matches(meta: &BTreeMap<String, String>, want: &[(String, String)]) -> bool {
    want.iter().all(|(k, v)| meta.get(k) == Some(v))
}

async fn nodes(State(st): State<ApiState>, authz: Authz, p: Params) -> Result<Response, ApiError> {
    let want = node_meta(&p)?;
    list_readable(&st, &p, &authz, NO_INDEX, |s| {
        let rows: Vec<Node> = s
            .nodes()
            .filter(|n| meta_matches(&n.meta, &want))
            .cloned()
            .collect();
        (s.table_indexes().nodes, rows)
    })
    .await
}

/// `filter` applies to the service instances as `/v1/catalog/service/:name` rows (Consul's
/// `ListServices` filters `[]ServiceNode`); the answer is the name → tags map of the
/// instances that pass, so a tag appears only if a matching instance carries it. ACLs prune
/// names without service:read first (Consul's `filterServices`).
async fn services(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    let opts = p.read_opts()?;
    let meta_want = node_meta(&p)?;
    let f = parse_filter(&p)?;
    let from = source(&st, &p, &opts)?;
    let (meta, (out, pruned)) = blocking(from, &opts, |s| {
        let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        let mut pruned = false;
        for n in s.nodes().filter(|n| meta_matches(&n.meta, &meta_want)) {
            for svc in s.node_services(&n.node) {
                if !acl_filter::service_readable(&authz, &svc.service) {
                    pruned = true;
                    continue;
                }
                if f.is_some() {
                    let row = CatalogServiceRow::from(ServiceRow {
                        node: n.clone(),
                        service: svc.clone(),
                    });
                    if !passes(f.as_ref(), &row) {
                        continue;
                    }
                }
                out.entry(svc.service.clone())
                    .or_default()
                    .extend(svc.tags.iter().cloned());
            }
        }
        (s.table_indexes().services, (out, pruned))
    })
    .await?;
    Ok(mark_filtered(&authz, pruned, meta.json(&out)))
}

/// A `/v1/catalog/service/:name` row, flattened as Consul returns it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CatalogServiceRow {
    #[serde(rename = "ID")]
    id: String,
    node: String,
    address: String,
    datacenter: String,
    tagged_addresses: BTreeMap<String, String>,
    node_meta: BTreeMap<String, String>,
    #[serde(rename = "ServiceKind")]
    service_kind: String,
    #[serde(rename = "ServiceID")]
    service_id: String,
    service_name: String,
    service_tags: Vec<String>,
    service_address: String,
    service_tagged_addresses: BTreeMap<String, ServiceAddress>,
    service_weights: Weights,
    service_meta: BTreeMap<String, String>,
    service_port: u16,
    service_enable_tag_override: bool,
    service_proxy: Value,
    service_connect: Value,
    namespace: &'static str,
    create_index: u64,
    modify_index: u64,
}

impl Readable for CatalogServiceRow {
    fn readable(&self, authz: &Authz) -> bool {
        acl_filter::instance_readable(authz, &self.node, &self.service_name)
    }
}

impl From<ServiceRow> for CatalogServiceRow {
    fn from(r: ServiceRow) -> Self {
        let (n, s) = (r.node, r.service);
        CatalogServiceRow {
            id: n.id,
            node: n.node,
            address: n.address,
            datacenter: n.datacenter,
            tagged_addresses: n.tagged_addresses,
            node_meta: n.meta,
            service_kind: s.kind,
            service_id: s.id,
            service_name: s.service,
            service_tags: s.tags,
            service_address: s.address,
            service_tagged_addresses: s.tagged_addresses,
            service_weights: s.weights,
            service_meta: s.meta,
            service_port: s.port,
            service_enable_tag_override: s.enable_tag_override,
            service_proxy: serde_json::json!({ "Mode": "", "MeshGateway": {}, "Expose": {} }),
            service_connect: serde_json::json!({}),
            namespace: "default",
            create_index: s.create_index,
            modify_index: s.modify_index,
        }
    }
}

/// No cheap index function: the query runs on every round.
const NO_INDEX: Option<fn(&crate::catalog::State) -> u64> = None;

/// `?peer=`: instances imported from a cluster peer. Meridian has no peerings, so every
/// named peer is unknown and, as in Consul, such a read finds nothing (never the local
/// instances).
pub(super) fn peered(p: &Params) -> bool {
    p.non_empty("peer").is_some()
}

/// Consul's index of a catalog read that found no instance of the service: the larger of
/// the nodes and services table indexes (`maxIndexForService` falling back to the tables).
pub(super) fn catalog_index(s: &crate::catalog::State) -> u64 {
    let t = s.table_indexes();
    t.nodes.max(t.services)
}

/// [`catalog_index`] for health reads, which also cover the checks table.
pub(super) fn health_index(s: &crate::catalog::State) -> u64 {
    catalog_index(s).max(s.table_indexes().checks)
}

fn has_tags(svc: &Service, tags: &[String]) -> bool {
    tags.iter().all(|t| svc.tags.iter().any(|x| x == t))
}

/// `tag` parameters (repeatable; an instance must carry all of them).
fn tags(p: &Params) -> Vec<String> {
    p.get_all("tag")
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

async fn service(
    State(st): State<ApiState>,
    authz: Authz,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let (want, tags) = (node_meta(&p)?, tags(&p));
    if peered(&p) {
        return list_readable(&st, &p, &authz, NO_INDEX, |s| {
            (catalog_index(s), Vec::<CatalogServiceRow>::new())
        })
        .await;
    }
    let index_of = |s: &crate::catalog::State| s.service_index(&name);
    list_readable(&st, &p, &authz, Some(index_of), |s| {
        let rows: Vec<CatalogServiceRow> = s
            .service_rows(&name)
            .into_iter()
            .filter(|r| has_tags(&r.service, &tags) && meta_matches(&r.node.meta, &want))
            .map(CatalogServiceRow::from)
            .collect();
        (s.service_index(&name), rows)
    })
    .await
}

/// Without node:read on the node the answer is `null`, as for a missing node.
async fn node(
    State(st): State<ApiState>,
    authz: Authz,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let opts = p.read_opts()?;
    let f = parse_filter(&p)?;
    let from = source(&st, &p, &opts)?;
    let (meta, (out, pruned)) = blocking(from, &opts, |s| {
        let index = s.table_indexes().services.max(s.table_indexes().nodes);
        let Some(n) = s.node(&name) else {
            return (index, (None, false));
        };
        let Some((services, pruned)) =
            acl_filter::node_services(&authz, &name, s.node_services(&name))
        else {
            return (index, (None, true));
        };
        let services: BTreeMap<String, &Service> = services
            .into_iter()
            .filter(|x| passes(f.as_ref(), x))
            .map(|x| (x.id.clone(), x))
            .collect();
        let out = serde_json::json!({ "Node": n, "Services": services });
        (index, (Some(out), pruned))
    })
    .await?;
    Ok(mark_filtered(&authz, pruned, meta.json(&out)))
}

/// Without node:read on the node it is missing (404), as in [`node`].
async fn node_services(
    State(st): State<ApiState>,
    authz: Authz,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let opts = p.read_opts()?;
    let f = parse_filter(&p)?;
    let from = source(&st, &p, &opts)?;
    let (meta, (out, pruned)) = blocking(from, &opts, |s| {
        let index = s.table_indexes().services.max(s.table_indexes().nodes);
        let Some(n) = s.node(&name) else {
            return (index, (None, false));
        };
        let Some((services, pruned)) =
            acl_filter::node_services(&authz, &name, s.node_services(&name))
        else {
            return (index, (None, true));
        };
        let services: Vec<&Service> = services
            .into_iter()
            .filter(|x| passes(f.as_ref(), x))
            .collect();
        let out = serde_json::json!({ "Node": n, "Services": services });
        (index, (Some(out), pruned))
    })
    .await?;
    let resp = match out {
        Some(v) => meta.json(&v),
        None => ApiError::not_found(format!("Node not found: {name:?}")).into_response(),
    };
    Ok(mark_filtered(&authz, pruned, resp))
}

/// A `/v1/health/service/:name` entry.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct HealthRow {
    node: Node,
    service: Service,
    checks: Vec<Check>,
}

impl Readable for HealthRow {
    fn readable(&self, authz: &Authz) -> bool {
        acl_filter::instance_readable(authz, &self.node.node, &self.service.service)
    }
}

async fn health_service(
    State(st): State<ApiState>,
    authz: Authz,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let (want, tags, passing) = (node_meta(&p)?, tags(&p), p.flag("passing"));
    if peered(&p) {
        let none = |s: &crate::catalog::State| (health_index(s), Vec::<HealthRow>::new());
        return list_readable(&st, &p, &authz, NO_INDEX, none).await;
    }
    let index_of = |s: &crate::catalog::State| s.service_index(&name);
    list_readable(&st, &p, &authz, Some(index_of), |s| {
        let rows: Vec<HealthRow> = s
            .health_entries(&name)
            .into_iter()
            .filter(|e| has_tags(&e.service, &tags) && meta_matches(&e.node.meta, &want))
            .filter(|e: &HealthEntry| !passing || e.aggregate() == HealthStatus::Passing)
            .map(|e| HealthRow {
                node: e.node,
                service: e.service,
                checks: e.checks,
            })
            .collect();
        (s.service_index(&name), rows)
    })
    .await
}

async fn health_checks(
    State(st): State<ApiState>,
    authz: Authz,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let index_of = |s: &crate::catalog::State| s.service_index(&name);
    list_readable(&st, &p, &authz, Some(index_of), |s| {
        (s.service_index(&name), s.service_checks(&name))
    })
    .await
}

async fn health_node(
    State(st): State<ApiState>,
    authz: Authz,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    list_readable(&st, &p, &authz, NO_INDEX, |s| {
        (
            s.table_indexes().checks,
            s.node_checks(&name).cloned().collect(),
        )
    })
    .await
}

async fn health_state(
    State(st): State<ApiState>,
    authz: Authz,
    Path(state): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let want = match state.as_str() {
        "any" => None,
        s => Some(
            HealthStatus::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("Invalid check state {s:?}")))?,
        ),
    };
    list_readable(&st, &p, &authz, NO_INDEX, |s| {
        let rows: Vec<Check> = s
            .checks()
            .filter(|c| want.is_none_or(|w| c.status == w))
            .cloned()
            .collect();
        (s.table_indexes().checks, rows)
    })
    .await
}
