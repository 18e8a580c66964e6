//! `beyond`'s KV replication phase: the second DC's servers replicate `config/` from the
//! first (`replication { .. }` in `examples/beyond.toml`), 50 ms WAN delay between them.
//!
//! Keys `config/beyond-<t>/<phase>/k0000..` are written in the first DC one at a time
//! (each value names its number) while a follower of the second DC is polled with
//! `?keys&stale` every 100 ms. From the two sets of timed records:
//!
//! - lag: when a key was first seen in the second DC against when its write was
//!   acknowledged in the first (an upper bound: the poll's answer time);
//! - order: every poll's keys are a prefix of the written sequence (no key seen before an
//!   earlier one);
//! - loss: after the writes, the two trees (key, value, flags) are compared until equal.
//!
//! The second phase SIGKILLs the second DC's leader after a third of the writes, and
//! restarts it after the trees matched.

use std::collections::BTreeMap;
use std::time::Duration;

use super::super::stream::{Stream, url};
use super::{REPAIR, Report};
use crate::error::TestbedError;
use crate::helper::{ReadRecord, unix_ms};
use crate::out::Progress;
use crate::plan::HostPlan;
use crate::scenario::inject;
use crate::scenario::sites::{Sites, brief, get, put};
use crate::state::{RunDir, State};
use crate::up::wait_dc_leader;
use crate::wait;

/// A key must be in the second DC this long after its write was acknowledged.
const WITHIN: Duration = Duration::from_secs(2);
/// Keys of the steady phase and of the leader-kill phase.
const STEADY_KEYS: usize = 30;
const KILL_KEYS: usize = 90;
/// Pace of the writes and of the polls.
const WRITE_EVERY: Duration = Duration::from_millis(100);
const POLL_EVERY: Duration = Duration::from_millis(100);

/// What one write-and-poll run saw.
struct Run {
    writes: Vec<ReadRecord>,
    polls: Vec<ReadRecord>,
}

impl Run {
    /// Wall-clock ms each key (by number) was acknowledged.
    fn acked(&self) -> BTreeMap<usize, f64> {
        self.writes
            .iter()
            .filter(|w| w.status == Some(200) && w.body.trim() == "true")
            .map(|w| (w.url, w.sent_unix_ms as f64 + w.ms))
            .collect()
    }

    /// Wall-clock ms each key was first seen in the second DC, and the polls whose keys
    /// were not a prefix of the written order.
    fn seen(&self) -> (BTreeMap<usize, f64>, Vec<String>) {
        let mut first = BTreeMap::new();
        let mut disorder = Vec::new();
        for p in self.polls.iter().filter(|p| p.status == Some(200)) {
            let keys: Vec<String> = serde_json::from_str(&p.body).unwrap_or_default();
            let mut nums: Vec<usize> = keys.iter().filter_map(|k| number(k)).collect();
            nums.sort_unstable();
            if nums.iter().enumerate().any(|(i, n)| i != *n) {
                disorder.push(format!("poll at {}: {nums:?}", p.sent_unix_ms));
            }
            let at = p.sent_unix_ms as f64 + p.ms;
            for n in nums {
                first.entry(n).or_insert(at);
            }
        }
        (first, disorder)
    }

    /// Lag (ms) of each acknowledged key acked at or after `since` (wall-clock ms); keys
    /// never seen get `f64::INFINITY`.
    fn lags(&self, since: f64) -> Vec<(usize, f64)> {
        let (first, _) = self.seen();
        self.acked()
            .into_iter()
            .filter(|(_, a)| *a >= since)
            .map(|(n, a)| (n, first.get(&n).map_or(f64::INFINITY, |f| (f - a).max(0.0))))
            .collect()
    }
}

/// `.../k0042` → 42.
fn number(key: &str) -> Option<usize> {
    key.rsplit('/').next()?.strip_prefix('k')?.parse().ok()
}

