//! `/v1/config`: config entries, as Consul's `config_endpoint.go` serves them.
//!
//! - `PUT /v1/config[?cas=]` with `{"Kind", "Name", ...}` answers `true`/`false` (a `cas`
//!   mismatch is `false`).
//! - `GET /v1/config/:kind` lists a kind (honours `filter`); `GET /v1/config/:kind/:name`
//!   reads one (404 `Config entry not found for "kind" / "name"`), both blocking on the
//!   config-entries table.
//! - `DELETE /v1/config/:kind/:name` answers `{}`, or `true`/`false` with `?cas=`.
//!
//! Entries are stored and replicated but Meridian does not act on them (most kinds
//! configure Connect); see `catalog::config_entry`. ACL rules: [`super::acl_config`].

use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Map, Value};

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_config::{check_read, check_write, readable};
use super::acl_filter_kv::mark_filtered;
use super::error::ApiError;
use super::params::Params;
use super::read::{blocking, json_body, list};
use crate::catalog::config_entry::{self, ConfigEntryError, MESH_NAME};
use crate::catalog::{Command, ConfigEntry, Response as Applied};
use crate::rpc::RpcError;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/config", put(apply))
        .route("/v1/config/{kind}", get(list_kind).delete(delete_kind_only))
        .route("/v1/config/{kind}/{*name}", get(read).delete(delete))
}

fn invalid(e: ConfigEntryError) -> ApiError {
    ApiError::bad_request(e.to_string())
}

/// Splits a `PUT` body into an entry: `Kind` (or `kind`) picks the kind, the name is the
/// key spelled `Name` in any case, and the other fields are kept as sent, less any raft
/// indexes the client echoed back. The `mesh` entry is always named `mesh`.
pub(super) fn decode_entry(body: &[u8]) -> Result<ConfigEntry, ApiError> {
    let decode = |why: String| ApiError::bad_request(format!("Request decoding failed: {why}"));
    let raw: Value = serde_json::from_slice(body).map_err(|e| decode(e.to_string()))?;
    let Value::Object(mut fields) = raw else {
        return Err(decode("the body is not a JSON object".into()));
    };
    let kind = match fields.remove("Kind").or_else(|| fields.remove("kind")) {
        Some(Value::String(k)) => k,
        Some(_) => return Err(decode("Kind value in payload is not a string".into())),
        None => {
            let why = "Payload does not contain a kind/Kind key at the top level";
            return Err(decode(why.into()));
        }
    };
    config_entry::validate_kind(&kind).map_err(|e| decode(e.to_string()))?;
    let mut name = take_folded(&mut fields, "name")
        .map(|v| match v {
            Value::String(s) => Ok(s),
            _ => Err(decode("Name must be a string".into())),
        })
        .transpose()?
        .unwrap_or_default();
    for index in ["createindex", "modifyindex"] {
        take_folded(&mut fields, index);
    }
    if kind == "mesh" {
        name = MESH_NAME.into();
    }
    config_entry::validate(&kind, &name).map_err(invalid)?;
    Ok(ConfigEntry {
        kind,
        name,
        fields,
        create_index: 0,
        modify_index: 0,
    })
}

/// Removes and returns the field whose key equals `lower` ignoring ASCII case.
fn take_folded(fields: &mut Map<String, Value>, lower: &str) -> Option<Value> {
    let key = fields
        .keys()
        .find(|k| k.eq_ignore_ascii_case(lower))?
        .clone();
    fields.remove(&key)
}

/// Proposes `cmd` and returns what apply answered; apply's own rejection is a 400.
async fn propose(st: &ApiState, p: &Params, cmd: Command) -> Result<bool, ApiError> {
    let server = st.router.server(p.dc())?;
    match server.apply(cmd).await {
        Ok((_, Applied::Bool(b))) => Ok(b),
        Ok((_, other)) => Err(ApiError::internal(format!(
            "unexpected config entry result {other:?}"
        ))),
        Err(RpcError::Rejected(msg)) => Err(ApiError::bad_request(msg)),
        Err(e) => Err(e.into()),
    }
}

async fn apply(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let entry = decode_entry(&body)?;
    check_write(&authz, &entry.kind, &entry.name)?;
    let cas = p.u64("cas")?;
    let cmd = Command::ConfigEntrySet {
        entry: Box::new(entry),
        cas,
    };
    Ok(json_body(&propose(&st, &p, cmd).await?))
}

