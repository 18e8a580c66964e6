//! The failure matrix's faults: how each is put in force on `examples/beyond.toml` and
//! repaired, and the health gate every fault starts from (each DC led, the federation
//! whole: `?dc=*` answers all three DCs with none missing).

use std::time::Duration;

use super::table::Fault;
use crate::error::TestbedError;
use crate::gateways::in_lan_pool;
use crate::plan::HostPlan;
use crate::probe;
use crate::scenario::inject;
use crate::scenario::sites::{Site, Sites, get};
use crate::state::{RunDir, State};
use crate::up::wait_dc_leader;
use crate::wait;
use crate::wan::control::LinkChange;

/// Deadline of a repair and of the health gate.
const REPAIR: Duration = Duration::from_secs(90);

/// What a fault broke, to be repaired.
#[derive(Debug, Default)]
pub(super) struct Broken {
    /// Hosts SIGKILLed (restarted by the repair).
    pub(super) killed: Vec<HostPlan>,
    /// A WAN link changed (restored by the repair).
    pub(super) link: Option<(String, String)>,
}

/// Puts `fault` in force; what it broke is in the answer even when a later step failed
/// (so the repair undoes it).
pub(super) async fn inject(
    run_dir: &RunDir,
    state: &mut State,
    s: &Sites,
    fault: Fault,
    broken: &mut Broken,
) -> Result<(), TestbedError> {
    let near = &s.near.name;
    match fault {
        Fault::None => Ok(()),
        Fault::LocalLeaderLost | Fault::LocalQuorumLost => {
            let leader = wait_dc_leader(run_dir, state, near, REPAIR).await?;
            let mut victims: Vec<HostPlan> = s
                .near
                .servers
                .iter()
                .filter(|h| h.name == leader)
                .cloned()
                .collect();
            if fault == Fault::LocalQuorumLost {
                victims.extend(
                    s.near
                        .servers
                        .iter()
                        .filter(|h| h.name != leader)
                        .take(1)
                        .cloned(),
                );
            }
            broken.killed.clone_from(&victims);
            inject::kill(state, &victims).await?;
            if fault == Fault::LocalQuorumLost {
                let survivor: Vec<HostPlan> = s
                    .near
                    .servers
                    .iter()
                    .filter(|h| !victims.iter().any(|v| v.name == h.name))
                    .cloned()
                    .collect();
                // What each survivor last said, for the error: a timeout alone does not
                // tell a leader that kept its lease from an agent that stopped answering.
                let last = std::sync::Mutex::new(Vec::new());
                let waited = wait::until(
                    "the surviving server knowing no leader",
                    REPAIR,
                    "",
                    || async {
                        let mut seen = Vec::new();
                        let mut done = true;
                        for h in &survivor {
                            let v = probe::view(&state.testbed, &state.plan, h).await;
                            done &= v.reachable && v.leader.is_none();
                            seen.push(format!(
                                "{}: reachable {}, leader {:?}, error {:?}",
                                h.name, v.reachable, v.leader, v.error
                            ));
                        }
                        *last
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = seen;
                        done.then_some(())
                    },
                )
                .await;
                if let Err(TestbedError::Timeout { what, after, .. }) = waited {
                    let last = last
                        .into_inner()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    // The run directory goes with the testbed: quote the logs' tails.
                    let logs: Vec<String> = survivor
                        .iter()
                        .map(|h| {
                            let text = std::fs::read_to_string(run_dir.log_path(&h.name))
                                .unwrap_or_default();
                            let lines: Vec<&str> = text.lines().collect();
                            let tail = lines[lines.len().saturating_sub(12)..].join("\n  ");
                            format!("{}'s log ends:\n  {tail}", h.name)
                        })
                        .collect();
                    let killed: Vec<&str> = victims.iter().map(|v| v.name.as_str()).collect();
                    return Err(TestbedError::Timeout {
                        what,
                        after,
                        hint: format!(
                            "; killed {killed:?}; last seen: {}\n{}",
                            last.join("; "),
                            logs.join("\n")
                        ),
                    });
                }
                waited?;
            }
            Ok(())
        }
        Fault::OneGatewayLost | Fault::AllGatewaysLost => {
            let n = if fault == Fault::OneGatewayLost {
                1
            } else {
                s.near.gateways.len()
            };
            broken.killed = s.near.gateways.iter().take(n).cloned().collect();
            inject::kill(state, &broken.killed).await
        }
        Fault::RemoteDcLost => {
            broken.killed.clone_from(&s.mid.servers);
            inject::kill(state, &broken.killed).await
        }
        Fault::WanCut | Fault::WanDegraded => {
            broken.link = Some((near.clone(), s.mid.name.clone()));
            let (a, b) = (near.as_str(), s.mid.name.as_str());
            if fault == Fault::WanCut {
                inject::link(run_dir, state, a, b, LinkChange::Blackhole).await
            } else {
                let delay = Duration::from_millis(300);
                inject::link(run_dir, state, a, b, LinkChange::Delay(delay, None)).await?;
                inject::link(run_dir, state, a, b, LinkChange::Loss(5.0)).await
            }
        }
    }
}

