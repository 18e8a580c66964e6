//! The `federation` scenario's last phase: the removal of a datacenter (the last one of
//! the plan) with `meridian operator federation remove-dc`, run on the first DC's server
//! as an operator would, while the other DCs read each other:
//!
//! 1. refused while the DC has a gateway alive (it would only gossip its way back);
//! 2. its gateways are stopped (SIGTERM: they leave the WAN pool), until every other DC's
//!    server lists them left or failed; the DC is still listed in
//!    `/v1/catalog/datacenters` then (gone members are kept for days);
//! 3. `remove-dc` names every one of its gateways, the DC leaves every other DC's
//!    `/v1/catalog/datacenters` within `GONE_WITHIN`, and `?dc=<it>` is a fast `No path to
//!    datacenter` (DNS: NXDOMAIN), like a DC that never existed;
//! 4. repair: its gateways start again and the DC rejoins: the WAN pool converges and
//!    every other DC reads it again.
//!
//! The other DCs' reads of each other must not fail at any point.

use std::time::Duration;

use rustix::process::Signal;
use tokio::time::Instant;

use super::load::AllPairs;
use super::stream::{self, url};
use super::{Dc, Fed, dig, event, matrix, meridian_cli, step_error};
use crate::agents;
use crate::error::TestbedError;
use crate::gateways::{members, wan_name};
use crate::out::Progress;
use crate::scenario::Report;
use crate::state::{RunDir, State};
use crate::wait;

/// Deadline for the other DCs to see the stopped gateways gone, and for the rejoin.
const STEP_DEADLINE: Duration = Duration::from_secs(40);
/// How soon after `remove-dc` the DC must be gone from every `/v1/catalog/datacenters`.
const GONE_WITHIN: Duration = Duration::from_secs(10);
/// How fast a removed DC must be refused.
const NO_PATH_WITHIN: Duration = Duration::from_secs(1);
/// Answered reads per pair of the remaining DCs before the first step, and after the last.
const READS: usize = 3;

/// Runs the phase; skipped (a fact says why) with fewer than 3 DCs, so that two remain to
/// read each other.
pub(super) async fn remove(
    run_dir: &RunDir,
    state: &mut State,
    fed: &Fed,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    let [rest @ .., gone] = fed.dcs.as_slice() else {
        return Ok(());
    };
    if rest.len() < 2 {
        report.facts.insert(
            "remove_dc".into(),
            "not run: needs 3 datacenters with gateways".into(),
        );
        return Ok(());
    }
    let remaining = Fed {
        dcs: rest.to_vec(),
        ..fed.clone()
    };
    let load = AllPairs::start(state, &remaining, "remove_dc")?;
    progress.say(&format!(
        "remove-dc {}: the other DCs read each other meanwhile",
        gone.name
    ));
    let mut outcome = load.warm(READS).await;
    if outcome.is_ok() {
        outcome = refused_while_alive(state, fed, report, gone).await;
    }
    let mut stopped = false;
    if outcome.is_ok() {
        stopped = true;
        outcome = stop_gateways(run_dir, state, fed, report, gone, rest).await;
    }
    if outcome.is_ok() {
        outcome = removed(state, fed, report, gone, rest).await;
    }
    // Whatever happened: the DC comes back.
    if stopped {
        let back = rejoin(run_dir, state, fed, report, gone, progress).await;
        outcome = outcome.and(back);
    }
    let after = load
        .reads_after(crate::helper::unix_ms() as f64, READS, STEP_DEADLINE)
        .await;
    let min = rest.len() * (rest.len() - 1) * READS * 2;
    load.finish(report, &remaining, min).await;
    outcome.and(after)
}

/// Step 1: `remove-dc` while the DC's gateways are alive is refused, naming them.
async fn refused_while_alive(
    state: &State,
    fed: &Fed,
    report: &mut Report,
    gone: &Dc,
) -> Result<(), TestbedError> {
    let asker = &fed.dcs[0].server;
    let got = meridian_cli(
        state,
        asker,
        &["operator", "federation", "remove-dc", &gone.name],
    )
    .await;
    let ok = matches!(&got, Err(e) if e.contains("still has gateways alive"));
    report.check(
        "remove_dc_refused_while_its_gateways_live",
        ok,
        match &got {
            Err(e) => format!("{}: {}", asker.name, e.trim()),
            Ok(out) => format!("{}: accepted: {}", asker.name, out.trim()),
        },
    );
    ok.then_some(())
        .ok_or_else(|| step_error(format!("remove-dc {} was not refused", gone.name)))
}

