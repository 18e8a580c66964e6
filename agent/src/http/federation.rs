//! `/v1/operator/federation`: the federation as this datacenter's gateways see it (every
//! datacenter with its gateways alive and WAN round trip), and the removal of a datacenter
//! that is gone for good (`DELETE /v1/operator/federation/datacenter/:dc`, CLI `operator
//! federation remove-dc`): Meridian's own endpoints; Consul has no clean un-federate.
//! ACLs, as Consul's operator endpoints: the view needs operator:read, the removal
//! operator:write.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get};
use serde_json::json;

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::error::ApiError;
use super::read::json_body;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/operator/federation", get(view))
        .route(
            "/v1/operator/federation/datacenter/{dc}",
            delete(remove_datacenter),
        )
}

fn federation(st: &ApiState) -> Result<&std::sync::Arc<crate::cluster::Federation>, ApiError> {
    st.router
        .federation()
        .ok_or_else(|| ApiError::bad_request("the federation is seen from a server"))
}

/// `GET`: `{"Datacenter", "Datacenters": [{"Name", "RTTMs", "GatewaysAlive", "Gateways",
/// "Breaker", "RetryInMs", "ConsecutiveFailures", "LastContact", "LastError",
/// "RequestP50Ms", "RequestP99Ms", "Copy": {"Index", "Bytes", "AgeMs", "Refreshes",
/// "LastError"} | null, "CopyAnswers"}], "Replication": {"SourceDatacenter", "Prefixes":
/// [...]} | null}`, nearest first (the health fields for other datacenters only: this
/// server's calls to them, the answering gateway's copy of their catalog and the reads
/// this server answered from copies); just this datacenter when no gateway answers.
async fn view(State(st): State<ApiState>, authz: Authz) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Read)?;
    let fed = federation(&st)?;
    let view = fed.view().await.unwrap_or_default();
    let rfc3339 = |t: std::time::SystemTime| humantime::format_rfc3339_millis(t).to_string();
    let served = fed.copies().served_counts();
    let dcs: Vec<_> = view
        .datacenters
        .iter()
        .map(|d| {
            let mut row = json!({
                "Name": d.name,
                "RTTMs": d.rtt_ms,
                "GatewaysAlive": d.gateways_alive,
                "Gateways": d.gateways,
            });
            if d.name != st.agent.datacenter {
                let h = fed.health(&d.name);
                let fields = json!({
                    "Breaker": h.state.name(),
                    "RetryInMs": h.retry_in.map(|r| r.as_millis() as u64),
                    "ConsecutiveFailures": h.failures,
                    "LastContact": h.last_success.map(rfc3339),
                    "LastError": h.last_error.map(|(t, e)| json!({"At": rfc3339(t), "Error": e})),
                    "RequestP50Ms": h.latency_ms.map(|l| l.0),
                    "RequestP99Ms": h.latency_ms.map(|l| l.1),
                    "Copy": view.copies.iter().find(|c| c.dc == d.name).map(|c| json!({
                        "Index": c.index,
                        "Bytes": c.bytes,
                        "AgeMs": c.age_ms,
                        "Refreshes": c.refreshes,
                        "LastError": c.last_error,
                    })),
                    "CopyAnswers": served.get(&d.name).copied().unwrap_or(0),
                });
                if let (Some(row), Some(fields)) = (row.as_object_mut(), fields.as_object()) {
                    row.extend(fields.clone());
                }
            }
            row
        })
        .collect();
    let replication = st.replicator.as_ref().map(|r| {
        let prefixes: Vec<_> = r
            .status()
            .into_iter()
            .map(|p| {
                json!({
                    "Prefix": p.prefix,
                    "SourceIndex": p.source_index,
                    "AppliedIndex": p.applied_index,
                    "LagIndex": p.source_index.saturating_sub(p.applied_index),
                    "LagSeconds": p.lag_seconds(),
                    "LastSync": p.last_sync.map(rfc3339),
                    "KeysSet": p.keys_set,
                    "KeysDeleted": p.keys_deleted,
                    "LastError": p.last_error,
                })
            })
            .collect();
        json!({ "SourceDatacenter": r.source(), "Prefixes": prefixes })
    });
    Ok(json_body(&json!({
        "Datacenter": st.agent.datacenter,
        "Datacenters": dcs,
        "Replication": replication,
    })))
}

/// `DELETE .../datacenter/:dc`: the WAN members removed, as a JSON list.
async fn remove_datacenter(
    State(st): State<ApiState>,
    authz: Authz,
    Path(dc): Path<String>,
) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Write)?;
    if dc == st.agent.datacenter {
        return Err(ApiError::bad_request(format!(
            "{dc:?} is this agent's own datacenter"
        )));
    }
    let removed = federation(&st)?.remove_datacenter(&dc).await?;
    Ok(json_body(&removed))
}
