//! Scenario `beyond`: the acceptance of issue #16 "Federation beyond Consul" on
//! `examples/beyond.toml` (3 DCs; `web` only in the second and third, the third farther
//! away by emulated WAN delay; the second's 3 servers replicate `config/` from the first).
//! Requests come from the first DC's client (DNS `service_failover = "nearest"`).
//!
//! 1. `?dc=any` (HTTP health) and `web.service.any.consul` (A and SRV) and plain
//!    `web.service.consul` answer the second DC's instance.
//! 2. `?dc=*` answers all three DCs; with the first–third WAN link blackholed, the other
//!    two and `X-Meridian-Datacenters-Missing` naming the third, within the 7 s deadline.
//! 3. With the first–second link blackholed, `?dc=<second>&stale` and DNS answer from the
//!    gateways' copy (`X-Meridian-Copy`, `X-Consul-KnownLeader: false`).
//! 4. KV replication (`replication`): local writes under the prefix are refused naming the
//!    source; keys written in the first DC appear in the second within 2 s at 50 ms WAN
//!    delay, in order, the excluded prefix stays out; again while the second DC's leader is
//!    SIGKILLed mid-stream, and the two trees are equal afterwards.
//! 5. With every server of the second DC SIGKILLed, `?dc=any` and DNS answer the third
//!    DC's instance within their deadlines (7 s, 3 s); the servers come back.
//!
//! Every fault is repaired before the scenario returns (links restored, servers restarted).

mod replication;

use std::time::Duration;

use super::sites::{self, Site, Sites, WEB, brief, get};
use super::{Report, dig, inject};
use crate::error::TestbedError;
use crate::helper::ReadRecord;
use crate::out::Progress;
use crate::state::{RunDir, State};
use crate::up::wait_dc_leader;
use crate::wait;
use crate::wan::control::LinkChange;

/// `?dc=any`/`?dc=*` deadline: `CROSS_DC_TIMEOUT` (agent/src/cluster/federation.rs).
pub(super) const HTTP_DEADLINE: Duration = Duration::from_secs(7);
/// `*.any.consul` deadline: `CROSS_DC_DNS_TIMEOUT` (agent/src/dns/source.rs).
pub(super) const DNS_DEADLINE: Duration = Duration::from_secs(3);
/// Slack on top of a deadline for the request's own way (helper start, local hops).
pub(super) const SLACK: Duration = Duration::from_millis(1000);
/// Deadline of the repairs (a leader again, a DC answering again).
const REPAIR: Duration = Duration::from_secs(60);

/// Runs the scenario, filling `report`.
pub(super) async fn run(
    run_dir: &RunDir,
    state: &mut State,
    report: &mut Report,
    progress: Progress,
) -> Result<(), TestbedError> {
    crate::preflight::require_tool("dig", "bind9-dnsutils")?;
    let s = Sites::pick(state, "beyond")?;
    report.facts.insert(
        "datacenters".into(),
        format!(
            "{} (asks), {} (web, replica), {} (web, far)",
            s.near.name, s.mid.name, s.far.name
        ),
    );
    progress.say("registering web and api; waiting for the WAN pool to sort by round trip");
    let started = tokio::time::Instant::now();
    s.prepare(state).await?;
    let listed = get(state, &s.near.asker, "/v1/catalog/datacenters").await;
    let order: Vec<String> = serde_json::from_str(&listed.body).unwrap_or_default();
    report.check(
        "datacenters_nearest_first",
        order == [s.near.name.clone(), s.mid.name.clone(), s.far.name.clone()],
        format!(
            "{} lists {order:?} ({:.1}s after the start; wanted {}, {}, {})",
            s.near.asker.name,
            started.elapsed().as_secs_f64(),
            s.near.name,
            s.mid.name,
            s.far.name
        ),
    );
    nearest(state, &s, report, &s.mid, "nearest").await;
    progress.say("?dc=* whole, then with the far link blackholed");
    let every = every_dc(run_dir, state, &s, report).await;
    progress.say("the mid link blackholed: ?dc=mid&stale from the copy");
    let copy = from_copy(run_dir, state, &s, report).await;
    progress.say("KV replication at 50 ms, then across a leader kill");
    let repl = replication::run(run_dir, state, &s, report, progress).await;
    progress.say("every server of the mid DC killed: ?dc=any fails over");
    let failover = mid_lost(run_dir, state, &s, report).await;
    every.and(copy).and(repl).and(failover)
}

