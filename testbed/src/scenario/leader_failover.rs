//! Scenario `leader-failover`: in one datacenter (≥ 3 servers, ≥ 1 client), write KV keys
//! through a client one at a time, SIGKILL the leader, and check that
//!
//! 1. the surviving servers elect a new leader within the deadline,
//! 2. writes are acknowledged again after the failover,
//! 3. every acknowledged key reads back with its value (a consistent read through the
//!    client), and
//! 4. after the old leader is restarted, every server — it included — holds every
//!    acknowledged key (stale reads on each server).
//!
//! Timings (kill → new leader, kill → first acknowledged write) and write counts go to the
//! report, with a timeline of every agent of the DC (leader named, raft index, members
//! alive) that is also drawn as a PNG.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use rustix::process::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::timeline::Timeline;
use super::{Report, ScenarioError};
use crate::agents;
use crate::error::TestbedError;
use crate::helper::{WriteRecord, value_of};
use crate::netns;
use crate::out::Progress;
use crate::plan::{HostPlan, Role};
use crate::probe;
use crate::state::{RunDir, State};
use crate::up::wait_dc_leader;
use crate::wait;

/// Acknowledged writes before the kill.
const WRITES_BEFORE: usize = 50;
/// Acknowledged writes after the new leader, before the writer stops.
const WRITES_AFTER: usize = 20;
/// Deadline for each step (a leader, N writes, convergence).
const STEP_DEADLINE: Duration = Duration::from_secs(30);

/// Runs the scenario, filling `report`.
pub(super) async fn run(
    run_dir: &RunDir,
    state: &mut State,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    let (dc, client) = pick(state)?;
    report.facts.insert("datacenter".into(), dc.clone());
    report.facts.insert("client".into(), client.name.clone());
    let old = wait_dc_leader(run_dir, state, &dc, STEP_DEADLINE).await?;
    report.facts.insert("old_leader".into(), old.clone());
    let prefix = format!("testbed/leader-failover/{}", report.started_unix);
    report.facts.insert("key_prefix".into(), prefix.clone());
    progress.say(&format!(
        "{dc}: leader {old}; writing {prefix}/N through {}",
        client.name
    ));

    let agents: Vec<HostPlan> = state
        .plan
        .hosts
        .iter()
        .filter(|h| h.dc == dc && h.role != Role::Gateway && state.processes.contains_key(&h.name))
        .cloned()
        .collect();
    let mut tl = Timeline::start(state, agents, Instant::now());
    let writer = Writer::spawn(state, &client, &prefix)?;
    wait::until(
        "acknowledged writes before the kill",
        STEP_DEADLINE,
        "",
        || async { (writer.acked_after(None) >= WRITES_BEFORE).then_some(()) },
    )
    .await?;

    let killed_at = Instant::now();
    agents::signal(state, &old, Signal::KILL).await?;
    tl.event(format!("SIGKILL {old}"));
    progress.say(&format!("SIGKILL {old}; waiting for a new leader"));
    let new = new_leader(state, &dc, &old).await;
    let elected_after = killed_at.elapsed().as_secs_f64();
    report.check(
        "new_leader_elected",
        new.is_ok(),
        match &new {
            Ok(n) => format!("{n} after {elected_after:.2}s (deadline {STEP_DEADLINE:?})"),
            Err(e) => e.to_string(),
        },
    );
    if let Ok(n) = &new {
        report.facts.insert("new_leader".into(), n.clone());
        report
            .timings
            .insert("leader_elected_after_kill_s".into(), elected_after);
        progress.say(&format!("new leader {n}"));
    }
    let resumed = wait::until(
        "writes acknowledged after the failover",
        STEP_DEADLINE,
        "",
        || async { (writer.acked_after(Some(killed_at)) >= WRITES_AFTER).then_some(()) },
    )
    .await;
    report.check(
        "writes_acknowledged_after_failover",
        resumed.is_ok(),
        format!(
            "{} acknowledged after the kill",
            writer.acked_after(Some(killed_at))
        ),
    );
    let records = writer.stop().await;
    count(report, &records, killed_at);

    let acked: BTreeMap<u64, String> = records
        .iter()
        .filter(|(_, r)| r.ok)
        .map(|(_, r)| (r.n, value_of(r.n)))
        .collect();
    let read = read_keys(state, &client, &prefix, "consistent").await;
    let lost = match &read {
        Ok(found) => missing(&acked, found),
        Err(e) => vec![e.clone()],
    };
    report.check(
        "no_acknowledged_write_lost",
        lost.is_empty(),
        if lost.is_empty() {
            format!(
                "all {} acknowledged keys read back (consistent read via {})",
                acked.len(),
                client.name
            )
        } else {
            format!("missing or wrong: {}", lost.join(", "))
        },
    );

    // Repair: the old leader comes back on its data dir and catches up.
    let old_host = state.plan.host(&old).cloned();
    if let Some(h) = old_host {
        agents::start(state, run_dir, &h)?;
        run_dir.save(state)?;
        tl.event(format!("restart {old}"));
        progress.say(&format!(
            "restarted {old}; waiting until every server holds every key"
        ));
    }
    let servers: Vec<HostPlan> = state.plan.servers_of(&dc).cloned().collect();
    let converged = wait::until(
        "every server holding every acknowledged key",
        STEP_DEADLINE,
        "",
        || async {
            for s in &servers {
                match read_keys(state, s, &prefix, "stale").await {
                    Ok(found) if missing(&acked, &found).is_empty() => {}
                    _ => return None,
                }
            }
            Some(())
        },
    )
    .await;
    report.check(
        "every_server_holds_every_acknowledged_key",
        converged.is_ok(),
        match converged {
            Ok(()) => format!("{} servers (old leader restarted) agree", servers.len()),
            Err(e) => e.to_string(),
        },
    );
    let (samples, events) = tl.finish().await;
    report.timeline = samples;
    report.events = events;
    Ok(())
}

