//! `/v1/agent/*`: this agent's self description, and the services and checks it owns
//! (`local/`): registrations go into local state, are persisted, start their check tasks
//! and are synced to the catalog before the request returns.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};

use super::ApiState;
use super::body::decode;
use super::dto::{CheckBody, ServiceBody};
use super::error::ApiError;
use super::params::Params;
use super::read::json_body;
use crate::catalog::{Check, HealthStatus, Service};
use crate::local::LocalCheck;

pub(super) fn routes() -> Router<ApiState> {
    self_route()
        .route("/v1/agent/services", get(services))
        .route("/v1/agent/checks", get(checks))
        .route("/v1/agent/service/register", put(service_register))
        .route(
            "/v1/agent/service/deregister/{*id}",
            put(service_deregister),
        )
        .route("/v1/agent/check/register", put(check_register))
        .route("/v1/agent/check/deregister/{*id}", put(check_deregister))
        .route("/v1/agent/check/{verb}/{*id}", put(check_ttl))
        .route("/v1/agent/check/update/{*id}", put(check_update))
        .route("/v1/agent/reload", put(reload))
}

/// `PUT /v1/agent/reload`: re-read the config files and apply their service definitions.
async fn reload(State(st): State<ApiState>) -> Result<Response, ApiError> {
    st.reload
        .reload()
        .await
        .map_err(|e| ApiError::internal(format!("Failed to reload configs: {e}")))?;
    Ok(().into_response())
}

/// `/v1/agent/self` alone (client agents answer it themselves).
pub(super) fn self_route() -> Router<ApiState> {
    Router::new().route("/v1/agent/self", get(self_info))
}

async fn self_info(State(st): State<ApiState>) -> Result<Response, ApiError> {
    let a = &st.agent;
    let server = st.router.local();
    let leader = server
        .and_then(|s| s.raft().leader())
        .map(|(_, n)| n.rpc_addr)
        .unwrap_or_default();
    let is_leader = server.is_some_and(|s| s.raft().is_leader());
    let meta = server.map(|s| s.me().meta.clone()).unwrap_or_default();
    let ttl_min = st.session_ttl_min.as_nanos() as u64;
    let config = json!({
        "Datacenter": a.datacenter,
        "PrimaryDatacenter": a.datacenter,
        "NodeName": a.node_name,
        "NodeID": a.node_id,
        "Server": a.server,
        "Revision": "",
        "Version": a.version,
        "AdvertiseAddr": a.advertise_addr,
        "SessionTTLMin": ttl_min,
    });
    Ok(json_body(&json!({
        "Config": config,
        "DebugConfig": { "SessionTTLMin": ttl_min, "Datacenter": a.datacenter, "NodeName": a.node_name, "DNSDomain": a.domain },
        "Coord": st.gossip.coordinate(),
        "Member": super::members::local_member(&st),
        "Stats": { "consul": { "server": a.server.to_string(), "leader": is_leader.to_string(), "leader_addr": leader, "known_datacenters": "1" } },
        "Meta": meta,
    })))
}

/// Services this agent owns, as `/v1/agent/services` shows them (from local state, as
/// Consul's agent answers without asking the servers).
async fn services(State(st): State<ApiState>) -> Result<Response, ApiError> {
    let out: BTreeMap<String, Value> = st
        .local
        .state
        .services()
        .into_iter()
        .map(|s| {
            (s.id.clone(), json!({
                "ID": s.id, "Service": s.service, "Tags": s.tags, "Meta": s.meta, "Port": s.port,
                "Address": s.address, "TaggedAddresses": s.tagged_addresses, "Weights": s.weights,
                "EnableTagOverride": s.enable_tag_override, "Kind": s.kind, "Datacenter": st.agent.datacenter,
            }))
        })
        .collect();
    Ok(json_body(&out))
}

/// Checks this agent owns, with their current status.
async fn checks(State(st): State<ApiState>) -> Result<Response, ApiError> {
    let out: BTreeMap<String, Check> = st
        .local
        .state
        .checks()
        .into_iter()
        .map(|c| {
            let mut check = c.check;
            check.node = st.node_name.clone();
            if let Some(svc) = st.local.state.service(&check.service_id) {
                check.service_name = svc.service;
                check.service_tags = svc.tags;
            }
            (check.check_id.clone(), check)
        })
        .collect();
    Ok(json_body(&out))
}

