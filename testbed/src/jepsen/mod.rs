//! A Jepsen-style test of Meridian's KV store: concurrent clients write, read and CAS a few
//! keys through three real servers while a nemesis kills, pauses, restarts and (on the
//! testbed) partitions them; every history is then checked for linearizability.
//!
//! ```text
//!  testbed jepsen --seed S --runs N
//!    for each seed:  cluster (local: servers on 127.0.0.1 | testbed: the up DC's servers)
//!                      ├─ workload (clients → history)   ┐ at once, for --time
//!                      └─ nemesis  (seeded faults)        ┘
//!                    heal, final ?consistent reads, checker (per key), report
//!    <out>/seed-S/result.json, timeline.png; on failure also history.jsonl and the logs
//! ```

pub mod checker;
pub mod history;
pub mod local;
pub mod nemesis;
pub mod on_testbed;
pub mod options;
pub mod plot;
pub mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use checker::Verdict;
use history::{Call, Op, Outcome};
use nemesis::{Cluster, Event, Schedule};
pub use options::Options;
use workload::{ReadMode, Workload};

/// Why a run could not be carried out (a run that found an anomaly is not an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JepsenError {
    /// A file or process.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The servers misbehaved in a way that stops the run (no leader, would not start).
    #[error("cluster: {0}")]
    Cluster(String),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(String),
    /// The testbed could not do what the nemesis asked.
    #[error(transparent)]
    Testbed(#[from] Box<crate::error::TestbedError>),
}

/// `testbed jepsen`: the runs, on loopback or on the up testbed of `run`; exit code 1 if
/// any run failed.
pub async fn command(
    run: &crate::state::RunDir,
    mut opts: Options,
) -> Result<i32, crate::error::TestbedError> {
    use crate::error::TestbedError;
    if opts.out.is_none() {
        opts.out = Some(run.root().join("jepsen"));
    }
    let target_bin;
    let target = if opts.testbed {
        Target::Testbed(run)
    } else {
        if let Some(k) = opts.nemesis.iter().find(|k| k.is_network()) {
            return Err(TestbedError::Usage(format!(
                "--nemesis {k:?} cuts the network: it needs --testbed (and `testbed up`)"
            )));
        }
        target_bin = crate::preflight::meridian_binary(opts.meridian.as_deref())?;
        Target::Local(&target_bin)
    };
    // On Ctrl-C/SIGTERM the run is dropped, and with it the loopback servers it started
    // (faults left on a testbed show in `status`; `heal` removes them).
    let all_passed = tokio::select! {
        r = self::run(target, &opts) => r.map_err(|e| TestbedError::Jepsen(e.to_string()))?,
        () = crate::up::interrupted() => return Err(TestbedError::Interrupted),
    };
    Ok(if all_passed { 0 } else { 1 })
}

/// Op counts by kind and outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Reads answered.
    pub reads: usize,
    /// Reads not answered.
    pub reads_failed: usize,
    /// Writes acknowledged.
    pub writes: usize,
    /// Writes refused (not applied).
    pub writes_failed: usize,
    /// Writes with unknown outcome.
    pub writes_unknown: usize,
    /// CAS answered true.
    pub cas_true: usize,
    /// CAS answered false.
    pub cas_false: usize,
    /// CAS refused.
    pub cas_failed: usize,
    /// CAS with unknown outcome.
    pub cas_unknown: usize,
}

impl Counts {
    fn of(ops: &[Op]) -> Counts {
        let mut c = Counts::default();
        for op in ops {
            let slot = match (&op.call, &op.outcome) {
                (Call::Read, Outcome::Read { .. }) => &mut c.reads,
                (Call::Read, _) => &mut c.reads_failed,
                (Call::Write { .. }, Outcome::Done { .. }) => &mut c.writes,
                (Call::Write { .. }, Outcome::Fail { .. }) => &mut c.writes_failed,
                (Call::Write { .. }, _) => &mut c.writes_unknown,
                (Call::Cas { .. }, Outcome::Done { applied: true }) => &mut c.cas_true,
                (Call::Cas { .. }, Outcome::Done { applied: false }) => &mut c.cas_false,
                (Call::Cas { .. }, Outcome::Fail { .. }) => &mut c.cas_failed,
                (Call::Cas { .. }, _) => &mut c.cas_unknown,
            };
            *slot += 1;
        }
        c
    }
}

/// One run's result (`result.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Whether every key is linearizable, the run did real work and the final reads were
    /// answered.
    pub ok: bool,
    /// Why not, if not.
    pub problems: Vec<String>,
    /// Read mode.
    pub reads: ReadMode,
    /// Seconds of workload.
    pub seconds: f64,
    /// Op counts.
    pub counts: Counts,
    /// The nemesis's events.
    pub faults: Vec<Event>,
    /// Per key.
    pub verdicts: BTreeMap<String, Verdict>,
    /// Seconds the checker took.
    pub check_seconds: f64,
    /// Where the run's files are.
    pub dir: PathBuf,
}

