//! The `federation` scenario's fault phases, each under a steady read load:
//!
//! - gateway failover: a DC reads another DC that has two (or more) gateways, 20 times a
//!   second, while each of those gateways in turn is SIGKILLed, held down for 60 reads and
//!   until its LAN pool lists it failed, and restarted (until it is alive again, takes TLS
//!   handshakes and reads sent since are answered). No read may fail: the relay tries the
//!   next gateway.
//! - WAN blackhole between the first and third DC: the first DC reads the second and the
//!   third; the second must keep answering, the third must fail within `FAIL_WITHIN`
//!   with `rpc error: datacenter "<dc3>"` (500), or, once three calls failed and dc3's
//!   circuit breaker opened, at once with `datacenter "<dc3>" unavailable` (503), while DNS
//!   `<svc>.service.<dc3>.consul` answers the instance from the gateways' copy of dc3's
//!   catalog within its 3 s bound (#16); after the restore, the time until a read of the
//!   third DC succeeds again is reported.
//!
//! Each phase repairs what it broke before it returns, also when it fails.

use std::time::Duration;

use rustix::process::Signal;

use super::stream::{Stream, ended_ms};
use super::{Dc, Fed, dig, event, handshake, record};
use crate::agents;
use crate::error::TestbedError;
use crate::gateways::{alive_members, in_lan_pool, lan_status, wan_name};
use crate::helper::{ReadRecord, unix_ms};
use crate::out::Progress;
use crate::plan::HostPlan;
use crate::scenario::Report;
use crate::scenario::inject::link;
use crate::state::{RunDir, State};
use crate::wait;
use crate::wan::control::LinkChange;

/// Pace of the read loads: 20 reads a second.
const EVERY: Duration = Duration::from_millis(50);
/// The longest a cross-DC read may take to fail: the agent's 7 s bound, plus 1 s.
pub(super) const FAIL_WITHIN: Duration = Duration::from_secs(8);
/// Reads made while a killed gateway is down.
const READS_WHILE_DOWN: usize = 60;
/// Answered reads after a restart before the next kill.
const SETTLE_READS: usize = 10;
/// Failed reads of the blackholed DC to see before the restore.
const BLACKHOLE_FAILURES: usize = 2;
/// Deadline of each wait (warm-up, hold, rejoin, recovery).
const STEP_DEADLINE: Duration = Duration::from_secs(40);

/// Phase (c): kill each gateway of a DC with ≥ 2 gateways under a read load from another
/// DC; skipped (a fact says why) without such a DC.
pub(super) async fn gateway_failover(
    run_dir: &RunDir,
    state: &mut State,
    fed: &Fed,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    let Some(target) = fed.dcs.iter().find(|d| d.gateways.len() >= 2) else {
        report.facts.insert(
            "gateway_failover".into(),
            "not run: no datacenter with 2 running gateways".into(),
        );
        return Ok(());
    };
    let Some(from) = fed.dcs.iter().find(|d| d.name != target.name) else {
        return Ok(());
    };
    // ASCII: the plot's font has no arrow.
    let label = format!("{}->{} (gateway failover)", from.name, target.name);
    let url = super::stream::url(
        &from.asker,
        &fed.kv("whoami", &format!("?raw&dc={}", target.name)),
    );
    let load = Stream::spawn(state, &from.asker, &label, &url, &target.name, EVERY)?;
    progress.say(&format!(
        "{label}: reads every {EVERY:?}, killing {}'s gateways in turn",
        target.name
    ));
    let mut outcome = wait_reads(&load, "reads before the first kill", 20, 0.0).await;
    let mut first_kill = None;
    for g in &target.gateways {
        if outcome.is_err() {
            break;
        }
        let killed = unix_ms() as f64;
        first_kill.get_or_insert(killed);
        outcome = kill_and_restart(run_dir, state, fed, report, &load, g, from).await;
        progress.say(&format!(
            "{} killed and back ({:.1}s)",
            g.name,
            (unix_ms() as f64 - killed) / 1000.0
        ));
    }
    let records = load.stop().await;
    let failed: Vec<&ReadRecord> = records
        .iter()
        .filter(|r| !super::stream::answered(r, &target.name))
        .collect();
    for r in &records {
        record(report, fed, &label, r, &target.name);
    }
    let after_kill = first_kill.map_or(0, |k| {
        records
            .iter()
            .filter(|r| r.sent_unix_ms as f64 >= k)
            .count()
    });
    report.counts.insert(
        "failover_reads_ok".into(),
        (records.len() - failed.len()) as u64,
    );
    report
        .counts
        .insert("failover_reads_failed".into(), failed.len() as u64);
    report.check(
        "gateway_failover_no_failed_query",
        failed.is_empty() && outcome.is_ok() && after_kill >= READS_WHILE_DOWN,
        match (&outcome, failed.first()) {
            (Err(e), _) => e.to_string(),
            (Ok(()), Some(f)) => format!(
                "{} of {} reads failed; first at {:.2}s: {:?} {:.200}",
                failed.len(), records.len(), fed.t(f.sent_unix_ms as f64), f.status, f.body
            ),
            (Ok(()), None) => format!(
                "{} reads {} → {} answered, {after_kill} of them after the first kill, while {} gateways were killed and restarted in turn",
                records.len(), from.asker.name, target.name, target.gateways.len()
            ),
        },
    );
    outcome
}

