//! Remote catalogs that survive: a stale catalog or health read of another datacenter
//! that cannot be reached (timeout, no gateway or server of it answered, breaker open) is
//! answered from the copy of that datacenter's catalog this datacenter's gateways keep,
//! by the same handlers as a local read, marked stale: `X-Consul-KnownLeader: false`,
//! `X-Consul-LastContact` = the copy's age, `X-Consul-Index` = its index and
//! `X-Meridian-Copy: <dc>`. Reads without `?stale`, writes, an unknown datacenter and
//! other endpoints fail as they always did. Also serves the copy itself to the gateways
//! of other datacenters ([`CATALOG_COPY_PATH`]).
//!
//! ACLs: a read answered from a copy runs the same handlers with the caller's token
//! resolved here, so it is pruned as a local read is (`acl_filter_catalog.rs`).
//!
//! ```text
//!  GET /v1/health/service/web?dc=dc2&stale ─▶ relay (budget − COPY_MARGIN) ─ok─▶ dc2's answer
//!                                              └ unreachable ─▶ catalog_copy(dc2) ─▶ handler
//! ```

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use meridian_acl::{Need, Resource};
use meridian_rpc::gateway::CATALOG_COPY_PATH;
use tokio::time::Instant;
use tracing::debug;

use super::ApiState;
use super::acl_authz::Authz;
use super::error::ApiError;
use super::params::{CopyRead, Params};
use super::read::blocking_indexed;
use crate::catalog;
use crate::cluster::copies::COPY_MARGIN;
use crate::cluster::federation::CROSS_DC_TIMEOUT;
use crate::cluster::forward::{HttpRequest, ViaCluster};
use crate::rpc::RpcError;

/// The header naming the datacenter whose copy answered.
pub(crate) const ANSWERED_FROM_COPY: &str = "x-meridian-copy";

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route(CATALOG_COPY_PATH, get(serve))
}

/// `GET /v1/internal/federation/catalog?index=&wait=`: this datacenter's catalog copy
/// (`meridian_catalog` copy format) at its index, blocking while the index is the
/// caller's; `304` with no body when `wait` passed without a change.
///
/// The copy is the whole catalog, unfiltered. A gateway's request (over the forward RPC,
/// [`ViaCluster`]) is the cluster's own; any other caller needs read on every node and
/// every service (`NodeReadAll` and `ServiceReadAll`, as Consul's UI metrics proxy), else
/// 403 — it is no way around the pruning of the catalog reads. Client agents do not
/// forward this path and `?dc=` does not relay it, so a user cannot arrive over the RPC.
async fn serve(
    State(st): State<ApiState>,
    via: Option<Extension<ViaCluster>>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    for (resource, all) in [
        (Resource::Service, "all services"),
        (Resource::Node, "all nodes"),
    ] {
        if via.is_none() && !authz.authorizer.read_all(resource) {
            let denied = authz.authorizer.denied(resource, all, Need::Read);
            return Err(crate::acl::AclError::Denied(denied).into());
        }
    }
    let opts = p.read_opts()?;
    let server = st.router.server(None)?;
    // The state snapshot is an O(1) clone: the body is encoded only when it is sent.
    let (meta, state) = blocking_indexed(
        server,
        &opts,
        Some(catalog::State::copy_index),
        |s: &catalog::State| (s.copy_index(), s.clone()),
    )
    .await?;
    if opts.index != 0 && meta.index == opts.index {
        return Ok((StatusCode::NOT_MODIFIED, meta.headers()).into_response());
    }
    let body = tokio::task::spawn_blocking(move || state.encode_copy())
        .await
        .map_err(|e| ApiError::internal(format!("encoding the catalog copy: {e}")))?;
    let mut headers = meta.headers();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-meridian-catalog-copy"),
    );
    Ok((headers, body).into_response())
}

/// Whether a copy may answer this request: a stale GET of a catalog or health read.
pub(super) fn eligible(parts: &Parts) -> bool {
    if parts.method != Method::GET {
        return false;
    }
    let stale = Params::parse(parts.uri.query().unwrap_or("")).flag("stale");
    stale && copy_readable(parts.uri.path())
}

/// The catalog and health reads a copy answers.
fn copy_readable(path: &str) -> bool {
    const WHOLE: [&str; 2] = ["/v1/catalog/services", "/v1/catalog/nodes"];
    const ONE: [&str; 7] = [
        "/v1/catalog/service/",
        "/v1/catalog/node/",
        "/v1/catalog/node-services/",
        "/v1/health/service/",
        "/v1/health/checks/",
        "/v1/health/node/",
        "/v1/health/state/",
    ];
    WHOLE.contains(&path)
        || ONE.iter().any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
        })
}

/// Relays `req` to `dc`, keeping [`COPY_MARGIN`] of its budget; when `dc` cannot be
/// reached, answers from its catalog copy (`parts` and `body` are the request again, for
/// the handlers). An open breaker fails the relay at once, so the copy answers at once.
pub(super) async fn relay_or_copy(
    st: &ApiState,
    dc: &str,
    req: HttpRequest,
    parts: Parts,
    body: axum::body::Bytes,
    next: Next,
) -> Response {
    let started = Instant::now();
    let Some(federation) = st.router.federation() else {
        return ApiError::from(RpcError::NoPathToDatacenter(dc.to_string())).into_response();
    };
    let budget = req.budget(CROSS_DC_TIMEOUT);
    let unreachable = match federation
        .relay(dc, req, budget.saturating_sub(COPY_MARGIN))
        .await
    {
        Ok(resp) => return super::forward::into_response(resp),
        Err(e) if e.is_unreachable() => e,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let copy = match federation.catalog_copy(dc, COPY_MARGIN).await {
        Ok(c) => c,
        Err(e) => {
            debug!(datacenter = %dc, cause = %e, "no catalog copy to answer from");
            return ApiError::from(unreachable).into_response();
        }
    };
    federation.copies().served(dc);
    let mut req = Request::from_parts(parts, Body::from(body));
    req.extensions_mut()
        .insert(Arc::new(CopyRead { copy, started }));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(dc) {
        resp.headers_mut().insert(ANSWERED_FROM_COPY, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str) -> Parts {
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .expect("request");
        req.into_parts().0
    }

    #[test]
    fn only_stale_gets_of_catalog_and_health_reads_fall_back_to_a_copy() {
        for yes in [
            "/v1/health/service/web?dc=dc2&stale",
            "/v1/health/service/web?stale=&passing&tag=a",
            "/v1/catalog/services?stale",
            "/v1/catalog/nodes?stale&near=_agent",
            "/v1/catalog/node/n1?stale",
            "/v1/catalog/node-services/n1?stale",
            "/v1/health/checks/web?stale",
            "/v1/health/node/n1?stale",
            "/v1/health/state/critical?stale&index=5",
            "/v1/catalog/service/web?stale&filter=ServiceTags%20contains%20%22a%22",
        ] {
            assert!(eligible(&parts("GET", yes)), "{yes}");
        }
        for no in [
            ("GET", "/v1/health/service/web?dc=dc2"),
            ("GET", "/v1/health/service/web?stale=false"),
            ("GET", "/v1/kv/x?stale"),
            ("GET", "/v1/catalog/service/?stale"),
            ("GET", "/v1/catalog/service/a/b?stale"),
            ("GET", "/v1/catalog/datacenters?stale"),
            ("PUT", "/v1/catalog/register?stale"),
            ("GET", "/v1/query/q/execute?stale"),
        ] {
            assert!(!eligible(&parts(no.0, no.1)), "{no:?}");
        }
    }
}
