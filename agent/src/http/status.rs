//! `/v1/status/*` and `/v1/operator/raft/*`: leader, peers, raft configuration and peer
//! removal. ACLs (reference/acl.md §5.3): `status/*` needs no token, as in Consul; the raft
//! configuration needs operator:read, peer removal and leadership transfer operator:write.

use axum::Router;
use axum::extract::State;
use axum::http::{Method, Uri};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::ApiState;
use meridian_acl::{Need, Resource};

use super::acl_authz::Authz;
use super::autopilot::on_leader_as;
use super::error::ApiError;
use super::params::Params;
use super::read::json_body;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/status/leader", get(leader))
        .route("/v1/status/peers", get(peers))
        .route("/v1/operator/raft/configuration", get(configuration))
        .route("/v1/operator/raft/peer", axum::routing::delete(remove_peer))
        .route(
            "/v1/operator/raft/transfer-leader",
            axum::routing::post(transfer_leader),
        )
}

async fn leader(State(st): State<ApiState>, p: Params) -> Result<Response, ApiError> {
    let server = st.router.server(p.dc())?;
    let addr = server
        .raft()
        .leader()
        .map(|(_, n)| n.rpc_addr)
        .unwrap_or_default();
    Ok(json_body(&addr))
}

async fn peers(State(st): State<ApiState>, p: Params) -> Result<Response, ApiError> {
    let server = st.router.server(p.dc())?;
    let addrs: Vec<String> = server
        .raft()
        .configuration()
        .voters
        .into_iter()
        .map(|(_, n)| n.rpc_addr)
        .collect();
    Ok(json_body(&addrs))
}

async fn configuration(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Read)?;
    let opts = p.read_opts()?;
    let server = st.router.server(opts.dc.as_deref())?;
    // The read only enforces the consistency mode (a leader for the default mode); the
    // answer comes from raft's membership, not from the state machine.
    server.read(opts.consistency).await?;
    let leader = server.raft().leader().map(|(id, _)| id);
    let servers: Vec<_> = members(server)
        .into_iter()
        .map(|(id, node, voter)| {
            json!({
                "ID": if node.node_id.is_empty() { id.to_string() } else { node.node_id.clone() },
                "Node": node.name,
                "Address": node.rpc_addr,
                "Leader": Some(id) == leader,
                "Voter": voter,
                "ProtocolVersion": "3",
            })
        })
        .collect();
    // Consul's `Index` is the log index of the latest configuration (membership) entry,
    // not the last write: a fresh single-server cluster reports its bootstrap membership,
    // which openraft logs at index 0.
    let index = server.raft().configuration().index;
    Ok(json_body(&json!({ "Servers": servers, "Index": index })))
}

async fn remove_peer(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Write)?;
    let server = st.router.server(p.dc())?;
    if let Some(resp) = on_leader_as(server, &method, &uri, &[], &authz.secret).await? {
        return Ok(resp);
    }
    let all = members(server);
    let target = if let Some(id) = p.non_empty("id") {
        all.iter()
            .find(|(m, n, _)| m.to_string() == id || n.node_id == id || n.name == id)
    } else if let Some(addr) = p.non_empty("address") {
        all.iter().find(|(_, n, _)| n.rpc_addr == addr)
    } else {
        return Err(ApiError::bad_request(
            "Must specify either ?id with the server's ID or ?address with IP:port of peer to remove",
        ));
    };
    let Some(target) = target else {
        return Err(ApiError::internal("no such peer in the raft configuration"));
    };
    server
        .raft()
        .remove_peer(target.0)
        .await
        .map_err(crate::rpc::RpcError::from)?;
    Ok(json_body(&serde_json::Value::Null))
}

/// `POST /v1/operator/raft/transfer-leader[?id=]`: hands leadership to the given voter (by
/// raft ID, node ID or name), or to the most up-to-date other voter.
async fn transfer_leader(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Write)?;
    let server = st.router.server(p.dc())?;
    if let Some(resp) = on_leader_as(server, &method, &uri, &[], &authz.secret).await? {
        return Ok(resp);
    }
    let raft = server.raft();
    let voters = raft.configuration().voters;
    let target = match p.non_empty("id") {
        Some(id) => voters
            .iter()
            .find(|(v, n)| v.to_string() == id || n.node_id == id || n.name == id)
            .map(|(v, _)| *v)
            .ok_or_else(|| ApiError::bad_request(format!("id {id:?} is not a voter")))?,
        None => {
            let view = raft.leader_view().ok_or(crate::rpc::RpcError::NoLeader)?;
            voters
                .iter()
                .filter(|(v, _)| *v != raft.id())
                .max_by_key(|(v, _)| view.peers.get(v).and_then(|(m, _)| *m))
                .map(|(v, _)| *v)
                .ok_or_else(|| ApiError::bad_request("no other voter to transfer leadership to"))?
        }
    };
    if target == raft.id() {
        return Err(ApiError::bad_request("this server is already the leader"));
    }
    raft.transfer_leader(target)
        .await
        .map_err(crate::rpc::RpcError::from)?;
    Ok(json_body(&json!({ "Success": true })))
}

/// Voters then non-voters, as (raft id, node, voter).
fn members(server: &crate::server::ServerHandle) -> Vec<(u64, crate::raft::ServerNode, bool)> {
    let cfg = server.raft().configuration();
    let voters = cfg.voters.into_iter().map(|(id, n)| (id, n, true));
    voters
        .chain(cfg.learners.into_iter().map(|(id, n)| (id, n, false)))
        .collect()
}
