//! `meridian operator raft list-peers`: the raft configuration from
//! `GET /v1/operator/raft/configuration` (consul.md §2.11), as Consul's table.

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
}

/// `operator raft` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RaftCommand {
    /// Show the raft peer set.
    ListPeers(ListPeersArgs),
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