/// Kills `g` and holds while `READS_WHILE_DOWN` reads are made and until its DC's server
/// lists it failed in the LAN pool; then restarts it and waits until that server lists it
/// alive again (and `from`'s server lists it in the WAN pool). The restart happens whatever
/// the hold found.
///
/// Waiting for "failed" first matters: right after a kill the pools still list the dead
/// process alive, so "alive" alone would be seen at once, before the new process has joined
/// its LAN pool and can deliver anything; killing the next gateway then would leave the
/// DC with none that works, which is not what this phase asserts about.
async fn kill_and_restart(
    run_dir: &RunDir,
    state: &mut State,
    fed: &Fed,
    report: &mut Report,
    load: &Stream,
    g: &HostPlan,
    from: &Dc,
) -> Result<(), TestbedError> {
    let killed = unix_ms() as f64;
    agents::signal(state, &g.name, Signal::KILL).await?;
    event(report, fed, format!("kill {}", g.name));
    let what = format!("reads while {} is down", g.name);
    let held = wait_reads(load, &what, READS_WHILE_DOWN, killed).await;
    let noticed = wait::until(
        &format!("{} failed in its LAN pool", g.name),
        STEP_DEADLINE,
        "",
        || async { lan_status(state, g).await.filter(|s| *s != 1).map(drop) },
    )
    .await;
    if noticed.is_ok() {
        let secs = (unix_ms() as f64 - killed) / 1000.0;
        report.timings.insert(
            format!("gateway_{}_failed_in_lan_pool_after_kill_s", g.name),
            secs,
        );
    }
    agents::start(state, run_dir, g)?;
    run_dir.save(state)?;
    event(report, fed, format!("restart {}", g.name));
    let restarted = tokio::time::Instant::now();
    let restarted_ms = unix_ms() as f64;
    let name = wan_name(g);
    let back = wait::until(
        &format!("{} back in the LAN and WAN pools", g.name),
        STEP_DEADLINE,
        "",
        || async {
            let wan = alive_members(state, &from.server, true).await?;
            (wan.contains(&name) && in_lan_pool(state, g).await).then_some(())
        },
    )
    .await;
    let secs = restarted.elapsed().as_secs_f64();
    // "Back in the pools" can hold within milliseconds of the restart (the WAN view never
    // noticed the kill: WAN failure detection takes far longer than this hold), before
    // the new process serves. And a read sent before the restart may have passed over the
    // dead gateway already and be riding on the other one, the next to be killed. So before
    // the next kill: the new process completes TLS handshakes on its WAN RPC port (when
    // TLS is on), and reads sent after the restart are being answered (one at a time, so
    // every earlier read is done).
    let serving = match back {
        Ok(()) => serving(state, g, load, restarted_ms).await,
        Err(_) => Ok(()),
    };
    let back = back.and(serving);
    report.check(
        &format!("gateway_{}_rejoins", g.name.replace('-', "_")),
        noticed.is_ok() && back.is_ok(),
        match (&noticed, &back) {
            (Ok(()), Ok(())) => format!(
                "{} failed in its LAN pool after the kill, alive again there and in {}'s WAN view {secs:.2}s after its restart",
                g.name, from.server.name
            ),
            (Err(e), _) | (_, Err(e)) => e.to_string(),
        },
    );
    if back.is_ok() {
        report
            .timings
            .insert(format!("gateway_{}_rejoined_after_restart_s", g.name), secs);
    }
    held.and(noticed).and(back)
}

