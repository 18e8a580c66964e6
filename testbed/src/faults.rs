//! Faults: signals to a host's agent (`kill`, `stop`, `cont`, `restart`) and network cuts
//! (`partition`, `isolate`, `heal`) through `firewall`. Each command records what it did in
//! the state file, so `status` shows the faults in force and `heal` undoes them all.

use rustix::process::Signal;

use crate::agents;
use crate::error::TestbedError;
use crate::firewall;
use crate::gateways;
use crate::hosts::host;
use crate::out::{Progress, line};
use crate::plan::{HostPlan, Role};
use crate::preflight;
use crate::probe;
use crate::state::{Partition, RunDir, State};
use crate::wait;

/// How long a restarted agent has to answer HTTP.
const RESTART_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// A signal fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessFault {
    /// SIGKILL.
    Kill,
    /// SIGSTOP.
    Stop,
    /// SIGCONT.
    Cont,
    /// SIGTERM (SIGKILL after a grace period), then start again.
    Restart,
}

/// `testbed kill|stop|cont|restart HOST`.
pub async fn process(run: &RunDir, name: &str, fault: ProcessFault) -> Result<(), TestbedError> {
    preflight::require_privileges()?;
    let mut state = run.require()?;
    let h = host(&state, name)?.clone();
    let progress = Progress::start();
    match fault {
        ProcessFault::Kill => agents::signal(&state, name, Signal::KILL).await?,
        ProcessFault::Stop => agents::signal(&state, name, Signal::STOP).await?,
        ProcessFault::Cont => agents::signal(&state, name, Signal::CONT).await?,
        ProcessFault::Restart => {
            if state.processes.contains_key(name) {
                agents::signal(&state, name, Signal::TERM).await?;
            }
            if !agents::start(&mut state, run, &h)? {
                return Err(TestbedError::NotRunning(name.to_string()));
            }
            run.save(&state)?;
        }
    }
    let pid = state.processes.get(name).map_or(0, |p| p.pid);
    if fault == ProcessFault::Restart {
        wait_answering(run, &state, &h).await?;
    }
    let verb = match fault {
        ProcessFault::Kill => "killed",
        ProcessFault::Stop => "stopped",
        ProcessFault::Cont => "continued",
        ProcessFault::Restart => "restarted",
    };
    progress.say(&format!("{verb} {name} (pid {pid})"));
    Ok(())
}

/// Waits until `host`'s agent answers HTTP again (after a restart); for a gateway, which
/// has no HTTP API, until a server of its DC lists it alive in the LAN pool.
async fn wait_answering(run: &RunDir, state: &State, host: &HostPlan) -> Result<(), TestbedError> {
    let hint = format!("see {}", run.log_path(&host.name).display());
    if host.role == Role::Gateway {
        return wait::until(
            &format!("{} alive in its DC's LAN pool", host.name),
            RESTART_DEADLINE,
            &hint,
            || async { gateways::in_lan_pool(state, host).await.then_some(()) },
        )
        .await;
    }
    wait::until(
        &format!("{} answering HTTP", host.name),
        RESTART_DEADLINE,
        &hint,
        || async {
            let v = probe::view(&state.testbed, &state.plan, host).await;
            v.reachable.then_some(())
        },
    )
    .await
}

/// `testbed partition A B`: A and B are comma lists of hosts and DC names.
pub async fn partition(run: &RunDir, a: &str, b: &str) -> Result<(), TestbedError> {
    preflight::require_privileges()?;
    preflight::require_tool("nft", "nftables")?;
    let mut state = run.require()?;
    let side = |spec: &str| -> Result<Vec<String>, TestbedError> {
        let hosts = state.plan.select(spec).map_err(TestbedError::UnknownHost)?;
        if hosts.is_empty() {
            return Err(TestbedError::UnknownHost(spec.to_string()));
        }
        Ok(hosts.into_iter().map(|h| h.name.clone()).collect())
    };
    let (a, b) = (side(a)?, side(b)?);
    state.partitions.push(Partition {
        a: a.clone(),
        b: b.clone(),
    });
    firewall::apply(&state).await?;
    run.save(&state)?;
    line(&format!("partition: {} | {}", a.join(","), b.join(",")));
    Ok(())
}

/// `testbed isolate HOST`.
pub async fn isolate(run: &RunDir, name: &str) -> Result<(), TestbedError> {
    preflight::require_privileges()?;
    preflight::require_tool("nft", "nftables")?;
    let mut state = run.require()?;
    host(&state, name)?;
    if !state.isolated.iter().any(|h| h == name) {
        state.isolated.push(name.to_string());
    }
    firewall::apply(&state).await?;
    run.save(&state)?;
    line(&format!("isolated: {name}"));
    Ok(())
}

/// `testbed heal`: no partitions, no isolations.
pub async fn heal(run: &RunDir) -> Result<(), TestbedError> {
    preflight::require_privileges()?;
    preflight::require_tool("nft", "nftables")?;
    let mut state = run.require()?;
    state.partitions.clear();
    state.isolated.clear();
    firewall::apply(&state).await?;
    run.save(&state)?;
    line("healed: no partitions, no isolated hosts");
    Ok(())
}
