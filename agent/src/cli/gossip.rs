//! `meridian join`, `meridian force-leave` and `meridian event`: the LAN gossip pool's
//! HTTP-API clients, with Consul's output text and exit codes (`command/join`,
//! `command/forceleave`, `command/event`).

use std::io::Write;

use serde::Deserialize;

use super::CliError;
use super::client::{ApiClient, HttpFlags};

/// `join [-wan] ADDR...`
#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// Join the WAN pool (servers only).
    #[arg(long)]
    pub wan: bool,
    /// Gossip addresses of agents to join (`host[:port]`, port 8301 by default).
    #[arg(value_name = "ADDR")]
    pub addrs: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// `force-leave [-prune] NODE`
#[derive(Debug, clap::Args)]
pub struct ForceLeaveArgs {
    /// Remove the node from the member list entirely instead of leaving it `left`.
    #[arg(long)]
    pub prune: bool,
    /// Name of the failed node.
    #[arg(value_name = "NODE")]
    pub node: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// `event -name NAME [-node RE] [-service RE] [-tag RE] [PAYLOAD]` (Consul), or serf's
/// `event NAME [PAYLOAD]` when `-name` is not given.
#[derive(Debug, clap::Args)]
pub struct EventArgs {
    /// Event name (without it, the first argument is the name, as in `serf event NAME`).
    #[arg(long, default_value = "")]
    pub name: String,
    /// Regular expression on node names.
    #[arg(long, default_value = "")]
    pub node: String,
    /// Regular expression on service names.
    #[arg(long, default_value = "")]
    pub service: String,
    /// Regular expression on service tags (needs -service).
    #[arg(long, default_value = "")]
    pub tag: String,
    /// Optional payload (preceded by the name when `-name` is not given).
    #[arg(value_name = "PAYLOAD")]
    pub payload: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

fn client(http: &HttpFlags) -> Result<ApiClient, CliError> {
    ApiClient::new(http, None).map_err(CliError::http("Error connecting to Consul agent"))
}

/// Runs `join`: each address is tried; success if any joined.
pub async fn join(a: JoinArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if a.addrs.is_empty() {
        return Err(CliError::msg(
            "At least one address to join must be specified.",
        ));
    }
    let client = client(&a.http)?;
    let query = if a.wan {
        vec![("wan", "1".to_string())]
    } else {
        Vec::new()
    };
    let mut joined = 0;
    for addr in &a.addrs {
        match client
            .put(&format!("/v1/agent/join/{addr}"), &query, Vec::new())
            .await
        {
            Ok(_) => joined += 1,
            Err(e) => eprintln!("Error joining address '{addr}': {e}"),
        }
    }
    if joined == 0 {
        return Err(CliError::msg("Failed to join any nodes."));
    }
    writeln!(
        out,
        "Successfully joined cluster by contacting {joined} nodes."
    )?;
    Ok(())
}

/// Runs `force-leave`.
pub async fn force_leave(a: ForceLeaveArgs, _out: &mut dyn Write) -> Result<(), CliError> {
    let [node] = a.node.as_slice() else {
        return Err(CliError::msg(
            "A node name must be specified to force leave.",
        ));
    };
    let query = if a.prune {
        vec![("prune", "1".to_string())]
    } else {
        Vec::new()
    };
    client(&a.http)?
        .put(&format!("/v1/agent/force-leave/{node}"), &query, Vec::new())
        .await
        .map_err(CliError::http("Error force leaving"))?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Fired {
    #[serde(rename = "ID")]
    id: String,
}

/// Runs `event`: prints `Event ID: ...`.
pub async fn event(mut a: EventArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if a.name.is_empty() {
        // serf's form: `event NAME [PAYLOAD]`.
        if a.payload.is_empty() {
            return Err(CliError::msg("Event name must be specified"));
        }
        a.name = a.payload.remove(0);
    }
    if a.payload.len() > 1 {
        return Err(CliError::msg("Too many command line arguments"));
    }
    for (what, re) in [("node", &a.node), ("service", &a.service), ("tag", &a.tag)] {
        if let Err(e) = regex::Regex::new(re) {
            return Err(CliError::msg(format!(
                "Failed to compile {what} filter regexp: {e}"
            )));
        }
    }
    if !a.tag.is_empty() && a.service.is_empty() {
        return Err(CliError::msg(
            "Cannot provide tag filter without service filter.",
        ));
    }
    let query: Vec<(&str, String)> = [("node", &a.node), ("service", &a.service), ("tag", &a.tag)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, v.clone()))
        .collect();
    let payload = a.payload.first().cloned().unwrap_or_default().into_bytes();
    let body = client(&a.http)?
        .put(&format!("/v1/event/fire/{}", a.name), &query, payload)
        .await
        .map_err(CliError::http("Error firing event"))?;
    let fired: Fired = serde_json::from_slice(&body)
        .map_err(|e| CliError::msg(format!("Error firing event: invalid response: {e}")))?;
    writeln!(out, "Event ID: {}", fired.id)?;
    Ok(())
}
