//! `/v1/kv/*`: get (`recurse`, `keys`, `separator`, `raw`), put (`flags`, `cas`, `acquire`,
//! `release`) and delete (`recurse`, `cas`), with Consul's size limit.
//!
//! ACLs (reference/acl.md §5.3): a single read needs key:read, checked before the key is
//! looked up (a missing unreadable key is 403, not 404); `recurse`/`keys` prune entries per
//! key (and with `acl.enable_key_list_policy` first need key:list on the prefix); writes
//! need key:write, a recursive delete write on everything under the prefix. The token is
//! resolved once, before a blocking wait, and every wake-up filters with it (§5.7).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_filter_kv::{check_key_list, keep_readable, mark_filtered};
use super::error::ApiError;
use super::params::Params;
use super::read::{blocking, json_body};
use crate::catalog::{Command, KvOp, KvVerb, Response as Applied};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/kv", get(get_root).put(put_root).delete(delete_root))
        .route("/v1/kv/", get(get_root).put(put_root).delete(delete_root))
        .route(
            "/v1/kv/{*key}",
            get(get_key).put(put_key).delete(delete_key),
        )
}

/// Without `recurse` or `keys` a GET needs a key: Consul's `KVSGet` answers 400
/// `Missing key name` rather than looking up the empty key.
async fn get_root(st: State<ApiState>, authz: Authz, p: Params) -> Result<Response, ApiError> {
    if !p.flag("recurse") && !p.flag("keys") {
        return Err(ApiError::bad_request("Missing key name"));
    }
    kv_get(st, authz, String::new(), p).await
}
async fn get_key(
    st: State<ApiState>,
    authz: Authz,
    Path(key): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    kv_get(st, authz, key, p).await
}
async fn put_root(_: State<ApiState>) -> Result<Response, ApiError> {
    Err(ApiError::bad_request("Missing key name"))
}
async fn put_key(
    st: State<ApiState>,
    authz: Authz,
    Path(key): Path<String>,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Key, &key, Need::Write)?;
    kv_put(st, key, p, body).await
}
async fn delete_root(st: State<ApiState>, authz: Authz, p: Params) -> Result<Response, ApiError> {
    if !p.flag("recurse") {
        return Err(ApiError::bad_request("Missing key name"));
    }
    authz.authorizer.key_write_prefix("").map_err(deny)?;
    kv_delete(st, String::new(), p).await
}
async fn delete_key(
    st: State<ApiState>,
    authz: Authz,
    Path(key): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    if p.flag("recurse") {
        authz.authorizer.key_write_prefix(&key).map_err(deny)?;
    } else {
        authz.check(Resource::Key, &key, Need::Write)?;
    }
    kv_delete(st, key, p).await
}

/// Consul's 403 for a denied decision.
fn deny(d: meridian_acl::Denied) -> ApiError {
    crate::acl::AclError::Denied(d).into()
}

async fn kv_get(
    State(st): State<ApiState>,
    authz: Authz,
    key: String,
    p: Params,
) -> Result<Response, ApiError> {
    let opts = p.read_opts()?;
    let server = st.router.server(opts.dc.as_deref())?;
    let list_policy = st.acl.settings().enable_key_list_policy;
    if p.flag("keys") {
        check_key_list(&authz, list_policy, &key)?;
        let sep = p.get("separator").unwrap_or("").to_string();
        let (meta, (keys, pruned)) = blocking(server, &opts, |s| {
            let (readable, pruned) = keep_readable(
                &authz,
                s.kv_prefix(&key).map(|e| e.key.as_str()).collect(),
                |k| k,
            );
            let keys = list_keys(readable.into_iter(), &key, &sep);
            (s.kv_prefix_index(&key), (keys, pruned))
        })
        .await?;
        // Everything filtered reads as an empty prefix: `[]` under ACLs (§4.8).
        let resp = if keys.is_empty() && !pruned {
            meta.not_found()
        } else {
            meta.json(&keys)
        };
        return Ok(mark_filtered(&authz, pruned, resp));
    }
    if p.flag("recurse") {
        check_key_list(&authz, list_policy, &key)?;
        let (meta, (entries, pruned)) = blocking(server, &opts, |s| {
            let all = s.kv_prefix(&key).cloned().collect::<Vec<_>>();
            (
                s.kv_prefix_index(&key),
                keep_readable(&authz, all, |e| e.key.as_str()),
            )
        })
        .await?;
        let resp = if entries.is_empty() {
            meta.not_found()
        } else {
            meta.json(&entries)
        };
        return Ok(mark_filtered(&authz, pruned, resp));
    }
    authz.check(Resource::Key, &key, Need::Read)?;
    let (meta, entry) = blocking(server, &opts, |s| {
        (s.kv_key_index(&key), s.kv_get(&key).cloned())
    })
    .await?;
    let Some(entry) = entry else {
        return Ok(meta.not_found());
    };
    if p.flag("raw") {
        let mut resp = (meta.headers(), entry.value.unwrap_or_default()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Ok(resp);
    }
    Ok(meta.json(&[entry]))
}

/// Keys under `prefix`, cut after the first `sep` past the prefix and de-duplicated.
fn list_keys<'a>(keys: impl Iterator<Item = &'a str>, prefix: &str, sep: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in keys {
        let item = match (sep.is_empty(), k[prefix.len()..].find(sep)) {
            (false, Some(pos)) => &k[..prefix.len() + pos + sep.len()],
            _ => k,
        };
        if out.last().map(String::as_str) != Some(item) {
            out.push(item.to_string());
        }
    }
    out
}