/// Undoes `broken`: restarts the killed hosts, restores the link, then waits for health.
pub(super) async fn repair(
    run_dir: &RunDir,
    state: &mut State,
    s: &Sites,
    broken: Broken,
) -> Result<(), TestbedError> {
    let restarted = inject::restart(run_dir, state, &broken.killed);
    let restored = match &broken.link {
        Some((a, b)) => inject::link(run_dir, state, a, b, LinkChange::Restore).await,
        None => Ok(()),
    };
    restarted.and(restored)?;
    healthy(run_dir, state, s).await
}

/// Waits until every server of `site` is a raft voter again. Autopilot keeps a dead voter of
/// three (removing it would not raise the failure tolerance), but a server that was removed
/// (by an operator, or as one of several dead) comes back as a non-voter until it has been
/// stable for `server_stabilization_time`; a fault that starts before then is a different
/// fault (killing the two voters leaves a non-voter that can never elect, not a lost quorum
/// of three).
async fn all_voters(state: &State, site: &Site) -> Result<(), TestbedError> {
    let what = format!("every server of {} a raft voter", site.name);
    wait::until(&what, REPAIR, "", || async {
        let r = get(state, &site.asker, "/v1/operator/raft/configuration").await;
        if r.status != Some(200) {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
        let servers = v.get("Servers")?.as_array()?;
        site.servers
            .iter()
            .all(|h| {
                servers.iter().any(|x| {
                    x.get("Node").and_then(|n| n.as_str()) == Some(h.name.as_str())
                        && x.get("Voter").and_then(serde_json::Value::as_bool) == Some(true)
                })
            })
            .then_some(())
    })
    .await
}

/// Waits until each DC has a leader all its agents name, dc1's gateways are alive in its
/// LAN pool, and `?dc=*` from dc1 answers all three DCs with none missing.
pub(super) async fn healthy(
    run_dir: &RunDir,
    state: &State,
    s: &Sites,
) -> Result<(), TestbedError> {
    for site in [&s.near, &s.mid, &s.far] {
        wait_dc_leader(run_dir, state, &site.name, REPAIR).await?;
        all_voters(state, site).await?;
    }
    wait::until(
        "dc1's gateways alive in its LAN pool",
        REPAIR,
        "",
        || async {
            for g in &s.near.gateways {
                if !in_lan_pool(state, g).await {
                    return None;
                }
            }
            Some(())
        },
    )
    .await?;
    wait::until("?dc=* answering all three DCs", REPAIR, "", || async {
        let r = get(state, &s.near.asker, "/v1/catalog/services?dc=*").await;
        let listed = r.headers.get("x-meridian-datacenters")?;
        let all = [&s.near.name, &s.mid.name, &s.far.name]
            .iter()
            .all(|d| listed.split(',').any(|x| x.trim() == d.as_str()));
        (r.status == Some(200) && all && !r.headers.contains_key("x-meridian-datacenters-missing"))
            .then_some(())
    })
    .await?;
    // ?dc=dc2 through dc2's leader (the breaker closed, dc2's leader known), too.
    wait::until("?dc=dc2 answering", REPAIR, "", || async {
        let path = format!("/v1/catalog/service/web?dc={}", s.mid.name);
        let r = get(state, &s.near.asker, &path).await;
        (r.status == Some(200)
            && r.headers.get("x-consul-knownleader").map(String::as_str) == Some("true"))
        .then_some(())
    })
    .await
}
