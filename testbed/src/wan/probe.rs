//! `testbed wan probe FROM TO`: measures the WAN path between two gateway hosts with real
//! traffic — an `_echo` server in TO's namespace, `_ping` (UDP, then TCP) in FROM's — and
//! reports round trips, loss, and what the emulator counted on the link meanwhile.

use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::control::{Counters, Request, WanError, request};
use super::echo::PingReport;
use super::{LinkParams, WanLink};
use crate::error::TestbedError;
use crate::netns;
use crate::netns::run;
use crate::out::line;
use crate::plan::{HostPlan, Role};
use crate::state::{RunDir, State};

/// How long the echo server has to bind.
const ECHO_READY: Duration = Duration::from_secs(5);
/// TCP round trips per probe at most: one connection's sequential round trips take a
/// retransmission timeout each time a segment is lost, so many would be slow.
const TCP_ROUND_TRIPS: u64 = 20;

/// What to probe.
#[derive(Debug, Clone)]
pub struct ProbeArgs {
    /// The sending gateway (or a DC: its first gateway).
    pub from: String,
    /// The echoing gateway (or a DC).
    pub to: String,
    /// UDP probes to send (and TCP round trips to make, at most 20).
    pub count: u64,
    /// Pace of the UDP probes.
    pub interval: Duration,
    /// How long to wait for late echoes (and each TCP step).
    pub wait: Duration,
    /// Skip TCP.
    pub udp_only: bool,
}

/// The packets the emulator counted on the link during the probe.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LinkDelta {
    /// From the sender's DC to the echo's.
    pub forward: Counters,
    /// Back.
    pub back: Counters,
}

/// What `wan probe` found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Sending host.
    pub from: String,
    /// Echoing host.
    pub to: String,
    /// The link's parameters during the probe.
    pub params: LinkParams,
    /// UDP.
    pub udp: PingReport,
    /// TCP (unless skipped).
    pub tcp: Option<PingReport>,
    /// The emulator's counts on this link during the probe (all traffic on it).
    pub emulator: LinkDelta,
}

/// `testbed wan probe`.
pub async fn command(run_dir: &RunDir, args: ProbeArgs, json: bool) -> Result<(), TestbedError> {
    crate::preflight::require_privileges()?;
    let state = run_dir.require()?;
    let r = probe(run_dir, &state, &args).await?;
    if json {
        line(&serde_json::to_string_pretty(&r).unwrap_or_default());
        return Ok(());
    }
    line(&format!("{} → {} ({})", r.from, r.to, r.params.describe()));
    for p in std::iter::once(&r.udp).chain(&r.tcp) {
        let rtt = p.rtt_ms.as_ref().map_or("-".into(), |t| {
            format!(
                "min {:.1} avg {:.1} p95 {:.1} max {:.1} ms",
                t.min, t.avg, t.p95, t.max
            )
        });
        let connect = p
            .connect_ms
            .map_or(String::new(), |c| format!(", connect {c:.1} ms"));
        let error = p
            .error
            .as_ref()
            .map_or(String::new(), |e| format!(" ({e})"));
        line(&format!(
            "  {}: {}/{} answered ({:.1}% lost), rtt {rtt}{connect}{error}",
            p.proto, p.received, p.sent, p.loss_percent
        ));
    }
    let c = |c: &Counters| {
        format!(
            "{} fwd, {} lost, {} blackholed",
            c.forwarded, c.lost, c.blackholed
        )
    };
    line(&format!(
        "  emulator: forward {}; back {}",
        c(&r.emulator.forward),
        c(&r.emulator.back)
    ));
    Ok(())
}

/// A gateway host named `spec`, or the first gateway of DC `spec`.
fn gateway<'a>(state: &'a State, spec: &str) -> Result<&'a HostPlan, TestbedError> {
    let plan = &state.plan;
    let found = match plan.host(spec) {
        Some(h) => Some(h),
        None => plan
            .hosts
            .iter()
            .find(|h| h.dc == spec && h.role == Role::Gateway),
    };
    match found {
        Some(h) if h.wan_ip.is_some() => Ok(h),
        Some(h) => {
            Err(WanError::BadValue(format!("{} is not a gateway (no WAN address)", h.name)).into())
        }
        None => Err(TestbedError::UnknownHost(spec.to_string())),
    }
}

