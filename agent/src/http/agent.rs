//! `/v1/agent/*`: this agent's self description, and the services and checks it owns
//! (`local/`): registrations go into local state, are persisted, start their check tasks
//! and are synced to the catalog before the request returns. Each write is vetted first
//! (`agent_acl.rs`) and kept with the request's token, which anti-entropy syncs it with.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::put;

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::agent_acl::{
    registration, vet_check_target, vet_check_update, vet_service_register, vet_service_update,
};
use super::body::decode;
use super::dto::{CheckBody, ServiceBody};
use super::error::ApiError;
use super::params::Params;
use crate::catalog::{Check, HealthStatus, Service};
use crate::local::{LocalCheck, LocalState};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
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
        .route("/v1/agent/maintenance", put(node_maintenance))
        .route(
            "/v1/agent/service/maintenance/{*id}",
            put(service_maintenance),
        )
}

/// `?enable=true|false`, required.
fn enable_flag(p: &Params) -> Result<bool, ApiError> {
    match p.get("enable") {
        None | Some("") => Err(ApiError::bad_request("Missing value for enable")),
        Some(v) => v
            .parse::<bool>()
            .map_err(|_| ApiError::bad_request(format!("Invalid value for enable: {v:?}"))),
    }
}

/// A maintenance check: critical, with the reason (or Consul's default) as notes.
fn maintenance_check(
    id: String,
    name: &str,
    service_id: &str,
    reason: &str,
    what: &str,
) -> LocalCheck {
    let notes = if reason.is_empty() {
        format!(
            "Maintenance mode is enabled for this {what}, but no reason was provided. This is a default message."
        )
    } else {
        reason.to_string()
    };
    LocalCheck {
        check: Check {
            check_id: id,
            name: name.into(),
            status: HealthStatus::Critical,
            notes,
            service_id: service_id.into(),
            check_type: "maintenance".into(),
            ..Check::default()
        },
        ..LocalCheck::default()
    }
}

/// `PUT /v1/agent/maintenance?enable=&reason=`: Consul's `_node_maintenance` check.
/// Runs a change of the agent's services and checks on the blocking pool: it writes their
/// files (create, fsync, rename), which on a runtime worker stalled every other request
/// and the anti-entropy that syncs the change (a burst of registrations kept both workers
/// inside ext4's inode allocation).
async fn on_disk<T: Send + 'static>(
    st: &ApiState,
    change: impl FnOnce(&LocalState) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let local = std::sync::Arc::clone(&st.local.state);
    tokio::task::spawn_blocking(move || change(&local))
        .await
        .map_err(|e| ApiError::internal(format!("local state change failed: {e}")))
}

async fn node_maintenance(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    authz.check(Resource::Node, &st.node_name, Need::Write)?;
    let id = "_node_maintenance".to_string();
    if enable_flag(&p)? {
        let c = maintenance_check(
            id,
            "Node Maintenance Mode",
            "",
            p.get("reason").unwrap_or(""),
            "node",
        );
        let reg = registration(&authz);
        on_disk(&st, move |l| l.add_check(c, reg))
            .await?
            .map_err(|e| ApiError::internal(e.to_string()))?;
    } else {
        on_disk(&st, move |l| l.remove_check(&id)).await?;
    }
    st.local.applied().await;
    Ok(().into_response())
}

/// `PUT /v1/agent/service/maintenance/:id?enable=&reason=`: `_service_maintenance:<id>`.
async fn service_maintenance(
    State(st): State<ApiState>,
    authz: Authz,
    Path(service): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    vet_service_update(&st, &authz, &service)?;
    let id = format!("_service_maintenance:{service}");
    if enable_flag(&p)? {
        let reason = p.get("reason").unwrap_or("");
        let c = maintenance_check(id, "Service Maintenance Mode", &service, reason, "service");
        let reg = registration(&authz);
        on_disk(&st, move |l| l.add_check(c, reg))
            .await?
            .map_err(|e| ApiError::internal(e.to_string()))?;
    } else {
        on_disk(&st, move |l| l.remove_check(&id)).await?;
    }
    st.local.applied().await;
    Ok(().into_response())
}

/// `PUT /v1/agent/reload`: re-read the config files and apply their service definitions.
async fn reload(State(st): State<ApiState>, authz: Authz) -> Result<Response, ApiError> {
    authz.check(Resource::Agent, &st.agent.node_name, Need::Write)?;
    st.reload
        .reload()
        .await
        .map_err(|e| ApiError::internal(format!("Failed to reload configs: {e}")))?;
    Ok(().into_response())
}

