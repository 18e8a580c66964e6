//! `meridian operator raft list-peers|remove-peer|transfer-leader` and `operator autopilot
//! get-config|set-config`: the raft configuration from `GET /v1/operator/raft/configuration`
//! (consul.md §2.11) as Consul's table, peer removal, leadership transfer and the autopilot
//! settings, with Consul's output text.

use std::io::Write;

use serde::Deserialize;

use super::CliError;
use super::client::{ApiClient, HttpFlags, ServerFlags};
use super::table::columnize;

/// `operator` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum OperatorCommand {
    /// Raft tools.
    #[command(subcommand)]
    Raft(RaftCommand),
    /// Autopilot settings.
    #[command(subcommand)]
    Autopilot(AutopilotCommand),
    /// The federation of datacenters (Meridian).
    #[command(subcommand)]
    Federation(super::federation::FederationCommand),
}

/// `operator autopilot` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AutopilotCommand {
    /// Show the autopilot configuration.
    GetConfig(ListPeersArgs),
    /// Change the autopilot configuration.
    SetConfig(SetConfigArgs),
}

/// `operator autopilot set-config [-cleanup-dead-servers=BOOL] [...]`
#[derive(Debug, clap::Args)]
pub struct SetConfigArgs {
    /// Remove failed servers automatically.
    #[arg(long = "cleanup-dead-servers")]
    pub cleanup_dead_servers: Option<bool>,
    /// Longest time since the leader's last contact for a healthy server (e.g. 200ms).
    #[arg(long = "last-contact-threshold")]
    pub last_contact_threshold: Option<String>,
    /// Most log entries a healthy server may trail the leader by.
    #[arg(long = "max-trailing-logs")]
    pub max_trailing_logs: Option<u64>,
    /// Never remove servers below this many voters.
    #[arg(long = "min-quorum")]
    pub min_quorum: Option<u32>,
    /// How long a new server must be healthy before it may vote (e.g. 10s).
    #[arg(long = "server-stabilization-time")]
    pub server_stabilization_time: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// `operator raft remove-peer -id ID | -address ADDR`
#[derive(Debug, clap::Args)]
pub struct RemovePeerArgs {
    /// The raft ID of the peer.
    #[arg(long)]
    pub id: Option<String>,
    /// The `ip:port` of the peer.
    #[arg(long)]
    pub address: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// `operator raft transfer-leader [-id ID]`
#[derive(Debug, clap::Args)]
pub struct TransferLeaderArgs {
    /// The voter to hand leadership to (default: the most up-to-date other voter).
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// `operator raft` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RaftCommand {
    /// Show the raft peer set.
    ListPeers(ListPeersArgs),
    /// Remove a server from the raft peer set.
    RemovePeer(RemovePeerArgs),
    /// Hand raft leadership to another voter.
    TransferLeader(TransferLeaderArgs),
}

/// `operator raft list-peers [-stale]`
#[derive(Debug, clap::Args)]
pub struct ListPeersArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerFlags,
}

/// `GET /v1/operator/raft/configuration`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RaftConfiguration {
    /// The peers.
    pub servers: Vec<RaftServer>,
    /// Raft index of this configuration.
    pub index: u64,
}

/// One raft peer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RaftServer {
    /// Raft server ID (a UUID with raft protocol 3).
    #[serde(rename = "ID")]
    pub id: String,
    /// Node name, `(unknown)` when stale.
    pub node: String,
    /// RPC address.
    pub address: String,
    /// Whether this peer is the leader.
    pub leader: bool,
    /// Whether this peer votes.
    pub voter: bool,
    /// Raft protocol version (a string), empty from old servers.
    pub protocol_version: String,
}

/// Runs an `operator` subcommand.
pub async fn run(cmd: OperatorCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        OperatorCommand::Raft(RaftCommand::ListPeers(a)) => list_peers(a, out).await,
        OperatorCommand::Raft(RaftCommand::RemovePeer(a)) => remove_peer(a, out).await,
        OperatorCommand::Raft(RaftCommand::TransferLeader(a)) => transfer_leader(a, out).await,
        OperatorCommand::Autopilot(AutopilotCommand::GetConfig(a)) => get_config(a, out).await,
        OperatorCommand::Autopilot(AutopilotCommand::SetConfig(a)) => set_config(a, out).await,
        OperatorCommand::Federation(cmd) => super::federation::run(cmd, out).await,
    }
}

fn client(http: &HttpFlags) -> Result<ApiClient, CliError> {
    ApiClient::new(http, None).map_err(CliError::http("Error initializing client"))
}

async fn remove_peer(a: RemovePeerArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (key, value) = match (&a.id, &a.address) {
        (Some(id), None) => ("id", id.clone()),
        (None, Some(addr)) => ("address", addr.clone()),
        _ => {
            return Err(CliError::msg(
                "Error removing peer: Must specify either -id or -address, but not both",
            ));
        }
    };
    client(&a.http)?
        .delete("/v1/operator/raft/peer", &[(key, value.clone())])
        .await
        .map_err(CliError::http("Error removing peer"))?;
    writeln!(out, "Removed peer with {key} \"{value}\"")?;
    Ok(())
}

