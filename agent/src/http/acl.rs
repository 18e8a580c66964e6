//! ACL endpoints while ACLs are off (Meridian has none yet): `/v1/acl/*` and
//! `PUT /v1/agent/token/:type` answer as Consul's do with ACLs disabled, a 401 with body
//! `ACL support disabled` (`agent_endpoint.go` `AgentToken`, `acl_endpoint.go`
//! `checkACLDisabled`). Clients map that to "ACLs disabled" (py-consul's `ACLDisabled`)
//! instead of failing on a 404.

use axum::Router;
use axum::routing::{any, put};

use super::ApiState;
use super::error::ApiError;

/// Consul's text; clients match on it.
const ACL_DISABLED: &str = "ACL support disabled";

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/agent/token/{*kind}", put(disabled))
        .route("/v1/acl/{*rest}", any(disabled))
}

async fn disabled() -> ApiError {
    ApiError::unauthorized(ACL_DISABLED)
}
