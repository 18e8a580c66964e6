//! `meridian catalog datacenters|nodes|services`: Consul's `consul catalog` listings over
//! `/v1/catalog/*`, with the same columns and messages (`command/catalog/list/*`).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Deserialize;

use super::CliError;
use super::client::{ApiClient, HttpFlags, ServerFlags};
use super::table::{columnize, tabwrite};

/// `catalog` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CatalogCommand {
    /// List known datacenters.
    Datacenters(DatacentersArgs),
    /// List nodes in a datacenter.
    Nodes(NodesArgs),
    /// List services in a datacenter.
    Services(ServicesArgs),
}

/// `catalog datacenters`
#[derive(Debug, clap::Args)]
pub struct DatacentersArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// `catalog nodes [-detailed]`
#[derive(Debug, clap::Args)]
pub struct NodesArgs {
    /// Show full node IDs, tagged addresses and metadata.
    #[arg(long)]
    pub detailed: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerFlags,
}

/// `catalog services [-tags]`
#[derive(Debug, clap::Args)]
pub struct ServicesArgs {
    /// Show each service's tags.
    #[arg(long)]
    pub tags: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub server: ServerFlags,
}

/// One entry of `GET /v1/catalog/nodes`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CatalogNode {
    /// Node UUID.
    #[serde(rename = "ID")]
    pub id: String,
    /// Node name.
    pub node: String,
    /// Node address.
    pub address: String,
    /// Datacenter.
    pub datacenter: String,
    /// `lan`, `wan`, ... addresses.
    pub tagged_addresses: Option<BTreeMap<String, String>>,
    /// Node metadata.
    pub meta: Option<BTreeMap<String, String>>,
}

/// Runs a `catalog` subcommand.
pub async fn run(cmd: CatalogCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        CatalogCommand::Datacenters(a) => datacenters(a, out).await,
        CatalogCommand::Nodes(a) => nodes(a, out).await,
        CatalogCommand::Services(a) => services(a, out).await,
    }
}

fn connect(http: &HttpFlags, server: Option<&ServerFlags>) -> Result<ApiClient, CliError> {
    ApiClient::new(http, server).map_err(CliError::http("Error connecting to Consul agent"))
}

async fn datacenters(a: DatacentersArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let client = connect(&a.http, None)?;
    let dcs: Vec<String> = client
        .get_json("/v1/catalog/datacenters", &[])
        .await
        .map_err(CliError::http("Error listing datacenters"))?
        .unwrap_or_default();
    if dcs.is_empty() {
        return Err(CliError::msg("No datacenters found"));
    }
    for dc in dcs {
        writeln!(out, "{dc}")?;
    }
    Ok(())
}

async fn nodes(a: NodesArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let client = connect(&a.http, Some(&a.server))?;
    let nodes: Vec<CatalogNode> = client
        .get_json("/v1/catalog/nodes", &[])
        .await
        .map_err(CliError::http("Error listing nodes"))?
        .unwrap_or_default();
    if nodes.is_empty() {
        // Consul prints this to stderr but exits 0.
        eprintln!("No nodes match the given query - try expanding your search.");
        return Ok(());
    }
    writeln!(out, "{}", nodes_table(&nodes, a.detailed))?;
    Ok(())
}

/// Consul's `NodesHeader`/`NodeRow` table.
pub(crate) fn nodes_table(nodes: &[CatalogNode], detailed: bool) -> String {
    let mut rows = vec![if detailed {
        ["Node", "ID", "Address", "DC", "TaggedAddresses", "Meta"]
            .map(String::from)
            .to_vec()
    } else {
        ["Node", "ID", "Address", "DC"].map(String::from).to_vec()
    }];
    for n in nodes {
        if detailed {
            rows.push(vec![
                n.node.clone(),
                n.id.clone(),
                n.address.clone(),
                n.datacenter.clone(),
                map_to_kv(n.tagged_addresses.as_ref()),
                map_to_kv(n.meta.as_ref()),
            ]);
        } else {
            // Only the first group of the UUID, as Consul shortens it.
            let id = match n.id.find('-') {
                Some(i) if i > 0 => n.id[..i].to_string(),
                _ => n.id.clone(),
            };
            rows.push(vec![
                n.node.clone(),
                id,
                n.address.clone(),
                n.datacenter.clone(),
            ]);
        }
    }
    columnize(&rows)
}

/// `k1=v1, k2=v2`, sorted by key.
fn map_to_kv(m: Option<&BTreeMap<String, String>>) -> String {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
    .unwrap_or_default()
}

async fn services(a: ServicesArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let client = connect(&a.http, Some(&a.server))?;
    let services: BTreeMap<String, Option<Vec<String>>> = client
        .get_json("/v1/catalog/services", &[])
        .await
        .map_err(CliError::http("Error listing services"))?
        .unwrap_or_default();
    if services.is_empty() {
        eprintln!("No services match the given query - try expanding your search.");
        return Ok(());
    }
    if a.tags {
        let rows: Vec<(String, String)> = services
            .into_iter()
            .map(|(name, tags)| {
                let mut tags = tags.unwrap_or_default();
                tags.sort();
                (name, tags.join(","))
            })
            .collect();
        writeln!(out, "{}", tabwrite(&rows).trim())?;
    } else {
        for name in services.keys() {
            writeln!(out, "{name}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_table_shortens_ids() {
        let nodes = vec![CatalogNode {
            id: "1b662d97-8b5c-3cc2-0ac0-96f8a7a2a3d7".into(),
            node: "worker-01".into(),
            address: "10.4.5.31".into(),
            datacenter: "dc1".into(),
            ..CatalogNode::default()
        }];
        assert_eq!(
            nodes_table(&nodes, false),
            "Node       ID        Address    DC\nworker-01  1b662d97  10.4.5.31  dc1"
        );
    }
}