/// The local form of a check body; script checks only when `allow_scripts`.
pub(super) fn local_check(
    body: &CheckBody,
    check: Check,
    allow_scripts: bool,
) -> Result<LocalCheck, ApiError> {
    if !body.args.is_empty() && !allow_scripts {
        return Err(ApiError::bad_request(
            "Scripts are disabled on this agent; to enable, configure 'enable_script_checks' or 'enable_local_script_checks' to true",
        ));
    }
    Ok(LocalCheck {
        check,
        ttl_ms: body
            .ttl
            .filter(|t| !t.0.is_zero())
            .map(|t| u64::try_from(t.0.as_millis()).unwrap_or(u64::MAX)),
        args: body.args.clone(),
        success_before_passing: body.successbeforepassing,
        failures_before_warning: body.failuresbeforewarning,
        failures_before_critical: body.failuresbeforecritical,
    })
}

/// A service registration body (API or config file, keys in any case) as local state.
pub(super) fn service_with_checks(
    body: &[u8],
    node: &str,
    allow_scripts: bool,
) -> Result<(Service, Vec<LocalCheck>), ApiError> {
    let b: ServiceBody = decode(body, false)?;
    let mut service = b.to_service()?;
    service.fill_default_tagged_addresses();
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
        let check = c.to_check(node, &service.id)?;
        checks.push(local_check(&c, check, allow_scripts)?);
    }
    Ok((service, checks))
}

/// A service definition from a config file (`service { ... }` / `services = [...]`).
/// Script checks are allowed when `allow_scripts` (`enable_script_checks` or
/// `enable_local_script_checks`).
pub fn service_definition(
    def: &serde_json::Value,
    node: &str,
    allow_scripts: bool,
) -> Result<(Service, Vec<LocalCheck>), String> {
    let bytes = serde_json::to_vec(def).map_err(|e| e.to_string())?;
    service_with_checks(&bytes, node, allow_scripts).map_err(|e| e.to_string())
}

async fn service_register(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (service, checks) = service_with_checks(&body, &st.node_name, st.enable_script_checks)?;
    vet_service_register(&st, &authz, &service)?;
    for c in &checks {
        // A check of the same ID bound elsewhere is replaced: the token must cover it too.
        if let Some(old) = st.local.state.check(&c.check.check_id)
            && old.check.service_id != service.id
        {
            vet_check_target(&st, &authz, &old.check.service_id)?;
        }
    }
    let (replace, reg) = (p.flag("replace-existing-checks"), registration(&authz));
    on_disk(&st, move |l| l.add_service(service, checks, replace, reg))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    st.local.applied().await;
    Ok(().into_response())
}

async fn service_deregister(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    vet_service_update(&st, &authz, &id)?;
    let what = id.clone();
    if !on_disk(&st, move |l| l.remove_service(&what)).await? {
        return Err(ApiError::not_found(format!(
            "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
        )));
    }
    st.local.applied().await;
    Ok(().into_response())
}

async fn check_register(
    State(st): State<ApiState>,
    authz: Authz,
    body: Bytes,
) -> Result<Response, ApiError> {
    let b: CheckBody = decode(&body, false)?;
    if b.name.is_empty() {
        return Err(ApiError::bad_request("Missing check name"));
    }
    let check = b.to_check(&st.node_name, "")?;
    // Consul (1.11+) answers a check for an unknown service with 404 (`AgentRegisterCheck`).
    if !check.service_id.is_empty() && st.local.state.service(&check.service_id).is_none() {
        return Err(ApiError::not_found(format!(
            "ServiceID {:?} does not exist",
            check.service_id
        )));
    }
    vet_check_target(&st, &authz, &check.service_id)?;
    if let Some(old) = st.local.state.check(&check.check_id) {
        vet_check_target(&st, &authz, &old.check.service_id)?;
    }
    let local = local_check(&b, check, st.enable_script_checks)?;
    let reg = registration(&authz);
    on_disk(&st, move |l| l.add_check(local, reg))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    st.local.applied().await;
    Ok(().into_response())
}

async fn check_deregister(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    vet_check_update(&st, &authz, &id)?;
    let what = id.clone();
    if !on_disk(&st, move |l| l.remove_check(&what)).await? {
        return Err(ApiError::not_found(format!(
            "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
        )));
    }
    st.local.applied().await;
    Ok(().into_response())
}

async fn set_status(
    st: &ApiState,
    authz: &Authz,
    id: String,
    status: HealthStatus,
    output: String,
) -> Result<Response, ApiError> {
    vet_check_update(st, authz, &id)?;
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
    authz: Authz,
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
    set_status(
        &st,
        &authz,
        id,
        status,
        p.get("note").unwrap_or("").to_string(),
    )
    .await
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct UpdateBody {
    status: String,
    output: String,
}

async fn check_update(
    State(st): State<ApiState>,
    authz: Authz,
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
    set_status(&st, &authz, id, status, b.output).await
}
