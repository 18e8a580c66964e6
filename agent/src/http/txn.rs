//! `PUT /v1/txn`: up to 128 KV ops applied atomically (200 committed, 409 rolled back with
//! `Errors`). Read-only transactions are answered from local state without raft.
//!
//! ACLs (reference/acl.md §5.3): every op is checked before anything is applied (`get` and
//! `get-tree` need nothing up front, their results are pruned on key:read; `check-index` and
//! `check-session` need key:read; `delete-tree` write on the whole prefix; the rest key:write).
//! Any denial answers 409 with one `Errors` item per denied op, and nothing is applied.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::body::decode;
use super::error::ApiError;
use super::params::Params;
use super::read::json_body;
use crate::catalog::{Command, KvOp, KvVerb, Response as Applied, TxnError, TxnOp, TxnResult};

/// Consul's `maxTxnOps`.
pub(super) const MAX_TXN_OPS: usize = 128;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/txn", put(txn))
}

#[derive(Deserialize)]
struct OpBody {
    kv: Option<KvBody>,
    node: Option<serde_json::Value>,
    service: Option<serde_json::Value>,
    check: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KvBody {
    verb: String,
    key: String,
    value: Option<String>,
    flags: u64,
    index: u64,
    session: String,
}

fn to_op(i: usize, op: OpBody) -> Result<TxnOp, ApiError> {
    if op.node.is_some() || op.service.is_some() || op.check.is_some() {
        return Err(ApiError::bad_request(format!(
            "Operation {i}: Node, Service and Check transaction operations are not supported yet; use KV"
        )));
    }
    let Some(kv) = op.kv else {
        return Err(ApiError::bad_request(format!(
            "Operation {i}: missing KV operation"
        )));
    };
    let verb = KvVerb::parse(&kv.verb).ok_or_else(|| {
        ApiError::bad_request(format!("Operation {i}: invalid KV Verb {:?}", kv.verb))
    })?;
    let value = match kv.value.as_deref() {
        None | Some("") => None,
        Some(v) => Some(STANDARD.decode(v).map_err(|e| {
            ApiError::bad_request(format!("Operation {i}: KV Value is not valid base64: {e}"))
        })?),
    };
    let session = (!kv.session.is_empty()).then_some(kv.session);
    Ok(TxnOp::Kv(KvOp {
        verb,
        key: kv.key,
        value,
        flags: kv.flags,
        index: kv.index,
        session,
    }))
}

/// A `/v1/txn` body as operations: at most [`MAX_TXN_OPS`], KV only, values base64.
pub(super) fn decode_ops(body: &[u8]) -> Result<Vec<TxnOp>, ApiError> {
    let raw: Vec<OpBody> = decode(body, false)?;
    if raw.len() > MAX_TXN_OPS {
        return Err(ApiError::too_large(format!(
            "Transaction contains too many operations ({} > {MAX_TXN_OPS})",
            raw.len()
        )));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, op)| to_op(i, op))
        .collect()
}

/// The ACL refusals of `ops`, one per denied op, in op order (Consul's `txnPreCheck`).
fn denials(authz: &Authz, ops: &[TxnOp]) -> Vec<TxnError> {
    ops.iter()
        .enumerate()
        .filter_map(|(i, TxnOp::Kv(op))| {
            let a = &authz.authorizer;
            let verdict = match op.verb {
                KvVerb::Get | KvVerb::GetOrEmpty | KvVerb::GetTree => Ok(()),
                KvVerb::CheckIndex | KvVerb::CheckSession => {
                    a.check(Resource::Key, &op.key, Need::Read)
                }
                KvVerb::DeleteTree => a.key_write_prefix(&op.key),
                _ => a.check(Resource::Key, &op.key, Need::Write),
            };
            verdict.err().map(|d| TxnError {
                op_index: i,
                what: crate::acl::AclError::Denied(d).to_string(),
            })
        })
        .collect()
}

fn rolled_back(errors: &[TxnError]) -> Response {
    let body = json_body(&json!({ "Results": null, "Errors": errors }));
    (StatusCode::CONFLICT, body).into_response()
}

async fn txn(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let max = st.limits.txn_max_req_len;
    if body.len() as u64 > max {
        return Err(ApiError::too_large(format!(
            "Request body({} bytes) too large, max size: {max} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#txn_max_req_len.",
            body.len()
        )));
    }
    let ops = decode_ops(&body)?;
    let denied = denials(&authz, &ops);
    if !denied.is_empty() {
        return Ok(rolled_back(&denied));
    }
    let read_only = ops.iter().all(|TxnOp::Kv(op)| op.verb.is_read());
    let result = if read_only {
        let opts = p.read_opts()?;
        let server = st.router.server(opts.dc.as_deref())?;
        server.read(opts.consistency).await?.state.txn_read(&ops)
    } else {
        for TxnOp::Kv(op) in ops.iter().filter(|TxnOp::Kv(op)| !op.verb.is_read()) {
            let tree = op.verb == crate::catalog::KvVerb::DeleteTree;
            super::kv::refuse_replicated(&st, &p, &op.key, tree)?;
        }
        let server = st.router.server(p.dc())?;
        match server.apply(Command::Txn(ops)).await {
            Ok((_, r)) => r,
            Err(crate::rpc::RpcError::Rejected(m)) => return Err(ApiError::internal(m)),
            Err(e) => return Err(e.into()),
        }
    };
    match result {
        Applied::TxnCommitted(results) => {
            // Entries the token may not read are left out (Consul's `filterTxnResults`).
            let results: Vec<_> = results
                .into_iter()
                .filter(|TxnResult::Kv(e)| authz.allowed(Resource::Key, &e.key, Need::Read))
                .map(|TxnResult::Kv(e)| json!({ "KV": e }))
                .collect();
            Ok(json_body(&json!({ "Results": results, "Errors": null })))
        }
        Applied::TxnRolledBack(errors) => Ok(rolled_back(&errors)),
        other => Err(ApiError::internal(format!(
            "unexpected txn result {other:?}"
        ))),
    }
}