async fn kv_put(
    State(st): State<ApiState>,
    key: String,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let max = st.limits.kv_max_value_size;
    if body.len() as u64 > max {
        return Err(ApiError::too_large(format!(
            "Request body({} bytes) too large, max size: {max} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.",
            body.len()
        )));
    }
    refuse_replicated(&st, &p, &key, false)?;
    let server = st.router.server(p.dc())?;
    let mut op = KvOp::new(KvVerb::Set, key);
    op.flags = p.u64("flags")?.unwrap_or(0);
    op.value = Some(body.to_vec());
    if let Some(sid) = p.non_empty("acquire") {
        op.verb = KvVerb::Lock;
        op.session = Some(sid.to_string());
    } else if let Some(sid) = p.non_empty("release") {
        op.verb = KvVerb::Unlock;
        op.session = Some(sid.to_string());
    } else if let Some(cas) = p.u64("cas")? {
        op.verb = KvVerb::Cas;
        op.index = cas;
    }
    bool_result(server.apply(Command::Kv(op)).await?.1)
}

async fn kv_delete(
    State(st): State<ApiState>,
    key: String,
    p: Params,
) -> Result<Response, ApiError> {
    refuse_replicated(&st, &p, &key, p.flag("recurse"))?;
    let server = st.router.server(p.dc())?;
    let mut op = KvOp::new(KvVerb::Delete, key);
    if p.flag("recurse") {
        op.verb = KvVerb::DeleteTree;
    } else if let Some(cas) = p.u64("cas")? {
        op.verb = KvVerb::DeleteCas;
        op.index = cas;
    }
    bool_result(server.apply(Command::Kv(op)).await?.1)
}

/// A write to a key this datacenter replicates from another (`replication`) is refused,
/// naming the source: the copy has one writer. Writes for another datacenter (`?dc=`) never
/// reach here (they are relayed first).
pub(super) fn refuse_replicated(
    st: &ApiState,
    p: &Params,
    key: &str,
    tree: bool,
) -> Result<(), ApiError> {
    let local = p.dc().is_none_or(|dc| dc == st.agent.datacenter);
    match st.replicator.as_ref().filter(|_| local) {
        Some(r) => match r.refusal(key, tree) {
            Some(why) => Err(ApiError::forbidden(why)),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

fn bool_result(r: Applied) -> Result<Response, ApiError> {
    match r {
        Applied::Bool(b) => Ok(json_body(&b)),
        other => Err(ApiError::internal(format!(
            "unexpected KV result {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::list_keys;

    #[test]
    fn keys_with_separator_list_one_level() {
        let keys = ["web/bar", "web/foo", "web/subdir/a", "web/subdir/b"];
        assert_eq!(
            list_keys(keys.into_iter(), "web/", "/"),
            ["web/bar", "web/foo", "web/subdir/"]
        );
        assert_eq!(list_keys(keys.into_iter(), "web/", "").len(), 4);
    }
}
