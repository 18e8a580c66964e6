//! The client agent's API: requests it cannot answer itself (catalog, health, KV, sessions,
//! txn, status, operator, coordinates) are sent whole to a server of its datacenter over
//! the forward RPC and the server's answer is returned as is — Consul's clients likewise
//! hold no catalog and forward every such RPC. `near=_agent` is rewritten to this agent's
//! node first, since `_agent` means the agent that received the request; for the `_agent`
//! stored in a prepared query, this agent's node also travels in a header.
//!
//! The caller's token travels with it (`?token=` in the URI, `X-Consul-Token`,
//! `Authorization`); a request that names none carries this agent's `acl.tokens.default`
//! when it has one, as Consul's agents fill it in before any RPC — so the server, or the
//! datacenter that answers, enforces what this agent would have (reference/acl.md §5.1).
//!
//! Identical blocking reads (same URI, index, token...) share one forwarded request
//! (`cluster/coalesce.rs`): 10,000 watchers of one service cost the server one watch.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::ApiError;
use crate::cluster::forward::{HttpRequest, HttpResponse};

/// Request headers a server needs to answer as the client would have.
const FORWARDED_HEADERS: &[&str] = &["content-type", "x-consul-token", "authorization"];

/// The fallback handler of a client agent's router.
pub(super) async fn to_server(
    State(st): State<ApiState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if uri.path() == meridian_rpc::gateway::CATALOG_COPY_PATH {
        // Servers trust this path over the RPC (it is their gateways'): never send a
        // user's request that way (`copy_read.rs`).
        return Err(ApiError::not_found(format!(
            "{} is served by servers to gateways only",
            uri.path()
        )));
    }
    if uri.path().starts_with("/v1/agent/") {
        return Err(ApiError::not_found(format!(
            "{} is not available on a client agent yet (agent local state is not built)",
            uri.path()
        )));
    }
    let remote = st
        .router
        .remote()
        .ok_or_else(|| ApiError::internal("no servers to forward to"))?;
    let req = client_request(&st, &method, &uri, &headers, &body);
    // A parked watcher keeps only what it needs to be answered.
    drop((uri, headers, body));
    Ok(into_response(remote.http_shared(req).await?))
}

/// The request as a client agent forwards it: `near=_agent` and a prepared query's own
/// `Near: "_agent"` (through a header) mean this agent.
pub(super) fn client_request(
    st: &ApiState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> HttpRequest {
    HttpRequest {
        method: method.to_string(),
        uri: rewrite_near(uri, &st.agent.node_name),
        headers: forwarded_headers(st, uri, headers)
            .chain([(
                super::query::AGENT_NODE_HEADER.to_string(),
                st.agent.node_name.clone(),
            )])
            .collect(),
        body: body.to_vec(),
        request_id: None,
    }
}

/// The request headers a server needs to answer as the receiving agent would have: the
/// caller's, plus this agent's default token when the request names no token.
pub(super) fn forwarded_headers(
    st: &ApiState,
    uri: &Uri,
    headers: &HeaderMap,
) -> impl Iterator<Item = (String, String)> {
    let query_token = uri.query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .last()
    });
    let default = st.acl.settings().tokens.default.clone();
    let (secret, source) = crate::acl::extract(query_token.as_deref(), headers, default.as_deref());
    let agent_default = (source == crate::acl::TokenSource::AgentDefault)
        .then(|| ("x-consul-token".to_string(), secret));
    FORWARDED_HEADERS
        .iter()
        .filter_map(|h| {
            let v = headers.get(*h)?.to_str().ok()?;
            Some((h.to_string(), v.to_string()))
        })
        .collect::<Vec<_>>()
        .into_iter()
        .chain(agent_default)
}

/// A forwarded request's answer as this agent's response.
pub(super) fn into_response(resp: HttpResponse) -> Response {
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HeaderMap::new();
    for (k, v) in &resp.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.as_str()), HeaderValue::from_str(v)) {
            out.append(k, v);
        }
    }
    (status, out, resp.body).into_response()
}

/// `near=_agent` → `near=<node>`; everything else is kept byte for byte.
fn rewrite_near(uri: &Uri, node: &str) -> String {
    let Some(query) = uri.query() else {
        return uri.to_string();
    };
    if !query.split('&').any(|kv| kv == "near=_agent") {
        return uri.to_string();
    }
    let encoded: String = form_urlencoded::byte_serialize(node.as_bytes()).collect();
    let query: Vec<String> = query
        .split('&')
        .map(|kv| {
            if kv == "near=_agent" {
                format!("near={encoded}")
            } else {
                kv.to_string()
            }
        })
        .collect();
    format!("{}?{}", uri.path(), query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_agent_names_the_client_node() {
        let uri: Uri = "/v1/catalog/service/web?near=_agent&tag=a%20b"
            .parse()
            .expect("uri");
        assert_eq!(
            rewrite_near(&uri, "client 1"),
            "/v1/catalog/service/web?near=client+1&tag=a%20b"
        );
        let uri: Uri = "/v1/kv/x?raw".parse().expect("uri");
        assert_eq!(rewrite_near(&uri, "c"), "/v1/kv/x?raw");
    }
}
