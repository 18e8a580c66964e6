//! Questions about gateways. A gateway serves no HTTP API, so the testbed asks the agents
//! about it: a server of its DC lists it in the LAN pool (`/v1/agent/members`, by host
//! name), and a server of any federated DC lists it in the WAN pool
//! (`/v1/agent/members?wan=1`, as `<host>.<dc>`). No decisions here, only the questions.

use crate::plan::{HostPlan, Role};
use crate::probe;
use crate::state::State;

/// The gateway's name in the WAN pool: `<node>.<dc>`.
pub fn wan_name(gateway: &HostPlan) -> String {
    format!("{}.{}", gateway.name, gateway.dc)
}

/// The first server of `dc` whose process runs.
pub fn running_server<'a>(state: &'a State, dc: &'a str) -> Option<&'a HostPlan> {
    state
        .plan
        .servers_of(dc)
        .find(|s| state.processes.contains_key(&s.name))
}

/// The gateways of `dc` whose process runs.
pub fn running_gateways<'a>(state: &'a State, dc: &'a str) -> Vec<&'a HostPlan> {
    state
        .plan
        .hosts
        .iter()
        .filter(|h| h.dc == dc && h.role == Role::Gateway)
        .filter(|h| state.processes.contains_key(&h.name))
        .collect()
}

/// The members `agent` lists alive (Status 1) in its LAN pool, or with `wan` in the WAN
/// pool; `None` when it did not answer.
pub async fn alive_members(state: &State, agent: &HostPlan, wan: bool) -> Option<Vec<String>> {
    let path = if wan {
        "/v1/agent/members?wan=1"
    } else {
        "/v1/agent/members"
    };
    let replies = probe::get(&state.testbed, agent, &[path]).await.ok()?;
    let reply = replies.first().filter(|r| r.status == Some(200))?;
    let members: Vec<serde_json::Value> = serde_json::from_str(&reply.body).ok()?;
    Some(
        members
            .iter()
            .filter(|m| m["Status"] == 1)
            .filter_map(|m| Some(m["Name"].as_str()?.to_string()))
            .collect(),
    )
}

/// Whether a running server of the gateway's DC lists it alive in the LAN pool.
pub async fn in_lan_pool(state: &State, gateway: &HostPlan) -> bool {
    let Some(server) = running_server(state, &gateway.dc) else {
        return false;
    };
    alive_members(state, server, false)
        .await
        .is_some_and(|m| m.contains(&gateway.name))
}
