//! `/v1/snapshot` (Consul's snapshot API): `GET` saves the server state as a gzipped tar
//! archive (`crate::snapshot`), `PUT` restores one. Both need `acl = "write"` (acl.md §5.3).
//!
//! ```text
//!   GET  read (default/stale/consistent) ─▶ rows ─▶ state.bin ─▶ archive   X-Consul-Index
//!   PUT  archive ─▶ verify SHA256SUMS ─▶ rows decode ─▶ Command::Restore through raft
//! ```
//!
//! A restore is one raft entry, so every server of the datacenter applies it at the same
//! index and no later leader can bring the old state back. Nothing is proposed until the
//! whole archive has been verified and every row decodes. Packing and unpacking run on the
//! blocking pool: they are CPU work over the whole state.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::error::ApiError;
use super::params::Params;
use super::read::ReadMeta;
use crate::catalog::{Command, RestoreOp, State as CatalogState};
use crate::raft::state_machine::{decode_snapshot, encode_body};
use crate::server::ServerHandle;
use crate::snapshot::{self, Configuration, SNAPSHOT_VERSION, ServerEntry, SnapshotMeta};

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/snapshot", get(save).put(restore))
}

/// `GET /v1/snapshot`: the archive of a state as fresh as the read mode asks.
async fn save(State(st): State<ApiState>, authz: Authz, p: Params) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    let opts = p.read_opts()?;
    let server = st.router.server(opts.dc.as_deref())?;
    let view = server.read(opts.consistency).await?;
    let meta = meta_of(server, &view.state);
    let index = meta.index;
    let state = view.state.clone();
    let archive = tokio::task::spawn_blocking(move || {
        let meta_json = serde_json::to_vec(&meta).map_err(|e| e.to_string())?;
        let body = encode_body(meta_json, state.rows()).map_err(|e| e.to_string())?;
        snapshot::write(&meta, &body).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(format!("failed to save snapshot: {e}")))?
    .map_err(|e| ApiError::internal(format!("failed to save snapshot: {e}")))?;
    let read_meta = ReadMeta {
        index,
        known_leader: view.known_leader,
        last_contact_ms: view.last_contact_ms,
        consistency: opts.consistency,
    };
    let mut headers = read_meta.headers();
    // What Go's content sniffing gives Consul's answer.
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-gzip"),
    );
    Ok((headers, archive).into_response())
}

/// meta.json of a snapshot of `state` taken on `server`.
fn meta_of(server: &ServerHandle, state: &CatalogState) -> SnapshotMeta {
    let raft = server.raft();
    let index = state.applied_index();
    let term = raft.term_at_applied(index);
    let cfg = raft.configuration();
    let entry = |suffrage: u8| {
        move |(_, n): &(u64, crate::raft::ServerNode)| ServerEntry {
            suffrage,
            id: n.node_id.clone(),
            address: n.rpc_addr.clone(),
        }
    };
    let servers = cfg
        .voters
        .iter()
        .map(entry(0))
        .chain(cfg.learners.iter().map(entry(1)))
        .collect();
    SnapshotMeta {
        version: SNAPSHOT_VERSION,
        id: format!("{term}-{index}-{}", crate::server::unix_ms()),
        index,
        term,
        configuration: Configuration { servers },
        configuration_index: cfg.index,
        size: 0,
    }
}

/// `PUT /v1/snapshot`: verifies the archive, then restores it on every server through raft.
async fn restore(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Acl, "", Need::Write)?;
    let server = st.router.server(p.dc())?;
    let op = tokio::task::spawn_blocking(move || unpack(&body))
        .await
        .map_err(|e| ApiError::internal(format!("failed to restore snapshot: {e}")))??;
    server.apply(Command::Restore(Box::new(op))).await?;
    tracing::info!("snapshot restored");
    Ok(StatusCode::OK.into_response())
}

/// The restore command of an archive, or a 400 saying what is wrong with it.
fn unpack(body: &[u8]) -> Result<RestoreOp, ApiError> {
    let bad = |e: String| ApiError::bad_request(format!("failed to restore snapshot: {e}"));
    let archive = snapshot::read(body).map_err(|e| bad(e.to_string()))?;
    let rows = decode_snapshot(&archive.state)
        .map_err(|e| bad(format!("failed to decode {}: {e}", snapshot::STATE_FILE)))?;
    RestoreOp::from_rows(rows).map_err(|e| bad(e.to_string()))
}
