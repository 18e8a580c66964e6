//! Scenario `lan-partition`: in a datacenter with ≥ 3 servers, cut the leader off from
//! every other host of its DC (nftables drops both ways), and check that
//!
//! 1. the majority elects a new leader and acknowledges writes,
//! 2. the cut-off server (the minority) refuses writes with `No cluster leader`,
//! 3. it still serves `?stale` reads of what it had,
//! 4. gossip notices: the majority lists the minority as failed (the cut is held until then,
//!    so the heal has to merge the pool again),
//!
//! then heal, and check that the DC converges: one leader named by every agent, every
//! member alive in every agent's view, and the minority catching up to the leader's raft
//! index (holding the keys written while it was cut off). The whole time a `Timeline`
//! samples every agent; the report has it and the timeline PNG shows it.

use std::time::Duration;

use tokio::time::Instant;

use super::Report;
use super::timeline::{Sample, Timeline};
use crate::error::TestbedError;
use crate::firewall;
use crate::out::Progress;
use crate::plan::{HostPlan, Role};
use crate::probe;
use crate::state::{Partition, RunDir, State};
use crate::up::wait_dc_leader;
use crate::wait;

/// Deadline of each step.
const STEP_DEADLINE: Duration = Duration::from_secs(60);
/// Keys written before the cut, and through the majority during it.
const KEYS: usize = 5;

/// Runs the scenario, filling `report`.
pub(super) async fn run(
    run_dir: &RunDir,
    state: &mut State,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    let dc = pick(state)?;
    let agents: Vec<HostPlan> = state
        .plan
        .hosts
        .iter()
        .filter(|h| h.dc == dc && h.role != Role::Gateway && state.processes.contains_key(&h.name))
        .cloned()
        .collect();
    let minority_name = wait_dc_leader(run_dir, state, &dc, STEP_DEADLINE).await?;
    let Some(minority) = state.plan.host(&minority_name).cloned() else {
        return Err(TestbedError::UnknownHost(minority_name));
    };
    let majority: Vec<HostPlan> = agents
        .iter()
        .filter(|h| h.name != minority.name)
        .cloned()
        .collect();
    let prefix = format!("testbed/lan-partition/{}", report.started_unix);
    for (k, v) in [
        ("datacenter", &dc),
        ("minority", &minority.name),
        ("key_prefix", &prefix),
    ] {
        report.facts.insert(k.into(), v.clone());
    }
    let mut tl = Timeline::start(state, agents.clone(), Instant::now());
    let before = write_keys(state, &minority, &prefix, "before").await;
    report.check(
        "writes_before_the_cut",
        before.is_ok(),
        detail(&before, &minority.name),
    );

    // The cut: the minority against every other host of the DC (gateways included).
    let rest: Vec<String> = state
        .plan
        .hosts
        .iter()
        .filter(|h| h.dc == dc && h.name != minority.name)
        .map(|h| h.name.clone())
        .collect();
    progress.say(&format!("partition {} | {}", minority.name, rest.join(",")));
    state.partitions.push(Partition {
        a: vec![minority.name.clone()],
        b: rest,
    });
    firewall::apply(state).await?;
    run_dir.save(state)?;
    tl.event(format!("partition {} | rest", minority.name));
    let cut_at = Instant::now();
    let during = during_the_cut(state, report, &minority, &majority, &prefix, cut_at).await;
    if during.is_ok() {
        // The timeline shows the failure too (it samples every 250 ms).
        let n = agents.len() as u64;
        let minority_name = minority.name.clone();
        let _ = wait::until(
            "the timeline recording the failure",
            STEP_DEADLINE,
            "",
            || {
                let seen = tl.any(|s| s.host != minority_name && s.members_alive == Some(n - 1));
                async move { seen.then_some(()) }
            },
        )
        .await;
    }

    // Heal, whatever happened above.
    state.partitions.clear();
    firewall::apply(state).await?;
    run_dir.save(state)?;
    tl.event("heal");
    let healed_at = Instant::now();
    progress.say("healed; waiting for the DC to converge");
    let wrote = during?;
    converge(state, report, &minority, &agents, &prefix, wrote, healed_at).await;
    let (samples, events) = tl.finish().await;
    report.timeline = samples;
    report.events = events;
    Ok(())
}

