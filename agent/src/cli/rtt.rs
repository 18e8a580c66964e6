//! `meridian rtt NODE1 [NODE2]`: the estimated round trip between two nodes from their LAN
//! coordinates in the catalog (`/v1/coordinate/nodes`), printed as Consul's `consul rtt`
//! does. With one node, the other is the agent's own node. `-wan` compares two members of
//! the WAN pool (`<gateway>.<dc>`) by their WAN coordinates (`/v1/coordinate/datacenters`).

use std::io::Write;

use serde::Deserialize;

use super::CliError;
use super::client::{ApiClient, HttpFlags};
use crate::gossip::coordinate::Coordinate;

/// `rtt [-wan] NODE1 [NODE2]`
#[derive(Debug, clap::Args)]
pub struct RttArgs {
    /// Use WAN coordinates (server names as `node.dc`).
    #[arg(long)]
    pub wan: bool,
    /// One or two node names.
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    node: String,
    coord: Coordinate,
}

/// Runs `rtt`.
pub async fn run(a: RttArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let (n1, n2) = match a.nodes.as_slice() {
        [n1] => (n1.clone(), None),
        [n1, n2] => (n1.clone(), Some(n2.clone())),
        _ => return Err(CliError::msg("One or two node names must be specified")),
    };
    let client = ApiClient::new(&a.http, None)
        .map_err(CliError::http("Error connecting to Consul agent"))?;
    if a.wan {
        return wan(&client, &n1, n2.as_deref(), out).await;
    }
    let n2 = match n2 {
        Some(n) => n,
        None => {
            let me: serde_json::Value = client
                .get_json("/v1/agent/self", &[])
                .await
                .map_err(CliError::http("Unable to look up agent info"))?
                .unwrap_or_default();
            me["Config"]["NodeName"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    let rows: Vec<Row> = client
        .get_json("/v1/coordinate/nodes", &[])
        .await
        .map_err(CliError::http("Error getting coordinates"))?
        .unwrap_or_default();
    let find = |name: &str| {
        rows.iter()
            .find(|r| r.node == name)
            .map(|r| &r.coord)
            .ok_or_else(|| CliError::msg(format!("Could not find a coordinate for node {name:?}")))
    };
    let (c1, c2) = (find(&n1)?, find(&n2)?);
    let ms = c1.distance_to(c2).as_secs_f64() * 1000.0;
    writeln!(
        out,
        "Estimated {n1} <-> {n2} rtt: {ms:.3} ms (using LAN coordinates)"
    )?;
    Ok(())
}

/// One datacenter of `/v1/coordinate/datacenters`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DcRows {
    datacenter: String,
    coordinates: Vec<Row>,
}

/// `rtt -wan N1 N2`: WAN names are `node.dc`, as `members -wan` lists them.
async fn wan(
    client: &ApiClient,
    n1: &str,
    n2: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let Some(n2) = n2 else {
        return Err(CliError::msg(
            "-wan needs two WAN member names (node.dc, as `members -wan` lists them): the WAN pool is the gateways'",
        ));
    };
    let dcs: Vec<DcRows> = client
        .get_json("/v1/coordinate/datacenters", &[])
        .await
        .map_err(CliError::http("Error getting coordinates"))?
        .unwrap_or_default();
    let find = |name: &str| {
        dcs.iter()
            .flat_map(|d| d.coordinates.iter().map(move |r| (d, r)))
            .find(|(d, r)| format!("{}.{}", r.node, d.datacenter) == name)
            .map(|(_, r)| &r.coord)
            .ok_or_else(|| CliError::msg(format!("Could not find a coordinate for node {name:?}")))
    };
    let (c1, c2) = (find(n1)?, find(n2)?);
    let ms = c1.distance_to(c2).as_secs_f64() * 1000.0;
    writeln!(
        out,
        "Estimated {n1} <-> {n2} rtt: {ms:.3} ms (using WAN coordinates)"
    )?;
    Ok(())
}