/// Waits until restarted gateway `g` serves: with TLS a handshake with its WAN RPC port
/// succeeds, and `load` has `SETTLE_READS` answered reads sent at or after `since_ms`.
async fn serving(
    state: &State,
    g: &HostPlan,
    load: &Stream,
    since_ms: f64,
) -> Result<(), TestbedError> {
    if let Some(tls) = &state.tls
        && let Some(ca) = tls.issuer()
    {
        let wan = handshake::listeners(g).into_iter().last();
        wait::until(
            &format!("{} completing TLS handshakes on its WAN RPC port", g.name),
            STEP_DEADLINE,
            "",
            || async {
                let l = wan.as_ref()?;
                handshake::presented(g, l, &tls.cli, &ca.cert)
                    .await
                    .ok()
                    .map(drop)
            },
        )
        .await?;
    }
    wait::until(
        &format!("{SETTLE_READS} reads answered after {}'s restart", g.name),
        STEP_DEADLINE,
        "",
        || async {
            (load.count(|r| r.sent_unix_ms as f64 >= since_ms && load.ok(r)) >= SETTLE_READS)
                .then_some(())
        },
    )
    .await
}

/// Waits until `load` has `n` records sent at or after `since_ms` (wall clock).
async fn wait_reads(
    load: &Stream,
    what: &str,
    n: usize,
    since_ms: f64,
) -> Result<(), TestbedError> {
    wait::until(what, STEP_DEADLINE, "", || async {
        (load.count(|r| r.sent_unix_ms as f64 >= since_ms) >= n).then_some(())
    })
    .await
}