/// Runs the probe.
pub async fn probe(
    run_dir: &RunDir,
    state: &State,
    args: &ProbeArgs,
) -> Result<ProbeResult, TestbedError> {
    let from = gateway(state, &args.from)?;
    let to = gateway(state, &args.to)?;
    let (Some(to_ip), true) = (to.wan_ip, from.dc != to.dc) else {
        return Err(
            WanError::BadValue("probe two gateways of different datacenters".into()).into(),
        );
    };
    let link = state
        .wan_links
        .iter()
        .find(|l| (l.a == from.dc && l.b == to.dc) || (l.a == to.dc && l.b == from.dc))
        .cloned()
        .ok_or_else(|| WanError::NoLink {
            a: from.dc.clone(),
            b: to.dc.clone(),
        })?;
    let before = request(run_dir, Request::Stats).await?;
    // A port of its own, so that probes may run side by side.
    let port = 20_000 + rand::random_range(0..20_000u16);
    let mut echo = netns::helper(&state.testbed, &to.netns, "_echo")
        .args(["--bind", &to_ip.to_string(), "--port", &port.to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|source| TestbedError::Io {
            what: "starting the echo server".into(),
            source,
        })?;
    let ready = async {
        let stdout = echo.stdout.take()?;
        BufReader::new(stdout).lines().next_line().await.ok()?
    };
    match tokio::time::timeout(ECHO_READY, ready).await {
        Ok(Some(l)) if l.contains("ready") => {}
        _ => {
            return Err(WanError::BadValue(format!(
                "the echo server in {} did not start",
                to.name
            ))
            .into());
        }
    }
    let target = format!("{to_ip}:{port}");
    let udp = ping(state, from, &target, "udp", args).await?;
    let tcp = if args.udp_only {
        None
    } else {
        Some(ping(state, from, &target, "tcp", args).await?)
    };
    drop(echo.stdin.take());
    if tokio::time::timeout(ECHO_READY, echo.wait()).await.is_err() {
        let _ = echo.kill().await;
    }
    let after = request(run_dir, Request::Stats).await?;
    Ok(ProbeResult {
        from: from.name.clone(),
        to: to.name.clone(),
        params: link.params,
        udp,
        tcp,
        emulator: delta(&link, &from.dc, &before, &after),
    })
}

async fn ping(
    state: &State,
    from: &HostPlan,
    target: &str,
    proto: &str,
    args: &ProbeArgs,
) -> Result<PingReport, TestbedError> {
    let exe = state.testbed.to_string_lossy();
    let count = if proto == "tcp" {
        args.count.min(TCP_ROUND_TRIPS)
    } else {
        args.count
    };
    let (count, interval, wait) = (
        count.to_string(),
        format!("{}us", args.interval.as_micros()),
        format!("{}ms", args.wait.as_millis()),
    );
    let argv = [
        "netns",
        "exec",
        &from.netns,
        &exe,
        "_ping",
        "--target",
        target,
        "--proto",
        proto,
        "--count",
        &count,
        "--interval",
        &interval,
        "--wait",
        &wait,
    ];
    let out = run("ip", &argv, None).await?;
    serde_json::from_str(out.trim()).map_err(|e| {
        WanError::BadValue(format!("the {proto} pinger's report: {e}: {out:?}")).into()
    })
}

/// The link's counters in `after` minus those in `before`, oriented from `from_dc`.
fn delta(
    link: &WanLink,
    from_dc: &str,
    before: &super::control::Stats,
    after: &super::control::Stats,
) -> LinkDelta {
    let get = |s: &super::control::Stats| {
        s.link(&link.a, &link.b)
            .map(|l| (l.a_to_b.clone(), l.b_to_a.clone()))
            .unwrap_or_default()
    };
    let ((b_ab, b_ba), (a_ab, a_ba)) = (get(before), get(after));
    let sub = |x: &Counters, y: &Counters| Counters {
        forwarded: x.forwarded.saturating_sub(y.forwarded),
        lost: x.lost.saturating_sub(y.lost),
        blackholed: x.blackholed.saturating_sub(y.blackholed),
    };
    let (ab, ba) = (sub(&a_ab, &b_ab), sub(&a_ba, &b_ba));
    if from_dc == link.a {
        LinkDelta {
            forward: ab,
            back: ba,
        }
    } else {
        LinkDelta {
            forward: ba,
            back: ab,
        }
    }
}
