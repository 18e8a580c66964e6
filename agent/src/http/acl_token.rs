//! `/v1/acl/token*` and `/v1/acl/tokens` (reference/acl.md §3, §2.1–2.2): create, read
//! (redacted without `acl:write`), self, update (omitted SecretID, Local and expiry keep
//! their values; Description and links are replaced), clone, delete and list with the
//! `policy`/`role`/`authmethod` filters. Reads are blocking queries on the tokens table.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, put};
use meridian_acl::{Need, Resource};
use serde::Deserialize;

use super::ApiState;
use super::acl_authz::{Authz, caller_token};
use super::acl_dto::{self, TokenBody};
use super::acl_templated::check;
use super::acl_write::{new_id, new_secret, propose, server};
use super::error::ApiError;
use super::params::Params;
use super::read::{blocking, json_body};
use crate::catalog::State as Catalog;
use crate::catalog::acl::{AclToken, AclWrite};
use crate::rpc::Consistency;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/acl/token", put(create))
        .route("/v1/acl/token/self", get(read_self))
        .route("/v1/acl/token/{id}", get(read).put(update).delete(delete))
        .route("/v1/acl/token/{id}/clone", put(clone))
        .route("/v1/acl/tokens", get(list))
}

fn now_ms() -> u64 {
    crate::server::unix_ms()
}

/// A live (unexpired) token by AccessorID.
fn live<'s>(state: &'s Catalog, id: &str) -> Option<&'s AclToken> {
    state.acl_token(id).filter(|t| !t.expired(now_ms()))
}

/// The token as stored after a write, shown with its secret (the writer holds acl:write).
async fn written(st: &ApiState, id: &str) -> Result<Response, ApiError> {
    let view = server(st)?.read(Consistency::Stale).await?;
    let t = view
        .state
        .acl_token(id)
        .ok_or_else(|| ApiError::internal(format!("token {id} missing after its write")))?;
    Ok(json_body(&acl_dto::token(&view.state, t, true)))
}

/// The expiry a new token asks for: `ExpirationTTL` or `ExpirationTime`, not both.
fn expiration(body: &TokenBody, now: u64) -> Result<Option<u64>, ApiError> {
    match (&body.expirationttl, &body.expirationtime) {
        (Some(ttl), Some(_)) if !ttl.0.is_zero() => Err(ApiError::internal(
            "Expiration TTL and Expiration Time cannot both be set",
        )),
        (Some(ttl), _) if !ttl.0.is_zero() => {
            if ttl.0 < std::time::Duration::from_secs(60) {
                return Err(ApiError::internal(format!(
                    "ExpirationTime cannot be less than 1m0s in the future (was {})",
                    meridian_config::duration::format_go_duration(ttl.0)
                )));
            }
            Ok(Some(now + ttl.0.as_millis() as u64))
        }
        (_, Some(t)) if !t.is_empty() => humantime::parse_rfc3339_weak(t)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| Some(d.as_millis() as u64))
            .ok_or_else(|| {
                ApiError::bad_request(format!("Token decoding failed: bad ExpirationTime {t:?}"))
            }),
        _ => Ok(None),
    }
}

async fn create(
    State(st): State<ApiState>,
    authz: Authz,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    let mut body: TokenBody = super::body::decode(&body, false)?;
    let templated_policies =
        acl_dto::templated_policies(std::mem::take(&mut body.templatedpolicies));
    let now = now_ms();
    let expiration_ms = expiration(&body, now)?;
    let accessor = if body.accessorid.is_empty() {
        new_id()
    } else {
        body.accessorid.clone()
    };
    let secret = if body.secretid.is_empty() {
        new_secret()
    } else {
        body.secretid.clone()
    };
    let description = body.description.clone().unwrap_or_default();
    let local = body.local.unwrap_or(false);
    check(&templated_policies, local)?;
    let (policies, roles, service_identities, node_identities) = body.links();
    let token = AclToken {
        accessor_id: accessor.clone(),
        secret_id: secret,
        description,
        policies,
        roles,
        service_identities,
        node_identities,
        templated_policies,
        local,
        expiration_ms,
        create_ms: now,
        ..AclToken::default()
    };
    propose(
        &st,
        AclWrite::TokenSet {
            token: Box::new(token),
            create: true,
        },
    )
    .await?;
    written(&st, &accessor).await
}

async fn read(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Read)?;
    let reveal = authz.allowed(Resource::Acl, "", Need::Write);
    let opts = p.read_opts()?;
    let settings = st.acl.settings();
    let expanded = p.flag("expanded").then(|| acl_dto::Expansion {
        default_policy: settings.default_policy.as_str(),
        down_policy: settings.down_policy.as_str(),
        node: &settings.node_name,
    });
    let (meta, token) = blocking(server(&st)?, &opts, |s| {
        let t = live(s, &id).map(|t| match &expanded {
            Some(x) => acl_dto::token_expanded(s, t, reveal, x),
            None => acl_dto::token(s, t, reveal),
        });
        (s.table_indexes().acl_tokens, t)
    })
    .await?;
    match token {
        Some(t) => Ok(meta.json(&t)),
        // 403, as Consul's "ACL not found" error is (py-consul expects token.read of a
        // deleted or malformed accessor to raise, not to return None).
        None => Err(ApiError::forbidden(
            "Requested token does not exist: ACL not found",
        )),
    }
}

