//! `/v1/operator/federation`: the federation as this datacenter's gateways see it (every
//! datacenter with its gateways alive and WAN round trip), and the removal of a datacenter
//! that is gone for good (`DELETE /v1/operator/federation/datacenter/:dc`, CLI `operator
//! federation remove-dc`): Meridian's own endpoints; Consul has no clean un-federate.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get};
use serde_json::json;

use super::ApiState;
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

/// `GET`: `{"Datacenter", "Datacenters": [{"Name", "RTTMs", "GatewaysAlive", "Gateways"}]}`,
/// nearest first; just this datacenter when no gateway answers.
async fn view(State(st): State<ApiState>) -> Result<Response, ApiError> {
    let view = federation(&st)?.view().await.unwrap_or_default();
    let dcs: Vec<_> = view
        .datacenters
        .iter()
        .map(|d| {
            json!({
                "Name": d.name,
                "RTTMs": d.rtt_ms,
                "GatewaysAlive": d.gateways_alive,
                "Gateways": d.gateways,
            })
        })
        .collect();
    Ok(json_body(&json!({
        "Datacenter": st.agent.datacenter,
        "Datacenters": dcs,
    })))
}

/// `DELETE .../datacenter/:dc`: the WAN members removed, as a JSON list.
async fn remove_datacenter(
    State(st): State<ApiState>,
    Path(dc): Path<String>,
) -> Result<Response, ApiError> {
    if dc == st.agent.datacenter {
        return Err(ApiError::bad_request(format!(
            "{dc:?} is this agent's own datacenter"
        )));
    }
    let removed = federation(&st)?.remove_datacenter(&dc).await?;
    Ok(json_body(&removed))
}
