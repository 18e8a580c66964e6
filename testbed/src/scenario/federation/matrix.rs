//! The `federation` scenario's steady-state checks: the network allows only gateways onto
//! the WAN, the WAN pool converges, and every DC reaches every other with `?dc=` (KV,
//! catalog, health) and DNS, while an unknown DC fails fast.

use std::cell::RefCell;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Dc, Fed, dig, stream};
use crate::error::TestbedError;
use crate::gateways::{alive_members, wan_name};
use crate::helper::ReadRecord;
use crate::netns;
use crate::plan::{HostPlan, Role};
use crate::probe;
use crate::scenario::Report;
use crate::state::State;
use crate::wait;

/// Deadline for the WAN pool to converge and for a registered service to reach a catalog.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(60);
/// How fast an unknown datacenter must be refused.
const UNKNOWN_DC_WITHIN: Duration = Duration::from_secs(1);

/// Every host's routes: a server or client has no route to any other DC's address (LAN or
/// WAN); a gateway routes to the other DCs' gateways (through the WAN router) but not to
/// their LANs, and does not forward packets itself.
pub(super) async fn routes(state: &State, fed: &Fed, report: &mut Report) {
    let mut probes = JoinSet::new();
    for h in &state.plan.hosts {
        for other in state.plan.hosts.iter().filter(|o| o.dc != h.dc) {
            let mut targets = vec![(other.lan_ip, false)];
            if let Some(wan) = other.wan_ip {
                targets.push((wan, h.role == Role::Gateway));
            }
            for (ip, routed) in targets {
                let ns = h.netns.clone();
                let name = h.name.clone();
                probes.spawn(async move {
                    let ip_s = ip.to_string();
                    let got = netns::run("ip", &["-n", &ns, "route", "get", &ip_s], None).await;
                    (got.is_ok() == routed).then_some(()).ok_or_else(|| {
                        format!(
                            "{name} → {ip}: {}",
                            match got {
                                Ok(r) => format!("routed ({})", r.trim()),
                                Err(e) => format!("no route ({e})"),
                            }
                        )
                    })
                });
            }
        }
    }
    let mut wrong = Vec::new();
    let mut asked = 0;
    while let Some(done) = probes.join_next().await {
        asked += 1;
        if let Ok(Err(w)) = done {
            wrong.push(w);
        }
    }
    for g in fed.dcs.iter().flat_map(|d| &d.gateways) {
        let args = [
            "netns",
            "exec",
            &g.netns,
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
        ];
        match netns::run("ip", &args, None).await {
            Ok(v) if v.trim() == "0" => {}
            other => wrong.push(format!("{} forwards packets: {other:?}", g.name)),
        }
    }
    report.check(
        "only_gateways_route_to_other_dcs",
        wrong.is_empty() && asked > 0,
        if wrong.is_empty() {
            format!(
                "{asked} `ip route get` between DCs: servers and clients reach no other DC, gateways reach the other gateways only, none forwards"
            )
        } else {
            wrong.join("; ")
        },
    );
}

/// What one poll of the WAN pool found.
#[derive(Debug, Default)]
struct PoolView {
    /// `<server>: missing <gateway>` for gateways a server does not list alive.
    missing_gateways: Vec<String>,
    /// `<asker>: [..]` for DC lists that lack a DC.
    short_dc_lists: Vec<String>,
}

