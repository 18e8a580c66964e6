//! Scenarios: scripted, asserting, timed runs against an up testbed. Each one fills a
//! `Report` (checks with details, timings, counts) that is written as JSON to
//! `<run-dir>/results/<name>-<unix time>.json` whether it passes or not.
//!
//! A scenario never leaves its faults in force: what it breaks it repairs before it returns
//! (or says in the report that it could not).

mod acl_federation;
mod beyond;
mod client_dns;
mod dig;
mod failure_matrix;
mod federation;
mod inject;
mod lan_partition;
mod leader_failover;
pub mod plot;
mod sites;
mod stream;
pub mod timeline;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cli::ScenarioName;
use crate::error::TestbedError;
use crate::out::{Progress, line};
use crate::preflight;
use crate::state::{Phase, RunDir};

/// A scenario could not run, or ran and failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The testbed does not have what the scenario needs.
    #[error("scenario {name} needs {needs}")]
    Precondition {
        /// The scenario.
        name: &'static str,
        /// What is missing.
        needs: String,
    },
    /// A step of the scenario could not be carried out (its check says more).
    #[error("{0}")]
    Step(String),
    /// At least one check failed; the report says which.
    #[error("scenario {name} failed: {failed}; report {}", path.display())]
    Failed {
        /// The scenario.
        name: &'static str,
        /// The failed checks' names.
        failed: String,
        /// The JSON report.
        path: PathBuf,
    },
}

/// One assertion of a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// What was checked (a claim: `no_acknowledged_write_lost`).
    pub name: String,
    /// Whether it held.
    pub ok: bool,
    /// Numbers or reasons behind the verdict.
    pub detail: String,
}

/// What a scenario run found; written as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// Every check held.
    pub ok: bool,
    /// The run's namespace prefix.
    pub run: String,
    /// Unix time of the start, in seconds.
    pub started_unix: u64,
    /// Wall time of the whole scenario, in seconds.
    pub duration_s: f64,
    /// Assertions in the order they were made.
    pub checks: Vec<Check>,
    /// Named durations, in seconds (`leader_elected_after_kill_s`) or, where the name ends
    /// in `_ms`, milliseconds (`read_dc1_to_dc2_p50_ms`).
    pub timings: BTreeMap<String, f64>,
    /// Named counts (e.g. `writes_acknowledged`).
    pub counts: BTreeMap<String, u64>,
    /// Facts about the run (e.g. `old_leader`).
    pub facts: BTreeMap<String, String>,
    /// What each agent of the DC said over time (scenarios that sample).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<timeline::Sample>,
    /// Timed requests of the scenario's query load (scenarios that run one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<timeline::QuerySample>,
    /// What the scenario did, on the timeline's clock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<timeline::Event>,
    /// PNG plots written beside the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plots: Vec<PathBuf>,
}

impl Report {
    fn new(scenario: &str, run: &str) -> Report {
        Report {
            scenario: scenario.to_string(),
            ok: true,
            run: run.to_string(),
            started_unix: unix_now(),
            duration_s: 0.0,
            checks: Vec::new(),
            timings: BTreeMap::new(),
            counts: BTreeMap::new(),
            facts: BTreeMap::new(),
            timeline: Vec::new(),
            queries: Vec::new(),
            events: Vec::new(),
            plots: Vec::new(),
        }
    }

    /// `<results>/<scenario>-<start>-<what>.png`.
    fn plot_path(&self, run_dir: &RunDir, what: &str) -> PathBuf {
        let dir = run_dir.results_dir();
        // If this fails, drawing fails and says why.
        let _ = run_dir.create_dir(&dir);
        dir.join(format!(
            "{}-{}-{what}.png",
            self.scenario, self.started_unix
        ))
    }