fn detail<T, E: std::fmt::Display>(r: &Result<T, E>, via: &str) -> String {
    match r {
        Ok(_) => format!("{KEYS} keys acknowledged via {via}"),
        Err(e) => e.to_string(),
    }
}

/// The checks while the minority is cut off; whether the majority's writes were
/// acknowledged.
async fn during_the_cut(
    state: &State,
    report: &mut Report,
    minority: &HostPlan,
    majority: &[HostPlan],
    prefix: &str,
    cut_at: Instant,
) -> Result<bool, TestbedError> {
    let servers: Vec<&HostPlan> = majority.iter().filter(|h| h.role == Role::Server).collect();
    let elected = wait::until("a leader in the majority", STEP_DEADLINE, "", || async {
        let mut seen = Vec::new();
        for s in &servers {
            seen.push(probe::view(&state.testbed, &state.plan, s).await.leader);
        }
        let first = seen.first()?.clone()?;
        (first != minority.name && seen.iter().all(|l| l.as_deref() == Some(first.as_str())))
            .then_some(first)
    })
    .await;
    let after = cut_at.elapsed().as_secs_f64();
    report.check(
        "majority_elects_a_leader",
        elected.is_ok(),
        match &elected {
            Ok(l) => format!("{l} after {after:.2}s"),
            Err(e) => e.to_string(),
        },
    );
    if let Ok(l) = &elected {
        report.facts.insert("majority_leader".into(), l.clone());
        report
            .timings
            .insert("majority_leader_after_cut_s".into(), after);
    }
    // Through the new leader: the claim is about the majority's raft, not about how a
    // client picks its server.
    let via = elected
        .as_ref()
        .ok()
        .and_then(|l| servers.iter().find(|s| &s.name == l).copied());
    let w = match via {
        Some(via) => write_keys(state, via, prefix, "during")
            .await
            .map(|()| via.name.clone()),
        None => Err("no majority leader to write through".into()),
    };
    report.check(
        "majority_accepts_writes",
        w.is_ok(),
        match &w {
            Ok(via) => format!("{KEYS} keys acknowledged via {via}"),
            Err(e) => e.clone(),
        },
    );
    let wrote = w.is_ok();

    let refused = wait::until(
        "the minority refusing a write",
        STEP_DEADLINE,
        "",
        || async {
            let path = format!("/v1/kv/{prefix}/refused");
            let r = probe::put(&state.testbed, minority, &path, "x")
                .await
                .ok()?;
            (r.status.is_some_and(|s| s >= 500) && r.body.contains("No cluster leader"))
                .then_some(r)
        },
    )
    .await;
    let after = cut_at.elapsed().as_secs_f64();
    report.check(
        "minority_refuses_writes",
        refused.is_ok(),
        match &refused {
            Ok(r) => format!("{:?} {:?} after {after:.2}s", r.status, r.body.trim()),
            Err(e) => e.to_string(),
        },
    );
    if refused.is_ok() {
        report
            .timings
            .insert("minority_refuses_writes_after_cut_s".into(), after);
    }
    let stale = read_key(state, minority, &format!("{prefix}/before-0"), "stale").await;
    report.check(
        "minority_serves_stale_reads",
        stale.as_deref() == Some("v0"),
        format!("{}: {prefix}/before-0 = {stale:?} (?stale)", minority.name),
    );
    // Hold the cut until gossip has noticed it (the majority lists the minority as failed),
    // so the heal has to merge the pool again rather than find it never split.
    let n = majority.len() as u64 + 1;
    let noticed = wait::until(
        "the majority seeing the minority fail",
        STEP_DEADLINE,
        "",
        || async {
            for s in &servers {
                let v = super::timeline::sample_now(state, s).await;
                if v.members_alive != Some(n - 1) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    let after = cut_at.elapsed().as_secs_f64();
    report.check(
        "gossip_notices_the_cut",
        noticed.is_ok(),
        match &noticed {
            Ok(()) => format!(
                "every majority server lists {} failed after {after:.2}s",
                minority.name
            ),
            Err(e) => e.to_string(),
        },
    );
    if noticed.is_ok() {
        report
            .timings
            .insert("minority_failed_in_gossip_after_cut_s".into(), after);
    }
    Ok(wrote)
}

/// After the heal: one leader, every member alive everywhere, the minority caught up.
async fn converge(
    state: &State,
    report: &mut Report,
    minority: &HostPlan,
    agents: &[HostPlan],
    prefix: &str,
    wrote: bool,
    healed_at: Instant,
) {
    let n = agents.len() as u64;
    // Since when each condition holds (the closure below only borrows it).
    let firsts: std::cell::Cell<[Option<f64>; 3]> = std::cell::Cell::new([None; 3]);
    let done = wait::until(
        "the DC converging after the heal",
        STEP_DEADLINE,
        "",
        || async {
            let mut views = Vec::new();
            for h in agents {
                views.push(super::timeline::sample_now(state, h).await);
            }
            let now = healed_at.elapsed().as_secs_f64();
            let leader = views.first().and_then(|v| v.leader.clone());
            let one_leader = leader.is_some() && views.iter().all(|v| v.leader == leader);
            let all_alive = views.iter().all(|v| v.members_alive == Some(n));
            let last = format!("{prefix}/during-{}", KEYS - 1);
            let caught_up = caught_up(&views, minority, leader.as_deref())
                && (!wrote
                    || read_key(state, minority, &last, "stale").await.as_deref()
                        == Some(&*format!("v{}", KEYS - 1)));
            let mut f = firsts.get();
            for (slot, ok) in f.iter_mut().zip([one_leader, all_alive, caught_up]) {
                if ok && slot.is_none() {
                    *slot = Some(now);
                }
            }
            firsts.set(f);
            (one_leader && all_alive && caught_up).then_some(leader)
        },
    )
    .await;
    let names = [
        "one_leader_after_heal_s",
        "all_members_alive_after_heal_s",
        "minority_caught_up_after_heal_s",
    ];
    let firsts = firsts.get();
    for (name, t) in names.iter().zip(firsts) {
        if let Some(t) = t {
            report.timings.insert((*name).into(), t);
        }
    }
    report.check(
        "converged_after_heal",
        done.is_ok(),
        match &done {
            Ok(l) => format!(
                "leader {} named by all {n} agents, {n} members alive in every view, {} at the leader's raft index, after {:.2}s",
                l.clone().unwrap_or_default(),
                minority.name,
                healed_at.elapsed().as_secs_f64()
            ),
            Err(e) => format!("{e}; holding since: {firsts:?} (one leader, all alive, caught up)"),
        },
    );
}

/// Whether the minority's raft index has reached the leader's.
fn caught_up(views: &[Sample], minority: &HostPlan, leader: Option<&str>) -> bool {
    let index = |name: &str| views.iter().find(|v| v.host == name).and_then(|v| v.index);
    match (index(&minority.name), leader.and_then(index)) {
        (Some(m), Some(l)) => m >= l,
        _ => false,
    }
}

/// Writes `<prefix>/<tag>-<i>` = `v<i>` through `via`, one at a time.
async fn write_keys(state: &State, via: &HostPlan, prefix: &str, tag: &str) -> Result<(), String> {
    for i in 0..KEYS {
        let path = format!("/v1/kv/{prefix}/{tag}-{i}");
        let r = probe::put(&state.testbed, via, &path, &format!("v{i}"))
            .await
            .map_err(|e| e.to_string())?;
        if r.status != Some(200) || r.body.trim() != "true" {
            return Err(format!(
                "write {path} via {}: {:?} {:?} {:?}",
                via.name, r.status, r.body, r.error
            ));
        }
    }
    Ok(())
}

/// The value of `key` read through `host` (`?raw&<mode>`).
async fn read_key(state: &State, host: &HostPlan, key: &str, mode: &str) -> Option<String> {
    let path = format!("/v1/kv/{key}?raw&{mode}");
    let r = probe::get(&state.testbed, host, &[&path]).await.ok()?;
    let r = r.first()?;
    (r.status == Some(200)).then(|| r.body.clone())
}

/// The first DC with ≥ 3 running servers.
fn pick(state: &State) -> Result<String, TestbedError> {
    super::dc_with_servers(
        state,
        3,
        "lan-partition",
        "a datacenter with at least 3 servers",
    )
}
