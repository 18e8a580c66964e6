//! Where an ACL request is answered in a federation (reference/acl.md §6.3, §6.5).
//!
//! In a secondary datacenter (the ACL primary in effect is another), a server sends to the
//! primary, through the WAN gateways and with the caller's token: policy and role writes,
//! global token writes (create without `Local`, and update, clone or delete of a token that
//! is not a local one here), and — when this datacenter holds no tokens (no token
//! replication or no replication token) — every token request. Objects written there
//! appear here once replicated. A local token is written here, which needs tokens here,
//! else Consul's `Local tokens are disabled` (500).
//!
//! On a request for another datacenter (`?dc=`), a local token of this datacenter is
//! stripped (`acl_authz::strip_local_token`): it means nothing there, so the request runs there as
//! that datacenter's anonymous token (Consul 1.16+, #21863).

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::ApiError;
use crate::cluster::forward::HttpRequest;

/// Largest body read here (as the API's own cap).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Here,
    Primary,
    LocalTokensDisabled,
}

/// The middleware of a server's router.
pub(super) async fn route(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    let settings = st.acl.settings();
    if !settings.enabled || settings.is_primary() || !req.uri().path().starts_with("/v1/acl/") {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request(format!("reading the body: {e}")).into_response(),
    };
    let local_token = |id: &str| {
        st.router
            .server(None)
            .ok()
            .and_then(|s| s.raft().state().acl_token(id).map(|t| t.local))
            .unwrap_or(false)
    };
    match decide(
        &parts.method,
        parts.uri.path(),
        &body,
        st.acl.tokens_here(),
        local_token,
    ) {
        Route::Here => next.run(Request::from_parts(parts, body.into())).await,
        Route::LocalTokensDisabled => {
            ApiError::internal("Local tokens are disabled").into_response()
        }
        Route::Primary => {
            let mut req = HttpRequest {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                headers: super::forward::forwarded_headers(&st, &parts.uri, &parts.headers)
                    .collect(),
                body: body.to_vec(),
                request_id: None,
            };
            if !req.is_read() {
                req.request_id = Some(crate::server::write::relay_request_id().to_string());
            }
            super::cross_dc::relay(&st, &settings.primary_datacenter(), req).await
        }
    }
}

/// The routing rule of the module docs; `local_token(id)`: whether the token with this
/// AccessorID is a local one here.
fn decide(
    method: &Method,
    path: &str,
    body: &[u8],
    tokens_here: bool,
    local_token: impl Fn(&str) -> bool,
) -> Route {
    let write = !matches!(*method, Method::GET | Method::HEAD);
    let Some(rest) = path.strip_prefix("/v1/acl/") else {
        return Route::Here;
    };
    let object = rest.split('/').next().unwrap_or_default();
    match object {
        "policy" | "role" if write => Route::Primary,
        "token" | "tokens" => {
            let create = write && rest == "token";
            if create && asks_local(body) {
                return if tokens_here {
                    Route::Here
                } else {
                    Route::LocalTokensDisabled
                };
            }
            if !tokens_here {
                return Route::Primary;
            }
            if !write {
                return Route::Here;
            }
            match rest.split('/').nth(1) {
                Some(id) if id != "self" && local_token(id) => Route::Here,
                _ => Route::Primary,
            }
        }
        _ => Route::Here,
    }
}

/// Whether a token body says `"Local": true` (field names match case-insensitively, as
/// Consul's decoder does).
fn asks_local(body: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(body) else {
        return false;
    };
    m.iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("local") && v.as_bool() == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(method: Method, path: &str, body: &str, here: bool) -> Route {
        decide(&method, path, body.as_bytes(), here, |id| id == "local-id")
    }

    #[test]
    fn writes_of_global_objects_go_to_the_primary_and_local_tokens_stay() {
        use Route::*;
        assert_eq!(d(Method::PUT, "/v1/acl/policy", "{}", true), Primary);
        assert_eq!(d(Method::DELETE, "/v1/acl/role/x", "", true), Primary);
        assert_eq!(d(Method::GET, "/v1/acl/policies", "", false), Here);
        assert_eq!(d(Method::PUT, "/v1/acl/token", "{}", true), Primary);
        assert_eq!(
            d(Method::PUT, "/v1/acl/token", r#"{"local":true}"#, true),
            Here
        );
        assert_eq!(
            d(Method::PUT, "/v1/acl/token", r#"{"Local":true}"#, false),
            LocalTokensDisabled
        );
        assert_eq!(d(Method::PUT, "/v1/acl/token/local-id", "{}", true), Here);
        assert_eq!(d(Method::DELETE, "/v1/acl/token/other", "", true), Primary);
        assert_eq!(
            d(Method::PUT, "/v1/acl/token/local-id/clone", "", true),
            Here
        );
        assert_eq!(d(Method::GET, "/v1/acl/token/self", "", true), Here);
        assert_eq!(d(Method::GET, "/v1/acl/token/self", "", false), Primary);
        assert_eq!(d(Method::GET, "/v1/acl/tokens", "", false), Primary);
        assert_eq!(d(Method::GET, "/v1/acl/replication", "", false), Here);
    }
}