/// Runs the phase.
pub(super) async fn run(
    run_dir: &RunDir,
    state: &mut State,
    s: &Sites,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    let base = format!("config/beyond-{}", report.started_unix);
    refusal(state, s, report, &base).await;
    let excluded = format!("config/local/beyond-{}", report.started_unix);
    let w = put(
        state,
        &s.near.asker,
        &format!("/v1/kv/{excluded}"),
        "here only",
    )
    .await;
    if w.status != Some(200) {
        return Err(super::super::ScenarioError::Step(format!(
            "writing {excluded}: {}",
            brief(&w)
        ))
        .into());
    }
    let leader = wait_dc_leader(run_dir, state, &s.mid.name, REPAIR).await?;
    let follower = follower(s, &leader)?;
    let (steady, _) = write_and_poll(
        state,
        s,
        &follower,
        &format!("{base}/steady"),
        STEADY_KEYS,
        None,
    )
    .await?;
    judge(
        state,
        s,
        report,
        &steady,
        &format!("{base}/steady"),
        "steady",
        0.0,
    )
    .await;
    let gone = get(state, &follower, &format!("/v1/kv/{excluded}?stale")).await;
    report.check(
        "replication_excluded_prefix_not_copied",
        gone.status == Some(404),
        format!("{excluded} on {}: {}", follower.name, brief(&gone)),
    );
    progress.say(&format!("replication across the kill of {leader}"));
    let victim = s.mid.servers.iter().find(|h| h.name == leader).cloned();
    let killed = write_and_poll(
        state,
        s,
        &follower,
        &format!("{base}/kill"),
        KILL_KEYS,
        victim.as_ref(),
    )
    .await;
    let (killed, elected_ms) = match killed {
        Ok(k) => k,
        Err(e) => {
            if let Some(v) = &victim {
                let _ = inject::restart(run_dir, state, std::slice::from_ref(v));
            }
            return Err(e);
        }
    };
    report
        .facts
        .insert("replica_leader_killed".into(), leader.clone());
    judge(
        state,
        s,
        report,
        &killed,
        &format!("{base}/kill"),
        "leader_kill",
        elected_ms,
    )
    .await;
    if let Some(v) = &victim {
        inject::restart(run_dir, state, std::slice::from_ref(v))?;
    }
    wait_dc_leader(run_dir, state, &s.mid.name, REPAIR).await?;
    Ok(())
}

/// A write under the replicated prefix in the second DC is refused (403) naming the source.
async fn refusal(state: &State, s: &Sites, report: &mut Report, base: &str) {
    let r = put(state, &s.mid.asker, &format!("/v1/kv/{base}/refused"), "no").await;
    report.check(
        "replication_refuses_local_writes_naming_source",
        r.status == Some(403) && r.body.contains(&s.near.name),
        format!("PUT {base}/refused on {}: {}", s.mid.asker.name, brief(&r)),
    );
}

/// A server of the second DC other than `leader`.
fn follower(s: &Sites, leader: &str) -> Result<HostPlan, TestbedError> {
    s.mid
        .servers
        .iter()
        .find(|h| h.name != leader)
        .cloned()
        .ok_or_else(|| {
            super::super::ScenarioError::Step("no follower in the replica DC".into()).into()
        })
}

/// Writes `n` keys under `prefix` in the first DC while polling `follower`; with `kill`,
/// SIGKILLs it after a third of the writes were acknowledged and returns when the new
/// leader was elected (wall-clock ms; 0 without a kill).
async fn write_and_poll(
    state: &State,
    s: &Sites,
    follower: &HostPlan,
    prefix: &str,
    n: usize,
    kill: Option<&HostPlan>,
) -> Result<(Run, f64), TestbedError> {
    let urls: Vec<String> = (0..n)
        .map(|i| url(&s.near.asker, &format!("/v1/kv/{prefix}/k{i:04}")))
        .collect();
    let poll_url = url(follower, &format!("/v1/kv/{prefix}/?keys&stale"));
    let poll = Stream::spawn(state, follower, "replica poll", &poll_url, "", POLL_EVERY)?;
    let writes = Stream::writes(state, &s.near.asker, "writes", &urls, "v{n}", WRITE_EVERY)?;
    let deadline = WRITE_EVERY * n as u32 + REPAIR;
    let mut elected = 0.0;
    let mut outcome = Ok(());
    if let Some(v) = kill {
        outcome = wait::until("a third of the writes", deadline, "", || async {
            (writes.count(|r| r.status == Some(200)) >= n / 3).then_some(())
        })
        .await;
        if outcome.is_ok() {
            outcome = inject::kill(state, std::slice::from_ref(v)).await;
        }
        if outcome.is_ok() {
            let rest: Vec<HostPlan> = s
                .mid
                .servers
                .iter()
                .filter(|h| h.name != v.name)
                .cloned()
                .collect();
            outcome = inject::leader(state, &rest, Some(&v.name), REPAIR)
                .await
                .map(drop);
            elected = unix_ms() as f64;
        }
    }
    let done = wait::until("every write answered", deadline, "", || async {
        (writes.count(|_| true) >= n).then_some(())
    })
    .await;
    let acked = writes.count(|r| r.status == Some(200) && r.body.trim() == "true");
    // The polls go on until the second DC has every acknowledged key.
    let caught_up = wait::until(
        "the replica having every acknowledged key",
        REPAIR,
        "",
        || async {
            (poll.count(|p| {
                p.status == Some(200)
                    && serde_json::from_str::<Vec<String>>(&p.body).is_ok_and(|k| k.len() >= acked)
            }) > 0)
                .then_some(())
        },
    )
    .await;
    let run = Run {
        writes: writes.stop().await,
        polls: poll.stop().await,
    };
    outcome.and(done).and(caught_up).map(|()| (run, elected))
}

