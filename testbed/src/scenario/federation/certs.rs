//! The `federation` scenario's certificate rotation: a full CA rotation, host by host,
//! under queries between every pair of DCs, as an operator would roll it out:
//!
//! 1. trust both: a new CA (`meridian tls ca create`); every host's `ca.pem` becomes the
//!    bundle old + new; SIGHUP;
//! 2. new leaves: every host's `cert.pem` / `key.pem` become a certificate of the new CA
//!    (`meridian tls cert create`, same role, DC and addresses); SIGHUP;
//! 3. drop the old CA: every host's `ca.pem` becomes the new CA alone; SIGHUP.
//!
//! After each SIGHUP the step waits (with a deadline) until that process shows the change
//! before the next host: its RPC listeners (a server's 8300, a gateway's LAN 8300 and WAN
//! 8302) accept a client certificate of the new CA (1), present the new certificate,
//! verified against the new CA and its name (2), and refuse a client certificate of the
//! old CA with `unknown ca` (3); every agent's `Stats.tls` names the new files'
//! fingerprints. No query of the load may fail. The load runs through each step and stops
//! after it; then every RPC connection is ended (`ss -K`) and every DC asks every other
//! once: new connections must work in the state each step leaves (the ones a reload keeps
//! would not show it). Needs `[tls] enabled` (skipped, saying so, without it), openssl and
//! ss.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use rustix::process::Signal;
use tokio::time::Instant;

use super::handshake::{self, Listener};
use super::load::{AllPairs, Tally};
use super::stream::{self, url};
use super::{Dc, Fed, event, step_error};
use crate::agents;
use crate::error::TestbedError;
use crate::helper::unix_ms;
use crate::netns;
use crate::out::Progress;
use crate::plan::{HostPlan, Role};
use crate::scenario::Report;
use crate::secrets::{self, PemPair, TlsState};
use crate::state::{RunDir, State};
use crate::wait;

/// Answered reads per pair before each step.
const WARM_READS: usize = 3;
/// Reads per pair after each step.
const READS_AFTER: usize = 5;
/// Deadline for one process to show one change after its SIGHUP.
const SHOWS_WITHIN: Duration = Duration::from_secs(15);

/// A step of the rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    TrustBoth,
    NewLeaves,
    DropOld,
}

impl Step {
    /// The check that every process took the step.
    fn check(self) -> &'static str {
        match self {
            Step::TrustBoth => "cert_rotation_every_process_trusts_both_cas",
            Step::NewLeaves => "cert_rotation_every_process_presents_its_new_certificate",
            Step::DropOld => "cert_rotation_every_process_refuses_the_old_ca",
        }
    }

    /// What the plot calls it.
    fn label(self) -> &'static str {
        match self {
            Step::TrustBoth => "trust old+new CA",
            Step::NewLeaves => "new certificates",
            Step::DropOld => "drop the old CA",
        }
    }
}

/// After a step: (RPC connections ended, reads answered over new ones), or what went
/// wrong.
type Fresh = Result<(usize, usize), String>;

/// What the rotation works with: both CAs, a client certificate of each (to knock on the
/// listeners with), each host's new certificate, and the fingerprints to expect.
struct Rotation {
    old_ca: PemPair,
    new_ca: PemPair,
    old_cli: PemPair,
    new_cli: PemPair,
    old_ca_fp: String,
    new_ca_fp: String,
    /// Host → its new certificate and that one's fingerprint.
    leaves: BTreeMap<String, (PemPair, String)>,
    /// Every host of the plan, in plan order (the order of each step).
    hosts: Vec<HostPlan>,
}

