//! Templated policies (Consul 1.17+, reference/acl.md §2): the built-in templates
//! (`meridian_acl::TEMPLATES`) listed, read by name and previewed, all under `acl:read` as
//! Consul has them; and the check of the `TemplatedPolicies` a token or role is written
//! with (400 naming the entry, before anything is proposed).
//!
//! - `GET /v1/acl/templated-policies`: `{name: {TemplateName, Schema, Template, Description}}`
//! - `GET /v1/acl/templated-policy/name/:name`: one of those
//! - `POST /v1/acl/templated-policy/preview/:name` (body: the variables): the synthetic
//!   policy the template renders to, as `?expanded` shows it on a token.

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::{get, post};
use meridian_acl::{Need, Resource, TEMPLATES, Template};
use serde_json::{Map, Value, json};

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_dto::{self, TemplateVariablesBody};
use super::error::ApiError;
use super::read::json_body;
use crate::catalog::acl::{TemplateVariables, TemplatedPolicy, check_templated};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/acl/templated-policies", get(list))
        .route("/v1/acl/templated-policy/name/{*name}", get(read))
        .route("/v1/acl/templated-policy/preview/{*name}", post(preview))
}

/// The templated policies a token (`local` or not) or role is written with, checked as
/// apply will check them; a refusal is a 400 naming the entry (`TemplatedPolicies[1]`).
pub(super) fn check(tps: &[TemplatedPolicy], local: bool) -> Result<(), ApiError> {
    for (i, tp) in tps.iter().enumerate() {
        check_templated(std::slice::from_ref(tp), local)
            .map_err(|e| ApiError::bad_request(format!("Invalid TemplatedPolicies[{i}]: {e}")))?;
    }
    Ok(())
}

fn base(t: &Template) -> Value {
    json!({
        "TemplateName": t.name,
        "Schema": t.schema,
        "Template": t.template,
        "Description": t.description,
    })
}

fn find(name: &str) -> Result<&'static Template, ApiError> {
    meridian_acl::template(name)
        .ok_or_else(|| ApiError::bad_request(format!("Invalid templated policy Name: {name}")))
}

async fn list(authz: Authz) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Read)?;
    let all: Map<String, Value> = TEMPLATES
        .iter()
        .map(|t| (t.name.to_string(), base(t)))
        .collect();
    Ok(json_body(&Value::Object(all)))
}

async fn read(authz: Authz, Path(name): Path<String>) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Read)?;
    Ok(json_body(&base(find(&name)?)))
}

async fn preview(
    authz: Authz,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Read)?;
    let t = find(&name)?;
    let vars: TemplateVariablesBody = super::body::decode(&body, true)?;
    let tp = TemplatedPolicy {
        template_name: t.name.to_string(),
        template_variables: Some(TemplateVariables { name: vars.name }),
        datacenters: Vec::new(),
    };
    t.validate(tp.name_var()).map_err(|e| {
        ApiError::bad_request(format!(
            "validation error for templated policy: {:?}: {e}",
            t.name
        ))
    })?;
    let p = acl_dto::synthetic_templated(&tp)
        .ok_or_else(|| ApiError::internal(format!("templated policy {name} did not render")))?;
    Ok(json_body(&acl_dto::policy(&p)))
}
