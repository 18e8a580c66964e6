//! The Jepsen run on an up testbed: the first datacenter with three running servers is the
//! cluster, the faults go through the testbed's own signals and nftables rules (so
//! `testbed status` shows them while they hold), and the clients run as the hidden
//! `_jepsen-clients` helper inside one of the DC's client hosts, so a partition between
//! servers leaves the clients' links alone while an isolated server is cut from them too.

use std::process::Stdio;
use std::time::Duration;

use rustix::process::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::history::{Op, Outcome};
use super::nemesis::Cluster;
use super::{JepsenError, Options, RunReport};
use crate::agents;
use crate::error::TestbedError;
use crate::firewall;
use crate::netns;
use crate::plan::{HostPlan, Role};
use crate::probe;
use crate::state::{Partition, RunDir, State};

fn tb(e: impl Into<TestbedError>) -> JepsenError {
    JepsenError::Testbed(Box::new(e.into()))
}

/// The testbed's servers as the nemesis's cluster.
pub struct OnTestbed<'a> {
    run: &'a RunDir,
    state: State,
    servers: Vec<HostPlan>,
}

impl<'a> OnTestbed<'a> {
    fn host(&self, name: &str) -> Result<HostPlan, JepsenError> {
        self.servers
            .iter()
            .find(|h| h.name == name)
            .cloned()
            .ok_or_else(|| JepsenError::Cluster(format!("no server {name}")))
    }

    async fn firewall(&mut self) -> Result<(), JepsenError> {
        firewall::apply(&self.state).await.map_err(tb)?;
        self.run.save(&self.state).map_err(tb)
    }
}

impl Cluster for OnTestbed<'_> {
    fn names(&self) -> Vec<String> {
        self.servers.iter().map(|h| h.name.clone()).collect()
    }

    async fn leader(&self) -> Option<String> {
        let mut agreed: Option<String> = None;
        for h in &self.servers {
            let replies = probe::get(&self.state.testbed, h, &["/v1/status/leader"])
                .await
                .ok()?;
            let reply = replies.first().filter(|r| r.status == Some(200))?;
            let addr: String = serde_json::from_str(&reply.body).ok()?;
            let ip = addr.rsplit_once(':')?.0;
            let name = self
                .servers
                .iter()
                .find(|s| s.lan_ip.to_string() == ip)?
                .name
                .clone();
            match &agreed {
                Some(a) if *a != name => return None,
                _ => agreed = Some(name),
            }
        }
        agreed
    }

    async fn kill(&mut self, name: &str) -> Result<(), JepsenError> {
        agents::signal(&self.state, name, Signal::KILL)
            .await
            .map_err(tb)
    }

    async fn start(&mut self, name: &str) -> Result<(), JepsenError> {
        let h = self.host(name)?;
        agents::start(&mut self.state, self.run, &h).map_err(tb)?;
        self.run.save(&self.state).map_err(tb)?;
        let (testbed, plan) = (self.state.testbed.clone(), self.state.plan.clone());
        crate::wait::until(
            &format!("{name} answering HTTP"),
            Duration::from_secs(30),
            "",
            || async {
                probe::view(&testbed, &plan, &h)
                    .await
                    .reachable
                    .then_some(())
            },
        )
        .await
        .map_err(tb)
    }

    async fn restart(&mut self, name: &str) -> Result<(), JepsenError> {
        agents::signal(&self.state, name, Signal::TERM)
            .await
            .map_err(tb)?;
        self.start(name).await
    }

    async fn pause(&mut self, name: &str, stop: bool) -> Result<(), JepsenError> {
        let sig = if stop { Signal::STOP } else { Signal::CONT };
        agents::signal(&self.state, name, sig).await.map_err(tb)
    }

    async fn cut(&mut self, name: &str, others: Option<&[String]>) -> Result<(), JepsenError> {
        match others {
            Some(others) => self.state.partitions.push(Partition {
                a: vec![name.to_string()],
                b: others.to_vec(),
            }),
            None => self.state.isolated.push(name.to_string()),
        }
        self.firewall().await
    }

    async fn heal(&mut self) -> Result<(), JepsenError> {
        if self.state.partitions.is_empty() && self.state.isolated.is_empty() {
            return Ok(());
        }
        self.state.partitions.clear();
        self.state.isolated.clear();
        self.firewall().await
    }
}