/// Waits until every DC's server lists every running gateway alive in the WAN pool and
/// every DC's asker lists every DC; checks both.
pub(super) async fn converge(
    state: &State,
    fed: &Fed,
    report: &mut Report,
) -> Result<(), TestbedError> {
    let started = Instant::now();
    let last = RefCell::new(PoolView::default());
    let done = wait::until("the WAN pool converging", CONVERGE_DEADLINE, "", || async {
        let v = pool_view(state, fed).await;
        let ok = v.missing_gateways.is_empty() && v.short_dc_lists.is_empty();
        *last.borrow_mut() = v;
        ok.then_some(())
    })
    .await;
    let last = last.into_inner();
    let secs = started.elapsed().as_secs_f64();
    if done.is_ok() {
        report
            .timings
            .insert("wan_pool_converged_after_s".into(), secs);
    }
    let gateways = fed.dcs.iter().map(|d| d.gateways.len()).sum::<usize>();
    report.check(
        "wan_pool_lists_every_gateway_alive",
        last.missing_gateways.is_empty(),
        if last.missing_gateways.is_empty() {
            format!(
                "{gateways} gateways alive in `/v1/agent/members?wan=1` of {} servers ({secs:.2}s)",
                fed.dcs.len()
            )
        } else {
            last.missing_gateways.join("; ")
        },
    );
    report.check(
        "datacenters_listed_on_every_dc",
        last.short_dc_lists.is_empty(),
        if last.short_dc_lists.is_empty() {
            format!(
                "`/v1/catalog/datacenters` on {} lists all {}",
                fed.dcs
                    .iter()
                    .map(|d| d.asker.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                fed.dcs.len()
            )
        } else {
            last.short_dc_lists.join("; ")
        },
    );
    done
}

/// What keeps the WAN pool from being converged now (every DC's server lists every
/// gateway of `fed` alive, every DC's asker lists every DC): empty when nothing.
pub(super) async fn pool_problems(state: &State, fed: &Fed) -> Vec<String> {
    let v = pool_view(state, fed).await;
    v.missing_gateways
        .into_iter()
        .chain(v.short_dc_lists)
        .collect()
}

async fn pool_view(state: &State, fed: &Fed) -> PoolView {
    let mut v = PoolView::default();
    for d in &fed.dcs {
        let alive = alive_members(state, &d.server, true).await;
        for g in fed.dcs.iter().flat_map(|x| &x.gateways) {
            if !alive.as_ref().is_some_and(|a| a.contains(&wan_name(g))) {
                v.missing_gateways
                    .push(format!("{}: {} not alive", d.server.name, wan_name(g)));
            }
        }
        let listed = datacenters(state, &d.asker).await;
        if !fed.dcs.iter().all(|x| listed.contains(&x.name)) {
            v.short_dc_lists
                .push(format!("{}: {listed:?}", d.asker.name));
        }
    }
    v
}

/// `/v1/catalog/datacenters` on `host` (empty when it did not answer).
pub(super) async fn datacenters(state: &State, host: &HostPlan) -> Vec<String> {
    let replies = probe::get(&state.testbed, host, &["/v1/catalog/datacenters"])
        .await
        .unwrap_or_default();
    replies
        .first()
        .filter(|r| r.status == Some(200))
        .and_then(|r| serde_json::from_str(&r.body).ok())
        .unwrap_or_default()
}

/// Registers the service on every DC's asker and writes `<prefix>/whoami` = the DC's name
/// on its server; waits until each DC's catalog has its instance.
pub(super) async fn seed(
    state: &State,
    fed: &Fed,
    report: &mut Report,
) -> Result<(), TestbedError> {
    let body = serde_json::json!({ "Name": fed.service, "ID": fed.service, "Port": 8080 });
    for d in &fed.dcs {
        let reg = probe::put(
            &state.testbed,
            &d.asker,
            "/v1/agent/service/register",
            &body.to_string(),
        )
        .await?;
        let kv = probe::put(&state.testbed, &d.server, &fed.kv("whoami", ""), &d.name).await?;
        if reg.status != Some(200) || kv.status != Some(200) {
            return Err(TestbedError::Timeout {
                what: format!(
                    "seeding {}: register {:?} {}, whoami {:?} {}",
                    d.name, reg.status, reg.body, kv.status, kv.body
                ),
                after: Duration::ZERO,
                hint: String::new(),
            });
        }
    }
    let started = Instant::now();
    let path = format!("/v1/catalog/service/{}", fed.service);
    for d in &fed.dcs {
        wait::until(
            &format!("{} in {}'s catalog", fed.service, d.name),
            CONVERGE_DEADLINE,
            "",
            || async {
                let r = probe::get(&state.testbed, &d.server, &[&path]).await.ok()?;
                let entries: Vec<serde_json::Value> =
                    serde_json::from_str(&r.first()?.body).ok()?;
                (!entries.is_empty()).then_some(())
            },
        )
        .await?;
    }
    report.timings.insert(
        "service_in_every_catalog_after_s".into(),
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

/// Check (a): every ordered pair of DCs, KV PUT, catalog, health and DNS.
pub(super) async fn every_pair(
    state: &State,
    fed: &Fed,
    report: &mut Report,
) -> Result<(), TestbedError> {
    let mut puts = Vec::new();
    let mut put_ms = Vec::new();
    for a in &fed.dcs {
        for b in fed.dcs.iter().filter(|b| b.name != a.name) {
            let path = fed.kv(&format!("from-{}", a.name), &format!("?dc={}", b.name));
            let sent = Instant::now();
            let r = probe::put(&state.testbed, &a.asker, &path, &a.name).await?;
            put_ms.push(sent.elapsed().as_secs_f64() * 1000.0);
            if r.status != Some(200) || r.body.trim() != "true" {
                puts.push(format!(
                    "PUT {} from {}: {:?} {} {:?}",
                    path, a.asker.name, r.status, r.body, r.error
                ));
            }
        }
    }
    // Read back in each DC, locally on its server: every other DC's key is there, its own
    // is not (a PUT with ?dc= must not land where it was made).
    for d in &fed.dcs {
        let urls: Vec<String> = fed
            .dcs
            .iter()
            .map(|x| stream::url(&d.server, &fed.kv(&format!("from-{}", x.name), "?raw")))
            .collect();
        let got = stream::once(state, &d.server, &urls).await?;
        for (x, rec) in fed.dcs.iter().zip(&got) {
            let fine = if x.name == d.name {
                rec.status == Some(404)
            } else {
                stream::answered(rec, &x.name)
            };
            if !fine {
                puts.push(format!(
                    "local read of from-{} on {}: {:?} {:?}",
                    x.name, d.server.name, rec.status, rec.body
                ));
            }
        }
    }
    let pairs = fed.dcs.len() * (fed.dcs.len() - 1);
    let slowest = put_ms.iter().copied().fold(0.0, f64::max);
    report.check(
        "kv_put_with_dc_lands_in_that_dc",
        puts.is_empty(),
        if puts.is_empty() {
            format!(
                "{pairs} PUTs ?dc=B from a host of A read back on B's server, absent from A's (slowest PUT {slowest:.0} ms)"
            )
        } else {
            puts.join("; ")
        },
    );
    catalog_and_health(state, fed, report).await?;
    dns(fed, report).await;
    Ok(())
}

/// `/v1/catalog/service/<svc>?dc=B` and `/v1/health/service/<svc>?dc=B` from every A.
async fn catalog_and_health(
    state: &State,
    fed: &Fed,
    report: &mut Report,
) -> Result<(), TestbedError> {
    let (mut catalog, mut health) = (Vec::new(), Vec::new());
    for a in &fed.dcs {
        let others: Vec<&Dc> = fed.dcs.iter().filter(|b| b.name != a.name).collect();
        let mut urls = Vec::new();
        for b in &others {
            let q = format!("{}?dc={}", fed.service, b.name);
            urls.push(stream::url(&a.asker, &format!("/v1/catalog/service/{q}")));
            urls.push(stream::url(&a.asker, &format!("/v1/health/service/{q}")));
        }
        let got = stream::once(state, &a.asker, &urls).await?;
        for (i, b) in others.iter().enumerate() {
            let ip = b.asker.lan_ip.to_string();
            let label = format!("{}→{}", a.name, b.name);
            match got.get(2 * i) {
                Some(r) if catalog_answers(r, &b.name, &ip) => {}
                r => catalog.push(format!("{label}: {}", brief(r))),
            }
            match got.get(2 * i + 1) {
                Some(r) if health_answers(r, &b.name, &ip) => {}
                r => health.push(format!("{label}: {}", brief(r))),
            }
        }
    }
    let pairs = fed.dcs.len() * (fed.dcs.len() - 1);
    for (name, wrong, what) in [
        (
            "catalog_service_with_dc_answers_that_dc",
            catalog,
            "/v1/catalog/service",
        ),
        (
            "health_service_with_dc_answers_that_dc",
            health,
            "/v1/health/service",
        ),
    ] {
        report.check(
            name,
            wrong.is_empty(),
            if wrong.is_empty() {
                format!(
                    "{what}/{}?dc=B from every A ({pairs} pairs): B's instance at B's address",
                    fed.service
                )
            } else {
                wrong.join("; ")
            },
        );
    }
    Ok(())
}

fn brief(r: Option<&ReadRecord>) -> String {
    match r {
        Some(r) => format!(
            "{:?} {:.0} ms {:.200} {:?}",
            r.status, r.ms, r.body, r.error
        ),
        None => "no record".into(),
    }
}

/// A catalog answer of DC `dc` with an instance at `ip`, and nothing from elsewhere.
fn catalog_answers(r: &ReadRecord, dc: &str, ip: &str) -> bool {
    let Ok(entries) = serde_json::from_str::<Vec<serde_json::Value>>(&r.body) else {
        return false;
    };
    r.status == Some(200)
        && entries.iter().all(|e| e["Datacenter"] == dc)
        && entries.iter().any(|e| {
            let svc = e["ServiceAddress"].as_str().unwrap_or_default();
            (if svc.is_empty() {
                &e["Address"]
            } else {
                &e["ServiceAddress"]
            }) == ip
        })
}

/// A health answer of DC `dc` with an instance on the node at `ip`.
fn health_answers(r: &ReadRecord, dc: &str, ip: &str) -> bool {
    let Ok(entries) = serde_json::from_str::<Vec<serde_json::Value>>(&r.body) else {
        return false;
    };
    r.status == Some(200)
        && entries.iter().all(|e| e["Node"]["Datacenter"] == dc)
        && entries.iter().any(|e| e["Node"]["Address"] == ip)
}

/// `dig <svc>.service.B.consul` and `dig <B's server>.node.B.consul` from every A's
/// asker: B's service and node addresses.
async fn dns(fed: &Fed, report: &mut Report) {
    let (mut services, mut nodes) = (Vec::new(), Vec::new());
    let mut slowest: f64 = 0.0;
    for a in &fed.dcs {
        for b in fed.dcs.iter().filter(|b| b.name != a.name) {
            let questions = [
                (
                    format!("{}.service.{}.consul", fed.service, b.name),
                    b.asker.lan_ip,
                    &mut services,
                ),
                (
                    format!("{}.node.{}.consul", b.server.name, b.name),
                    b.server.lan_ip,
                    &mut nodes,
                ),
            ];
            for (name, want, wrong) in questions {
                let got = dig::a(&a.asker, &name).await;
                slowest = slowest.max(got.secs);
                if got.status.as_deref() != Some("NOERROR") || got.addrs != [want] {
                    wrong.push(format!("{} on {}: {}", name, a.asker.name, got.describe()));
                }
            }
        }
    }
    report
        .timings
        .insert("dns_other_dc_slowest_s".into(), slowest);
    for (check, wrong, what) in [
        (
            "dns_answers_other_dc_services",
            services,
            "<svc>.service.B.consul: B's instance",
        ),
        (
            "dns_answers_other_dc_nodes",
            nodes,
            "<B's server>.node.B.consul: its address",
        ),
    ] {
        report.check(
            check,
            wrong.is_empty(),
            if wrong.is_empty() {
                format!("dig {what}, on every other DC's agent (slowest answer {slowest:.3}s)")
            } else {
                wrong.join("; ")
            },
        );
    }
}

/// Check (b): `?dc=nope` is a fast `No path to datacenter`, DNS a fast NXDOMAIN, from
/// every DC.
pub(super) async fn unknown_dc(
    state: &State,
    fed: &Fed,
    report: &mut Report,
) -> Result<(), TestbedError> {
    let bound = UNKNOWN_DC_WITHIN.as_secs_f64();
    let (mut http, mut dns) = (Vec::new(), Vec::new());
    let mut slowest: f64 = 0.0;
    for a in &fed.dcs {
        let urls = [
            stream::url(&a.asker, &fed.kv("whoami", "?dc=nope")),
            stream::url(
                &a.asker,
                &format!("/v1/catalog/service/{}?dc=nope", fed.service),
            ),
        ];
        for r in stream::once(state, &a.asker, &urls).await? {
            slowest = slowest.max(r.ms / 1000.0);
            let fine = r.status == Some(500)
                && r.body.contains("No path to datacenter")
                && r.ms / 1000.0 < bound;
            if !fine {
                http.push(format!("{}: {}", a.asker.name, brief(Some(&r))));
            }
        }
        let got = dig::a(&a.asker, &format!("{}.service.nope.consul", fed.service)).await;
        if got.status.as_deref() != Some("NXDOMAIN") || got.secs >= bound {
            dns.push(format!("{}: {}", a.asker.name, got.describe()));
        }
    }
    report
        .timings
        .insert("unknown_dc_slowest_s".into(), slowest);
    report.check(
        "unknown_dc_is_no_path_fast",
        http.is_empty(),
        if http.is_empty() {
            format!(
                "?dc=nope on KV and catalog from {} DCs: 500 `No path to datacenter`, slowest {slowest:.3}s (bound {bound}s)",
                fed.dcs.len()
            )
        } else {
            http.join("; ")
        },
    );
    report.check(
        "unknown_dc_dns_nxdomain",
        dns.is_empty(),
        if dns.is_empty() {
            format!(
                "<svc>.service.nope.consul: NXDOMAIN in under {bound}s from {} DCs",
                fed.dcs.len()
            )
        } else {
            dns.join("; ")
        },
    );
    Ok(())
}

/// Deregisters the service (the keys stay: they are this run's, under its prefix).
pub(super) async fn cleanup(state: &State, fed: &Fed) {
    let path = format!("/v1/agent/service/deregister/{}", fed.service);
    for d in &fed.dcs {
        let _ = probe::put(&state.testbed, &d.asker, &path, "").await;
    }
}
