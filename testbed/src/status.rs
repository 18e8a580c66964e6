//! `testbed status`: one row per host — DC, role, address, pid, alive, the leader it sees,
//! a server's raft applied index — plus the faults in force.

use serde::Serialize;
use tokio::task::JoinSet;

use crate::error::TestbedError;
use crate::gateways;
use crate::out::line;
use crate::plan::{HostPlan, Role};
use crate::probe;
use crate::proc::{self, Liveness};
use crate::state::{RunDir, State};

/// One host's row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Host name.
    pub host: String,
    /// Datacenter.
    pub dc: String,
    /// server, client, gateway.
    pub role: Role,
    /// LAN address (and WAN address for gateways).
    pub address: String,
    /// Pid of its program.
    pub pid: Option<i32>,
    /// yes, stopped, no, or "not started".
    pub alive: String,
    /// The leader it names (host name).
    pub leader: Option<String>,
    /// Raft applied index (servers).
    pub index: Option<u64>,
}

/// Reads every host's row (agents in parallel).
pub async fn rows(state: &State) -> Vec<Row> {
    let mut tasks = JoinSet::new();
    for (i, host) in state.plan.hosts.iter().enumerate() {
        let (state, host) = (state.clone(), host.clone());
        tasks.spawn(async move { (i, row(&state, &host).await) });
    }
    let mut rows = Vec::new();
    while let Some(Ok(r)) = tasks.join_next().await {
        rows.push(r);
    }
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, r)| r).collect()
}

async fn row(state: &State, host: &HostPlan) -> Row {
    let mut r = Row {
        host: host.name.clone(),
        dc: host.dc.clone(),
        role: host.role,
        address: match host.wan_ip {
            Some(wan) => format!("{} wan {wan}", host.lan_ip),
            None => host.lan_ip.to_string(),
        },
        pid: None,
        alive: "not started".into(),
        leader: None,
        index: None,
    };
    let Some(p) = state.processes.get(&host.name) else {
        return r;
    };
    r.pid = Some(p.pid);
    let live = proc::liveness(p);
    r.alive = live.to_string();
    if live == Liveness::Running && host.role == Role::Gateway {
        // No HTTP API on a gateway: alive is what its DC's servers see.
        if !gateways::in_lan_pool(state, host).await {
            r.alive = "not in LAN pool".into();
        }
    } else if live == Liveness::Running {
        let v = probe::view(&state.testbed, &state.plan, host).await;
        if !v.reachable {
            r.alive = "no answer".into();
        }
        r.leader = v.leader;
        r.index = v.index;
    }
    r
}

/// `testbed status`.
pub async fn status(run: &RunDir, json: bool) -> Result<(), TestbedError> {
    crate::preflight::require_privileges()?;
    let state = run.require()?;
    let rows = rows(&state).await;
    if json {
        line(&serde_json::to_string_pretty(&rows).unwrap_or_default());
        return Ok(());
    }
    line(&format!(
        "run {} ({:?}) in {}",
        state.plan.prefix,
        state.phase,
        run.root().display()
    ));
    line(&table(&rows));
    notes(&state, &rows);
    Ok(())
}

/// The rows as an aligned text table.
pub fn table(rows: &[Row]) -> String {
    let header = [
        "HOST", "DC", "ROLE", "ADDRESS", "PID", "ALIVE", "LEADER", "INDEX",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let leader = match &r.leader {
                Some(l) if *l == r.host => format!("{l} (self)"),
                Some(l) => l.clone(),
                None => "-".into(),
            };
            [
                r.host.clone(),
                r.dc.clone(),
                r.role.to_string(),
                r.address.clone(),
                r.pid.map_or("-".into(), |p| p.to_string()),
                r.alive.clone(),
                leader,
                r.index.map_or("-".into(), |i| i.to_string()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let fmt = |row: &[String]| {
        row.iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    std::iter::once(fmt(&header.map(String::from)))
        .chain(cells.iter().map(|r| fmt(r)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn notes(state: &State, rows: &[Row]) {
    let idle = rows
        .iter()
        .filter(|r| r.role == Role::Gateway && r.pid.is_none())
        .count();
    if idle > 0 {
        line(&format!(
            "gateways: {idle} host(s) on LAN + WAN, not started: `up` was given no --gateway binary"
        ));
    }
    if let Some(p) = &state.wan_emulator {
        line(&format!(
            "wan: link emulator pid {} ({}); `testbed wan show` for packet counts",
            p.pid,
            match proc::liveness(p) {
                Liveness::Dead => "NOT RUNNING: the WAN passes nothing",
                _ => "running",
            }
        ));
    }
    for l in &state.wan_links {
        line(&format!("  {}–{}: {}", l.a, l.b, l.params.describe()));
    }
    for p in &state.partitions {
        line(&format!("partition: {} | {}", p.a.join(","), p.b.join(",")));
    }
    for h in &state.isolated {
        line(&format!("isolated: {h}"));
    }
}
