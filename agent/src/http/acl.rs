//! `/v1/acl/*` (reference/acl.md §3): with ACLs off, Consul's 401 `ACL support disabled`
//! for every ACL path and `PUT /v1/agent/token/:type`; with ACLs on, bootstrap, replication
//! and the servers' internal resolve endpoint here, tokens in `acl_token.rs`, policies
//! and roles in `acl_policy.rs`, templated policies in `acl_templated.rs`, replication in
//! `acl_replicate.rs`. A client agent forwards `/v1/acl/*` to a server
//! (its router's fallback) and answers only the 401 itself.
//!
//! Writes go through raft (`acl_write.rs`).

use std::path::Path;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::{any, get, put};
use meridian_acl::GLOBAL_MANAGEMENT_ID;
use serde::Deserialize;
use serde_json::json;

use super::ApiState;
use super::acl_write::{new_id, new_secret, propose, server};
use super::error::ApiError;
use super::read::json_body;
use crate::acl::{ACL_DISABLED, AclError, BOOTSTRAP_RESET_FILE, RESOLVE_DC_PARAM, resolution_for};
use crate::catalog::acl::{AclLink, AclToken, AclWrite};
use crate::rpc::Consistency;
use crate::server::acl_replication::REPLICATE_PATH;

/// The routes of a server agent (`server`) or a client agent.
pub(super) fn routes(enabled: bool, server: bool) -> Router<ApiState> {
    if !enabled {
        return Router::new()
            .route("/v1/agent/token/{*kind}", put(disabled))
            .route("/v1/acl/{*rest}", any(disabled));
    }
    let agent_token = Router::new().route(
        "/v1/agent/token/{*kind}",
        put(super::agent_token::set_token),
    );
    if !server {
        return agent_token;
    }
    agent_token
        .route("/v1/acl/create", any(legacy))
        .route("/v1/acl/update", any(legacy))
        .route("/v1/acl/list", any(legacy))
        .route("/v1/acl/destroy/{*id}", any(legacy))
        .route("/v1/acl/info/{*id}", any(legacy))
        .route("/v1/acl/clone/{*id}", any(legacy))
        .route("/v1/acl/rules/translate", any(legacy))
        .route("/v1/acl/rules/translate/{*id}", any(legacy))
        .route("/v1/acl/bootstrap", put(bootstrap))
        .route("/v1/acl/replication", get(super::acl_replicate::status))
        .route(
            &format!("{REPLICATE_PATH}{{kind}}"),
            get(super::acl_replicate::list),
        )
        .route(crate::acl::RESOLVE_PATH, get(resolve))
        .merge(super::acl_token::routes())
        .merge(super::acl_policy::routes())
        .merge(super::acl_templated::routes())
}

async fn disabled() -> ApiError {
    ApiError::unauthorized(ACL_DISABLED)
}

/// The pre-1.4 ACL API, removed in Consul 1.11: 410 naming the path.
async fn legacy(uri: Uri) -> ApiError {
    ApiError::gone(format!(
        "Endpoint {} for the legacy ACL system was removed in Consul 1.11.",
        uri.path()
    ))
}

// === bootstrap ===

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BootstrapBody {
    bootstrapsecret: String,
}