async fn transfer_leader(a: TransferLeaderArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let query: Vec<(&str, String)> = a.id.iter().map(|id| ("id", id.clone())).collect();
    client(&a.http)?
        .post("/v1/operator/raft/transfer-leader", &query, Vec::new())
        .await
        .map_err(CliError::http("Error transferring leadership"))?;
    writeln!(out, "Success")?;
    Ok(())
}

async fn get_config(a: ListPeersArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let c: serde_json::Value = ApiClient::new(&a.http, Some(&a.server))
        .map_err(CliError::http("Error initializing client"))?
        .get_json("/v1/operator/autopilot/configuration", &[])
        .await
        .map_err(CliError::http("Error querying Autopilot configuration"))?
        .unwrap_or_default();
    for key in [
        "CleanupDeadServers",
        "LastContactThreshold",
        "MaxTrailingLogs",
        "MinQuorum",
        "ServerStabilizationTime",
        "RedundancyZoneTag",
        "DisableUpgradeMigration",
        "UpgradeVersionTag",
    ] {
        let v = match &c[key] {
            serde_json::Value::String(s) if s.is_empty() => "\"\"".to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        writeln!(out, "{key} = {v}")?;
    }
    Ok(())
}

async fn set_config(a: SetConfigArgs, out: &mut dyn Write) -> Result<(), CliError> {
    for (flag, v) in [
        ("-last-contact-threshold", &a.last_contact_threshold),
        ("-server-stabilization-time", &a.server_stabilization_time),
    ] {
        if let Some(v) = v
            && let Err(e) = meridian_config::duration::parse_go_duration(v)
        {
            return Err(CliError::msg(format!("Error parsing {flag} {v:?}: {e}")));
        }
    }
    let client = client(&a.http)?;
    let current: serde_json::Value = client
        .get_json("/v1/operator/autopilot/configuration", &[])
        .await
        .map_err(CliError::http("Error querying Autopilot configuration"))?
        .unwrap_or_default();
    let mut body = serde_json::Map::new();
    let mut set = |k: &str, v: serde_json::Value| {
        body.insert(k.to_string(), v);
    };
    if let Some(v) = a.cleanup_dead_servers {
        set("CleanupDeadServers", v.into());
    }
    if let Some(v) = &a.last_contact_threshold {
        set("LastContactThreshold", v.clone().into());
    }
    if let Some(v) = a.max_trailing_logs {
        set("MaxTrailingLogs", v.into());
    }
    if let Some(v) = a.min_quorum {
        set("MinQuorum", v.into());
    }
    if let Some(v) = &a.server_stabilization_time {
        set("ServerStabilizationTime", v.clone().into());
    }
    let cas = current["ModifyIndex"].as_u64().unwrap_or(0).to_string();
    let resp = client
        .put(
            "/v1/operator/autopilot/configuration",
            &[("cas", cas)],
            serde_json::Value::Object(body).to_string().into_bytes(),
        )
        .await
        .map_err(CliError::http("Error setting Autopilot configuration"))?;
    if String::from_utf8_lossy(&resp).trim() == "true" {
        writeln!(out, "Configuration updated!")?;
        Ok(())
    } else {
        Err(CliError::msg(
            "Configuration could not be atomically updated, please try again",
        ))
    }
}

async fn list_peers(a: ListPeersArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let client = ApiClient::new(&a.http, Some(&a.server))
        .map_err(CliError::http("Error initializing client"))?;
    let conf: RaftConfiguration = client
        .get_json("/v1/operator/raft/configuration", &[])
        .await
        .map_err(CliError::http(
            "Error getting peers: Failed to retrieve raft configuration",
        ))?
        .unwrap_or_default();
    writeln!(out, "{}", peers_table(&conf))?;
    Ok(())
}

/// `Node  ID  Address  State  Voter  RaftProtocol`, aligned.
pub(crate) fn peers_table(conf: &RaftConfiguration) -> String {
    let mut rows = vec![
        ["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]
            .map(String::from)
            .to_vec(),
    ];
    for s in &conf.servers {
        let protocol = if s.protocol_version.is_empty() {
            "<=1".to_string()
        } else {
            s.protocol_version.clone()
        };
        let state = if s.leader { "leader" } else { "follower" };
        rows.push(vec![
            s.node.clone(),
            s.id.clone(),
            s.address.clone(),
            state.into(),
            s.voter.to_string(),
            protocol,
        ]);
    }
    columnize(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_peers_table_is_aligned_like_consul() {
        let conf: RaftConfiguration = serde_json::from_str(
            r#"{"Servers":[
                {"ID":"e35bde83-4e9c-434f-a6ef-453f44ee21ea","Node":"alice","Address":"10.0.1.8:8300","Leader":true,"Voter":true,"ProtocolVersion":"3"},
                {"ID":"a7f1c0e2-1111-2222-3333-444455556666","Node":"bob-server","Address":"10.0.1.9:8300","Leader":false,"Voter":false}
            ],"Index":22}"#,
        )
        .unwrap();
        let expected = "\
Node        ID                                    Address        State     Voter  RaftProtocol
alice       e35bde83-4e9c-434f-a6ef-453f44ee21ea  10.0.1.8:8300  leader    true   3
bob-server  a7f1c0e2-1111-2222-3333-444455556666  10.0.1.9:8300  follower  false  <=1";
        assert_eq!(peers_table(&conf), expected);
    }
}