/// Runs `_jepsen-clients` in `client`'s namespace with `extra` flags; its ops.
async fn clients(
    state: &State,
    client: &HostPlan,
    w: &super::workload::Workload,
    extra: &[String],
) -> Result<Vec<Op>, JepsenError> {
    let mut child = netns::helper(&state.testbed, &client.netns, "_jepsen-clients")
        .arg("--urls")
        .arg(w.urls.join(","))
        .args([
            "--clients",
            &w.clients.to_string(),
            "--keys",
            &w.keys.to_string(),
        ])
        .args(["--prefix", &w.prefix, "--seed", &w.seed.to_string()])
        .args(["--reads", w.reads.label()])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| JepsenError::Io("starting _jepsen-clients".into(), e))?;
    let mut ops = Vec::new();
    if let Some(out) = child.stdout.take() {
        let mut lines = BufReader::new(out).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Ok(op) = serde_json::from_str::<Op>(&l) {
                ops.push(op);
            }
        }
    }
    let _ = child.wait().await;
    Ok(ops)
}

/// One seeded run on the up testbed in `run`.
pub async fn run_once(run: &RunDir, opts: &Options, seed: u64) -> Result<RunReport, JepsenError> {
    crate::preflight::require_privileges().map_err(tb)?;
    let state = run.require().map_err(tb)?;
    let dc = crate::scenario::dc_with_servers(
        &state,
        3,
        "jepsen",
        "a datacenter with 3 running servers",
    )
    .map_err(tb)?;
    let servers: Vec<HostPlan> = state
        .plan
        .servers_of(&dc)
        .filter(|h| state.processes.contains_key(&h.name))
        .cloned()
        .collect();
    let client = state
        .plan
        .hosts
        .iter()
        .find(|h| h.dc == dc && h.role == Role::Client)
        .cloned()
        .ok_or_else(|| {
            JepsenError::Cluster(format!("{dc} has no client host to run the clients in"))
        })?;
    let dir = opts.out_dir().join(format!("seed-{seed}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| JepsenError::Io(dir.display().to_string(), e))?;
    let urls = servers.iter().map(probe::base_url).collect();
    let mut w = super::workload(opts, seed, urls);
    // The testbed outlives runs: keys of an earlier run with this seed must not be reused.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    w.prefix = format!("jepsen/{seed}-{stamp}/");
    let names: Vec<String> = servers.iter().map(|h| h.name.clone()).collect();
    let helper_state = state.clone();
    let mut cluster = OnTestbed {
        run,
        state,
        servers,
    };
    let wl = w.clone();
    let (client_ref, state_ref) = (&client, &helper_state);
    let (mut ops, events, seconds) = super::drive(&mut cluster, opts, seed, |time| async move {
        let secs = vec!["--secs".to_string(), time.as_secs_f64().to_string()];
        clients(state_ref, client_ref, &wl, &secs).await
    })
    .await?;
    super::agreed_leader(&cluster, "after the heal").await?;
    let last = ops.iter().map(|o| o.complete_ns).max().unwrap_or(0);
    let finals = clients(
        &helper_state,
        &client,
        &w,
        &[
            "--final".into(),
            "--offset-ns".into(),
            (last + 1).to_string(),
        ],
    )
    .await?;
    let answered = (0..opts.keys).all(|k| {
        finals
            .iter()
            .any(|o| o.key.ends_with(&format!("k{k}")) && matches!(o.outcome, Outcome::Read { .. }))
    });
    ops.extend(finals);
    let report = super::conclude(opts, seed, &dir, ops, events, seconds, answered).await?;
    if !report.ok || opts.keep {
        let logs = dir.join("logs");
        let _ = std::fs::create_dir_all(&logs);
        for n in &names {
            let _ = std::fs::copy(run.log_path(n), logs.join(format!("{n}.log")));
        }
    }
    Ok(report)
}

/// The `_jepsen-clients` helper: runs the workload (or, with `final_only`, the final reads)
/// and prints every op as a JSON line.
pub fn helper(w: &super::workload::Workload, secs: f64, final_only: bool, offset_ns: u64) -> i32 {
    use std::io::Write;
    let origin = std::time::Instant::now();
    let ops = if final_only {
        super::workload::final_reads(w, origin, offset_ns, origin + super::SETTLE)
    } else {
        super::workload::run(w, origin, offset_ns, origin + Duration::from_secs_f64(secs))
    };
    let mut out = std::io::stdout().lock();
    for op in &ops {
        if let Ok(l) = serde_json::to_string(op) {
            let _ = writeln!(out, "{l}");
        }
    }
    0
}
