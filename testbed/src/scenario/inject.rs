//! Faults the federation scenarios (`federation`, `beyond`, `failure-matrix`) inject and
//! repair on a running testbed: WAN link changes that keep the scenario's `State` in step
//! with the state file, SIGKILL and restart of hosts, and waiting for a datacenter's
//! leader. No assertions here: callers check what the faults did.

use std::time::Duration;

use rustix::process::Signal;

use crate::agents;
use crate::error::TestbedError;
use crate::plan::HostPlan;
use crate::probe;
use crate::proc::{self, Liveness};
use crate::state::{RunDir, State};
use crate::wait;
use crate::wan::control::{LinkChange, change};

/// Runs a `testbed wan` change and keeps `state`'s links as the state file now has them
/// (the change rewrites the file; a later save of `state` must not undo it).
pub(super) async fn link(
    run_dir: &RunDir,
    state: &mut State,
    a: &str,
    b: &str,
    what: LinkChange,
) -> Result<(), TestbedError> {
    change(run_dir, a, b, what).await?;
    state.wan_links = run_dir.require()?.wan_links;
    Ok(())
}

/// SIGKILLs every host of `hosts` (and waits until each is gone).
pub(super) async fn kill(state: &State, hosts: &[HostPlan]) -> Result<(), TestbedError> {
    for h in hosts {
        agents::signal(state, &h.name, Signal::KILL).await?;
    }
    Ok(())
}

/// Starts every host of `hosts` whose process is gone again on its data dir (one that
/// still runs, say after a kill that failed half way, is left alone) and saves the state.
pub(super) fn restart(
    run_dir: &RunDir,
    state: &mut State,
    hosts: &[HostPlan],
) -> Result<(), TestbedError> {
    for h in hosts {
        let alive = state
            .processes
            .get(&h.name)
            .is_some_and(|p| proc::liveness(p) != Liveness::Dead);
        if !alive {
            agents::start(state, run_dir, h)?;
        }
    }
    Ok(run_dir.save(state)?)
}

/// Waits until every server of `among` names the same leader, and it is not `not`;
/// returns its name.
pub(super) async fn leader(
    state: &State,
    among: &[HostPlan],
    not: Option<&str>,
    timeout: Duration,
) -> Result<String, TestbedError> {
    wait::until("one leader named by every server", timeout, "", || async {
        let mut seen = Vec::new();
        for s in among {
            seen.push(probe::view(&state.testbed, &state.plan, s).await.leader);
        }
        let first = seen.first()?.clone()?;
        (Some(first.as_str()) != not && seen.iter().all(|l| l.as_deref() == Some(first.as_str())))
            .then_some(first)
    })
    .await
}
