//! `PUT /v1/agent/token/<kind>` (reference/acl.md §3, Consul's `AgentToken`): replaces one
//! of the agent's own tokens at once, saving it when `acl.enable_token_persistence` is on
//! (`acl::AgentTokens`). Needs `agent:write` on this node; an unknown kind is 404
//! `Token "<kind>" is unknown`; the answer is 200 with an empty body. Setting `default` or
//! `agent` starts a full anti-entropy pass. The secret is never logged, only the kind.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use meridian_acl::{Need, Resource};
use serde::Deserialize;

use super::ApiState;
use super::acl_authz::Authz;
use super::body::decode;
use super::error::ApiError;
use crate::acl::TokenKind;

/// `{"Token": "..."}` (keys folded).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TokenBody {
    token: String,
}

/// `PUT /v1/agent/token/:kind`.
pub(super) async fn set_token(
    State(st): State<ApiState>,
    authz: Authz,
    Path(kind): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Agent, &st.agent.node_name, Need::Write)?;
    let b: TokenBody = decode(&body, false)?;
    let Some(which) = TokenKind::parse(&kind) else {
        return Err(ApiError::not_found(format!("Token {kind:?} is unknown")));
    };
    st.acl
        .tokens()
        .set(which, b.token)
        .await
        .map_err(|e| ApiError::internal(format!("failed to persist tokens - {e}")))?;
    if matches!(which, TokenKind::Default | TokenKind::Agent) {
        st.local.trigger_full_sync();
    }
    tracing::info!(token = %kind, "Updated agent's ACL token");
    Ok(().into_response())
}