/// The first DC with ≥ 3 running servers and a running client.
fn pick(state: &State) -> Result<(String, HostPlan), TestbedError> {
    for dc in &state.plan.dcs {
        let running = |role: Role| {
            state
                .plan
                .hosts
                .iter()
                .filter(move |h| h.dc == dc.name && h.role == role)
                .filter(|h| state.processes.contains_key(&h.name))
        };
        if running(Role::Server).count() >= 3
            && let Some(c) = running(Role::Client).next()
        {
            return Ok((dc.name.clone(), c.clone()));
        }
    }
    Err(ScenarioError::Precondition {
        name: "leader-failover",
        needs: "a datacenter with at least 3 servers and 1 client".into(),
    }
    .into())
}

/// Waits until the surviving servers agree on a leader other than `old`.
async fn new_leader(state: &State, dc: &str, old: &str) -> Result<String, TestbedError> {
    let survivors: Vec<HostPlan> = state
        .plan
        .servers_of(dc)
        .filter(|s| s.name != old)
        .cloned()
        .collect();
    wait::until(
        "a new leader among the surviving servers",
        STEP_DEADLINE,
        "",
        || async {
            let mut seen = Vec::new();
            for s in &survivors {
                seen.push(probe::view(&state.testbed, &state.plan, s).await.leader);
            }
            let first = seen.first()?.clone()?;
            (first != old && seen.iter().all(|l| l.as_deref() == Some(first.as_str())))
                .then_some(first)
        },
    )
    .await
}

fn count(report: &mut Report, records: &[(Instant, WriteRecord)], killed_at: Instant) {
    let acked = records.iter().filter(|(_, r)| r.ok).count();
    let before = records
        .iter()
        .filter(|(t, r)| r.ok && *t < killed_at)
        .count();
    let c = &mut report.counts;
    c.insert("writes_attempted".into(), records.len() as u64);
    c.insert("writes_acknowledged".into(), acked as u64);
    c.insert(
        "writes_not_acknowledged".into(),
        (records.len() - acked) as u64,
    );
    c.insert("acknowledged_before_kill".into(), before as u64);
    c.insert("acknowledged_after_kill".into(), (acked - before) as u64);
    timings(report, records, killed_at);
}