/// Phase (d): blackhole the WAN link between the first and third DC under two read loads
/// from the first (to the second and to the third); skipped with fewer than 3 DCs.
pub(super) async fn blackhole(
    run_dir: &RunDir,
    state: &mut State,
    fed: &Fed,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    let [a, b, c, ..] = fed.dcs.as_slice() else {
        report.facts.insert(
            "wan_blackhole".into(),
            "not run: needs 3 datacenters with gateways".into(),
        );
        return Ok(());
    };
    let stream = |to: &Dc| {
        let label = format!("{}->{} (blackhole {}-{})", a.name, to.name, a.name, c.name);
        let url = super::stream::url(&a.asker, &fed.kv("whoami", &format!("?raw&dc={}", to.name)));
        Stream::spawn(state, &a.asker, &label, &url, &to.name, EVERY)
    };
    let (to_b, to_c) = (stream(b)?, stream(c)?);
    let warm = async {
        wait_reads(&to_b, "reads before the blackhole", 5, 0.0).await?;
        wait_reads(&to_c, "reads before the blackhole", 5, 0.0).await
    }
    .await;
    let mut cut_ms = f64::MAX;
    let mut restored_ms = f64::MAX;
    let mut from_copy = None;
    let mut outcome = warm;
    if outcome.is_ok() {
        cut_ms = unix_ms() as f64;
        outcome = link(run_dir, state, &a.name, &c.name, LinkChange::Blackhole).await;
        event(report, fed, format!("blackhole {}–{}", a.name, c.name));
        progress.say(&format!(
            "WAN {}–{} blackholed; reads to {} and {} go on",
            a.name, c.name, b.name, c.name
        ));
        if outcome.is_ok() {
            let name = format!("{}.service.{}.consul", fed.service, c.name);
            let (dns, held) = tokio::join!(dig::a(&a.asker, &name), async {
                wait_reads(
                    &to_c,
                    "reads of the blackholed DC",
                    BLACKHOLE_FAILURES,
                    cut_ms,
                )
                .await?;
                wait_reads(&to_b, "reads of the other DC", 40, cut_ms).await
            });
            from_copy = Some(dns);
            outcome = held;
        }
        // Whatever happened: the link comes back.
        let restored = link(run_dir, state, &a.name, &c.name, LinkChange::Restore).await;
        restored_ms = unix_ms() as f64;
        event(report, fed, format!("restore {}–{}", a.name, c.name));
        outcome = outcome.and(restored);
    }
    let recovered = match outcome {
        Ok(()) => {
            wait::until(
                "a read of the blackholed DC answered after the restore",
                STEP_DEADLINE,
                "",
                || async {
                    (to_c.count(|r| r.sent_unix_ms as f64 >= restored_ms && to_c.ok(r)) > 0)
                        .then_some(())
                },
            )
            .await
        }
        Err(e) => Err(e),
    };
    let (label_b, label_c) = (to_b.label.clone(), to_c.label.clone());
    let (recs_b, recs_c) = (to_b.stop().await, to_c.stop().await);
    for r in &recs_b {
        record(report, fed, &label_b, r, &b.name);
    }
    for r in &recs_c {
        record(report, fed, &label_c, r, &c.name);
    }
    let window = Window {
        cut_ms,
        restored_ms,
    };
    judge(report, fed, [a, b, c], &window, &recs_b, &recs_c, from_copy);
    recovery(report, fed, c, &window, &recs_c, &recovered);
    recovered
}

/// The blackhole's start and end, wall-clock milliseconds.
struct Window {
    cut_ms: f64,
    restored_ms: f64,
}

impl Window {
    /// Sent after the cut and answered before the restore.
    fn inside(&self, r: &ReadRecord) -> bool {
        r.sent_unix_ms as f64 >= self.cut_ms && ended_ms(r) <= self.restored_ms
    }
}