/// The checks on one run: lag of keys acked since `since_ms` within 2 s, order, and the
/// two trees equal (compared until they are, up to the repair deadline).
async fn judge(
    state: &State,
    s: &Sites,
    report: &mut Report,
    run: &Run,
    prefix: &str,
    phase: &str,
    since_ms: f64,
) {
    let lags = run.lags(since_ms);
    let worst = lags.iter().map(|(_, l)| *l).fold(0.0, f64::max);
    let all_lags = run.lags(0.0);
    let worst_all = all_lags.iter().map(|(_, l)| *l).fold(0.0, f64::max);
    let mut sorted: Vec<f64> = lags.iter().map(|(_, l)| *l).collect();
    sorted.sort_by(f64::total_cmp);
    let p50 = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    report
        .timings
        .insert(format!("replication_{phase}_lag_max_ms"), worst);
    report
        .timings
        .insert(format!("replication_{phase}_lag_p50_ms"), p50);
    report.timings.insert(
        format!("replication_{phase}_lag_max_all_keys_ms"),
        worst_all,
    );
    report.counts.insert(
        format!("replication_{phase}_keys_acked"),
        run.acked().len() as u64,
    );
    let within = WITHIN.as_secs_f64() * 1000.0;
    report.check(
        &format!("replication_{phase}_within_2s"),
        !lags.is_empty() && worst <= within,
        format!(
            "{} keys acked{}: lag p50 {p50:.0} ms, max {worst:.0} ms (bound {within:.0} ms; every key of the run: max {worst_all:.0} ms)",
            lags.len(),
            if since_ms > 0.0 { " after the new leader was elected" } else { "" }
        ),
    );
    let (_, disorder) = run.seen();
    let trees = compare(state, s, prefix).await;
    let acked = run.acked().len();
    report.check(
        &format!("replication_{phase}_no_key_lost_or_out_of_order"),
        disorder.is_empty() && trees.as_ref().is_ok_and(|n| *n == acked) && acked > 0,
        match (&trees, disorder.first()) {
            (Err(e), _) => e.clone(),
            (Ok(_), Some(d)) => format!("{} polls out of order, first {d}", disorder.len()),
            (Ok(n), None) => format!(
                "{} polls each a prefix of the write order; trees equal ({n} keys, {acked} acknowledged)",
                run.polls.len()
            ),
        },
    );
}

/// Compares `?recurse` of `prefix` in the first DC and on the second DC's servers (every
/// one, stale: each server's own copy) until equal; the number of keys.
async fn compare(state: &State, s: &Sites, prefix: &str) -> Result<usize, String> {
    let tree = |r: &ReadRecord| -> Option<Vec<(String, String, u64)>> {
        let rows: Vec<serde_json::Value> = serde_json::from_str(&r.body).ok()?;
        Some(
            rows.iter()
                .map(|e| {
                    (
                        e["Key"].as_str().unwrap_or_default().to_string(),
                        e["Value"].as_str().unwrap_or_default().to_string(),
                        e["Flags"].as_u64().unwrap_or(0),
                    )
                })
                .collect(),
        )
    };
    let path = format!("/v1/kv/{prefix}/?recurse");
    let source = get(state, &s.near.asker, &path).await;
    let Some(want) = tree(&source) else {
        return Err(format!("source tree: {}", brief(&source)));
    };
    let mut last = String::new();
    let got = wait::until(
        "the replica trees equal to the source's",
        REPAIR,
        "",
        || async {
            for h in &s.mid.servers {
                let r = get(state, h, &format!("{path}&stale")).await;
                if r.error.is_some() {
                    // A server that is down (the killed leader) is compared after its restart.
                    continue;
                }
                if tree(&r).as_ref() != Some(&want) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    if let Err(e) = got {
        last = e.to_string();
    }
    if last.is_empty() {
        Ok(want.len())
    } else {
        Err(last)
    }
}