/// How long writes stalled around the kill. The writer's clock is its own: its start on
/// ours is estimated from the earliest (arrival − `at_ms`), the pipe delay being tiny.
fn timings(report: &mut Report, records: &[(Instant, WriteRecord)], killed_at: Instant) {
    let ms = Duration::from_millis;
    let Some(writer_start) = records
        .iter()
        .filter_map(|(t, r)| t.checked_sub(ms(r.at_ms)))
        .min()
    else {
        return;
    };
    let t = &mut report.timings;
    let first_after = records
        .iter()
        .filter(|(_, r)| r.ok && writer_start + ms(r.sent_ms) >= killed_at)
        .map(|(at, _)| at.duration_since(killed_at))
        .min();
    if let Some(d) = first_after {
        t.insert(
            "first_write_sent_after_kill_acked_s".into(),
            d.as_secs_f64(),
        );
    }
    let acks: Vec<Instant> = records
        .iter()
        .filter(|(_, r)| r.ok)
        .map(|(at, _)| *at)
        .collect();
    let stall = acks
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default();
    t.insert("longest_gap_between_acks_s".into(), stall.as_secs_f64());
    let slowest = records
        .iter()
        .map(|(_, r)| r.at_ms.saturating_sub(r.sent_ms))
        .max()
        .unwrap_or_default();
    t.insert("slowest_write_s".into(), ms(slowest).as_secs_f64());
}

/// Acknowledged keys that `found` lacks or holds with another value.
fn missing(acked: &BTreeMap<u64, String>, found: &BTreeMap<u64, String>) -> Vec<String> {
    acked
        .iter()
        .filter(|(n, v)| found.get(n) != Some(v))
        .map(|(n, _)| n.to_string())
        .collect()
}

/// Every `<prefix>/<n>` key with its value, read through `host` with `?consistent` or
/// `?stale`.
async fn read_keys(
    state: &State,
    host: &HostPlan,
    prefix: &str,
    mode: &str,
) -> Result<BTreeMap<u64, String>, String> {
    let path = format!("/v1/kv/{prefix}/?recurse&{mode}");
    let replies = probe::get(&state.testbed, host, &[&path])
        .await
        .map_err(|e| e.to_string())?;
    let r = replies.first().ok_or("no reply")?;
    match r.status {
        Some(200) => {}
        Some(404) => return Ok(BTreeMap::new()),
        other => return Err(format!("read via {}: {other:?} {:?}", host.name, r.error)),
    }
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&r.body).map_err(|e| format!("KV answer: {e}"))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(entries
        .iter()
        .filter_map(|e| {
            let n = e["Key"].as_str()?.rsplit('/').next()?.parse().ok()?;
            let v = b64.decode(e["Value"].as_str().unwrap_or_default()).ok()?;
            Some((n, String::from_utf8_lossy(&v).into_owned()))
        })
        .collect())
}

// === impl Writer ===

/// The `_kv-writer` helper running in the client's namespace, and what it reported.
struct Writer {
    child: Child,
    records: Arc<Mutex<Vec<(Instant, WriteRecord)>>>,
    reader: JoinHandle<()>,
}

impl Writer {
    fn spawn(state: &State, client: &HostPlan, prefix: &str) -> Result<Writer, TestbedError> {
        let mut child = netns::helper(&state.testbed, &client.netns, "_kv-writer")
            .args(["--url", &probe::base_url(client), "--prefix", prefix])
            .args(["--max-secs", "180"])
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|source| TestbedError::Io {
                what: "starting the KV writer".into(),
                source,
            })?;
        let records = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take();
        let sink = records.clone();
        let reader = tokio::spawn(async move {
            let Some(stdout) = stdout else { return };
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if let Ok(rec) = serde_json::from_str::<WriteRecord>(&l) {
                    // Stamped on arrival with our clock, to compare with the kill time.
                    if let Ok(mut v) = sink.lock() {
                        v.push((Instant::now(), rec));
                    }
                }
            }
        });
        Ok(Writer {
            child,
            records,
            reader,
        })
    }

    /// Acknowledged writes that arrived after `t` (all, for `None`).
    fn acked_after(&self, t: Option<Instant>) -> usize {
        self.records.lock().map_or(0, |v| {
            v.iter()
                .filter(|(at, r)| r.ok && t.is_none_or(|t| *at >= t))
                .count()
        })
    }

    /// Closes the writer's stdin (it stops after the write in flight), waits for it and
    /// returns every record.
    async fn stop(mut self) -> Vec<(Instant, WriteRecord)> {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = self.reader.await;
        self.records
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}