/// How long the cluster has to settle before a run and after the nemesis.
const SETTLE: Duration = Duration::from_secs(30);

/// Waits until the servers agree on a leader.
async fn agreed_leader<C: Cluster>(c: &C, what: &str) -> Result<String, JepsenError> {
    crate::wait::until(&format!("an agreed leader {what}"), SETTLE, "", || {
        c.leader()
    })
    .await
    .map_err(|e| JepsenError::Cluster(e.to_string()))
}

/// The parts of a run that do not depend on where the cluster is: workload and nemesis at
/// once, heal, final reads. `clients` runs the workload (in this process, or in a
/// namespace) and returns its ops.
pub(crate) async fn drive<C, W, F>(
    cluster: &mut C,
    opts: &Options,
    seed: u64,
    clients: W,
) -> Result<(Vec<Op>, Vec<Event>, f64), JepsenError>
where
    C: Cluster,
    W: FnOnce(Duration) -> F,
    F: std::future::Future<Output = Result<Vec<Op>, JepsenError>>,
{
    agreed_leader(cluster, "before the run").await?;
    let schedule = Schedule {
        kinds: opts.nemesis.clone(),
        seed,
        quiet: (Duration::from_millis(1000), Duration::from_millis(4000)),
        hold: (Duration::from_millis(1000), Duration::from_millis(6000)),
    };
    let origin = Instant::now();
    let end = origin + opts.time;
    let (ops, events) = tokio::join!(
        clients(opts.time),
        nemesis::run(cluster, &schedule, origin, end)
    );
    let seconds = origin.elapsed().as_secs_f64();
    // Whatever happened, leave nothing broken.
    cluster.heal().await?;
    Ok((ops?, events?, seconds))
}

/// Checks `ops` and writes the run's files into `dir`; the report.
pub(crate) async fn conclude(
    opts: &Options,
    seed: u64,
    dir: &Path,
    ops: Vec<Op>,
    events: Vec<Event>,
    seconds: f64,
    final_answered: bool,
) -> Result<RunReport, JepsenError> {
    let started = std::time::Instant::now();
    let for_check = ops.clone();
    let verdicts =
        tokio::task::spawn_blocking(move || checker::check(&for_check, checker::DEFAULT_BUDGET))
            .await
            .map_err(|e| JepsenError::Cluster(format!("checker panicked: {e}")))?;
    let check_seconds = started.elapsed().as_secs_f64();
    let counts = Counts::of(&ops);
    let mut problems = Vec::new();
    for (key, v) in &verdicts {
        if !v.is_ok() {
            problems.push(format!(
                "{key}: {}",
                serde_json::to_string(v).unwrap_or_default()
            ));
        }
    }
    if counts.writes == 0 || counts.reads == 0 {
        problems.push("no acknowledged write or no answered read: nothing was tested".into());
    }
    if !final_answered {
        problems.push("a final ?consistent read was not answered after the heal".into());
    }
    if !opts.nemesis.is_empty() && events.is_empty() {
        problems.push("the nemesis did nothing (run too short?)".into());
    }
    let report = RunReport {
        seed,
        ok: problems.is_empty(),
        problems,
        reads: opts.reads,
        seconds,
        counts,
        faults: events,
        verdicts,
        check_seconds,
        dir: dir.to_path_buf(),
    };
    let write = |name: &str, body: String| {
        let p = dir.join(name);
        std::fs::write(&p, body).map_err(|e| JepsenError::Io(p.display().to_string(), e))
    };
    write(
        "result.json",
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    )?;
    let title = format!(
        "seed {seed}: {} reads, {} ops, {}",
        opts.reads.label(),
        ops.len(),
        if report.ok {
            "linearizable"
        } else {
            "NOT LINEARIZABLE"
        }
    );
    if let Err(e) = plot::timeline(
        &dir.join("timeline.png"),
        &title,
        &ops,
        &report.faults,
        seconds,
    ) {
        crate::out::line(&format!("  (no plot: {e})"));
    }
    if !report.ok || opts.keep {
        let lines: Vec<String> = ops
            .iter()
            .filter_map(|o| serde_json::to_string(o).ok())
            .collect();
        write("history.jsonl", lines.join("\n") + "\n")?;
    }
    Ok(report)
}

/// The workload of a run: clients, keys, a prefix unique to the seed.
pub(crate) fn workload(opts: &Options, seed: u64, urls: Vec<String>) -> Workload {
    Workload {
        urls,
        clients: opts.clients,
        keys: opts.keys,
        prefix: format!("jepsen/{seed}/"),
        reads: opts.reads,
        seed,
        timeout: Duration::from_secs(5),
    }
}