/// `GET /v1/acl/token/self`: needs no permission, only a token that exists.
async fn read_self(State(st): State<ApiState>, parts: Parts) -> Result<Response, ApiError> {
    let view = server(&st)?.read(Consistency::Default).await?;
    match caller_token(&st, &parts, &view.state) {
        Some(t) => Ok(json_body(&acl_dto::token(&view.state, t, true))),
        None => Err(ApiError::not_found("Supplied token does not exist")),
    }
}

async fn update(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    let mut body: TokenBody = super::body::decode(&body, false)?;
    let templated_policies =
        acl_dto::templated_policies(std::mem::take(&mut body.templatedpolicies));
    if !body.accessorid.is_empty() && body.accessorid != id {
        return Err(ApiError::bad_request(
            "Token Accessor ID in URL and payload do not match",
        ));
    }
    let view = server(&st)?.read(Consistency::Default).await?;
    let Some(old) = view.state.acl_token(&id).cloned() else {
        return Err(ApiError::internal(format!("Cannot find token {id:?}")));
    };
    let expiration_ms = match expiration(&body, now_ms()) {
        Ok(None) => old.expiration_ms,
        Ok(Some(_)) => {
            return Err(ApiError::internal(format!(
                "Cannot change expiration time of {id}"
            )));
        }
        Err(e) => return Err(e),
    };
    let secret = if body.secretid.is_empty() {
        old.secret_id.clone()
    } else {
        body.secretid.clone()
    };
    let local = body.local.unwrap_or(old.local);
    check(&templated_policies, local)?;
    let description = body.description.clone().unwrap_or_default();
    let (policies, roles, service_identities, node_identities) = body.links();
    let token = AclToken {
        accessor_id: id.clone(),
        secret_id: secret,
        description,
        policies,
        roles,
        service_identities,
        node_identities,
        templated_policies,
        local,
        expiration_ms,
        ..old
    };
    propose(
        &st,
        AclWrite::TokenSet {
            token: Box::new(token),
            create: false,
        },
    )
    .await?;
    written(&st, &id).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CloneBody {
    description: String,
}

async fn clone(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    let body: CloneBody = super::body::decode(&body, true)?;
    let view = server(&st)?.read(Consistency::Default).await?;
    let Some(old) = live(&view.state, &id).cloned() else {
        return Err(ApiError::internal(format!("Cannot find token {id:?}")));
    };
    let accessor = new_id();
    let description = if body.description.is_empty() {
        old.description.clone()
    } else {
        body.description
    };
    let token = AclToken {
        accessor_id: accessor.clone(),
        secret_id: new_secret(),
        description,
        create_ms: now_ms(),
        ..old
    };
    propose(
        &st,
        AclWrite::TokenSet {
            token: Box::new(token),
            create: true,
        },
    )
    .await?;
    written(&st, &accessor).await
}

async fn delete(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    let view = server(&st)?.read(Consistency::Default).await?;
    let secret = if authz.secret.is_empty() {
        "anonymous"
    } else {
        authz.secret.as_str()
    };
    if view
        .state
        .acl_token_by_secret(secret, now_ms())
        .is_some_and(|t| t.accessor_id == id)
    {
        return Err(ApiError::internal(
            "Deletion of the request's authorization token is not permitted",
        ));
    }
    propose(&st, AclWrite::TokenDelete { accessor_id: id }).await?;
    Ok(json_body(&true))
}

async fn list(State(st): State<ApiState>, authz: Authz, p: Params) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Read)?;
    let reveal = authz.allowed(Resource::Acl, "", Need::Write);
    let opts = p.read_opts()?;
    let policy = p.non_empty("policy").map(str::to_string);
    let role = p.non_empty("role").map(str::to_string);
    // Meridian has no auth methods: no token was made by one.
    let by_method = p.non_empty("authmethod").is_some();
    let now = now_ms();
    let (meta, rows) = blocking(server(&st)?, &opts, |s| {
        let rows: Vec<serde_json::Value> = s
            .acl_tokens()
            .filter(|t| !t.expired(now) && !by_method)
            .filter(|t| {
                policy
                    .as_ref()
                    .is_none_or(|p| t.policies.iter().any(|l| &l.id == p))
            })
            .filter(|t| {
                role.as_ref()
                    .is_none_or(|r| t.roles.iter().any(|l| &l.id == r))
            })
            .map(|t| acl_dto::token(s, t, reveal))
            .collect();
        (s.table_indexes().acl_tokens, rows)
    })
    .await?;
    Ok(meta.json(&rows))
}