/// Runs the phase.
pub(super) async fn rotate(
    run_dir: &RunDir,
    state: &mut State,
    fed: &Fed,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    let Some(tls) = state.tls.clone().filter(|t| t.issuer().is_some()) else {
        report.facts.insert(
            "cert_rotation".into(),
            "not run: the testbed runs without TLS (topology [tls] enabled)".into(),
        );
        return Ok(());
    };
    progress.say("certificate rotation: every DC reads every other while every process gets a new CA and certificate");
    let rotation = prepare(state, run_dir, &tls).await;
    let mut outcome = rotation.as_ref().map(drop).map_err(clone_err);
    let mut tally = Tally::new("cert_rotation");
    let mut fresh = Vec::new();
    if let Ok(r) = &rotation {
        for step in [Step::TrustBoth, Step::NewLeaves, Step::DropOld] {
            event(report, fed, format!("certs: {}", step.label()));
            progress.say(&format!("certificates: {}", step.label()));
            outcome = step_under_load(run_dir, state, fed, report, r, step, &mut tally).await;
            if outcome.is_ok() {
                let got = fresh_connections(state, fed).await;
                outcome = got.as_ref().map(drop).map_err(|e| step_error(e.clone()));
                fresh.push((step, got));
            }
            if outcome.is_err() {
                break;
            }
        }
        if outcome.is_ok() {
            let mut cas = tls.cas.clone();
            cas.push(r.new_ca.clone());
            state.tls = Some(TlsState {
                cas,
                cli: r.new_cli.clone(),
            });
            run_dir.save(state)?;
        }
    }
    if let Err(e) = &rotation {
        report.check(Step::TrustBoth.check(), false, e.to_string());
    }
    fresh_check(report, &fresh);
    let pairs = fed.dcs.len() * (fed.dcs.len() - 1);
    tally.report(report, fed, pairs * 3 * (WARM_READS + READS_AFTER));
    outcome
}

/// One step under the all-pairs load: the load starts, the step runs host by host, the
/// load goes on for `READS_AFTER` more reads per pair and stops (so that no read is in
/// flight when the connections are ended next); its reads go to `tally`.
async fn step_under_load(
    run_dir: &RunDir,
    state: &State,
    fed: &Fed,
    report: &mut Report,
    r: &Rotation,
    step: Step,
    tally: &mut Tally,
) -> Result<(), TestbedError> {
    let load = AllPairs::start(state, fed, "cert_rotation")?;
    let mut outcome = load.warm(WARM_READS).await;
    if outcome.is_ok() {
        outcome = run_step(run_dir, state, report, r, step).await;
    }
    let after = load
        .reads_after(unix_ms() as f64, READS_AFTER, SHOWS_WITHIN)
        .await;
    load.stop_into(tally).await;
    outcome.and(after)
}

/// A reload keeps live connections, so the load's connections, made before a step,
/// prove nothing about the certificates after it. This ends every RPC connection of every
/// host (`ss -K`, ports 8300 and 8302) and then asks every DC for every other DC once:
/// each answer needs a new TLS connection on every hop (client → server → gateway →
/// gateway → server), made with what the step left. The connections ended and the reads
/// answered, or what went wrong.
async fn fresh_connections(state: &State, fed: &Fed) -> Fresh {
    let ended = end_rpc_connections(state)
        .await
        .map_err(|e| e.to_string())?;
    if ended == 0 {
        return Err(
            "`ss -K` ended no RPC connection (is the kernel built without INET_DIAG_DESTROY?)"
                .into(),
        );
    }
    let mut answered = 0;
    let mut wrong = Vec::new();
    for a in &fed.dcs {
        let others: Vec<&Dc> = fed.dcs.iter().filter(|b| b.name != a.name).collect();
        let urls: Vec<String> = others
            .iter()
            .map(|b| url(&a.asker, &fed.kv("whoami", &format!("?raw&dc={}", b.name))))
            .collect();
        let records = stream::once(state, &a.asker, &urls)
            .await
            .map_err(|e| e.to_string())?;
        for (b, rec) in others.iter().zip(&records) {
            if stream::answered(rec, &b.name) {
                answered += 1;
            } else {
                wrong.push(format!(
                    "{} -> {}: {:?} after {:.0} ms: {:.200}",
                    a.name, b.name, rec.status, rec.ms, rec.body
                ));
            }
        }
        if records.len() < others.len() {
            wrong.push(format!(
                "{}: {} of {} reads made",
                a.name,
                records.len(),
                others.len()
            ));
        }
    }
    if wrong.is_empty() {
        Ok((ended, answered))
    } else {
        Err(format!(
            "{ended} connections ended, then: {}",
            wrong.join("; ")
        ))
    }
}

