//! `testbed up`: topology → namespaces, LANs and WAN → agents → a leader in every DC.
//!
//! Nothing is made before the checks pass (privileges, tools, topology, binary, a free run
//! directory). The state file is written *before* the first namespace, so whatever happens
//! next — an error, Ctrl-C, a crash — `down` finds everything by its prefix. On an error or
//! a signal, `up` removes what it made itself before returning.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::agents;
use crate::down;
use crate::error::TestbedError;
use crate::gateways;
use crate::netns;
use crate::out::Progress;
use crate::plan::{Plan, Role};
use crate::preflight;
use crate::probe;
use crate::proc::{self, Liveness};
use crate::state::{Phase, RunDir, State, StateError};
use crate::topology::Topology;
use crate::wait;

/// How many namespaces are set up at once (each is a few `ip` processes).
const PARALLEL_HOSTS: usize = 8;

/// What `up` was asked for.
#[derive(Debug, Clone)]
pub struct UpArgs<'a> {
    /// The topology file.
    pub topology: &'a Path,
    /// `--meridian`.
    pub meridian: Option<&'a Path>,
    /// `--gateway`.
    pub gateway: Option<&'a Path>,
    /// How long to wait for leaders.
    pub timeout: Duration,
}

/// Brings a testbed up in `run`, or leaves nothing behind.
pub async fn up(run: &RunDir, args: UpArgs<'_>) -> Result<(), TestbedError> {
    // The topology first: its errors need no root to be seen.
    let topology = Topology::load(args.topology)?;
    preflight::require_privileges()?;
    preflight::require_tool("ip", "iproute2")?;
    if let Some(old) = run.load()? {
        return Err(StateError::Busy {
            dir: run.root().to_path_buf(),
            prefix: old.plan.prefix,
        }
        .into());
    }
    let meridian = preflight::meridian_binary(args.meridian)?;
    let gateway = match args.gateway {
        Some(p) => Some(preflight::meridian_binary(Some(p))?),
        None => None,
    };
    let testbed = std::env::current_exe().map_err(|source| TestbedError::Io {
        what: "locating the testbed binary".into(),
        source,
    })?;
    run.reset_hosts()?;
    let progress = Progress::start();
    let run_id = fresh_run_id().await?;
    let plan = Plan::new(&topology, &format!("mtb{run_id}"));
    let mut state = State {
        run_id,
        topology_file: std::path::absolute(args.topology)
            .unwrap_or_else(|_| args.topology.to_path_buf()),
        topology,
        namespaces: plan.namespaces(),
        plan,
        meridian,
        gateway,
        testbed,
        phase: Phase::Creating,
        processes: Default::default(),
        commands: Default::default(),
        partitions: Vec::new(),
        isolated: Vec::new(),
        wan_links: Vec::new(),
        wan_emulator: None,
        gossip_keys: Default::default(),
        tls: None,
    };
    state.wan_links = crate::wan::links_from_topology(&state.topology, &state.plan);
    run.save(&state)?;
    progress.say(&format!(
        "run {} in {}",
        state.plan.prefix,
        run.root().display()
    ));
    let result = tokio::select! {
        r = bring_up(run, &mut state, progress, args.timeout) => r,
        () = interrupted() => Err(TestbedError::Interrupted),
    };
    if let Err(e) = result {
        progress.say(&format!("up failed: {e}; removing what this run made"));
        match down::teardown(run, None, false).await {
            Ok(r) => progress.say(&format!(
                "removed: {} processes, {} namespaces; logs stay in {}",
                r.processes,
                r.namespaces,
                run.root().display()
            )),
            Err(d) => tracing::error!(cause = %d, "cleanup after a failed up; run `testbed down`"),
        }
        return Err(e);
    }
    Ok(())
}

async fn bring_up(
    run: &RunDir,
    state: &mut State,
    progress: Progress,
    timeout: Duration,
) -> Result<(), TestbedError> {
    crate::secrets::make(state, run).await?;
    run.save(state)?;
    if let Some(ca) = state.tls.as_ref().and_then(|t| t.issuer()) {
        progress.say(&format!(
            "TLS: CA {} and a certificate per host",
            ca.cert.display()
        ));
    }
    build_network(&state.plan).await?;
    progress.say(&format!(
        "network: {} hosts on {} LAN(s) ({} namespaces)",
        state.plan.hosts.len(),
        state.plan.dcs.len(),
        state.namespaces.len()
    ));
    if state.plan.wan_router.is_some() {
        crate::wan::router::start_emulator(state, run).await?;
        run.save(state)?;
        progress.say(&format!(
            "WAN: router + link emulator for {} link(s)",
            state.wan_links.len()
        ));
        for l in &state.wan_links {
            progress.say(&format!("  {}–{}: {}", l.a, l.b, l.params.describe()));
        }
    }
    let hosts = state.plan.hosts.clone();
    let mut started = 0;
    for host in &hosts {
        if agents::start(state, run, host)? {
            started += 1;
        }
    }
    run.save(state)?;
    progress.say(&format!("started {started} agents"));
    let idle_gateways = hosts
        .iter()
        .filter(|h| h.role == Role::Gateway && !state.processes.contains_key(&h.name))
        .count();
    if idle_gateways > 0 {
        progress.say(&format!(
            "{idle_gateways} gateway host(s) made but not started: no meridian-gateway binary (--gateway PATH)"
        ));
    }
    wait_for_leaders(run, state, progress, timeout).await?;
    wait_for_gateways(run, state, progress, timeout).await?;
    state.phase = Phase::Up;
    run.save(state)?;
    progress.say(&format!(
        "up: {} datacenter(s), {} hosts in {:.2}s; `testbed status` for the table",
        state.plan.dcs.len(),
        state.plan.hosts.len(),
        progress.secs()
    ));
    Ok(())
}

