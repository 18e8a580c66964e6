//! Asking agents over HTTP from outside their namespaces: runs this binary's hidden `_probe`
//! helper inside the host's namespace (`ip netns exec`) and reads its JSON lines.
//!
//! Also the questions that `up`, `status` and the scenarios ask: who is leader, what raft
//! index does an agent see.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::helper::Reply;
use crate::netns::{NetError, run};
use crate::plan::{HostPlan, Plan};

/// The agents' HTTP port (Consul's default: each host has its own address).
pub const HTTP_PORT: u16 = 8500;

/// `http://<lan ip>:8500`.
pub fn base_url(host: &HostPlan) -> String {
    format!("http://{}:{HTTP_PORT}", host.lan_ip)
}

/// GETs `paths` from `host`'s agent, from inside its namespace; one reply per path.
pub async fn get(testbed: &Path, host: &HostPlan, paths: &[&str]) -> Result<Vec<Reply>, NetError> {
    let base = base_url(host);
    let urls: Vec<String> = paths.iter().map(|p| format!("{base}{p}")).collect();
    let exe = testbed.to_string_lossy();
    let mut args = vec!["netns", "exec", host.netns.as_str(), exe.as_ref(), "_probe"];
    args.extend(urls.iter().map(String::as_str));
    let out = run("ip", &args, None).await?;
    Ok(out
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// PUTs `body` to `path` on `host`'s agent, from inside its namespace.
pub async fn put(
    testbed: &Path,
    host: &HostPlan,
    path: &str,
    body: &str,
) -> Result<Reply, NetError> {
    let url = format!("{}{path}", base_url(host));
    let exe = testbed.to_string_lossy();
    let args = [
        "netns",
        "exec",
        host.netns.as_str(),
        exe.as_ref(),
        "_probe",
        "--put",
        body,
        &url,
    ];
    let out = run("ip", &args, None).await?;
    Ok(out
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| Reply {
            url,
            error: Some("no answer from the helper".into()),
            ..Reply::default()
        }))
}

/// What one agent says about its datacenter.
#[derive(Debug, Clone, Default)]
pub struct AgentView {
    /// The agent answered at all.
    pub reachable: bool,
    /// The leader it knows, as a host name (or the raw address when it is no host of ours).
    pub leader: Option<String>,
    /// Its raft applied index (servers only).
    pub index: Option<u64>,
    /// Why it could not be asked.
    pub error: Option<String>,
}

/// Asks `host` whether it answers (`/v1/agent/self`, answered locally even by a client cut
/// off from its servers), which leader it knows, and — for a server — its raft applied
/// index (`Stats.raft.applied_index` of `/v1/agent/self`, as in Consul; a client has none).
pub async fn view(testbed: &Path, plan: &Plan, host: &HostPlan) -> AgentView {
    let paths = ["/v1/agent/self", "/v1/status/leader"];
    let replies = match get(testbed, host, &paths).await {
        Ok(r) => r,
        Err(e) => {
            return AgentView {
                error: Some(e.to_string()),
                ..AgentView::default()
            };
        }
    };
    let ok = |i: usize| replies.get(i).filter(|r| r.status == Some(200));
    let mut v = AgentView::default();
    if let Some(r) = replies.first() {
        v.reachable = r.status == Some(200);
        v.error.clone_from(&r.error);
    }
    v.leader = ok(1).and_then(|r| leader_name(plan, &r.body));
    v.index = ok(0).and_then(|r| applied_index(&r.body));
    v
}

/// `Stats.raft.applied_index` of an `/v1/agent/self` body (Consul gives it as a string).
pub fn applied_index(agent_self: &str) -> Option<u64> {
    let body: serde_json::Value = serde_json::from_str(agent_self).ok()?;
    let v = &body["Stats"]["raft"]["applied_index"];
    v.as_u64().or_else(|| v.as_str()?.parse().ok())
}

/// The host name for a `/v1/status/leader` body (`"10.201.1.12:8300"`), `None` for `""`.
pub fn leader_name(plan: &Plan, body: &str) -> Option<String> {
    let addr: String = serde_json::from_str(body).ok()?;
    if addr.is_empty() {
        return None;
    }
    let ip = addr.rsplit_once(':').map_or(addr.as_str(), |(ip, _)| ip);
    Some(
        match ip
            .parse::<Ipv4Addr>()
            .ok()
            .and_then(|ip| plan.host_by_ip(ip))
        {
            Some(h) => h.name.clone(),
            None => addr.clone(),
        },
    )
}
