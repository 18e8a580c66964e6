//! `meridian join` and `meridian force-leave`: the LAN gossip pool's HTTP-API clients, with
//! Consul's output text and exit codes (`command/join`, `command/forceleave`).

use std::io::Write;

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

/// `force-leave NODE`
#[derive(Debug, clap::Args)]
pub struct ForceLeaveArgs {
    /// Name of the failed node.
    #[arg(value_name = "NODE")]
    pub node: Vec<String>,
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
    client(&a.http)?
        .put(&format!("/v1/agent/force-leave/{node}"), &[], Vec::new())
        .await
        .map_err(CliError::http("Error force leaving"))?;
    Ok(())
}