/// The check on every step's fresh connections.
fn fresh_check(report: &mut Report, fresh: &[(Step, Fresh)]) {
    let ended: usize = fresh
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|r| r.0)
        .sum();
    report
        .counts
        .insert("cert_rotation_rpc_connections_ended".into(), ended as u64);
    let ok = fresh.len() == 3 && fresh.iter().all(|(_, r)| r.is_ok());
    let shown: Vec<String> = fresh
        .iter()
        .map(|(step, r)| match r {
            Ok((ended, answered)) => format!(
                "after '{}': {ended} ended, {answered} of {answered} reads answered",
                step.label()
            ),
            Err(e) => format!("after '{}': {e}", step.label()),
        })
        .collect();
    report.check(
        "cert_rotation_fresh_connections_work_after_every_step",
        ok,
        format!(
            "every RPC connection ended (ss -K), then every DC asked every other once over new TLS connections on every hop: {}",
            if shown.is_empty() { "not reached".into() } else { shown.join("; ") }
        ),
    );
}

/// Makes the new CA, a client certificate of it, and every host's new certificate (files
/// only; nothing is installed yet).
async fn prepare(
    state: &State,
    run_dir: &RunDir,
    tls: &TlsState,
) -> Result<Rotation, TestbedError> {
    let hosts = state.plan.hosts.clone();
    let meridian = &state.meridian;
    let old_ca = tls
        .issuer()
        .cloned()
        .ok_or_else(|| step_error("the state file names no CA".into()))?;
    let generation = tls.cas.len() + 1;
    let tag = generation.to_string();
    let new_ca = secrets::create_ca(meridian, run_dir, generation).await?;
    let dc = hosts.first().map_or("dc1", |h| h.dc.as_str());
    let new_cli = secrets::issue_cli(meridian, run_dir, &new_ca, dc, &tag).await?;
    let mut leaves = BTreeMap::new();
    for h in &hosts {
        let leaf = secrets::issue(meridian, run_dir, &new_ca, h, &tag).await?;
        let fp = fingerprint(&leaf.cert).await?;
        leaves.insert(h.name.clone(), (leaf, fp));
    }
    Ok(Rotation {
        old_ca_fp: fingerprint(&old_ca.cert).await?,
        new_ca_fp: fingerprint(&new_ca.cert).await?,
        old_ca,
        old_cli: tls.cli.clone(),
        new_ca,
        new_cli,
        leaves,
        hosts,
    })
}

async fn fingerprint(path: &std::path::Path) -> Result<String, TestbedError> {
    handshake::file_fingerprint(path)
        .await
        .map_err(|e| step_error(format!("fingerprint of {}: {e}", path.display())))
}

