//! `/v1/operator/autopilot/{configuration,health,state}` (Consul's operator autopilot API) and the
//! leader-only raft operations reached on a follower: such requests are re-run on the
//! leader through the server RPC port, so any server answers them as Consul's do.
//! ACLs (reference/acl.md §5.3): reads need operator:read, the configuration's PUT
//! operator:write; the caller's token goes with a request re-run on the leader.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::body::{GoDuration, decode};
use super::error::ApiError;
use super::params::Params;
use super::read::json_body;
use crate::catalog::{AutopilotSettings, Command, Response as CmdResponse};
use crate::cluster::forward::HttpRequest;
use crate::gossip::MemberStatus;
use crate::server::ServerHandle;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/v1/operator/autopilot/configuration",
            get(get_config).put(set_config),
        )
        .route("/v1/operator/autopilot/health", get(health))
        .route("/v1/operator/autopilot/state", get(state))
}

/// Re-runs this request on the leader when this server does not lead; `None` = answer here.
/// It carries no token: for requests that need none (ACL bootstrap).
pub(super) async fn on_leader(
    server: &ServerHandle,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Result<Option<Response>, ApiError> {
    on_leader_as(server, method, uri, body, "").await
}

/// [`on_leader`] carrying the caller's token (`secret`, `""` for none), so that the leader
/// checks it again as the follower did (the caller's token travels with the request,
/// reference/acl.md §6.5).
pub(super) async fn on_leader_as(
    server: &ServerHandle,
    method: &Method,
    uri: &Uri,
    body: &[u8],
    secret: &str,
) -> Result<Option<Response>, ApiError> {
    if server.raft().is_leader() {
        return Ok(None);
    }
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if !secret.is_empty() {
        headers.push(("x-consul-token".into(), secret.to_string()));
    }
    let req = HttpRequest {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
        request_id: None,
    };
    let Some(resp) = server.forward_http_to_leader(req).await? else {
        return Ok(None);
    };
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    for (k, v) in &resp.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::try_from(k.as_str()),
            HeaderValue::from_str(v),
        ) {
            headers.insert(k, v);
        }
    }
    Ok(Some((status, headers, resp.body).into_response()))
}

fn ms(d: u64) -> String {
    meridian_config::duration::format_go_duration(std::time::Duration::from_millis(d))
}

async fn get_config(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Read)?;
    let opts = p.read_opts()?;
    let server = st.router.server(opts.dc.as_deref())?;
    let view = server.read(opts.consistency).await?;
    let a = view.state.autopilot();
    Ok(json_body(&json!({
        "CleanupDeadServers": a.cleanup_dead_servers,
        "LastContactThreshold": ms(a.last_contact_threshold_ms),
        "MaxTrailingLogs": a.max_trailing_logs,
        "MinQuorum": a.min_quorum,
        "ServerStabilizationTime": ms(a.server_stabilization_time_ms),
        "RedundancyZoneTag": "",
        "DisableUpgradeMigration": false,
        "UpgradeVersionTag": "",
        "CreateIndex": a.create_index,
        "ModifyIndex": a.modify_index,
    })))
}

/// Consul's body; fields left out keep their current values.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigBody {
    cleanupdeadservers: Option<bool>,
    lastcontactthreshold: Option<GoDuration>,
    maxtrailinglogs: Option<u64>,
    minquorum: Option<u32>,
    serverstabilizationtime: Option<GoDuration>,
}

async fn set_config(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Write)?;
    let b: ConfigBody = decode(&body, false)?;
    let cas = p
        .non_empty("cas")
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| ApiError::bad_request("cas must be an unsigned integer index"))
        })
        .transpose()?;
    let server = st.router.server(p.dc())?;
    let current: AutopilotSettings = server.raft().state().autopilot();
    let to_ms = |d: GoDuration| u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX);
    let settings = AutopilotSettings {
        cleanup_dead_servers: b.cleanupdeadservers.unwrap_or(current.cleanup_dead_servers),
        last_contact_threshold_ms: b
            .lastcontactthreshold
            .map_or(current.last_contact_threshold_ms, to_ms),
        max_trailing_logs: b.maxtrailinglogs.unwrap_or(current.max_trailing_logs),
        min_quorum: b.minquorum.unwrap_or(current.min_quorum),
        server_stabilization_time_ms: b
            .serverstabilizationtime
            .map_or(current.server_stabilization_time_ms, to_ms),
        ..current
    };
    let (_, resp) = server
        .apply(Command::AutopilotSet { settings, cas })
        .await?;
    Ok(json_body(&matches!(resp, CmdResponse::Bool(true))))
}

/// One server as autopilot judges it.
struct Assessed {
    id: String,
    name: String,
    address: String,
    serf_status: &'static str,
    leader: bool,
    contact: Option<std::time::Duration>,
    last_term: u64,
    last_index: u64,
    healthy: bool,
    voter: bool,
}

impl Assessed {
    fn last_contact(&self) -> String {
        self.contact.map_or_else(
            || "-1ns".to_string(),
            meridian_config::duration::format_go_duration,
        )
    }
}

/// Every server of the raft configuration as judged, with the quorum size.
struct Assessment {
    servers: Vec<Assessed>,
    quorum: usize,
}

impl Assessment {
    /// How many healthy voters could fail without losing quorum.
    fn failure_tolerance(&self) -> usize {
        let healthy_voters = self.servers.iter().filter(|a| a.healthy && a.voter).count();
        healthy_voters.saturating_sub(self.quorum)
    }

    /// Whether every server is healthy.
    fn healthy(&self) -> bool {
        self.servers.iter().all(|a| a.healthy)
    }
}

