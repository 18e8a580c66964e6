//! `meridian operator federation list | status | remove-dc DC | promote-primary DC`: the
//! federation as this datacenter's gateways see it, the clean removal of a datacenter that
//! is gone for good (its gateways stopped), and the move of the ACL primary to another
//! datacenter (`PUT /v1/operator/federation/primary`; which datacenters acknowledged it,
//! which were not reached and whose outcome is unknown), through `/v1/operator/federation`.

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
    /// Each datacenter's health as this server sees it: gateways, WAN round trip, circuit
    /// breaker, last contact, request latency p50/p99, and the gateway's copy of its catalog.
    Status(ListArgs),
    /// Remove a datacenter whose gateways are all stopped from the WAN pool, at once.
    RemoveDc(RemoveDcArgs),
    /// Make DC the ACL primary datacenter (needs acl:write); datacenters not reached now
    /// learn it when they are reachable again.
    PromotePrimary(PromoteArgs),
}

/// `operator federation promote-primary DC`
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    /// The datacenter to make the ACL primary.
    pub datacenter: String,
    /// The datacenter whose servers run the promotion (default: the agent's).
    #[arg(long = "datacenter", value_name = "DC")]
    pub via: Option<String>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub http: HttpFlags,
}

/// `PUT /v1/operator/federation/primary`'s answer.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Promoted {
    datacenter: String,
    epoch: u64,
    acknowledged: Vec<String>,
    not_reached: std::collections::BTreeMap<String, String>,
    unknown: std::collections::BTreeMap<String, String>,
    superseded: std::collections::BTreeMap<String, serde_json::Value>,
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
    breaker: Option<String>,
    retry_in_ms: Option<u64>,
    last_contact: Option<String>,
    request_p50_ms: Option<f64>,
    request_p99_ms: Option<f64>,
    copy: Option<Copy>,
}

/// A gateway's copy of a remote catalog.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Copy {
    index: u64,
    bytes: u64,
    age_ms: Option<u64>,
}

/// `index 1006, 539 KiB, 0.4s old`, or `-` without a copy.
fn copy(d: &Dc) -> String {
    match &d.copy {
        None => "-".into(),
        Some(c) => format!(
            "index {}, {} KiB, {}",
            c.index,
            c.bytes.div_ceil(1024),
            c.age_ms.map_or_else(
                || "never refreshed".into(),
                |ms| format!("{:.1}s old", ms as f64 / 1000.0)
            )
        ),
    }
}

async fn get_view(a: &ListArgs) -> Result<View, CliError> {
    let client =
        ApiClient::new(&a.http, None).map_err(CliError::http("Error initializing client"))?;
    Ok(client
        .get_json("/v1/operator/federation", &[])
        .await
        .map_err(|e| CliError::msg(format!("Error: {e}")))?
        .unwrap_or_default())
}

fn gateways(d: &Dc) -> String {
    format!("{}/{} alive", d.gateways_alive, d.gateways)
}

fn rtt(d: &Dc) -> String {
    d.rtt_ms
        .map_or_else(|| "unknown".into(), |ms| format!("{ms:.3}ms"))
}

/// Runs an `operator federation` subcommand.
pub async fn run(cmd: FederationCommand, out: &mut dyn Write) -> Result<(), CliError> {
    let fail = |e| CliError::msg(format!("Error: {e}"));
    match cmd {
        FederationCommand::List(a) => {
            let view = get_view(&a).await?;
            let mut rows = vec![vec![
                "Datacenter".to_string(),
                "Gateways".into(),
                "RTT".into(),
            ]];
            for d in view.datacenters {
                rows.push(vec![d.name.clone(), gateways(&d), rtt(&d)]);
            }
            writeln!(out, "{}", columnize(&rows))?;
        }
        FederationCommand::Status(a) => {
            let view = get_view(&a).await?;
            let mut rows = vec![
                [
                    "Datacenter",
                    "Gateways",
                    "RTT",
                    "Breaker",
                    "Last contact",
                    "p50/p99",
                    "Catalog copy",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for d in view.datacenters {
                let breaker = match (d.breaker.as_deref(), d.retry_in_ms) {
                    (None, _) => "(local)".to_string(),
                    (Some(b), Some(ms)) => format!("{b} (retry in {:.1}s)", ms as f64 / 1000.0),
                    (Some(b), None) => b.to_string(),
                };
                let latency = match (d.request_p50_ms, d.request_p99_ms) {
                    (Some(p50), Some(p99)) => format!("{p50:.1}/{p99:.1}ms"),
                    _ => "-".into(),
                };
                let contact = d.last_contact.clone().unwrap_or_else(|| "-".into());
                rows.push(vec![
                    d.name.clone(),
                    gateways(&d),
                    rtt(&d),
                    breaker,
                    contact,
                    latency,
                    copy(&d),
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
        FederationCommand::PromotePrimary(a) => promote(a, out).await?,
    }
    Ok(())
}

async fn promote(a: PromoteArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let server = super::client::ServerFlags {
        datacenter: a.via.clone(),
        stale: false,
    };
    let client = ApiClient::new(&a.http, Some(&server))
        .map_err(CliError::http("Error initializing client"))?;
    let body = serde_json::json!({ "Datacenter": a.datacenter }).to_string();
    let got = client
        .put("/v1/operator/federation/primary", &[], body.into_bytes())
        .await
        .map_err(|e| CliError::msg(format!("Error promoting {:?}: {e}", a.datacenter)))?;
    let p: Promoted = serde_json::from_slice(&got)
        .map_err(|e| CliError::msg(format!("Error decoding the answer: {e}")))?;
    writeln!(
        out,
        "ACL primary datacenter is now {:?} (epoch {})",
        p.datacenter, p.epoch
    )?;
    writeln!(out, "Acknowledged: {}", p.acknowledged.join(", "))?;
    for (dc, why) in &p.not_reached {
        writeln!(
            out,
            "Not reached: {dc} ({why}); it learns the move when reachable"
        )?;
    }
    for (dc, why) in &p.unknown {
        writeln!(out, "Outcome unknown: {dc} ({why})")?;
    }
    for (dc, held) in &p.superseded {
        writeln!(out, "Superseded: {dc} holds a newer choice {held}")?;
    }
    Ok(())
}
