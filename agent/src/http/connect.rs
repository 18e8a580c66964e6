//! Reads that belong to Consul's service mesh (Connect), which Meridian does not have:
//! `/v1/catalog/connect/:service`, `/v1/health/connect/:service`,
//! `/v1/health/ingress/:service` and `/v1/catalog/gateway-services/:gateway`.
//!
//! They answer as a Consul agent with no mesh-capable instances and no gateway linkage does:
//! an empty list with the usual read headers, blocking on the index Consul reports for the
//! table behind each one. They still parse every option the real ones take, so a malformed
//! `filter` is a 400 and `peer`, `tag` and `merge-central-config` are accepted. Nothing is
//! ever registered as a connect proxy or gateway here (that is Connect), so there is
//! nothing to look up.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;

use super::ApiState;
use super::catalog::{catalog_index, health_index};
use super::error::ApiError;
use super::params::Params;
use super::read::list;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/catalog/connect/{name}", get(catalog_connect))
        .route("/v1/health/connect/{name}", get(health_connect))
        .route("/v1/health/ingress/{name}", get(health_ingress))
        .route("/v1/catalog/gateway-services/{name}", get(gateway_services))
}

/// Rows of a read that can never find anything.
type Nothing = Vec<serde_json::Value>;

/// Consul's `ConnectServiceNodes`: no instance matched, so the index falls back to the
/// nodes and services tables.
async fn catalog_connect(
    State(st): State<ApiState>,
    Path(_name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    list(&st, &p, |s| (catalog_index(s), Nothing::new())).await
}

/// Consul's `CheckConnectServiceNodes`: as above, plus the checks table.
async fn health_connect(
    State(st): State<ApiState>,
    Path(_name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    list(&st, &p, |s| (health_index(s), Nothing::new())).await
}

/// Consul's `CheckIngressServiceNodes`: with no ingress gateway linked to the service its
/// index is that of the (empty) gateway-services mapping, 0, sent as 1.
async fn health_ingress(
    State(st): State<ApiState>,
    Path(_name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    list(&st, &p, |_| (0, Nothing::new())).await
}

/// Consul's `GatewayServices`: no gateway has linked services (ingress and terminating
/// gateway config entries are Connect), so the list is empty at index 0 (sent as 1).
async fn gateway_services(
    State(st): State<ApiState>,
    Path(_name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    list(&st, &p, |_| (0, Nothing::new())).await
}
