//! The one-line seam every endpoint uses for ACLs: the [`Authz`] extractor resolves the
//! request's token once (reference/acl.md §5.1–5.2, §5.7), and
//! `authz.check(Resource::Key, name, Need::Read)?` answers Consul's 403 text. Also where
//! [`AclError`] becomes an HTTP status (§5.5), and the `X-Consul-Default-ACL-Policy` header
//! every response carries (§1).
//!
//! Every endpoint family (§5.3) takes an `Authz` argument and calls `check`/`allowed`; lists
//! set `X-Consul-Results-Filtered-By-ACLs` when [`Authz::token_given`] and something was
//! pruned. Also here: dropping a local token from a request bound for another datacenter
//! (§6.5, [`strip_local_token`]).

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use meridian_acl::{Authorizer, Need, Resource};

use super::ApiState;
use super::error::ApiError;
use crate::acl::{AclError, TokenSource};

/// A request's resolved token.
#[derive(Clone)]
pub(crate) struct Authz {
    /// What the token may do.
    pub authorizer: Arc<Authorizer>,
    /// The secret presented (`""`: anonymous).
    pub secret: String,
    /// Where it came from.
    pub source: TokenSource,
}

impl Authz {
    /// `Ok` if the token may, else Consul's 403 `Permission denied: ...` text.
    pub(crate) fn check(&self, resource: Resource, name: &str, need: Need) -> Result<(), ApiError> {
        self.authorizer
            .check(resource, name, need)
            .map_err(|d| AclError::Denied(d).into())
    }

    /// Whether the token may (for filtering lists).
    pub(crate) fn allowed(&self, resource: Resource, name: &str, need: Need) -> bool {
        self.authorizer.allowed(resource, name, need)
    }

    /// Whether a non-empty token string was in play (the request's or the agent's default):
    /// only then does a pruned list say `X-Consul-Results-Filtered-By-ACLs: true` (§5.4).
    pub(crate) fn token_given(&self) -> bool {
        self.source != TokenSource::Anonymous
    }
}

/// The `?token=` parameter of a request, if any.
pub(super) fn query_token(parts: &Parts) -> Option<String> {
    let q = parts.uri.query()?;
    form_urlencoded::parse(q.as_bytes())
        .filter(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .last()
}

/// The secret a request presents (with the agent's default token applied).
pub(super) fn request_secret(st: &ApiState, parts: &Parts) -> (String, TokenSource) {
    let default = st.acl.tokens().default_token();
    crate::acl::extract(
        query_token(parts).as_deref(),
        &parts.headers,
        default.as_deref(),
    )
}

impl FromRequestParts<ApiState> for Authz {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &ApiState) -> Result<Self, ApiError> {
        let (secret, source) = request_secret(st, parts);
        let authorizer = st.acl.resolve(&st.router, &secret).await?;
        Ok(Authz {
            authorizer,
            secret,
            source,
        })
    }
}

impl From<AclError> for ApiError {
    fn from(e: AclError) -> Self {
        match e {
            AclError::Disabled => ApiError::unauthorized(e.to_string()),
            AclError::NotFound { .. } | AclError::Denied(_) | AclError::Refused(_) => {
                ApiError::forbidden(e.to_string())
            }
            AclError::RootName => ApiError::internal(e.to_string()),
            AclError::Rpc(rpc) => rpc.into(),
        }
    }
}

/// Adds `X-Consul-Default-ACL-Policy` to every response, ACLs on or off (a forwarded
/// answer's copy is replaced by this agent's).
pub(super) async fn default_policy_header(
    State(st): State<ApiState>,
    mut resp: Response,
) -> Response {
    let policy = st.acl.settings().default_policy.as_str();
    resp.headers_mut().insert(
        "X-Consul-Default-ACL-Policy",
        HeaderValue::from_static(policy),
    );
    resp
}

/// The caller's own token, if its secret names one (for `token/self` and the
/// "cannot delete your own token" rule).
pub(super) fn caller_token<'s>(
    st: &ApiState,
    parts: &Parts,
    state: &'s crate::catalog::State,
) -> Option<&'s crate::catalog::acl::AclToken> {
    let (secret, _) = request_secret(st, parts);
    let secret = if secret.is_empty() {
        "anonymous"
    } else {
        secret.as_str()
    };
    state.acl_token_by_secret(secret, crate::server::unix_ms())
}

/// A request leaving for another datacenter, without its token when that token is a local
/// one here: the request's headers (minus `X-Consul-Token` and `Authorization`) and its URI
/// (minus `?token=`). `None` when the token may travel.
pub(super) fn strip_local_token(st: &ApiState, parts: &Parts) -> Option<(HeaderMap, String)> {
    if !st.acl.settings().enabled {
        return None;
    }
    let (secret, _) = crate::acl::extract(query_token(parts).as_deref(), &parts.headers, None);
    if secret.is_empty() {
        return None;
    }
    let server = st.router.server(None).ok()?;
    let state = server.raft().state();
    let token = state.acl_token_by_secret(&secret, crate::server::unix_ms())?;
    if !token.local {
        return None;
    }
    let mut headers = parts.headers.clone();
    headers.remove("x-consul-token");
    headers.remove("authorization");
    let uri = match parts.uri.query() {
        Some(q) => {
            let kept: Vec<&str> = q
                .split('&')
                .filter(|kv| kv.split('=').next() != Some("token"))
                .collect();
            if kept.is_empty() {
                parts.uri.path().to_string()
            } else {
                format!("{}?{}", parts.uri.path(), kept.join("&"))
            }
        }
        None => parts.uri.to_string(),
    };
    Some((headers, uri))
}
