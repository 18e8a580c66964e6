//! `meridian keyring`: Consul's `consul keyring -list | -list-primary | -install | -use |
//! -remove` against `/v1/operator/keyring`, with Consul's output (`dc1 (LAN):` blocks of
//! `KEY [held/nodes]` lines) and error text (`error: ...`, exit 1). `-wan` points -install,
//! -use and -remove at the WAN pool's separate keyring.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Deserialize;

use super::CliError;
use super::client::{ApiClient, HttpFlags};

/// `keyring [-list | -list-primary | -install KEY | -use KEY | -remove KEY]`
#[derive(Debug, clap::Args)]
pub struct KeyringArgs {
    /// List the gossip keys installed on the members.
    #[arg(long)]
    pub list: bool,
    /// List the primary gossip key of the members.
    #[arg(long = "list-primary")]
    pub list_primary: bool,
    /// Install a new gossip key on every member.
    #[arg(long, value_name = "KEY")]
    pub install: Option<String>,
    /// Make an installed key the primary on every member.
    #[arg(long = "use", value_name = "KEY")]
    pub use_key: Option<String>,
    /// Remove a (non-primary) key from every member.
    #[arg(long, value_name = "KEY")]
    pub remove: Option<String>,
    /// Install, use or remove the key on the WAN pool (every datacenter's gateways) rather
    /// than this datacenter's LAN pool. Meridian keeps the two keyrings separate.
    #[arg(long)]
    pub wan: bool,
    /// With -list: this agent's keyring only, without asking other members.
    #[arg(long = "local-only")]
    pub local_only: bool,
    /// How many extra members relay each reply (0-5). Accepted for Consul compatibility;
    /// replies are currently sent straight to the asking agent.
    #[arg(long = "relay-factor", default_value_t = 0)]
    pub relay_factor: u8,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Block {
    #[serde(rename = "WAN")]
    wan: bool,
    datacenter: String,
    #[serde(default)]
    keys: BTreeMap<String, usize>,
    #[serde(default)]
    primary_keys: BTreeMap<String, usize>,
    num_nodes: usize,
}

/// Runs `keyring`.
pub async fn run(a: KeyringArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let actions = [
        a.list,
        a.list_primary,
        a.install.is_some(),
        a.use_key.is_some(),
        a.remove.is_some(),
    ];
    match actions.iter().filter(|x| **x).count() {
        0 => {
            return Err(CliError::msg(
                "Usage: meridian keyring [-list | -list-primary | -install KEY | -use KEY | -remove KEY]",
            ));
        }
        1 => {}
        _ => return Err(CliError::msg("Only a single action is allowed")),
    }
    if a.relay_factor > 5 {
        return Err(CliError::msg("Error: Relay factor must be 5 or less"));
    }
    if a.local_only && !(a.list || a.list_primary) {
        return Err(CliError::msg("Local-only can only be used with -list"));
    }
    let client = ApiClient::new(&a.http, None)
        .map_err(CliError::http("Error connecting to Consul agent"))?;
    let mut query = vec![("relay-factor", a.relay_factor.to_string())];
    if a.local_only {
        query.push(("local-only", "true".into()));
    }
    if a.wan {
        query.push(("wan", "true".into()));
    }
    let path = "/v1/operator/keyring";
    let fail = |e| CliError::msg(format!("error: {e}"));
    if a.list || a.list_primary {
        writeln!(out, "==> Gathering installed encryption keys...")?;
        let blocks: Vec<Block> = client
            .get_json(path, &query)
            .await
            .map_err(fail)?
            .unwrap_or_default();
        for b in blocks {
            let pool = if b.wan {
                "WAN".to_string()
            } else {
                format!("{} (LAN)", b.datacenter)
            };
            writeln!(out, "\n{pool}:")?;
            let keys = if a.list_primary {
                &b.primary_keys
            } else {
                &b.keys
            };
            for (key, n) in keys {
                writeln!(out, "  {key} [{n}/{}]", b.num_nodes)?;
            }
        }
        return Ok(());
    }
    let body = |key: &str| serde_json::json!({ "Key": key }).to_string().into_bytes();
    if let Some(key) = &a.install {
        writeln!(out, "==> Installing new gossip encryption key...")?;
        client.post(path, &query, body(key)).await.map_err(fail)?;
    } else if let Some(key) = &a.use_key {
        writeln!(out, "==> Changing primary gossip encryption key...")?;
        client.put(path, &query, body(key)).await.map_err(fail)?;
    } else if let Some(key) = &a.remove {
        writeln!(out, "==> Removing gossip encryption key...")?;
        client
            .delete_with(path, &query, Some(body(key)))
            .await
            .map_err(fail)?;
    }
    Ok(())
}