/// The switch namespace, then the WAN router's and every host's namespace (several at
/// once).
async fn build_network(plan: &Plan) -> Result<(), TestbedError> {
    netns::build_switch(plan).await?;
    if let Some(router) = &plan.wan_router {
        crate::wan::router::build(plan, router).await?;
    }
    let plan = Arc::new(plan.clone());
    let permits = Arc::new(Semaphore::new(PARALLEL_HOSTS));
    let mut tasks = JoinSet::new();
    for i in 0..plan.hosts.len() {
        let (plan, permits) = (plan.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire().await;
            netns::build_host(&plan, &plan.hosts[i]).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            r?;
        }
    }
    Ok(())
}

/// Waits, DC by DC in parallel, until every agent of a DC names the same leader.
async fn wait_for_leaders(
    run: &RunDir,
    state: &State,
    progress: Progress,
    timeout: Duration,
) -> Result<(), TestbedError> {
    let state = Arc::new(state.clone());
    let mut tasks = JoinSet::new();
    for dc in state.plan.dcs.iter().map(|d| d.name.clone()) {
        let (state, run) = (state.clone(), run.clone());
        tasks.spawn(async move {
            let leader = wait_dc_leader(&run, &state, &dc, timeout).await?;
            progress.say(&format!("{dc}: leader {leader}"));
            Ok::<_, TestbedError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            r?;
        }
    }
    Ok(())
}

/// Waits until every started gateway is alive in its DC's LAN pool (as a server of the DC
/// lists it); fails at once if one exited (a flag it refuses, a port it cannot bind). No
/// leader waits on gateways, and a scenario right after `up` expects them joined.
async fn wait_for_gateways(
    run: &RunDir,
    state: &State,
    progress: Progress,
    timeout: Duration,
) -> Result<(), TestbedError> {
    let gateways: Vec<_> = state
        .plan
        .hosts
        .iter()
        .filter(|h| h.role == Role::Gateway && state.processes.contains_key(&h.name))
        .collect();
    if gateways.is_empty() {
        return Ok(());
    }
    let hint = format!("gateway logs under {}/hosts/", run.root().display());
    wait::until(
        "every gateway in its DC's LAN pool",
        timeout,
        &hint,
        || async {
            for h in &gateways {
                if let Some(p) = state.processes.get(&h.name)
                    && proc::liveness(p) == Liveness::Dead
                {
                    return Some(Err(TestbedError::AgentDied {
                        host: h.name.clone(),
                        log: run.log_path(&h.name),
                    }));
                }
            }
            for h in &gateways {
                if !gateways::in_lan_pool(state, h).await {
                    return None;
                }
            }
            Some(Ok(()))
        },
    )
    .await??;
    progress.say(&format!("{} gateway(s) joined their DCs", gateways.len()));
    Ok(())
}

/// The leader every running agent of `dc` agrees on; fails at once if an agent died.
pub async fn wait_dc_leader(
    run: &RunDir,
    state: &State,
    dc: &str,
    timeout: Duration,
) -> Result<String, TestbedError> {
    let hosts: Vec<_> = state
        .plan
        .hosts
        .iter()
        .filter(|h| h.dc == dc && state.processes.contains_key(&h.name))
        .filter(|h| h.role != Role::Gateway)
        .collect();
    let hint = format!("agent logs under {}/hosts/", run.root().display());
    wait::until(
        &format!("a leader in {dc} seen by all its agents"),
        timeout,
        &hint,
        || async {
            for h in &hosts {
                if let Some(p) = state.processes.get(&h.name)
                    && proc::liveness(p) == Liveness::Dead
                {
                    return Some(Err(TestbedError::AgentDied {
                        host: h.name.clone(),
                        log: run.log_path(&h.name),
                    }));
                }
            }
            let views = futures_join(state, &hosts).await;
            let first = views.first()?.leader.clone()?;
            views
                .iter()
                .all(|v| v.leader.as_deref() == Some(first.as_str()))
                .then_some(Ok(first))
        },
    )
    .await?
}

async fn futures_join(state: &State, hosts: &[&crate::plan::HostPlan]) -> Vec<probe::AgentView> {
    let mut set = JoinSet::new();
    for (i, h) in hosts.iter().enumerate() {
        let (testbed, plan, host) = (state.testbed.clone(), state.plan.clone(), (*h).clone());
        set.spawn(async move { (i, probe::view(&testbed, &plan, &host).await) });
    }
    let mut views: Vec<(usize, probe::AgentView)> = Vec::new();
    while let Some(Ok(v)) = set.join_next().await {
        views.push(v);
    }
    views.sort_by_key(|(i, _)| *i);
    views.into_iter().map(|(_, v)| v).collect()
}

/// A run id whose prefix no namespace uses yet (4 hex digits from the kernel's RNG).
async fn fresh_run_id() -> Result<String, TestbedError> {
    for _ in 0..16 {
        let uuid = std::fs::read_to_string("/proc/sys/kernel/random/uuid").map_err(|source| {
            TestbedError::Io {
                what: "reading /proc/sys/kernel/random/uuid".into(),
                source,
            }
        })?;
        let id: String = uuid
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(4)
            .collect();
        if netns::list_with_prefix(&format!("mtb{id}"))
            .await?
            .is_empty()
        {
            return Ok(id);
        }
    }
    Err(TestbedError::Io {
        what: "choosing a run id".into(),
        source: std::io::Error::other("every id tried is in use"),
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