/// `PUT /v1/acl/bootstrap`: on the primary's leader; a second bootstrap needs the reset
/// file (`<data_dir>/acl-bootstrap-reset` holding the index the refusal named).
async fn bootstrap(
    State(st): State<ApiState>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !st.acl.settings().is_primary() {
        return Err(ApiError::unauthorized(ACL_DISABLED));
    }
    let srv = server(&st)?;
    if let Some(resp) = super::autopilot::on_leader(srv, &method, &uri, &body).await? {
        return Ok(resp);
    }
    let req: BootstrapBody = super::body::decode(&body, true)?;
    let view = srv.read(Consistency::Default).await?;
    let reset_file = st
        .acl
        .settings()
        .data_dir
        .as_deref()
        .map(|d| d.join(BOOTSTRAP_RESET_FILE));
    let reset_index = match view.state.acl_bootstrap_index() {
        None => None,
        Some(done) => Some(reset_index(reset_file.as_deref(), done).await?),
    };
    let secret = if req.bootstrapsecret.is_empty() {
        new_secret()
    } else {
        req.bootstrapsecret
    };
    let token = AclToken {
        accessor_id: new_id(),
        secret_id: secret,
        description: "Bootstrap Token (Global Management)".into(),
        policies: vec![AclLink {
            id: GLOBAL_MANAGEMENT_ID.into(),
            name: String::new(),
        }],
        ..AclToken::default()
    };
    let accessor = token.accessor_id.clone();
    propose(
        &st,
        AclWrite::Bootstrap {
            token: Box::new(token),
            reset_index,
        },
    )
    .await?;
    if let (Some(_), Some(file)) = (reset_index, &reset_file)
        && let Err(e) = tokio::fs::remove_file(file).await
    {
        tracing::warn!(file = %file.display(), cause = %e, "could not remove the ACL bootstrap reset file");
    }
    let view = srv.read(Consistency::Stale).await?;
    let t = view
        .state
        .acl_token(&accessor)
        .ok_or_else(|| ApiError::internal("bootstrap token missing after bootstrap"))?;
    let mut out = super::acl_dto::token(&view.state, t, true);
    out["ID"] = json!(t.secret_id);
    Ok(json_body(&out))
}

/// The reset index the reset file allows, or Consul's refusal.
async fn reset_index(file: Option<&Path>, done: u64) -> Result<u64, ApiError> {
    let no_more = || {
        ApiError::forbidden(format!(
            "Permission denied: ACL bootstrap no longer allowed (reset index: {done})"
        ))
    };
    let text = match file {
        Some(f) => tokio::fs::read_to_string(f).await.ok(),
        None => None,
    };
    let Some(text) = text else {
        return Err(no_more());
    };
    let specified: u64 = text.trim().parse().unwrap_or(0);
    match specified {
        0 => Err(no_more()),
        n if n == done => Ok(n),
        n => Err(ApiError::internal(format!(
            "Invalid bootstrap reset index (specified {n}, reset index: {done})"
        ))),
    }
}

// === internal resolution ===

/// `GET /v1/internal/acl/resolve` (Meridian's, for client agents): the presented token's
/// accessor, policy rules and identities in this datacenter; Consul's 403/500 texts when
/// it does not resolve. The token is the one in the request (never this agent's default).
async fn resolve(State(st): State<ApiState>, parts: Parts) -> Result<Response, ApiError> {
    let (secret, _) = crate::acl::extract(
        super::acl_authz::query_token(&parts).as_deref(),
        &parts.headers,
        None,
    );
    let secret = if secret.is_empty() {
        "anonymous"
    } else {
        secret.as_str()
    };
    if ["allow", "deny", "manage"].contains(&secret) {
        return Err(AclError::RootName.into());
    }
    let settings = st.acl.settings();
    if !st.acl.tokens_here() {
        // A secondary without token replication: the primary resolves (§6.4).
        let dc: String = form_urlencoded::byte_serialize(settings.datacenter.as_bytes()).collect();
        let req = crate::cluster::forward::HttpRequest {
            method: "GET".into(),
            uri: format!("{}?{RESOLVE_DC_PARAM}={dc}", crate::acl::RESOLVE_PATH),
            headers: vec![("x-consul-token".into(), secret.to_string())],
            body: Vec::new(),
            request_id: None,
        };
        return Ok(super::cross_dc::relay(&st, &settings.primary_datacenter(), req).await);
    }
    let view = server(&st)?.read(Consistency::Stale).await?;
    let Some(token) = view
        .state
        .acl_token_by_secret(secret, crate::server::unix_ms())
    else {
        let bootstrapped = view.state.acl_bootstrap_index().is_some();
        return Err(AclError::NotFound { bootstrapped }.into());
    };
    let dc = parts
        .uri
        .query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == RESOLVE_DC_PARAM)
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_else(|| st.acl.settings().datacenter.clone());
    Ok(json_body(&resolution_for(&view.state, token, &dc)))
}
