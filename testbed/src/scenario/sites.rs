//! The three datacenters of `examples/beyond.toml` as the `beyond` and `failure-matrix`
//! scenarios use them, and what both do before they measure: the WAN pool sorted by round
//! trip from the first DC, the `web` service registered in the second and third DC only
//! (`api` in the first), one timed request.
//!
//! No assertions here beyond "the testbed has what the scenarios need" (a precondition
//! error otherwise).

use std::time::Duration;

use super::{ScenarioError, stream};
use crate::error::TestbedError;
use crate::helper::ReadRecord;
use crate::plan::{HostPlan, Role};
use crate::probe;
use crate::state::State;
use crate::wait;

/// The service registered in the second and third datacenter only.
pub(super) const WEB: &str = "web";
/// The service registered in the first datacenter only.
pub(super) const API: &str = "api";
/// Deadline for the WAN pool to sort and for registrations to reach a catalog.
pub(super) const SETTLE: Duration = Duration::from_secs(90);

/// One datacenter and its hosts.
#[derive(Debug, Clone)]
pub(super) struct Site {
    /// Its name.
    pub(super) name: String,
    /// Where requests are made from: its first client, else its first server.
    pub(super) asker: HostPlan,
    /// Its servers, in plan order.
    pub(super) servers: Vec<HostPlan>,
    /// Its gateways, in plan order.
    pub(super) gateways: Vec<HostPlan>,
}

impl Site {
    /// The host a service is registered on (its asker) and whose address answers for it.
    pub(super) fn instance(&self) -> &HostPlan {
        &self.asker
    }
}

/// The first (near: requests come from here), second (nearer) and third (farther) DC.
#[derive(Debug, Clone)]
pub(super) struct Sites {
    /// Where requests come from; `api` lives here.
    pub(super) near: Site,
    /// `web`'s nearer datacenter (3 servers, replicating KV from `near`).
    pub(super) mid: Site,
    /// `web`'s farther datacenter.
    pub(super) far: Site,
}

impl Sites {
    /// The three datacenters in plan (name) order, each with a server and a gateway; the
    /// second needs 3 servers and a client, the first a client and 2 gateways.
    pub(super) fn pick(state: &State, scenario: &'static str) -> Result<Sites, TestbedError> {
        let site = |i: usize| -> Option<Site> {
            let d = state.plan.dcs.get(i)?;
            let hosts = |role| -> Vec<HostPlan> {
                state
                    .plan
                    .hosts
                    .iter()
                    .filter(|h| h.dc == d.name && h.role == role)
                    .cloned()
                    .collect()
            };
            let (servers, clients, gateways) = (
                hosts(Role::Server),
                hosts(Role::Client),
                hosts(Role::Gateway),
            );
            let asker = clients.first().or(servers.first())?.clone();
            (!gateways.is_empty()).then(|| Site {
                name: d.name.clone(),
                asker,
                servers,
                gateways,
            })
        };
        let need = || ScenarioError::Precondition {
            name: scenario,
            needs: "examples/beyond.toml's shape: 3 datacenters with gateways (`up --gateway`), \
                    the first with a client and 2 gateways, the second with 3 servers and a client"
                .into(),
        };
        let (Some(near), Some(mid), Some(far)) = (site(0), site(1), site(2)) else {
            return Err(need().into());
        };
        let shaped = near.asker.role == Role::Client
            && near.gateways.len() >= 2
            && mid.servers.len() >= 3
            && mid.asker.role == Role::Client
            && state.processes.contains_key(&near.gateways[0].name);
        if !shaped {
            return Err(need().into());
        }
        Ok(Sites { near, mid, far })
    }

    /// Registers `web` on the second and third DC's instance hosts and `api` on the
    /// first's; waits until each is in its own DC's catalog and the first DC lists the
    /// datacenters nearest first (itself, the second, the third: `?dc=any` depends on it).
    pub(super) async fn prepare(&self, state: &State) -> Result<(), TestbedError> {
        for (site, svc) in [(&self.near, API), (&self.mid, WEB), (&self.far, WEB)] {
            let body = serde_json::json!({ "Name": svc, "ID": svc, "Port": 8080 });
            let host = site.instance();
            let r = probe::put(
                &state.testbed,
                host,
                "/v1/agent/service/register",
                &body.to_string(),
            )
            .await?;
            if r.status != Some(200) {
                return Err(ScenarioError::Step(format!(
                    "registering {svc} on {}: {:?} {}",
                    host.name, r.status, r.body
                ))
                .into());
            }
            let path = format!("/v1/catalog/service/{svc}");
            wait::until(
                &format!("{svc} in {}'s catalog", site.name),
                SETTLE,
                "",
                || async {
                    let r = get(state, &site.servers[0], &path).await;
                    let rows: Vec<serde_json::Value> = serde_json::from_str(&r.body).ok()?;
                    (!rows.is_empty()).then_some(())
                },
            )
            .await?;
        }
        let want = [&self.near.name, &self.mid.name, &self.far.name];
        wait::until(
            &format!("{} listing the datacenters as {want:?}", self.near.name),
            SETTLE,
            "",
            || async {
                let r = get(state, &self.near.asker, "/v1/catalog/datacenters").await;
                let got: Vec<String> = serde_json::from_str(&r.body).ok()?;
                (got.iter().collect::<Vec<_>>() == want).then_some(())
            },
        )
        .await
    }
}

/// One timed GET of `path` from `host`'s agent (a record with an error when the helper
/// could not run).
pub(super) async fn get(state: &State, host: &HostPlan, path: &str) -> ReadRecord {
    one(state, host, path, None).await
}

/// One timed PUT of `body` to `path` on `host`'s agent.
pub(super) async fn put(state: &State, host: &HostPlan, path: &str, body: &str) -> ReadRecord {
    one(state, host, path, Some(body)).await
}

async fn one(state: &State, host: &HostPlan, path: &str, put: Option<&str>) -> ReadRecord {
    let url = stream::url(host, path);
    match stream::once_with(state, host, &[url], put).await {
        Ok(mut r) if !r.is_empty() => r.swap_remove(0),
        Ok(_) => ReadRecord {
            error: Some("no record from the helper".into()),
            ..ReadRecord::default()
        },
        Err(e) => ReadRecord {
            error: Some(e.to_string()),
            ..ReadRecord::default()
        },
    }
}

/// `status ms header=value ... body` of a record, for check details.
pub(super) fn brief(r: &ReadRecord) -> String {
    let headers: Vec<String> = r
        .headers
        .iter()
        .filter(|(k, _)| k.starts_with("x-meridian") || k.as_str() == "x-consul-knownleader")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{:?} in {:.0} ms [{}] {:.160}{}",
        r.status,
        r.ms,
        headers.join(" "),
        r.body.trim(),
        r.error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    )
}

/// The node addresses of a `/v1/health/service` or `/v1/catalog/service` answer.
pub(super) fn addresses(body: &str) -> Vec<String> {
    let Ok(rows) = serde_json::from_str::<Vec<serde_json::Value>>(body) else {
        return Vec::new();
    };
    rows.iter()
        .filter_map(|r| {
            r["Node"]["Address"]
                .as_str()
                .or(r["Address"].as_str())
                .map(str::to_string)
        })
        .collect()
}