/// Step 2: SIGTERM to each of the DC's gateways, then wait until every other DC's server
/// lists each one left (3) or failed (4) in the WAN pool.
async fn stop_gateways(
    run_dir: &RunDir,
    state: &mut State,
    fed: &Fed,
    report: &mut Report,
    gone: &Dc,
    rest: &[Dc],
) -> Result<(), TestbedError> {
    for g in &gone.gateways {
        agents::signal(state, &g.name, Signal::TERM).await?;
        state.processes.remove(&g.name);
        event(report, fed, format!("stop {}", g.name));
    }
    run_dir.save(state)?;
    let stopped = Instant::now();
    let names: Vec<String> = gone.gateways.iter().map(wan_name).collect();
    let state_ref = &*state;
    let seen = wait::until(
        &format!(
            "{} left or failed in every other DC's WAN view",
            names.join(", ")
        ),
        STEP_DEADLINE,
        "",
        || async {
            for d in rest {
                let all = members(state_ref, &d.server, true).await?;
                let gone_here = names.iter().all(|n| {
                    all.iter()
                        .any(|(name, status)| name == n && matches!(status, 3 | 4))
                });
                if !gone_here {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let secs = stopped.elapsed().as_secs_f64();
    let mut listed = Vec::new();
    for d in rest {
        if matrix::datacenters(state, &d.asker)
            .await
            .contains(&gone.name)
        {
            listed.push(d.asker.name.as_str());
        }
    }
    report.check(
        "remove_dc_gateways_stopped_and_seen_gone",
        seen.is_ok(),
        match &seen {
            Ok(()) => format!(
                "{} stopped (SIGTERM); left in the WAN view of {} after {secs:.2}s; {} still listed by {} (until removed)",
                names.join(", "),
                rest.iter().map(|d| d.server.name.as_str()).collect::<Vec<_>>().join(", "),
                gone.name,
                if listed.is_empty() { "none".into() } else { listed.join(", ") }
            ),
            Err(e) => e.to_string(),
        },
    );
    seen
}

/// Step 3: `remove-dc` succeeds naming every gateway of the DC; the DC leaves every
/// other DC's datacenter list in time, and `?dc=` / DNS for it fail fast as for an
/// unknown DC.
async fn removed(
    state: &State,
    fed: &Fed,
    report: &mut Report,
    gone: &Dc,
    rest: &[Dc],
) -> Result<(), TestbedError> {
    let asker = &fed.dcs[0].server;
    event(report, fed, format!("remove-dc {}", gone.name));
    let sent = Instant::now();
    let got = meridian_cli(
        state,
        asker,
        &["operator", "federation", "remove-dc", &gone.name],
    )
    .await;
    let names: Vec<String> = gone.gateways.iter().map(wan_name).collect();
    let ok = got
        .as_ref()
        .is_ok_and(|out| names.iter().all(|n| out.contains(n.as_str())));
    report.check(
        "remove_dc_removes_every_gateway_of_the_dc",
        ok,
        match &got {
            Ok(out) => format!("{}: {}", asker.name, out.trim()),
            Err(e) => format!("{}: {}", asker.name, e.trim()),
        },
    );
    if !ok {
        return Err(step_error(format!("remove-dc {} failed", gone.name)));
    }
    let gone_everywhere = wait::until(
        &format!(
            "{} gone from /v1/catalog/datacenters of every other DC",
            gone.name
        ),
        GONE_WITHIN,
        "",
        || async {
            for d in rest {
                for h in [&d.asker, &d.server] {
                    if matrix::datacenters(state, h).await.contains(&gone.name) {
                        return None;
                    }
                }
            }
            Some(())
        },
    )
    .await;
    let secs = sent.elapsed().as_secs_f64();
    if gone_everywhere.is_ok() {
        report
            .timings
            .insert("remove_dc_gone_from_datacenters_s".into(), secs);
    }
    report.check(
        "removed_dc_gone_from_every_datacenters_list",
        gone_everywhere.is_ok(),
        match &gone_everywhere {
            Ok(()) => format!(
                "{} absent from /v1/catalog/datacenters on every server and asker of {} {secs:.2}s after remove-dc (bound {GONE_WITHIN:?})",
                gone.name,
                rest.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
            Err(e) => e.to_string(),
        },
    );
    no_path(state, fed, report, gone, rest).await?;
    gone_everywhere
}

/// `?dc=<removed>` on KV and catalog is a 500 `No path to datacenter` within
/// `NO_PATH_WITHIN`, and DNS NXDOMAIN, from every other DC.
async fn no_path(
    state: &State,
    fed: &Fed,
    report: &mut Report,
    gone: &Dc,
    rest: &[Dc],
) -> Result<(), TestbedError> {
    let bound = NO_PATH_WITHIN.as_secs_f64();
    let mut wrong = Vec::new();
    let mut slowest: f64 = 0.0;
    for a in rest {
        let urls = [
            url(
                &a.asker,
                &fed.kv("whoami", &format!("?raw&dc={}", gone.name)),
            ),
            url(
                &a.asker,
                &format!("/v1/catalog/service/{}?dc={}", fed.service, gone.name),
            ),
        ];
        for r in stream::once(state, &a.asker, &urls).await? {
            slowest = slowest.max(r.ms / 1000.0);
            let fine = r.status == Some(500)
                && r.body.contains("No path to datacenter")
                && r.ms / 1000.0 < bound;
            if !fine {
                wrong.push(format!(
                    "{}: {:?} after {:.0} ms: {:.200}",
                    a.asker.name, r.status, r.ms, r.body
                ));
            }
        }
        let name = format!("{}.service.{}.consul", fed.service, gone.name);
        let dns = dig::a(&a.asker, &name).await;
        if dns.status.as_deref() != Some("NXDOMAIN") || dns.secs >= bound {
            wrong.push(format!("{}: dig {name}: {}", a.asker.name, dns.describe()));
        }
    }
    report.check(
        "removed_dc_is_no_path_fast",
        wrong.is_empty(),
        if wrong.is_empty() {
            format!(
                "?dc={} on KV and catalog from {} DCs: 500 `No path to datacenter`, slowest {slowest:.3}s (bound {bound}s); DNS NXDOMAIN",
                gone.name,
                rest.len()
            )
        } else {
            wrong.join("; ")
        },
    );
    Ok(())
}

/// Step 4: starts the DC's gateways again and waits until the federation is whole: the
/// WAN pool converged and every other DC reading the DC's `whoami`.
async fn rejoin(
    run_dir: &RunDir,
    state: &mut State,
    fed: &Fed,
    report: &mut Report,
    gone: &Dc,
    progress: Progress,
) -> Result<(), TestbedError> {
    for g in &gone.gateways {
        if !state.processes.contains_key(&g.name) {
            agents::start(state, run_dir, g)?;
            event(report, fed, format!("restart {}", g.name));
        }
    }
    run_dir.save(state)?;
    let started = Instant::now();
    let state_ref = &*state;
    let back = wait::until(
        &format!("{} rejoining the federation", gone.name),
        STEP_DEADLINE,
        "",
        || async {
            if !matrix::pool_problems(state_ref, fed).await.is_empty() {
                return None;
            }
            for a in fed.dcs.iter().filter(|a| a.name != gone.name) {
                let u = url(
                    &a.asker,
                    &fed.kv("whoami", &format!("?raw&dc={}", gone.name)),
                );
                let got = stream::once(state_ref, &a.asker, &[u]).await.ok()?;
                if !got.first().is_some_and(|r| stream::answered(r, &gone.name)) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    progress.say(&format!(
        "{} back in the federation ({secs:.1}s)",
        gone.name
    ));
    report.check(
        "removed_dc_rejoins_when_its_gateways_return",
        back.is_ok(),
        match &back {
            Ok(()) => format!(
                "{}'s gateways restarted: the WAN pool converged and every other DC reads {} again after {secs:.2}s",
                gone.name, gone.name
            ),
            Err(e) => e.to_string(),
        },
    );
    if back.is_ok() {
        report
            .timings
            .insert("removed_dc_rejoined_after_s".into(), secs);
    }
    back
}
