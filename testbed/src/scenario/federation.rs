//! Scenario `federation`: datacenters joined by `meridian-gateway`s (≥ 2 DCs, each with a
//! running server and gateway; 3 DCs and a DC with 2 gateways for the fault phases).
//!
//! 1. Only gateways route to other DCs (`ip route get` from every host), and the WAN pool
//!    converges: every server lists every gateway alive (`/v1/agent/members?wan=1`) and
//!    every DC lists every DC (`/v1/catalog/datacenters`).
//! 2. From every DC to every other (`matrix`): a KV PUT with `?dc=B` lands in B (and not in
//!    A), `/v1/catalog/service` and `/v1/health/service` with `?dc=B` answer B's instance,
//!    and DNS `<svc>.service.B.consul` and `<node>.node.B.consul` answer B's addresses; an
//!    unknown DC is a fast `No path to datacenter` (HTTP 500) and NXDOMAIN.
//! 3. Latency: `?dc=` reads against local reads from the same host, p50/p99.
//! 4. Gateway failover (`faults`): while a DC reads another DC with two gateways 20 times
//!    a second, each of its gateways in turn is SIGKILLed and restarted: no read fails.
//! 5. WAN blackhole between the first and third DC: reads to the second DC still succeed,
//!    reads to the third fail with `rpc error: datacenter "..."` within 8 s (never hang), or
//!    at once with `datacenter "..." unavailable` once its circuit breaker opened,
//!    and DNS answers from the gateways' copy of its catalog within 3 s; after the restore
//!    the third DC answers again (timed).
//! 6. `/v1/catalog/datacenters` is sorted by WAN round trip (as the topology's link delays
//!    say, where they differ by ≥ 10 ms), polled in the background from the start.
//!
//! Then, while every DC reads every other DC with `?dc=` 10 times a second (`load`), and
//! with no failed read allowed:
//!
//! 7. WAN key rotation (`wan_keys`; with `[gossip] encrypt_wan`): `meridian keyring -wan
//!    -install/-use/-remove` from the first DC's server; every gateway then holds the new
//!    key alone, each DC's LAN key is unchanged, the WAN pool is converged.
//! 8. Certificate rotation (`certs`; with `[tls] enabled`): a new CA rolled out host by
//!    host in three SIGHUP'd steps (trust both, new certificates, new CA only), each
//!    process checked by handshakes with its RPC ports and its `Stats.tls`; then every
//!    RPC connection is ended and every DC reaches every other over new connections.
//! 9. remove-dc (`remove_dc`, last: it changes the federation; the other DCs read each
//!    other): refused while the last DC has a gateway alive; its gateways stopped and
//!    seen gone, `operator federation remove-dc` takes it out of every
//!    `/v1/catalog/datacenters` within 10 s and `?dc=` it is a fast `No path to
//!    datacenter`; its gateways restarted, it rejoins.
//!
//! The report has the checks, ok/failed counts per phase, latencies, and every timed read
//! of the loads (drawn as a latency timeline with the kills, the blackhole, the restore,
//! the rotations and the removal).

mod certs;
mod faults;
mod handshake;
mod load;
mod matrix;
mod remove_dc;
mod sorted;
mod wan_keys;

use std::collections::BTreeMap;

use super::{Report, ScenarioError, dig, plot, stream};
use crate::error::TestbedError;
use crate::gateways;
use crate::helper::{ReadRecord, unix_ms};
use crate::netns;
use crate::out::Progress;
use crate::plan::{HostPlan, Role};
use crate::preflight;
use crate::state::{RunDir, State};
use stream::{answered, percentile, url};

/// Back-to-back reads per target in the latency phase.
const LATENCY_ROUNDS: usize = 40;

/// One federated datacenter and the hosts the scenario uses in it.
#[derive(Debug, Clone)]
pub(super) struct Dc {
    /// Its name.
    pub(super) name: String,
    /// Where its requests are made: a client if it has one running, else a server.
    pub(super) asker: HostPlan,
    /// A running server (local read-backs, WAN member lists).
    pub(super) server: HostPlan,
    /// Its running gateways.
    pub(super) gateways: Vec<HostPlan>,
}

/// What every phase shares.
#[derive(Debug, Clone)]
pub(super) struct Fed {
    /// The federated DCs, in plan order.
    pub(super) dcs: Vec<Dc>,
    /// KV prefix of this run's keys.
    pub(super) prefix: String,
    /// The service registered in every DC (on its asker).
    pub(super) service: String,
    /// The scenario's start, wall-clock milliseconds.
    pub(super) t0_ms: u64,
}

impl Fed {
    /// Seconds since the start for a wall-clock millisecond time.
    pub(super) fn t(&self, unix_ms: f64) -> f64 {
        (unix_ms - self.t0_ms as f64) / 1000.0
    }