    /// Records a check (and prints it).
    fn check(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        let detail = detail.into();
        line(&format!(
            "  {} {name}: {detail}",
            if ok { "ok  " } else { "FAIL" }
        ));
        self.ok &= ok;
        self.checks.push(Check {
            name: name.to_string(),
            ok,
            detail,
        });
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `testbed scenario NAME [--doc PATH]` (`--doc`: where `failure-matrix` writes its Markdown).
pub async fn run(
    run_dir: &RunDir,
    name: ScenarioName,
    doc: Option<&std::path::Path>,
) -> Result<(), TestbedError> {
    preflight::require_privileges()?;
    let mut state = run_dir.require()?;
    let label = name.label();
    if state.phase != Phase::Up {
        return Err(ScenarioError::Precondition {
            name: label,
            needs: "a testbed that finished `up`".into(),
        }
        .into());
    }
    let progress = Progress::start();
    let mut report = Report::new(label, &state.plan.prefix);
    progress.say(&format!("scenario {label}"));
    let outcome = match name {
        ScenarioName::LeaderFailover => {
            leader_failover::run(run_dir, &mut state, &mut report, progress).await
        }
        ScenarioName::ClientDns => {
            client_dns::run(run_dir, &mut state, &mut report, progress).await
        }
        ScenarioName::LanPartition => {
            lan_partition::run(run_dir, &mut state, &mut report, progress).await
        }
        ScenarioName::Federation => {
            federation::run(run_dir, &mut state, &mut report, progress).await
        }
        ScenarioName::AclFederation => {
            acl_federation::run(run_dir, &mut state, &mut report, progress).await
        }
        ScenarioName::Beyond => beyond::run(run_dir, &mut state, &mut report, progress).await,
        ScenarioName::FailureMatrix => {
            failure_matrix::run(run_dir, &mut state, &mut report, progress, doc).await
        }
    };
    if let Err(e) = outcome {
        if matches!(
            e,
            TestbedError::Scenario(ScenarioError::Precondition { .. })
        ) {
            return Err(e);
        }
        report.check("completed", false, e.to_string());
    }
    report.duration_s = progress.secs();
    plot_timeline(run_dir, &mut report);
    let path = write_report(run_dir, &report)?;
    for p in &report.plots {
        progress.say(&format!("plot {}", p.display()));
    }
    progress.say(&format!(
        "scenario {label}: {} in {:.2}s; report {}",
        if report.ok { "passed" } else { "FAILED" },
        report.duration_s,
        path.display()
    ));
    if report.ok {
        Ok(())
    } else {
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        Err(ScenarioError::Failed {
            name: label,
            failed: failed.join(", "),
            path,
        }
        .into())
    }
}

/// Draws the report's timeline, if it has one (a plot that fails is a warning, not a
/// failed scenario: the JSON has the same data).
fn plot_timeline(run_dir: &RunDir, report: &mut Report) {
    if report.timeline.is_empty() {
        return;
    }
    let mut hosts: Vec<String> = Vec::new();
    for s in &report.timeline {
        if !hosts.contains(&s.host) {
            hosts.push(s.host.clone());
        }
    }
    hosts.sort();
    let path = report.plot_path(run_dir, "timeline");
    let title = format!("{} ({})", report.scenario, report.run);
    match plot::timeline(&path, &title, &hosts, &report.timeline, &report.events) {
        Ok(()) => report.plots.push(path),
        Err(e) => tracing::warn!(cause = %e, "drawing the timeline"),
    }
}

fn write_report(run_dir: &RunDir, report: &Report) -> Result<PathBuf, TestbedError> {
    let dir = run_dir.results_dir();
    run_dir.create_dir(&dir)?;
    let path = dir.join(format!("{}-{}.json", report.scenario, report.started_unix));
    let text = serde_json::to_string_pretty(report).unwrap_or_default();
    std::fs::write(&path, text).map_err(|source| TestbedError::Io {
        what: format!("writing {}", path.display()),
        source,
    })?;
    Ok(path)
}

/// The first DC with at least `min` running servers; otherwise `scenario`'s precondition
/// error saying it `needs` one.
pub(crate) fn dc_with_servers(
    state: &crate::state::State,
    min: usize,
    scenario: &'static str,
    needs: &str,
) -> Result<String, TestbedError> {
    state
        .plan
        .dcs
        .iter()
        .find(|d| {
            state
                .plan
                .servers_of(&d.name)
                .filter(|s| state.processes.contains_key(&s.name))
                .count()
                >= min
        })
        .map(|d| d.name.clone())
        .ok_or_else(|| {
            ScenarioError::Precondition {
                name: scenario,
                needs: needs.into(),
            }
            .into()
        })
}
