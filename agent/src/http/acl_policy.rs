//! `/v1/acl/policy*`, `/v1/acl/policies`, `/v1/acl/role*` and `/v1/acl/roles`
//! (reference/acl.md §3, §2.2): create (the server picks the ID), read by ID or name,
//! update, delete (`true`; a missing one is 404) and list; `acl:read` to read,
//! `acl:write` to write. Reads are blocking queries on their table.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, put};
use meridian_acl::{Need, Resource};
use serde_json::Value;

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_dto::{self, PolicyBody, RoleBody};
use super::acl_templated::check;
use super::acl_write::{new_id, propose, server};
use super::error::ApiError;
use super::params::Params;
use super::read::{blocking, json_body};
use crate::catalog::State as Catalog;
use crate::catalog::acl::{AclPolicy, AclWrite};
use crate::rpc::Consistency;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/acl/policy", put(policy_create))
        .route("/v1/acl/policy/name/{*name}", get(policy_by_name))
        .route(
            "/v1/acl/policy/{id}",
            get(policy_read).put(policy_update).delete(policy_delete),
        )
        .route("/v1/acl/policies", get(policy_list))
        .route("/v1/acl/role", put(role_create))
        .route("/v1/acl/role/name/{*name}", get(role_by_name))
        .route(
            "/v1/acl/role/{id}",
            get(role_read).put(role_update).delete(role_delete),
        )
        .route("/v1/acl/roles", get(role_list))
}

/// A blocking read of one object of a table; `None` is Consul's 404 for `kind`.
async fn read_one(
    st: &ApiState,
    authz: &Authz,
    p: &Params,
    kind: &str,
    query: impl Fn(&Catalog) -> (u64, Option<Value>),
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Read)?;
    let opts = p.read_opts()?;
    let (meta, found) = blocking(server(st)?, &opts, query).await?;
    let text = format!("Requested {kind} does not exist: ACL not found");
    match found {
        Some(v) => Ok(meta.json(&v)),
        None => Err(ApiError::not_found(text)),
    }
}

// === policies ===

/// Proposes `w` if `exists` holds in the leader's state, else answers `missing`: the
/// update and delete of a policy or role (the token's own have extra rules).
async fn write_existing(
    st: &ApiState,
    exists: impl Fn(&Catalog) -> bool,
    missing: ApiError,
    w: AclWrite,
) -> Result<(), ApiError> {
    let view = server(st)?.read(Consistency::Default).await?;
    if !exists(&view.state) {
        return Err(missing);
    }
    propose(st, w).await.map(|_| ())
}

fn policy_of(body: PolicyBody, id: String) -> AclPolicy {
    AclPolicy {
        id,
        name: body.name,
        description: body.description,
        rules: body.rules,
        datacenters: body.datacenters,
        create_index: 0,
        modify_index: 0,
    }
}

async fn policy_written(st: &ApiState, id: &str) -> Result<Response, ApiError> {
    let view = server(st)?.read(Consistency::Stale).await?;
    let p = view
        .state
        .acl_policy(id)
        .ok_or_else(|| ApiError::internal(format!("policy {id} missing after its write")))?;
    Ok(json_body(&acl_dto::policy(p)))
}

async fn policy_create(
    State(st): State<ApiState>,
    authz: Authz,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    let body: PolicyBody = super::body::decode(&body, false)?;
    if !body.id.is_empty() {
        return Err(ApiError::bad_request(
            "Cannot specify the ID when creating a new policy",
        ));
    }
    let id = new_id();
    propose(
        &st,
        AclWrite::PolicySet(Box::new(policy_of(body, id.clone()))),
    )
    .await?;
    policy_written(&st, &id).await
}

async fn policy_update(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    let body: PolicyBody = super::body::decode(&body, false)?;
    if !body.id.is_empty() && body.id != id {
        return Err(ApiError::bad_request(
            "Policy ID in URL and payload do not match",
        ));
    }
    write_existing(
        &st,
        |s| s.acl_policy(&id).is_some(),
        ApiError::internal(format!("cannot find policy {id}")),
        AclWrite::PolicySet(Box::new(policy_of(body, id.clone()))),
    )
    .await?;
    policy_written(&st, &id).await
}