/// `?dc=any`, `web.service.any.consul` (A, SRV) and plain `web.service.consul` from the
/// first DC answer `want`'s instance, within the deadlines; `when` names the checks.
async fn nearest(state: &State, s: &Sites, report: &mut Report, want: &Site, when: &str) {
    let ip = want.instance().lan_ip;
    let r = get(
        state,
        &s.near.asker,
        &format!("/v1/health/service/{WEB}?dc=any"),
    )
    .await;
    let answered_by = r.headers.get("x-meridian-datacenter").cloned();
    let ok = r.status == Some(200)
        && answered_by.as_deref() == Some(want.name.as_str())
        && sites::addresses(&r.body) == [ip.to_string()]
        && r.ms <= (HTTP_DEADLINE + SLACK).as_secs_f64() * 1000.0;
    report.timings.insert(format!("any_http_{when}_ms"), r.ms);
    report.check(
        &format!("any_http_answers_{when}"),
        ok,
        format!(
            "?dc=any from {}: want {} ({ip}); {}",
            s.near.asker.name,
            want.name,
            brief(&r)
        ),
    );
    let any = format!("{WEB}.service.any.consul");
    let a = dig::a(&s.near.asker, &any).await;
    let srv = dig::ask(&s.near.asker, &any, "SRV").await;
    let plain = dig::a(&s.near.asker, &format!("{WEB}.service.consul")).await;
    let bound = (DNS_DEADLINE + SLACK).as_secs_f64();
    let names_dc = srv
        .records
        .iter()
        .any(|r| r.contains(&format!(".{}.", want.name)));
    report.timings.insert(format!("any_dns_{when}_s"), a.secs);
    report.check(
        &format!("any_dns_answers_{when}"),
        a.status.as_deref() == Some("NOERROR") && a.addrs == [ip] && a.secs <= bound && names_dc,
        format!(
            "{any}: A {}; SRV {:?} (target names {}: {names_dc})",
            a.describe(),
            srv.records,
            want.name
        ),
    );
    report.check(
        &format!("plain_dns_nearest_failover_answers_{when}"),
        plain.status.as_deref() == Some("NOERROR") && plain.addrs == [ip] && plain.secs <= bound,
        format!(
            "{WEB}.service.consul with service_failover = \"nearest\": {}",
            plain.describe()
        ),
    );
}

/// `?dc=*` from the first DC: all three; then with the first–third link blackholed, two
/// and the third named missing, within the deadline. The link is restored.
async fn every_dc(
    run_dir: &RunDir,
    state: &mut State,
    s: &Sites,
    report: &mut Report,
) -> Result<(), TestbedError> {
    let path = "/v1/catalog/services?dc=*";
    let all = [&s.near.name, &s.mid.name, &s.far.name];
    let r = get(state, &s.near.asker, path).await;
    let services: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    let listed = dcs_header(&r, "x-meridian-datacenters");
    report.timings.insert("all_dcs_ms".into(), r.ms);
    report.check(
        "all_dcs_merges_three_datacenters",
        r.status == Some(200)
            && all.iter().all(|d| listed.contains(*d))
            && !r.headers.contains_key("x-meridian-datacenters-missing")
            && services.get(WEB).is_some()
            && services.get(sites::API).is_some(),
        format!("{path}: {}", brief(&r)),
    );
    inject::link(
        run_dir,
        state,
        &s.near.name,
        &s.far.name,
        LinkChange::Blackhole,
    )
    .await?;
    let mut cut = Vec::new();
    for _ in 0..2 {
        cut.push(get(state, &s.near.asker, path).await);
    }
    let restored = inject::link(
        run_dir,
        state,
        &s.near.name,
        &s.far.name,
        LinkChange::Restore,
    )
    .await;
    let bound = (HTTP_DEADLINE + SLACK).as_secs_f64() * 1000.0;
    let fine = |r: &ReadRecord| {
        let listed = dcs_header(r, "x-meridian-datacenters");
        r.status == Some(200)
            && listed.contains(&s.near.name)
            && listed.contains(&s.mid.name)
            && !listed.contains(&s.far.name)
            && dcs_header(r, "x-meridian-datacenters-missing") == [s.far.name.clone()]
            && r.ms <= bound
    };
    for (i, r) in cut.iter().enumerate() {
        report
            .timings
            .insert(format!("all_dcs_far_cut_{i}_ms"), r.ms);
    }
    report.check(
        "all_dcs_names_cut_off_dc_within_deadline",
        cut.iter().all(fine),
        cut.iter().map(brief).collect::<Vec<_>>().join("; "),
    );
    restored?;
    back(state, s, &s.far, report, "far_after_restore").await
}