/// The servers of the raft configuration, judged on the leader: alive in the pool, in
/// touch with the leader (`LastContactThreshold`) and caught up (`MaxTrailingLogs`).
fn assess(server: &ServerHandle) -> Result<Assessment, ApiError> {
    let raft = server.raft();
    let view = raft.leader_view().ok_or(crate::rpc::RpcError::NoLeader)?;
    let settings = raft.state().autopilot();
    let threshold = std::time::Duration::from_millis(settings.last_contact_threshold_ms);
    let members = server.gossip().map(|g| g.members()).unwrap_or_default();
    let cfg = raft.configuration();
    let all = cfg
        .voters
        .iter()
        .map(|v| (v, true))
        .chain(cfg.learners.iter().map(|l| (l, false)));
    let mut out = Vec::new();
    for ((id, node), voter) in all {
        let me = *id == raft.id();
        let serf = members
            .iter()
            .find(|m| m.name == node.name)
            .map(|m| m.status);
        let (matched, ack) = view.peers.get(id).copied().unwrap_or((None, None));
        let last_index = if me {
            view.last_index
        } else {
            matched.unwrap_or(0)
        };
        let contact = if me {
            Some(std::time::Duration::ZERO)
        } else {
            ack
        };
        let healthy = serf == Some(MemberStatus::Alive)
            && contact.is_some_and(|c| c <= threshold.max(std::time::Duration::from_secs(1)))
            && view.last_index.saturating_sub(last_index) <= settings.max_trailing_logs;
        let serf_status = match serf {
            Some(MemberStatus::Alive) => "alive",
            Some(MemberStatus::Leaving) => "leaving",
            Some(MemberStatus::Left) => "left",
            Some(MemberStatus::Failed) => "failed",
            None => "none",
        };
        out.push(Assessed {
            id: if node.node_id.is_empty() {
                id.to_string()
            } else {
                node.node_id.clone()
            },
            name: node.name.clone(),
            address: node.rpc_addr.clone(),
            serf_status,
            leader: me,
            contact,
            last_term: view.term,
            last_index,
            healthy,
            voter,
        });
    }
    Ok(Assessment {
        servers: out,
        quorum: cfg.voters.len() / 2 + 1,
    })
}

/// Consul's health: per server whether it is healthy (see [`assess`]); `FailureTolerance`
/// is how many healthy voters could fail without losing quorum. Answered by the leader;
/// 429 when any server is unhealthy.
async fn health(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Read)?;
    let server = st.router.server(p.dc())?;
    if let Some(resp) = on_leader_as(server, &method, &uri, &[], &authz.secret).await? {
        return Ok(resp);
    }
    let assessed = assess(server)?;
    let servers: Vec<_> = assessed
        .servers
        .iter()
        .map(|a| {
            json!({
                "ID": a.id,
                "Name": a.name,
                "Address": a.address,
                "SerfStatus": a.serf_status,
                "Version": env!("CARGO_PKG_VERSION"),
                "Leader": a.leader,
                "LastContact": a.last_contact(),
                "LastTerm": a.last_term,
                "LastIndex": a.last_index,
                "Healthy": a.healthy,
                "Voter": a.voter,
            })
        })
        .collect();
    let all_healthy = assessed.healthy();
    let status = if all_healthy {
        StatusCode::OK
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    Ok((
        status,
        json_body(&json!({
            "Healthy": all_healthy,
            "FailureTolerance": assessed.failure_tolerance(),
            "Servers": servers,
        })),
    )
        .into_response())
}

/// Consul's `AutopilotState` (1.10+): the same judgement keyed by server ID, with each
/// server's `Status` (leader, voter, non-voter), the leader and the voters. `StableSince` is
/// Go's zero time: Meridian does not record when a server became healthy.
async fn state(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    method: Method,
    uri: Uri,
) -> Result<Response, ApiError> {
    authz.check(Resource::Operator, "", Need::Read)?;
    let server = st.router.server(p.dc())?;
    if let Some(resp) = on_leader_as(server, &method, &uri, &[], &authz.secret).await? {
        return Ok(resp);
    }
    let assessed = assess(server)?;
    let healthy_all = assessed.servers.iter().filter(|a| a.healthy).count();
    let servers: serde_json::Map<String, serde_json::Value> = assessed
        .servers
        .iter()
        .map(|a| {
            let status = match (a.leader, a.voter) {
                (true, _) => "leader",
                (false, true) => "voter",
                (false, false) => "non-voter",
            };
            let row = json!({
                "ID": a.id,
                "Name": a.name,
                "Address": a.address,
                "NodeStatus": a.serf_status,
                "Version": env!("CARGO_PKG_VERSION"),
                "LastContact": a.last_contact(),
                "LastTerm": a.last_term,
                "LastIndex": a.last_index,
                "Healthy": a.healthy,
                "StableSince": "0001-01-01T00:00:00Z",
                "ReadReplica": false,
                "Status": status,
                "Meta": {},
                "NodeType": "voter",
            });
            (a.id.clone(), row)
        })
        .collect();
    let leader = assessed
        .servers
        .iter()
        .find(|a| a.leader)
        .map(|a| a.id.clone());
    let voters: Vec<&str> = assessed
        .servers
        .iter()
        .filter(|a| a.voter)
        .map(|a| a.id.as_str())
        .collect();
    Ok(json_body(&json!({
        "Healthy": assessed.healthy(),
        "FailureTolerance": assessed.failure_tolerance(),
        "OptimisticFailureTolerance": healthy_all.saturating_sub(assessed.quorum),
        "Servers": servers,
        "Leader": leader,
        "Voters": voters,
        "ReadReplicas": null,
        "RedundancyZones": null,
        "Upgrade": null,
    })))
}
