//! ACL replication over HTTP (reference/acl.md §6.2): `GET /v1/acl/replication` (the status
//! Consul reports, answered by the datacenter's leader) and the primary's internal list a
//! secondary's leader follows, `GET /v1/internal/acl/replicate/<kind>`: the stored rows of
//! one kind, secrets included, as a blocking query on that table. Policies and roles need
//! `acl:read`, tokens `acl:write` (Consul's replication refuses redacted secrets).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Method, Uri};
use axum::response::Response;
use meridian_acl::{Need, Resource};
use serde_json::json;

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_write::server;
use super::error::ApiError;
use super::params::Params;
use super::read::{blocking, json_body};
use crate::server::acl_replication::{Kind, REDACTED};

/// `GET /v1/internal/acl/replicate/{kind}`.
pub(super) async fn list(
    State(st): State<ApiState>,
    authz: Authz,
    Path(kind): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    let kind = Kind::parse(&kind)
        .ok_or_else(|| ApiError::not_found(format!("unknown ACL replication kind {kind:?}")))?;
    if kind == Kind::Tokens {
        if !authz.allowed(Resource::Acl, "", Need::Write) {
            return Err(ApiError::forbidden(format!(
                "Permission denied: {REDACTED}"
            )));
        }
    } else {
        authz.check(Resource::Acl, "", Need::Read)?;
    }
    let opts = p.read_opts()?;
    let (meta, rows) = blocking(server(&st)?, &opts, |s| kind.rows(s)).await?;
    Ok(meta.json(&rows))
}

/// `GET /v1/acl/replication`: the leader's replication status. `SourceDatacenter` is the
/// ACL primary in effect everywhere; `Enabled` is false (and the rest zero) in the primary
/// and where no replication token is in effect.
pub(super) async fn status(
    State(st): State<ApiState>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let enabled = st.acl_replicator.as_ref().filter(|r| r.enabled());
    if enabled.is_some()
        && let Some(resp) = super::autopilot::on_leader(server(&st)?, &method, &uri, &body).await?
    {
        return Ok(resp);
    }
    let zero = "0001-01-01T00:00:00Z";
    let time = |t: std::time::SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    let source = st.acl.settings().primary_datacenter();
    let Some(r) = enabled else {
        return Ok(json_body(&json!({
            "Enabled": false, "Running": false, "SourceDatacenter": source, "ReplicationType": "",
            "ReplicatedIndex": 0, "ReplicatedRoleIndex": 0, "ReplicatedTokenIndex": 0,
            "LastSuccess": zero, "LastError": zero, "LastErrorMessage": "",
        })));
    };
    let s = r.status();
    let (last_error, message) = match &s.last_error {
        Some((t, m)) => (time(*t), m.clone()),
        None => (zero.to_string(), String::new()),
    };
    Ok(json_body(&json!({
        "Enabled": true,
        "Running": s.running,
        "SourceDatacenter": source,
        "ReplicationType": r.replication_type(),
        "ReplicatedIndex": s.policy_index,
        "ReplicatedRoleIndex": s.role_index,
        "ReplicatedTokenIndex": s.token_index,
        "LastSuccess": s.last_success.map_or_else(|| zero.to_string(), time),
        "LastError": last_error,
        "LastErrorMessage": message,
    })))
}