/// One step on every host in turn: its files, SIGHUP, then wait until it shows the
/// change. Records the step's check.
async fn run_step(
    run_dir: &RunDir,
    state: &State,
    report: &mut Report,
    r: &Rotation,
    step: Step,
) -> Result<(), TestbedError> {
    let started = Instant::now();
    let mut shown = Vec::new();
    let mut outcome = Ok(());
    for h in &r.hosts {
        match host_step(run_dir, state, r, h, step).await {
            Ok(Some(secs)) => shown.push(format!("{} {secs:.2}s", h.name)),
            Ok(None) => {}
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let key = format!("{}_s", step.check().trim_start_matches("cert_rotation_"));
    report.timings.insert(format!("cert_rotation_{key}"), secs);
    let what = match step {
        Step::TrustBoth => "accepts a client certificate of the new CA and holds both CAs",
        Step::NewLeaves => "presents (and holds) its certificate of the new CA",
        Step::DropOld => {
            "refuses a client certificate of the old CA (unknown ca) and holds the new CA only"
        }
    };
    report.check(
        step.check(),
        outcome.is_ok(),
        match &outcome {
            Ok(()) => format!(
                "after its SIGHUP every process {what} (shown after: {}; step {secs:.1}s)",
                shown.join(", ")
            ),
            Err(e) => e.to_string(),
        },
    );
    outcome
}

/// One host's part of a step; how long it took to show the change after its SIGHUP, or
/// `None` when it runs nothing (the files are changed all the same, for its next start).
async fn host_step(
    run_dir: &RunDir,
    state: &State,
    r: &Rotation,
    h: &HostPlan,
    step: Step,
) -> Result<Option<f64>, TestbedError> {
    let (leaf, _) = r
        .leaves
        .get(&h.name)
        .ok_or_else(|| TestbedError::UnknownHost(h.name.clone()))?;
    match step {
        Step::TrustBoth => secrets::install_ca(run_dir, &h.name, &[&r.old_ca, &r.new_ca])?,
        Step::NewLeaves => secrets::install_cert(run_dir, &h.name, leaf)?,
        Step::DropOld => secrets::install_ca(run_dir, &h.name, &[&r.new_ca])?,
    }
    if !state.processes.contains_key(&h.name) {
        return Ok(None);
    }
    let hup = Instant::now();
    agents::signal(state, &h.name, Signal::HUP).await?;
    let last = RefCell::new(String::new());
    let shown = wait::until(
        &format!("{} showing '{}' after its SIGHUP", h.name, step.label()),
        SHOWS_WITHIN,
        "",
        || async {
            let problem = shows(state, r, h, step).await;
            let ok = problem.is_none();
            *last.borrow_mut() = problem.unwrap_or_default();
            ok.then_some(())
        },
    )
    .await;
    match shown {
        Ok(()) => Ok(Some(hup.elapsed().as_secs_f64())),
        Err(e) => Err(step_error(format!("{e}: {}", last.into_inner()))),
    }
}

/// What is still wrong with `h` for `step` (`None`: it shows the change everywhere one can
/// look).
async fn shows(state: &State, r: &Rotation, h: &HostPlan, step: Step) -> Option<String> {
    let leaf_fp = r.leaves.get(&h.name).map(|(_, fp)| fp.as_str())?;
    if h.role != Role::Gateway {
        let Some((cert, cas)) = handshake::agent_held(state, h).await else {
            return Some("no Stats.tls in /v1/agent/self".into());
        };
        let want_cas = match step {
            Step::TrustBoth | Step::NewLeaves => vec![r.old_ca_fp.clone(), r.new_ca_fp.clone()],
            Step::DropOld => vec![r.new_ca_fp.clone()],
        };
        if cas != want_cas {
            return Some(format!("{}: Stats.tls.ca_sha256 {}", h.name, cas.join(",")));
        }
        if step != Step::TrustBoth && cert != leaf_fp {
            return Some(format!("{}: Stats.tls.cert_sha256 {cert}", h.name));
        }
    }
    for l in handshake::listeners(h) {
        if let Some(p) = listener_shows(r, h, &l, leaf_fp, step).await {
            return Some(format!("{} {}: {p}", h.name, l.addr));
        }
    }
    None
}

/// What is still wrong with one listener for `step`.
async fn listener_shows(
    r: &Rotation,
    h: &HostPlan,
    l: &Listener,
    leaf_fp: &str,
    step: Step,
) -> Option<String> {
    match step {
        // The new CA's client is let in; the certificate is still the old CA's.
        Step::TrustBoth => handshake::presented(h, l, &r.new_cli, &r.old_ca.cert)
            .await
            .err()
            .map(|e| format!("a client of the new CA was refused: {e}")),
        Step::NewLeaves | Step::DropOld => {
            match handshake::presented(h, l, &r.new_cli, &r.new_ca.cert).await {
                Ok(fp) if fp == leaf_fp => {}
                Ok(fp) => return Some(format!("presents {fp}, not the new {leaf_fp}")),
                Err(e) => return Some(format!("handshake as a client of the new CA: {e}")),
            }
            if step == Step::NewLeaves {
                return None;
            }
            match handshake::presented(h, l, &r.old_cli, &r.new_ca.cert).await {
                Err(e) if e.contains("unknown ca") => None,
                Err(e) => Some(format!("an old CA's client failed otherwise: {e}")),
                Ok(_) => Some("still lets a client of the old CA in".into()),
            }
        }
    }
}

/// `TestbedError` is not `Clone`; the step loop keeps its message.
fn clone_err(e: &TestbedError) -> TestbedError {
    step_error(e.to_string())
}

/// Ends every established TCP connection on the RPC ports (8300, 8302) of every running
/// host (`ss -K`: the kernel aborts them, both ends see it at once); how many.
async fn end_rpc_connections(state: &State) -> Result<usize, TestbedError> {
    let filter = "( sport = :8300 or dport = :8300 or sport = :8302 or dport = :8302 )";
    let mut ended = 0;
    for h in state.plan.hosts.iter() {
        if !state.processes.contains_key(&h.name) {
            continue;
        }
        let args = [
            "netns",
            "exec",
            h.netns.as_str(),
            "ss",
            "-K",
            "-tnH",
            "state",
            "established",
            filter,
        ];
        let out = netns::run("ip", &args, None).await?;
        ended += out.lines().filter(|l| !l.trim().is_empty()).count();
    }
    Ok(ended)
}