/// A comma-list header's names.
fn dcs_header(r: &ReadRecord, name: &str) -> Vec<String> {
    r.headers
        .get(name)
        .map(|v| v.split(',').map(|d| d.trim().to_string()).collect())
        .unwrap_or_default()
}

/// With the first–second link blackholed: `?dc=<mid>&stale` catalog and health reads and
/// DNS `web.service.<mid>.consul` answer from the gateways' copy, marked stale. Restored.
async fn from_copy(
    run_dir: &RunDir,
    state: &mut State,
    s: &Sites,
    report: &mut Report,
) -> Result<(), TestbedError> {
    let ip = s.mid.instance().lan_ip.to_string();
    inject::link(
        run_dir,
        state,
        &s.near.name,
        &s.mid.name,
        LinkChange::Blackhole,
    )
    .await?;
    let mut reads = Vec::new();
    for what in ["catalog", "health"] {
        let path = format!("/v1/{what}/service/{WEB}?dc={}&stale", s.mid.name);
        reads.push(get(state, &s.near.asker, &path).await);
    }
    let dns = dig::a(
        &s.near.asker,
        &format!("{WEB}.service.{}.consul", s.mid.name),
    )
    .await;
    let restored = inject::link(
        run_dir,
        state,
        &s.near.name,
        &s.mid.name,
        LinkChange::Restore,
    )
    .await;
    let bound = (HTTP_DEADLINE + SLACK).as_secs_f64() * 1000.0;
    let stale = |r: &ReadRecord| {
        r.status == Some(200)
            && r.headers.get("x-meridian-copy") == Some(&s.mid.name)
            && r.headers.get("x-consul-knownleader").map(String::as_str) == Some("false")
            && r.headers.contains_key("x-consul-lastcontact")
            && sites::addresses(&r.body) == [ip.clone()]
            && r.ms <= bound
    };
    report.check(
        "cut_off_dc_stale_read_from_copy",
        reads.iter().all(stale),
        reads.iter().map(brief).collect::<Vec<_>>().join("; "),
    );
    report.check(
        "cut_off_dc_dns_from_copy",
        dns.status.as_deref() == Some("NOERROR") && dns.addrs.iter().any(|a| a.to_string() == ip),
        dns.describe(),
    );
    restored?;
    back(state, s, &s.mid, report, "mid_after_restore").await
}

/// Every server of the second DC SIGKILLed: `?dc=any` and DNS answer the third DC's
/// instance within the deadlines; the servers restarted, a leader again, reachable.
async fn mid_lost(
    run_dir: &RunDir,
    state: &mut State,
    s: &Sites,
    report: &mut Report,
) -> Result<(), TestbedError> {
    let killed = inject::kill(state, &s.mid.servers).await;
    if killed.is_ok() {
        nearest(state, s, report, &s.far, "after_mid_servers_killed").await;
    }
    // Whatever happened: every server of the DC runs again.
    let restarted = inject::restart(run_dir, state, &s.mid.servers);
    killed.and(restarted)?;
    wait_dc_leader(run_dir, state, &s.mid.name, REPAIR).await?;
    back(state, s, &s.mid, report, "mid_after_restart").await?;
    nearest(state, s, report, &s.mid, "mid_again").await;
    Ok(())
}

/// Waits until `?dc=<site>` from the first DC answers again (breakers close on their
/// own, by a probe), and times it.
pub(super) async fn back(
    state: &State,
    s: &Sites,
    site: &Site,
    report: &mut Report,
    what: &str,
) -> Result<(), TestbedError> {
    let started = tokio::time::Instant::now();
    let path = format!("/v1/catalog/service/{WEB}?dc={}", site.name);
    wait::until(
        &format!("{} answering ?dc= again", site.name),
        REPAIR,
        "",
        || async {
            let r = get(state, &s.near.asker, &path).await;
            (r.status == Some(200) && !sites::addresses(&r.body).is_empty()).then_some(())
        },
    )
    .await?;
    report.timings.insert(
        format!("{what}_answers_after_s"),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}