async fn policy_read(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    // Consul looks policies up in a UUID index, which refuses other strings with an error
    // (500) before "not found" (404) can be said; py-consul's suite checks both.
    if uuid::Uuid::try_parse(&id).is_err() {
        return Err(ApiError::internal(
            "failed acl policy lookup: index error: UUID must be 36 characters",
        ));
    }
    read_one(&st, &authz, &p, "policy", |s| {
        let found = s.acl_policy(&id).map(acl_dto::policy);
        (s.table_indexes().acl_policies, found)
    })
    .await
}

async fn policy_by_name(
    State(st): State<ApiState>,
    authz: Authz,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    read_one(&st, &authz, &p, "policy", |s| {
        let found = s.acl_policy_by_name(&name).map(acl_dto::policy);
        (s.table_indexes().acl_policies, found)
    })
    .await
}

async fn policy_delete(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    write_existing(
        &st,
        |s| s.acl_policy(&id).is_some(),
        ApiError::not_found("Cannot find policy to delete"),
        AclWrite::PolicyDelete { id: id.clone() },
    )
    .await?;
    Ok(json_body(&true))
}

async fn policy_list(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Read)?;
    let opts = p.read_opts()?;
    let (meta, rows) = blocking(server(&st)?, &opts, |s| {
        let rows: Vec<Value> = s.acl_policies().map(acl_dto::policy_stub).collect();
        (s.table_indexes().acl_policies, rows)
    })
    .await?;
    Ok(meta.json(&rows))
}

// === roles ===

async fn role_written(st: &ApiState, id: &str) -> Result<Response, ApiError> {
    let view = server(st)?.read(Consistency::Stale).await?;
    let r = view
        .state
        .acl_role(id)
        .ok_or_else(|| ApiError::internal(format!("role {id} missing after its write")))?;
    Ok(json_body(&acl_dto::role(&view.state, r)))
}

async fn role_create(
    State(st): State<ApiState>,
    authz: Authz,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    let body: RoleBody = super::body::decode(&body, false)?;
    if !body.id.is_empty() {
        return Err(ApiError::bad_request(
            "Cannot specify the ID when creating a new role",
        ));
    }
    let id = new_id();
    let role = body.into_role(id.clone());
    check(&role.templated_policies, false)?;
    propose(&st, AclWrite::RoleSet(Box::new(role))).await?;
    role_written(&st, &id).await
}

async fn role_update(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    let body: RoleBody = super::body::decode(&body, false)?;
    if !body.id.is_empty() && body.id != id {
        return Err(ApiError::bad_request(
            "Role ID in URL and payload do not match",
        ));
    }
    let role = body.into_role(id.clone());
    check(&role.templated_policies, false)?;
    write_existing(
        &st,
        |s| s.acl_role(&id).is_some(),
        ApiError::internal(format!("cannot find role {id}")),
        AclWrite::RoleSet(Box::new(role)),
    )
    .await?;
    role_written(&st, &id).await
}

async fn role_read(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    read_one(&st, &authz, &p, "role", |s| {
        let found = s.acl_role(&id).map(|r| acl_dto::role(s, r));
        (s.table_indexes().acl_roles, found)
    })
    .await
}

async fn role_by_name(
    State(st): State<ApiState>,
    authz: Authz,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    read_one(&st, &authz, &p, "role", |s| {
        let found = s.acl_role_by_name(&name).map(|r| acl_dto::role(s, r));
        (s.table_indexes().acl_roles, found)
    })
    .await
}

async fn role_delete(
    State(st): State<ApiState>,
    authz: Authz,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    write_existing(
        &st,
        |s| s.acl_role(&id).is_some(),
        ApiError::not_found("Cannot find role to delete"),
        AclWrite::RoleDelete { id: id.clone() },
    )
    .await?;
    Ok(json_body(&true))
}

async fn role_list(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Read)?;
    let opts = p.read_opts()?;
    let policy = p.non_empty("policy").map(str::to_string);
    let (meta, rows) = blocking(server(&st)?, &opts, |s| {
        let rows: Vec<Value> = s
            .acl_roles()
            .filter(|r| {
                policy
                    .as_ref()
                    .is_none_or(|p| r.policies.iter().any(|l| &l.id == p))
            })
            .map(|r| acl_dto::role(s, r))
            .collect();
        (s.table_indexes().acl_roles, rows)
    })
    .await?;
    Ok(meta.json(&rows))
}
