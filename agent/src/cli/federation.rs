//! `meridian operator federation list | remove-dc DC`: the federation as this datacenter's
//! gateways see it, and the clean removal of a datacenter that is gone for good (its
//! gateways stopped), through `/v1/operator/federation`.

use std::io::Write;

use serde::Deserialize;

use super::CliError;
use super::client::{ApiClient, HttpFlags};
use super::table::columnize;

/// `operator federation` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum FederationCommand {
    /// List the datacenters with their gateways and WAN round trip, nearest first.
    List(ListArgs),
    /// Remove a datacenter whose gateways are all stopped from the WAN pool, at once.
    RemoveDc(RemoveDcArgs),
}

/// `operator federation list`
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// `operator federation remove-dc DC`
#[derive(Debug, clap::Args)]
pub struct RemoveDcArgs {
    /// The datacenter to remove.
    pub datacenter: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct View {
    datacenters: Vec<Dc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Dc {
    name: String,
    #[serde(rename = "RTTMs")]
    rtt_ms: Option<f64>,
    gateways_alive: usize,
    gateways: usize,
}

/// Runs an `operator federation` subcommand.
pub async fn run(cmd: FederationCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let fail = |e| CliError::msg(format!("Error: {e}"));
    match cmd {
        FederationCommand::List(a) => {
            let client = ApiClient::new(&a.http, None)
                .map_err(CliError::http("Error initializing client"))?;
            let view: View = client
                .get_json("/v1/operator/federation", &[])
                .await
                .map_err(fail)?
                .unwrap_or_default();
            let mut rows = vec![vec![
                "Datacenter".to_string(),
                "Gateways".into(),
                "RTT".into(),
            ]];
            for d in view.datacenters {
                let rtt = d
                    .rtt_ms
                    .map_or_else(|| "unknown".into(), |ms| format!("{ms:.3}ms"));
                rows.push(vec![
                    d.name,
                    format!("{}/{} alive", d.gateways_alive, d.gateways),
                    rtt,
                ]);
            }
            writeln!(out, "{}", columnize(&rows))?;
        }
        FederationCommand::RemoveDc(a) => {
            let client = ApiClient::new(&a.http, None)
                .map_err(CliError::http("Error initializing client"))?;
            let dc: String = form_urlencoded::byte_serialize(a.datacenter.as_bytes()).collect();
            let path = format!("/v1/operator/federation/datacenter/{dc}");
            let body = client.delete(&path, &[]).await.map_err(fail)?;
            let removed: Vec<String> = serde_json::from_slice(&body).unwrap_or_default();
            writeln!(
                out,
                "Removed datacenter {:?} from the federation ({} WAN member(s): {})",
                a.datacenter,
                removed.len(),
                removed.join(", ")
            )?;
        }
    }
    Ok(())
}
