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

/// Every member `agent` lists in its LAN pool, or with `wan` in the WAN pool, with its
/// Serf status (1 alive, 2 leaving, 3 left, 4 failed); `None` when it did not answer.
pub async fn members(state: &State, agent: &HostPlan, wan: bool) -> Option<Vec<(String, u64)>> {
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
            .filter_map(|m| Some((m["Name"].as_str()?.to_string(), m["Status"].as_u64()?)))
            .collect(),
    )
}

/// The members `agent` lists alive (Status 1) in its LAN pool, or with `wan` in the WAN
/// pool; `None` when it did not answer.
pub async fn alive_members(state: &State, agent: &HostPlan, wan: bool) -> Option<Vec<String>> {
    let all = members(state, agent, wan).await?;
    Some(
        all.into_iter()
            .filter(|(_, status)| *status == 1)
            .map(|(name, _)| name)
            .collect(),
    )
}

/// The gateway's status in its DC's LAN pool as a running server of the DC lists it;
/// `None` when no server answered or it is not listed.
pub async fn lan_status(state: &State, gateway: &HostPlan) -> Option<u64> {
    let server = running_server(state, &gateway.dc)?;
    let all = members(state, server, false).await?;
    all.into_iter()
        .find(|(name, _)| *name == gateway.name)
        .map(|(_, status)| status)
}

/// Whether a running server of the gateway's DC lists it alive in the LAN pool.
pub async fn in_lan_pool(state: &State, gateway: &HostPlan) -> bool {
    lan_status(state, gateway).await == Some(1)
}
