//! `/v1/snapshot` (GET saves, PUT restores, reference/consul.md §1.17): guarded as Consul
//! guards it, by `acl = "write"` (reference/acl.md §5.3, checklist 32), checked before
//! anything else so a token without it learns nothing. Meridian does not produce or restore
//! Consul's snapshot archive yet: with the right token the answer says so.

use axum::Router;
use axum::routing::get;
use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::error::ApiError;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/snapshot", get(snapshot).put(snapshot))
}

async fn snapshot(authz: Authz) -> Result<(), ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    Err(ApiError::not_found(
        "/v1/snapshot is not implemented by Meridian yet",
    ))
}