/// One run against servers on loopback.
async fn run_local(bin: &Path, opts: &Options, seed: u64) -> Result<RunReport, JepsenError> {
    let dir = opts.out_dir().join(format!("seed-{seed}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| JepsenError::Io(dir.display().to_string(), e))?;
    let mut cluster = local::Local::start(bin, &dir, opts.servers, opts.agents).await?;
    let w = workload(opts, seed, cluster.urls());
    let wl = w.clone();
    let (mut ops, events, seconds) = drive(&mut cluster, opts, seed, |time| async move {
        tokio::task::spawn_blocking(move || {
            let origin = std::time::Instant::now();
            workload::run(&wl, origin, 0, origin + time)
        })
        .await
        .map_err(|e| JepsenError::Cluster(format!("workload panicked: {e}")))
    })
    .await?;
    agreed_leader(&cluster, "after the heal").await?;
    let last = ops.iter().map(|o| o.complete_ns).max().unwrap_or(0);
    let finals = tokio::task::spawn_blocking(move || {
        let origin = std::time::Instant::now();
        workload::final_reads(&w, origin, last + 1, origin + SETTLE)
    })
    .await
    .map_err(|e| JepsenError::Cluster(format!("final reads panicked: {e}")))?;
    let answered = (0..opts.keys).all(|k| {
        finals
            .iter()
            .any(|o| o.key.ends_with(&format!("k{k}")) && matches!(o.outcome, Outcome::Read { .. }))
    });
    ops.extend(finals);
    cluster.kill_all();
    let report = conclude(opts, seed, &dir, ops, events, seconds, answered).await?;
    if report.ok && !opts.keep {
        for name in cluster.all_names() {
            let _ = std::fs::remove_dir_all(dir.join(&name));
            let _ = std::fs::remove_file(cluster.log_path(&name));
        }
    }
    Ok(report)
}

/// Where the runs happen.
pub enum Target<'a> {
    /// Servers started on 127.0.0.1 from this binary.
    Local(&'a Path),
    /// The up testbed in this run dir.
    Testbed(&'a crate::state::RunDir),
}

/// Runs every seed; prints a line per run and a summary; `Ok(true)` if all passed.
pub async fn run(target: Target<'_>, opts: &Options) -> Result<bool, JepsenError> {
    use crate::out::line;
    let mut failed = Vec::new();
    let mut summary = Vec::new();
    let started = Instant::now();
    for (n, seed) in (opts.seed..opts.seed + opts.runs).enumerate() {
        line(&format!(
            "run {}/{} seed {seed}: {:?} reads, nemesis {:?}, {:?}",
            n + 1,
            opts.runs,
            opts.reads,
            opts.nemesis,
            opts.time
        ));
        let attempt = match &target {
            Target::Local(bin) => run_local(bin, opts, seed).await,
            Target::Testbed(run) => on_testbed::run_once(run, opts, seed).await,
        };
        // A run that could not finish (no leader after the heal, a server that would not
        // start) is a failed run, not the end of the series.
        let report = match attempt {
            Ok(r) => r,
            Err(e) => {
                line(&format!("  seed {seed}: could not finish: {e}"));
                failed.push(seed);
                continue;
            }
        };
        let c = &report.counts;
        line(&format!(
            "  seed {seed}: {} ({} reads, {} writes, {} CAS true / {} false; {} unknown, {} refused; {} faults; checked in {:.2}s) → {}",
            if report.ok { "ok" } else { "FAILED" },
            c.reads,
            c.writes,
            c.cas_true,
            c.cas_false,
            c.writes_unknown + c.cas_unknown,
            c.writes_failed + c.cas_failed,
            report.faults.iter().filter(|e| e.fault.is_some()).count(),
            report.check_seconds,
            report.dir.display()
        ));
        for p in &report.problems {
            line(&format!("    {p}"));
        }
        if !report.ok {
            failed.push(seed);
        }
        summary.push(report);
    }
    let path = opts.out_dir().join("summary.json");
    let body = serde_json::json!({
        "seeds": summary.iter().map(|r| r.seed).collect::<Vec<_>>(),
        "failed": failed,
        "reads": opts.reads,
        "nemesis": opts.nemesis,
        "seconds_per_run": opts.time.as_secs_f64(),
        "ops": summary.iter().map(|r| r.counts.reads + r.counts.writes + r.counts.cas_true + r.counts.cas_false).sum::<usize>(),
        "unknown": summary.iter().map(|r| r.counts.writes_unknown + r.counts.cas_unknown).sum::<usize>(),
        "faults": summary.iter().map(|r| r.faults.iter().filter(|e| e.fault.is_some()).count()).sum::<usize>(),
        "non_linearizable_keys": summary.iter().map(|r| r.verdicts.values().filter(|v| !v.is_ok()).count()).sum::<usize>(),
        "wall_seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    )
    .map_err(|e| JepsenError::Io(path.display().to_string(), e))?;
    line(&format!(
        "{} of {} runs passed; failed seeds: {failed:?}; summary {}",
        opts.runs as usize - failed.len(),
        opts.runs,
        path.display()
    ));
    Ok(failed.is_empty())
}
