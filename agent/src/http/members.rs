//! `/v1/agent/{members,join,leave,force-leave}`: the LAN gossip pool as Consul shows it
//! (consul.md §1.2, §2.6), and with `?wan=1` the WAN pool as the gateways see it. Members come from the pool's published snapshot; join, leave and
//! force-leave are commands to the pool. Under ACLs (reference/acl.md §5.3) the lists keep
//! the members whose node the token may read (with `X-Consul-Results-Filtered-By-ACLs`),
//! join and leave need agent:write on this node, and force-leave operator:write.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};
use tracing::info;

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::acl_filter_kv::mark_filtered;
use super::error::ApiError;
use super::params::Params;
use super::read::json_body;
use crate::agent::lan;
use crate::gossip::{GossipError, Member};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/agent/members", get(members))
        .route("/v1/agent/join/{*address}", put(join))
        .route("/v1/agent/leave", put(leave))
        .route("/v1/agent/force-leave/{*node}", put(force_leave))
}

/// One member in Consul's shape. The protocol numbers are serf's / memberlist's of Consul 1.x.
fn member_json(m: &Member) -> Value {
    json!({
        "Name": m.name,
        "Addr": m.addr.ip().to_string(),
        "Port": m.addr.port(),
        "Tags": m.tags.0,
        "Status": m.status.as_serf(),
        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}

/// A WAN pool member in the same shape.
fn wan_member_json(m: &meridian_rpc::gateway::WanMember) -> Value {
    json!({
        "Name": m.name,
        "Addr": m.addr,
        "Port": m.port,
        "Tags": m.tags,
        "Status": m.status,
        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}

/// This node's entry of `/v1/agent/members` (also `Member` in `/v1/agent/self`).
pub(super) fn local_member(st: &ApiState) -> Value {
    let members = st.gossip.members();
    match members.iter().find(|m| m.name == st.agent.node_name) {
        Some(m) => member_json(m),
        None => Value::Null,
    }
}

async fn members(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    let readable = |name: &str| authz.allowed(Resource::Node, name, Need::Read);
    if p.flag("wan") {
        // The WAN pool is the gateways'; a server shows it as its gateways see it. A client
        // agent, like Consul's, has no WAN view and lists nobody.
        let view = match st.router.federation() {
            Some(f) => f.view().await,
            None => None,
        };
        let all = view.map(|v| v.members).unwrap_or_default();
        let list: Vec<Value> = all
            .iter()
            .filter(|m| readable(&m.name))
            .map(wan_member_json)
            .collect();
        let pruned = list.len() != all.len();
        return Ok(mark_filtered(
            &authz,
            pruned,
            json_body(&list).into_response(),
        ));
    }
    let all = st.gossip.members();
    let list: Vec<Value> = all
        .iter()
        .filter(|m| readable(&m.name))
        .map(member_json)
        .collect();
    let pruned = list.len() != all.len();
    Ok(mark_filtered(
        &authz,
        pruned,
        json_body(&list).into_response(),
    ))
}

fn gossip_err(e: GossipError) -> ApiError {
    match e {
        GossipError::UnknownMember(_) => ApiError::not_found(e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

/// force-leave's errors: an unknown node is Consul's 500 `agent: No node found with name
/// '<node>'` (`Server.removeFailedNode`); clients match on that text.
fn force_leave_err(e: GossipError) -> ApiError {
    match e {
        GossipError::UnknownMember(node) => {
            ApiError::internal(format!("agent: No node found with name '{node}'"))
        }
        other => gossip_err(other),
    }
}

/// `PUT /v1/agent/join/:address`: joins the LAN pool through `address` (`host[:port]`).
async fn join(
    State(st): State<ApiState>,
    authz: Authz,
    Path(address): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    authz.check(Resource::Agent, &st.agent.node_name, Need::Write)?;
    if p.flag("wan") {
        return Err(ApiError::internal(
            "joining the WAN pool needs the WAN gateway, which this datacenter does not run yet",
        ));
    }
    let addrs = lan::resolve_join_addr(&address)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let n = st.gossip.join(&addrs).await.map_err(gossip_err)?;
    info!(address = %address, nodes = n, "joined the LAN pool");
    Ok(().into_response())
}

/// `PUT /v1/agent/leave`: graceful leave, then the agent shuts down (as Consul's).
async fn leave(State(st): State<ApiState>, authz: Authz) -> Result<Response, ApiError> {
    authz.check(Resource::Agent, &st.agent.node_name, Need::Write)?;
    match st.gossip.leave().await {
        Ok(()) => {}
        Err(GossipError::Left) => {}
        Err(e) => return Err(gossip_err(e)),
    }
    info!("graceful leave complete; shutting down");
    st.shutdown.cancel();
    Ok(().into_response())
}

/// `PUT /v1/agent/force-leave/:node[?prune]`: gossips a leave intent for `node`, as serf's
/// `RemoveFailedNode`: a failed member becomes `left`, an alive one `leaving`; `prune` also
/// removes it (or an already left member) from every member list.
async fn force_leave(
    State(st): State<ApiState>,
    authz: Authz,
    Path(node): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Write)?;
    if p.flag("wan") {
        return Err(ApiError::bad_request(
            "force-leave ?wan is not supported yet: the WAN pool lives in the WAN gateway",
        ));
    }
    if p.flag("prune") {
        st.gossip
            .force_leave_prune(&node)
            .await
            .map_err(force_leave_err)?;
        info!(node = %node, "force-left and pruned member");
    } else {
        st.gossip
            .force_leave(&node)
            .await
            .map_err(force_leave_err)?;
        info!(node = %node, "force-left member");
    }
    Ok(().into_response())
}
