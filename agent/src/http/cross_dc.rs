//! `?dc=` for every endpoint that takes it: a request naming another datacenter is sent
//! whole, before any handler sees it, to a server there, which answers it as a local one
//! (its headers — `X-Consul-Index`, `X-Consul-KnownLeader` — included). A server relays it
//! through its datacenter's WAN gateways; a client agent hands it to one of its servers,
//! and when none answers, sends a read to the gateways itself.
//! A local ACL token of this datacenter is not sent along (`acl_authz::strip_local_token`).
//! A write gets a request id here, so a retry through another gateway is applied once.
//! `?dc=any` and `?dc=*` are answered by a server across datacenters (`multi_dc.rs`).
//! A stale catalog or health read of a datacenter that cannot be reached is answered from
//! its catalog copy (`copy_read.rs`).
//!
//! ```text
//!   GET /v1/kv/x?dc=dc2 ──▶ route() ──server──▶ Federation::relay ──▶ gateways ──▶ dc2
//!                              └─────client──▶ forward::to_server ──▶ a dc1 server ──▶ ↑
//! ```

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::ApiError;
use crate::cluster::federation::CROSS_DC_TIMEOUT;
use crate::cluster::forward::HttpRequest;
use crate::rpc::RpcError;

/// Largest body relayed (as the API's own cap).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Whether `path` takes `?dc=` (agent endpoints, the federation's own lists and the
/// agent-local event list do not).
fn takes_dc(path: &str) -> bool {
    path.starts_with("/v1/")
        && !path.starts_with("/v1/agent/")
        && !path.starts_with("/v1/operator/keyring")
        // The federation's view is this datacenter's; a promotion may be sent elsewhere.
        && (!path.starts_with("/v1/operator/federation")
            || path == "/v1/operator/federation/primary")
        // The catalog copy is served to gateways over the RPC only (`copy_read.rs`).
        && path != meridian_rpc::gateway::CATALOG_COPY_PATH
        && !matches!(
            path,
            "/v1/catalog/datacenters" | "/v1/coordinate/datacenters" | "/v1/event/list"
        )
}

/// The `dc` a request names, when it is another datacenter's.
fn other_dc(local: &str, req: &Request) -> Option<String> {
    if !takes_dc(req.uri().path()) {
        return None;
    }
    let query = req.uri().query()?;
    let dc = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "dc")
        .map(|(_, v)| v.into_owned())?;
    (!dc.is_empty() && dc != local).then_some(dc)
}

/// The middleware: requests for another datacenter go there; `?dc=any` and `?dc=*` are
/// answered by a server (`multi_dc`); the rest go on.
pub(super) async fn route(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    let Some(dc) = other_dc(&st.agent.datacenter, &req) else {
        return next.run(req).await;
    };
    if let Some(scope) = super::multi_dc::Scope::of(&dc)
        && st.router.remote().is_none()
    {
        return super::multi_dc::answer(&st, scope, req, next).await;
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("reading the body: {e}")).into_response(),
    };
    if st.router.remote().is_some() {
        // A client agent: through a server (gateways directly for reads if none answers).
        let req =
            super::forward::client_request(&st, &parts.method, &parts.uri, &parts.headers, &body);
        let budget = req.budget(CROSS_DC_TIMEOUT);
        return match st.router.other_dc_from_client(&dc, req, budget).await {
            Ok(resp) => super::forward::into_response(resp),
            Err(e) => ApiError::from(e).into_response(),
        };
    }
    // A local token of this datacenter means nothing there: the request goes without it.
    let (headers, uri) = super::acl_authz::strip_local_token(&st, &parts)
        .unwrap_or_else(|| (parts.headers.clone(), parts.uri.to_string()));
    let mut req = HttpRequest {
        method: parts.method.to_string(),
        headers: super::forward::forwarded_headers(
            &st,
            &uri.parse().unwrap_or_else(|_| parts.uri.clone()),
            &headers,
        )
        .collect(),
        uri,
        body: body.to_vec(),
        request_id: None,
    };
    if !req.is_read() {
        req.request_id = Some(crate::server::write::relay_request_id().to_string());
    }
    if super::copy_read::eligible(&parts) {
        return super::copy_read::relay_or_copy(&st, &dc, req, parts, body, next).await;
    }
    relay(&st, &dc, req).await
}

/// Through this datacenter's gateways.
pub(super) async fn relay(st: &ApiState, dc: &str, req: HttpRequest) -> Response {
    let Some(federation) = st.router.federation() else {
        return ApiError::from(RpcError::NoPathToDatacenter(dc.to_string())).into_response();
    };
    let budget = req.budget(CROSS_DC_TIMEOUT);
    match federation.relay(dc, req, budget).await {
        Ok(resp) => super::forward::into_response(resp),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str) -> Request {
        Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .expect("request")
    }

    #[test]
    fn only_other_datacenters_on_endpoints_that_take_dc_are_relayed() {
        assert_eq!(
            other_dc("dc1", &req("/v1/kv/a?dc=dc2")).as_deref(),
            Some("dc2")
        );
        assert_eq!(
            other_dc("dc1", &req("/v1/health/service/web?passing&dc=dc%2D3")).as_deref(),
            Some("dc-3")
        );
        for local in [
            "/v1/kv/a?dc=dc1",
            "/v1/kv/a?dc=",
            "/v1/kv/a",
            "/v1/agent/self?dc=dc2",
        ] {
            assert_eq!(other_dc("dc1", &req(local)), None, "{local}");
        }
        assert_eq!(
            other_dc("dc1", &req("/v1/catalog/datacenters?dc=dc2")),
            None
        );
    }
}