    /// Seconds since the start, now.
    pub(super) fn now(&self) -> f64 {
        self.t(unix_ms() as f64)
    }

    /// Key `<prefix>/<name>`'s path, with `query` (`?raw&dc=dc2`).
    pub(super) fn kv(&self, name: &str, query: &str) -> String {
        format!("/v1/kv/{}/{name}{query}", self.prefix)
    }
}

/// Runs the scenario, filling `report`.
pub(super) async fn run(
    run_dir: &RunDir,
    state: &mut State,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    preflight::require_tool("dig", "bind9-dnsutils")?;
    if state.tls.is_some() {
        // The certificate rotation shakes hands with RPC ports and reads fingerprints.
        preflight::require_tool("openssl", "openssl")?;
    }
    let fed = pick(state, report.started_unix)?;
    let names: Vec<&str> = fed.dcs.iter().map(|d| d.name.as_str()).collect();
    report.facts.insert("datacenters".into(), names.join(","));
    report.facts.insert("key_prefix".into(), fed.prefix.clone());
    report.facts.insert("service".into(), fed.service.clone());
    for d in &fed.dcs {
        let gws: Vec<&str> = d.gateways.iter().map(|g| g.name.as_str()).collect();
        report.facts.insert(
            format!("{}_hosts", d.name),
            format!(
                "asks from {}, server {}, gateways {}",
                d.asker.name,
                d.server.name,
                gws.join(",")
            ),
        );
    }
    let sorting = sorted::Poller::start(state, &fed);
    matrix::routes(state, &fed, report).await;
    progress.say(&format!("waiting for the WAN pool of {}", names.join(", ")));
    matrix::converge(state, &fed, report).await?;
    matrix::seed(state, &fed, report).await?;
    progress.say("?dc= and DNS from every DC to every other");
    matrix::every_pair(state, &fed, report).await?;
    matrix::unknown_dc(state, &fed, report).await?;
    latency(state, &fed, report).await?;
    let failover = faults::gateway_failover(run_dir, state, &fed, report, progress).await;
    let blackhole = faults::blackhole(run_dir, state, &fed, report, progress).await;
    let wan_keys = wan_keys::rotate(run_dir, state, &fed, report, progress).await;
    let certs = certs::rotate(run_dir, state, &fed, report, progress).await;
    // The coordinates may take a while to sort the lists: the rotations ran meanwhile.
    // Before remove-dc, which takes a DC out of them.
    progress.say("waiting for /v1/catalog/datacenters sorted by WAN round trip");
    sorting.finish(report).await;
    let removal = remove_dc::remove(run_dir, state, &fed, report, progress).await;
    no_read_hangs(report);
    matrix::cleanup(state, &fed).await;
    let path = report.plot_path(run_dir, "queries");
    let title = format!("federation ({}): cross-DC reads", report.run);
    match plot::queries(&path, &title, &report.queries, &report.events) {
        Ok(()) => report.plots.push(path),
        Err(e) => tracing::warn!(cause = %e, "drawing the query plot"),
    }
    failover
        .and(blackhole)
        .and(wan_keys)
        .and(certs)
        .and(removal)
}

/// The federated DCs: each with a running server and a running gateway.
fn pick(state: &State, started_unix: u64) -> Result<Fed, TestbedError> {
    let mut dcs = Vec::new();
    for d in &state.plan.dcs {
        let gws: Vec<HostPlan> = gateways::running_gateways(state, &d.name)
            .into_iter()
            .cloned()
            .collect();
        let Some(server) = gateways::running_server(state, &d.name).cloned() else {
            continue;
        };
        if gws.is_empty() {
            continue;
        }
        let client = state
            .plan
            .hosts
            .iter()
            .find(|h| h.dc == d.name && h.role == Role::Client)
            .filter(|h| state.processes.contains_key(&h.name));
        dcs.push(Dc {
            name: d.name.clone(),
            asker: client.cloned().unwrap_or_else(|| server.clone()),
            server,
            gateways: gws,
        });
    }
    if dcs.len() < 2 {
        return Err(ScenarioError::Precondition {
            name: "federation",
            needs: "2 or more datacenters, each with a running server and gateway (`up --gateway PATH`)"
                .into(),
        }
        .into());
    }
    Ok(Fed {
        dcs,
        prefix: format!("testbed/federation/{started_unix}"),
        service: format!("fed-{started_unix}"),
        t0_ms: started_unix * 1000,
    })
}

