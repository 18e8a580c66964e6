//! `PUT /v1/txn`: up to 128 KV ops applied atomically (200 committed, 409 rolled back with
//! `Errors`). Read-only transactions are answered from local state without raft.

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

use super::ApiState;
use super::body::decode;
use super::error::ApiError;
use super::params::Params;
use super::read::json_body;
use crate::catalog::{Command, KvOp, KvVerb, Response as Applied, TxnOp, TxnResult};

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

async fn txn(State(st): State<ApiState>, p: Params, body: Bytes) -> Result<Response, ApiError> {
    let max = st.limits.txn_max_req_len;
    if body.len() as u64 > max {
        return Err(ApiError::too_large(format!(
            "Request body({} bytes) too large, max size: {max} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#txn_max_req_len.",
            body.len()
        )));
    }
    let ops = decode_ops(&body)?;
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
            let results: Vec<_> = results
                .into_iter()
                .map(|TxnResult::Kv(e)| json!({ "KV": e }))
                .collect();
            Ok(json_body(&json!({ "Results": results, "Errors": null })))
        }
        Applied::TxnRolledBack(errors) => {
            let body = json_body(&json!({ "Results": null, "Errors": errors }));
            Ok((StatusCode::CONFLICT, body).into_response())
        }
        other => Err(ApiError::internal(format!(
            "unexpected txn result {other:?}"
        ))),
    }
}