/// Entries the token may not read are left out (before `?filter=`).
async fn list_kind(
    State(st): State<ApiState>,
    authz: Authz,
    Path(kind): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    config_entry::validate_kind(&kind).map_err(invalid)?;
    // Set by the last run of the query (a blocking read may run it several times).
    let pruned = AtomicBool::new(false);
    let resp = list(&st, &p, |s| {
        let mut hidden = false;
        let entries: Vec<Value> = s
            .config_entries_of(&kind)
            .filter(|e| {
                let ok = readable(&authz.authorizer, &e.kind, &e.name);
                hidden |= !ok;
                ok
            })
            .map(ConfigEntry::to_api)
            .collect();
        pruned.store(hidden, Ordering::Relaxed);
        (s.table_indexes().config_entries, entries)
    })
    .await?;
    Ok(mark_filtered(&authz, pruned.load(Ordering::Relaxed), resp))
}

async fn read(
    State(st): State<ApiState>,
    authz: Authz,
    Path((kind, name)): Path<(String, String)>,
    p: Params,
) -> Result<Response, ApiError> {
    config_entry::validate_kind(&kind).map_err(invalid)?;
    // Denied before existence is known, as Consul's `CanRead` on the looked-up entry.
    check_read(&authz, &kind, &name)?;
    let opts = p.read_opts()?;
    let server = st.router.server(opts.dc.as_deref())?;
    let (meta, entry) = blocking(server, &opts, |s| {
        let entry = s.config_entry(&kind, &name).map(ConfigEntry::to_api);
        (s.table_indexes().config_entries, entry)
    })
    .await?;
    match entry {
        Some(e) => Ok(meta.json(&e)),
        None => {
            let why = format!("Config entry not found for {kind:?} / {name:?}");
            Ok((StatusCode::NOT_FOUND, meta.headers(), why).into_response())
        }
    }
}

/// Consul needs both parts of the path to delete.
async fn delete_kind_only(Path(_kind): Path<String>) -> Result<Response, ApiError> {
    Err(ApiError::not_found(
        "Must provide both a kind and name to delete",
    ))
}

/// Consul answers a plain delete with `{}` (kept for its older callers) and a `cas`
/// delete with whether it happened.
async fn delete(
    State(st): State<ApiState>,
    authz: Authz,
    Path((kind, name)): Path<(String, String)>,
    p: Params,
) -> Result<Response, ApiError> {
    config_entry::validate_kind(&kind).map_err(invalid)?;
    check_write(&authz, &kind, &name)?;
    let cas = p.u64("cas")?;
    let cmd = Command::ConfigEntryDelete { kind, name, cas };
    let deleted = propose(&st, &p, cmd).await?;
    Ok(match cas {
        Some(_) => json_body(&deleted),
        None => json_body(&serde_json::json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::decode_entry;

    #[test]
    fn bodies_decode_with_consuls_key_rules() {
        let e = decode_entry(
            br#"{"kind":"service-defaults","name":"web","Protocol":"http","ModifyIndex":9}"#,
        )
        .expect("decodes");
        assert_eq!(
            (e.kind.as_str(), e.name.as_str()),
            ("service-defaults", "web")
        );
        assert_eq!(e.fields.len(), 1);
        assert_eq!(e.fields["Protocol"], "http");
        let mesh = decode_entry(br#"{"Kind":"mesh","Name":"whatever"}"#).expect("mesh");
        assert_eq!(mesh.name, "mesh");
        for (body, want) in [
            (&br#"{"Name":"web"}"#[..], "kind/Kind key"),
            (br#"{"Kind":3,"Name":"web"}"#, "not a string"),
            (
                br#"{"Kind":"nope","Name":"web"}"#,
                "invalid config entry kind: nope",
            ),
            (br#"{"Kind":"service-defaults"}"#, "Name is required"),
            (
                br#"{"Kind":"proxy-defaults","Name":"web"}"#,
                "only \"global\"",
            ),
            (br#"[1]"#, "not a JSON object"),
        ] {
            let err = decode_entry(body)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains(want),
                "{}: {err}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
