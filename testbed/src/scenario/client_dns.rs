//! Scenario `client-dns`: a new client host joins a datacenter and registers a service;
//! every agent of the DC must answer the service over DNS.
//!
//! 1. A host `<dc>-c<n+1>` is added to the run (namespace, LAN port, address) and its agent
//!    started; the time until a server lists it alive (`/v1/agent/members`) and until it is
//!    in the catalog are recorded.
//! 2. A `_dns-wait` helper starts on every agent host of the DC, asking its own agent's DNS
//!    (127.0.0.1:8600) for `<service>.service.consul` every 10 ms.
//! 3. The service is registered on the new client (`PUT /v1/agent/service/register`); each
//!    host's time from the registration until its DNS answer holds the client's address is
//!    recorded, and drawn as a bar per host.
//! 4. Clean-up: the service is deregistered and the client stopped and removed again.

use std::time::Duration;

use rustix::process::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Report, ScenarioError, plot};
use crate::agents;
use crate::dns_wait::DnsSeen;
use crate::error::TestbedError;
use crate::netns;
use crate::out::Progress;
use crate::plan::{HostPlan, Role};
use crate::probe;
use crate::state::{RunDir, State};
use crate::wait;

/// Deadline of each step.
const STEP_DEADLINE: Duration = Duration::from_secs(30);

/// Runs the scenario, filling `report`.
pub(super) async fn run(
    run_dir: &RunDir,
    state: &mut State,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    let dc = pick(state)?;
    let Some(client) = state.plan.add_client(&dc) else {
        return Err(ScenarioError::Precondition {
            name: "client-dns",
            needs: format!("a free client address in {dc}"),
        }
        .into());
    };
    state.namespaces.push(client.netns.clone());
    run_dir.save(state)?;
    let outcome = joined_and_visible(run_dir, state, report, progress, &client).await;
    // Clean-up, whatever happened: the client leaves and its host goes.
    if state.processes.contains_key(&client.name) {
        let _ = agents::signal(state, &client.name, Signal::TERM).await;
    }
    state.processes.remove(&client.name);
    state.commands.remove(&client.name);
    netns::delete(&client.netns).await?;
    state.namespaces.retain(|n| n != &client.netns);
    state.plan.remove_host(&client.name);
    run_dir.save(state)?;
    progress.say(&format!("removed {} again", client.name));
    outcome
}

async fn joined_and_visible(
    run_dir: &RunDir,
    state: &mut State,
    report: &mut Report,
    progress: Progress,
    client: &HostPlan,
) -> Result<(), TestbedError> {
    let dc = client.dc.clone();
    report.facts.insert("datacenter".into(), dc.clone());
    report.facts.insert("client".into(), client.name.clone());
    netns::build_host(&state.plan, client).await?;
    let started = Instant::now();
    agents::start(state, run_dir, client)?;
    run_dir.save(state)?;
    progress.say(&format!(
        "{} ({}) started; waiting for it to join",
        client.name, client.lan_ip
    ));

    let Some(server) = state
        .plan
        .servers_of(&dc)
        .find(|s| state.processes.contains_key(&s.name))
        .cloned()
    else {
        return Err(TestbedError::NotRunning(format!("every server of {dc}")));
    };
    let joined = wait::until(
        "the new client alive in the LAN pool",
        STEP_DEADLINE,
        "",
        || async {
            let r = probe::get(&state.testbed, &server, &["/v1/agent/members"])
                .await
                .ok()?;
            let members: Vec<serde_json::Value> = serde_json::from_str(&r.first()?.body).ok()?;
            members
                .iter()
                .any(|m| m["Name"] == client.name.as_str() && m["Status"] == 1)
                .then_some(())
        },
    )
    .await;
    let joined_after = started.elapsed().as_secs_f64();
    report.check(
        "client_joins",
        joined.is_ok(),
        match &joined {
            Ok(()) => format!(
                "{} alive in {}'s member list {joined_after:.2}s after start",
                client.name, server.name
            ),
            Err(e) => e.to_string(),
        },
    );
    joined?;
    report
        .timings
        .insert("client_alive_after_start_s".into(), joined_after);

    let service = format!("web-{}", report.started_unix);
    report.facts.insert("service".into(), service.clone());
    let agents: Vec<HostPlan> = state
        .plan
        .hosts
        .iter()
        .filter(|h| h.dc == dc && h.role != Role::Gateway && state.processes.contains_key(&h.name))
        .cloned()
        .collect();
    let name = format!("{service}.service.consul");
    let mut waiters = Waiters::start(state, &agents, &name, client).await?;
    progress.say(&format!(
        "DNS waiters on {} hosts; registering {service} on {}",
        agents.len(),
        client.name
    ));
    let body = serde_json::json!({ "Name": service, "ID": service, "Port": 8080 }).to_string();
    let sent = Instant::now();
    let reg = probe::put(&state.testbed, client, "/v1/agent/service/register", &body).await?;
    let acked = sent.elapsed().as_secs_f64();
    report.check(
        "service_registered",
        reg.status == Some(200),
        format!(
            "{} on {}: {:?} after {acked:.3}s",
            service, client.name, reg.status
        ),
    );
    report
        .timings
        .insert("register_acknowledged_s".into(), acked);
    let seen = waiters.collect(sent).await;

    let mut bars = Vec::new();
    let mut missing = Vec::new();
    for h in &agents {
        let t = seen
            .iter()
            .find(|(n, _, _)| n == &h.name)
            .and_then(|(_, t, s)| s.seen.then_some(*t));
        match t {
            Some(t) => {
                report
                    .timings
                    .insert(format!("dns_visible_{}_s", h.name), t);
            }
            None => missing.push(h.name.clone()),
        }
        bars.push((h.name.clone(), t));
    }
    let slowest = bars.iter().filter_map(|b| b.1).fold(0.0, f64::max);
    report.check(
        "service_answered_by_dns_on_every_agent",
        missing.is_empty(),
        if missing.is_empty() {
            format!(
                "{name} → {} on all {} agents of {dc}; slowest after {slowest:.3}s",
                client.lan_ip,
                agents.len()
            )
        } else {
            format!(
                "not answered on {} within {STEP_DEADLINE:?}",
                missing.join(", ")
            )
        },
    );
    if missing.is_empty() {
        report
            .timings
            .insert("dns_visible_everywhere_s".into(), slowest);
    }
    let path = report.plot_path(run_dir, "dns");
    let title =
        format!("client-dns: seconds from registering {service} until each host's DNS answers it");
    match plot::bars(
        &path,
        &title,
        "seconds after the registration was sent",
        &bars,
    ) {
        Ok(()) => report.plots.push(path),
        Err(e) => tracing::warn!(cause = %e, "drawing the DNS plot"),
    }
    let dereg = format!("/v1/agent/service/deregister/{service}");
    let _ = probe::put(&state.testbed, client, &dereg, "").await;
    Ok(())
}