fn local_check(c: Check, ttl: Option<super::body::GoDuration>) -> LocalCheck {
    LocalCheck {
        check: c,
        ttl_ms: ttl
            .filter(|t| !t.0.is_zero())
            .map(|t| u64::try_from(t.0.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// A service registration body (API or config file, keys in any case) as local state.
fn service_with_checks(body: &[u8], node: &str) -> Result<(Service, Vec<LocalCheck>), ApiError> {
    let b: ServiceBody = decode(body, false)?;
    let service = b.to_service()?;
    let bodies: Vec<&CheckBody> = b.check.iter().chain(b.checks.iter()).collect();
    let mut checks = Vec::new();
    for (i, c) in bodies.iter().enumerate() {
        let mut c = (*c).clone();
        if c.checkid.is_empty() && c.id.is_empty() {
            c.checkid = if bodies.len() == 1 {
                format!("service:{}", service.id)
            } else {
                format!("service:{}:{}", service.id, i + 1)
            };
        }
        if c.name.is_empty() {
            c.name = format!("Service '{}' check", service.service);
        }
        checks.push(local_check(c.to_check(node, &service.id)?, c.ttl));
    }
    Ok((service, checks))
}

/// A service definition from a config file (`service { ... }` / `services = [...]`).
pub fn service_definition(
    def: &serde_json::Value,
    node: &str,
) -> Result<(Service, Vec<LocalCheck>), String> {
    let bytes = serde_json::to_vec(def).map_err(|e| e.to_string())?;
    service_with_checks(&bytes, node).map_err(|e| e.to_string())
}

async fn service_register(
    State(st): State<ApiState>,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (service, checks) = service_with_checks(&body, &st.node_name)?;
    st.local
        .state
        .add_service(service, checks, p.flag("replace-existing-checks"))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    st.local.applied().await;
    Ok(().into_response())
}

async fn service_deregister(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !st.local.state.remove_service(&id) {
        return Err(ApiError::not_found(format!(
            "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
        )));
    }
    st.local.applied().await;
    Ok(().into_response())
}

async fn check_register(State(st): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let b: CheckBody = decode(&body, false)?;
    if b.name.is_empty() {
        return Err(ApiError::bad_request("Missing check name"));
    }
    let check = b.to_check(&st.node_name, "")?;
    if !check.service_id.is_empty() && st.local.state.service(&check.service_id).is_none() {
        return Err(ApiError::bad_request(format!(
            "ServiceID {:?} does not exist",
            check.service_id
        )));
    }
    st.local
        .state
        .add_check(local_check(check, b.ttl))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    st.local.applied().await;
    Ok(().into_response())
}

async fn check_deregister(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !st.local.state.remove_check(&id) {
        return Err(ApiError::not_found(format!(
            "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
        )));
    }
    st.local.applied().await;
    Ok(().into_response())
}

async fn set_status(
    st: &ApiState,
    id: String,
    status: HealthStatus,
    output: String,
) -> Result<Response, ApiError> {
    if !st.local.state.set_status(&id, status, &output) {
        return Err(ApiError::not_found(format!(
            "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
        )));
    }
    st.local.runners.touch(&id);
    st.local.applied().await;
    Ok(().into_response())
}

/// `PUT /v1/agent/check/{pass,warn,fail}/:id?note=`: the verb picks the status.
async fn check_ttl(
    State(st): State<ApiState>,
    Path((verb, id)): Path<(String, String)>,
    p: Params,
) -> Result<Response, ApiError> {
    let status = match verb.as_str() {
        "pass" => HealthStatus::Passing,
        "warn" => HealthStatus::Warning,
        "fail" => HealthStatus::Critical,
        other => {
            return Err(ApiError::not_found(format!(
                "no such check endpoint {other:?}"
            )));
        }
    };
    set_status(&st, id, status, p.get("note").unwrap_or("").to_string()).await
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct UpdateBody {
    status: String,
    output: String,
}

async fn check_update(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: UpdateBody = decode(&body, false)?;
    let status = match b.status.as_str() {
        "passing" => HealthStatus::Passing,
        "warning" => HealthStatus::Warning,
        "critical" => HealthStatus::Critical,
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid Status {other:?}: must be passing, warning or critical"
            )));
        }
    };
    set_status(&st, id, status, b.output).await
}