/// The checks on what the loads saw during the blackhole.
fn judge(
    report: &mut Report,
    fed: &Fed,
    [a, b, c]: [&Dc; 3],
    w: &Window,
    recs_b: &[ReadRecord],
    recs_c: &[ReadRecord],
    from_copy: Option<super::dig::DigAnswer>,
) {
    let during_b: Vec<&ReadRecord> = recs_b.iter().filter(|r| w.inside(r)).collect();
    let bad_b = during_b
        .iter()
        .filter(|r| !super::stream::answered(r, &b.name))
        .count();
    let during_c: Vec<&ReadRecord> = recs_c.iter().filter(|r| w.inside(r)).collect();
    let prefix = format!("rpc error: datacenter \"{}\"", c.name);
    let breaker = format!("datacenter \"{}\" unavailable (retry in", c.name);
    let bound_ms = FAIL_WITHIN.as_secs_f64() * 1000.0;
    let refused = |r: &ReadRecord| r.status == Some(503) && r.body.starts_with(&breaker);
    let wrong_c: Vec<&&ReadRecord> = during_c
        .iter()
        .filter(|r| {
            let failed = (r.status == Some(500) && r.body.starts_with(&prefix)) || refused(r);
            !(failed && r.ms <= bound_ms)
        })
        .collect();
    let by_breaker = during_c.iter().filter(|r| refused(r)).count();
    let c_ms: Vec<f64> = during_c.iter().map(|r| r.ms).collect();
    let counts = &mut report.counts;
    counts.insert(
        format!("blackhole_{}_reads_ok", b.name),
        (during_b.len() - bad_b) as u64,
    );
    counts.insert(format!("blackhole_{}_reads_failed", b.name), bad_b as u64);
    counts.insert(
        format!("blackhole_{}_reads_failed", c.name),
        (during_c.len() - wrong_c.len()) as u64,
    );
    counts.insert(
        format!("blackhole_{}_reads_other", c.name),
        wrong_c.len() as u64,
    );
    counts.insert(
        format!("blackhole_{}_reads_refused_by_breaker", c.name),
        by_breaker as u64,
    );
    for (p, name) in [(50.0, "p50"), (100.0, "max")] {
        if let Some(v) = super::stream::percentile(&c_ms, p) {
            report
                .timings
                .insert(format!("blackhole_{}_failure_{name}_ms", c.name), v);
        }
    }
    report.check(
        "other_dc_unaffected_by_blackhole",
        bad_b == 0 && during_b.len() >= 20,
        format!(
            "{} → {} during the {}–{} blackhole: {} of {} reads answered",
            a.name,
            b.name,
            a.name,
            c.name,
            during_b.len() - bad_b,
            during_b.len()
        ),
    );
    report.check(
        "blackholed_dc_fails_within_deadline",
        wrong_c.is_empty() && during_c.len() >= BLACKHOLE_FAILURES,
        match wrong_c.first() {
            None => format!(
                "{} reads {} → {} inside the blackhole: all 500 `{prefix} ...` or, {by_breaker} of them once the breaker opened, 503 `{breaker} ...`, in {:.0}–{:.0} ms (bound {bound_ms:.0} ms)",
                during_c.len(), a.name, c.name,
                c_ms.iter().copied().fold(f64::INFINITY, f64::min), c_ms.iter().copied().fold(0.0, f64::max)
            ),
            Some(r) => format!(
                "{} of {} reads not a bounded rpc error; first at {:.2}s: {:?} after {:.0} ms: {:.200}",
                wrong_c.len(), during_c.len(), fed.t(r.sent_unix_ms as f64), r.status, r.ms, r.body
            ),
        },
    );
    // The service of the third DC runs on its asker; dc1's gateways hold a copy of its
    // catalog taken before the blackhole.
    let want = c.asker.lan_ip;
    let dns_ok = from_copy.as_ref().is_some_and(|d| {
        d.status.as_deref() == Some("NOERROR") && d.addrs == [want] && d.secs <= 4.0
    });
    report.check(
        "blackholed_dc_dns_answers_from_the_copy",
        dns_ok,
        match &from_copy {
            Some(d) => format!(
                "<svc>.service.{}.consul from {}: {} (want NOERROR [{want}], bound 3 s + dig)",
                c.name,
                a.asker.name,
                d.describe()
            ),
            None => "not asked: the blackhole was not set".into(),
        },
    );
}

/// The time from the restore until a read of the blackholed DC answered.
fn recovery(
    report: &mut Report,
    fed: &Fed,
    c: &Dc,
    w: &Window,
    recs_c: &[ReadRecord],
    recovered: &Result<(), TestbedError>,
) {
    let first = recs_c
        .iter()
        .filter(|r| r.sent_unix_ms as f64 >= w.restored_ms && super::stream::answered(r, &c.name))
        .map(ended_ms)
        .fold(f64::INFINITY, f64::min);
    let secs = (first - w.restored_ms) / 1000.0;
    if first.is_finite() {
        report
            .timings
            .insert(format!("{}_answers_again_after_restore_s", c.name), secs);
    }
    report.check(
        "blackholed_dc_answers_after_restore",
        recovered.is_ok() && first.is_finite(),
        match recovered {
            Ok(()) => format!(
                "first read of {} sent after the restore answered {secs:.2}s after it (at {:.1}s)",
                c.name,
                fed.t(first)
            ),
            Err(e) => e.to_string(),
        },
    );
}