/// The first DC with a running server.
fn pick(state: &State) -> Result<String, TestbedError> {
    super::dc_with_servers(state, 1, "client-dns", "a datacenter with a running server")
}

// === impl Waiters ===

/// `_dns-wait` helpers, one per host, that have each answered their first query.
struct Waiters {
    children: Vec<(String, Child)>,
}

impl Waiters {
    /// Starts a waiter on every host in `hosts` and waits until each has made a query.
    async fn start(
        state: &State,
        hosts: &[HostPlan],
        name: &str,
        client: &HostPlan,
    ) -> Result<Waiters, TestbedError> {
        let mut children = Vec::new();
        for h in hosts {
            let child = netns::helper(&state.testbed, &h.netns, "_dns-wait")
                .args(["--name", name, "--expect", &client.lan_ip.to_string()])
                .args(["--timeout", &format!("{}s", STEP_DEADLINE.as_secs())])
                .spawn()
                .map_err(|source| TestbedError::Io {
                    what: format!("starting the DNS waiter on {}", h.name),
                    source,
                })?;
            children.push((h.name.clone(), child));
        }
        for (host, child) in &mut children {
            let ready = async {
                let stdout = child.stdout.as_mut()?;
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).await.ok()?;
                line.contains("ready").then_some(())
            };
            if tokio::time::timeout(STEP_DEADLINE, ready)
                .await
                .ok()
                .flatten()
                .is_none()
            {
                return Err(TestbedError::Timeout {
                    what: format!("the DNS waiter on {host} answering its first query"),
                    after: STEP_DEADLINE,
                    hint: String::new(),
                });
            }
        }
        Ok(Waiters { children })
    }

    /// Each host's result, stamped with the seconds from `since` to its arrival.
    async fn collect(&mut self, since: Instant) -> Vec<(String, f64, DnsSeen)> {
        let mut set = JoinSet::new();
        for (host, mut child) in self.children.drain(..) {
            set.spawn(async move {
                let stdout = child.stdout.take()?;
                let mut lines = BufReader::new(stdout).lines();
                let line = lines.next_line().await.ok()??;
                let t = since.elapsed().as_secs_f64();
                let _ = child.wait().await;
                Some((host, t, serde_json::from_str::<DnsSeen>(&line).ok()?))
            });
        }
        let mut out = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Ok(Some(r)) = done {
                out.push(r);
            }
        }
        out
    }
}