/// `?dc=` reads against local reads from the first DC's asker, back to back in one helper:
/// its own DC's `whoami` key, then every other DC's (each answers its own name).
async fn latency(state: &State, fed: &Fed, report: &mut Report) -> Result<(), TestbedError> {
    let from = &fed.dcs[0];
    // (timing key, the DC that answers, query)
    let mut targets = vec![(
        format!("{}_local", from.name),
        from.name.clone(),
        String::new(),
    )];
    for d in fed.dcs.iter().skip(1) {
        let label = format!("{}_to_{}", from.name, d.name);
        targets.push((label, d.name.clone(), format!("&dc={}", d.name)));
    }
    let urls: Vec<String> = (0..LATENCY_ROUNDS)
        .flat_map(|_| targets.iter())
        .map(|(_, _, q)| url(&from.asker, &fed.kv("whoami", &format!("?raw{q}"))))
        .collect();
    let records = stream::once(state, &from.asker, &urls).await?;
    let mut failed = 0;
    let mut by_target: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (i, rec) in records.iter().enumerate() {
        let (_, expect, q) = &targets[i % targets.len()];
        // ASCII: the plot's font has no arrow.
        let stream = if q.is_empty() {
            format!("{} local reads", from.name)
        } else {
            format!("{}->{} reads", from.name, expect)
        };
        record(report, fed, &stream, rec, expect);
        if answered(rec, expect) {
            by_target.entry(i % targets.len()).or_default().push(rec.ms);
        } else {
            failed += 1;
        }
    }
    let mut detail = Vec::new();
    for (i, (label, _, _)) in targets.iter().enumerate() {
        let ms = by_target.get(&i).cloned().unwrap_or_default();
        for (p, name) in [(50.0, "p50"), (99.0, "p99")] {
            if let Some(v) = percentile(&ms, p) {
                report.timings.insert(format!("read_{label}_{name}_ms"), v);
            }
        }
        detail.push(format!(
            "{label} p50 {:.1} ms p99 {:.1} ms",
            percentile(&ms, 50.0).unwrap_or(f64::NAN),
            percentile(&ms, 99.0).unwrap_or(f64::NAN)
        ));
    }
    let total = records.len() as u64;
    report.counts.insert("latency_reads".into(), total);
    report
        .counts
        .insert("latency_reads_failed".into(), failed as u64);
    report.check(
        "latency_reads_all_answered",
        failed == 0 && records.len() == urls.len(),
        format!(
            "{} of {} reads from {} answered ({})",
            total - failed as u64,
            urls.len(),
            from.asker.name,
            detail.join("; ")
        ),
    );
    Ok(())
}

/// Adds `rec` (of the load `stream`, expecting `expect`) to the report's query samples.
pub(super) fn record(report: &mut Report, fed: &Fed, stream: &str, rec: &ReadRecord, expect: &str) {
    report.queries.push(super::timeline::QuerySample {
        t: fed.t(rec.sent_unix_ms as f64),
        stream: stream.to_string(),
        ms: rec.ms,
        ok: answered(rec, expect),
        status: rec.status,
    });
}

/// A phase's step that could not be carried out, as the phase's error.
pub(super) fn step_error(what: String) -> TestbedError {
    ScenarioError::Step(what).into()
}

/// Marks `what` on the plot's timeline, now.
pub(super) fn event(report: &mut Report, fed: &Fed, what: String) {
    report
        .events
        .push(super::timeline::Event { t: fed.now(), what });
}

/// Runs `meridian ARGS -http-addr http://<host>:8500` inside `host`'s namespace, as an
/// operator on that host would: its stdout, or its stderr as the error.
pub(super) async fn meridian_cli(
    state: &State,
    host: &HostPlan,
    args: &[&str],
) -> Result<String, String> {
    let exe = state.meridian.to_string_lossy();
    let addr = crate::probe::base_url(host);
    let mut argv = vec!["netns", "exec", host.netns.as_str(), exe.as_ref()];
    argv.extend(args);
    argv.extend(["-http-addr", addr.as_str()]);
    netns::run("ip", &argv, None).await.map_err(|e| match e {
        netns::NetError::Failed { stderr, .. } => stderr,
        other => other.to_string(),
    })
}

/// No cross-DC read of the whole scenario took longer than the 7 s bound plus 1 s.
fn no_read_hangs(report: &mut Report) {
    let slowest = report
        .queries
        .iter()
        .max_by(|a, b| a.ms.total_cmp(&b.ms))
        .cloned();
    let Some(s) = slowest else {
        return;
    };
    report.check(
        "no_cross_dc_read_hangs",
        s.ms <= faults::FAIL_WITHIN.as_secs_f64() * 1000.0,
        format!(
            "slowest of {} reads: {:.0} ms ({}, at {:.1}s; bound {:?})",
            report.queries.len(),
            s.ms,
            s.stream,
            s.t,
            faults::FAIL_WITHIN
        ),
    );
}
