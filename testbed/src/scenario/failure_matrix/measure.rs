//! Measuring the failure matrix's cells: every operation asked a few times from dc1's
//! client while a fault is in force (all operations at once, each one's attempts in turn),
//! each attempt timed and classified from the real answer — HTTP status and the headers
//! `X-Consul-KnownLeader`, `X-Meridian-Copy`, `X-Meridian-Datacenters-Missing`; DNS status
//! and addresses — against the operation's bound.
//!
//! A DNS answer carries no staleness marker, so an answer with dc2's instance (for
//! `web.service.dc2.consul` and `web.service.any.consul`) counts as stale when, asked right
//! after, the same agent's `?dc=dc2&stale` catalog read says it came from the gateways'
//! copy (`X-Meridian-Copy`).

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::time::Instant;

use super::table::{Fault, Op, Outcome, SLACK, replication_within};
use crate::helper::ReadRecord;
use crate::scenario::sites::{self, Sites, WEB, brief, get, put};
use crate::scenario::{dig, stream};
use crate::state::State;

/// Attempts per cell.
pub(super) const ATTEMPTS: usize = 5;
/// `?stale` reads of the remote DC that must all come from the copy to call DNS answers
/// of its instance stale (see [`dns`]).
const COPY_CHECKS: usize = 3;
/// How often dc2 is polled for a replicated key.
const REPLICA_POLL: Duration = Duration::from_millis(50);

/// One attempt: its class, how long it took, what came back.
#[derive(Debug, Clone)]
pub(super) struct Attempt {
    pub(super) class: Outcome,
    pub(super) ms: f64,
    pub(super) note: String,
    /// Replication only: the key that was not in dc2 in time (checked after the repair).
    pub(super) pending_key: Option<String>,
}

/// What the matrix asks with.
pub(super) struct Ctx<'a> {
    pub(super) state: &'a State,
    pub(super) s: &'a Sites,
    /// KV prefix of this run's keys (`matrix/<t>`).
    pub(super) prefix: String,
    /// Replicated prefix of this run's keys (`config/matrix-<t>`).
    pub(super) replicated: String,
}

/// Every operation's attempts under `fault`, in `Op::ALL` order.
pub(super) async fn all(ctx: &Ctx<'_>, fault: Fault) -> Vec<(Op, Vec<Attempt>)> {
    let (a, b, c, d, e, f, g, h, i, j, k) = tokio::join!(
        http(ctx, Op::LocalRead, fault),
        http(ctx, Op::LocalStaleRead, fault),
        http(ctx, Op::LocalWrite, fault),
        http(ctx, Op::RemoteRead, fault),
        http(ctx, Op::RemoteStaleRead, fault),
        http(ctx, Op::RemoteWrite, fault),
        dns(ctx, Op::DnsLocal),
        dns(ctx, Op::DnsRemote),
        dns(ctx, Op::DnsAny),
        http(ctx, Op::AllDcs, fault),
        replication(ctx, fault),
    );
    Op::ALL
        .into_iter()
        .zip([a, b, c, d, e, f, g, h, i, j, k])
        .collect()
}

/// The path (and PUT body) an HTTP operation asks.
fn request(ctx: &Ctx<'_>, op: Op, fault: Fault) -> (String, Option<&'static str>) {
    let (p, mid) = (&ctx.prefix, &ctx.s.mid.name);
    let f = fault.key();
    match op {
        Op::LocalRead => (format!("/v1/kv/{p}/local?raw"), None),
        Op::LocalStaleRead => (format!("/v1/kv/{p}/local?raw&stale"), None),
        Op::LocalWrite => (format!("/v1/kv/{p}/w-{f}"), Some("written")),
        Op::RemoteRead => (format!("/v1/kv/{p}/remote?raw&dc={mid}"), None),
        Op::RemoteStaleRead => (format!("/v1/catalog/service/{WEB}?dc={mid}&stale"), None),
        Op::RemoteWrite => (format!("/v1/kv/{p}/w-{f}?dc={mid}"), Some("written")),
        _ => ("/v1/catalog/services?dc=*".to_string(), None),
    }
}

/// An HTTP operation's attempts, back to back in one helper.
async fn http(ctx: &Ctx<'_>, op: Op, fault: Fault) -> Vec<Attempt> {
    let (path, body) = request(ctx, op, fault);
    let host = &ctx.s.near.asker;
    let urls = vec![stream::url(host, &path); ATTEMPTS];
    let records = match stream::once_with(ctx.state, host, &urls, body).await {
        Ok(r) => r,
        Err(e) => vec![ReadRecord {
            error: Some(e.to_string()),
            ..ReadRecord::default()
        }],
    };
    records.iter().map(|r| classify_http(ctx, op, r)).collect()
}

/// Whether a 200 answer of `op` is the right one.
fn right(ctx: &Ctx<'_>, op: Op, r: &ReadRecord) -> bool {
    let s = ctx.s;
    match op {
        Op::LocalRead | Op::LocalStaleRead => r.body.trim() == s.near.name,
        Op::RemoteRead => r.body.trim() == s.mid.name,
        Op::LocalWrite | Op::RemoteWrite => r.body.trim() == "true",
        Op::RemoteStaleRead => sites::addresses(&r.body) == [s.mid.instance().lan_ip.to_string()],
        _ => all_dcs_right(s, r),
    }
}

/// A `?dc=*` services answer has `api` exactly when dc1 answered and `web` exactly when
/// dc2 or dc3 did (as `X-Meridian-Datacenters` says).
fn all_dcs_right(s: &Sites, r: &ReadRecord) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.body) else {
        return false;
    };
    let listed: Vec<&str> = r
        .headers
        .get("x-meridian-datacenters")
        .map(|h| h.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let has = |d: &str| listed.contains(&d);
    v.get(sites::API).is_some() == has(&s.near.name)
        && v.get(WEB).is_some() == (has(&s.mid.name) || has(&s.far.name))
        && !listed.is_empty()
}

fn classify_http(ctx: &Ctx<'_>, op: Op, r: &ReadRecord) -> Attempt {
    let bound = (op.bound() + SLACK).as_secs_f64() * 1000.0;
    let h = |k: &str| r.headers.get(k).map(String::as_str);
    let class = match r.status {
        Some(200) if !right(ctx, op, r) => Outcome::Wrong,
        Some(200) if op == Op::AllDcs && h("x-meridian-datacenters-missing").is_some() => {
            Outcome::Partial
        }
        Some(200)
            if h("x-meridian-copy").is_some() || h("x-consul-knownleader") == Some("false") =>
        {
            Outcome::Stale
        }
        Some(200) => Outcome::Works,
        Some(_) if r.ms <= bound => Outcome::FailsFast,
        _ => Outcome::Hangs,
    };
    Attempt {
        class,
        ms: r.ms,
        note: brief(r),
        pending_key: None,
    }
}

/// A DNS operation's attempts, one `dig` after another.
async fn dns(ctx: &Ctx<'_>, op: Op) -> Vec<Attempt> {
    let s = ctx.s;
    let (name, good): (String, Vec<Ipv4Addr>) = match op {
        Op::DnsLocal => (
            format!("{}.service.consul", sites::API),
            vec![s.near.instance().lan_ip],
        ),
        Op::DnsRemote => (
            format!("{WEB}.service.{}.consul", s.mid.name),
            vec![s.mid.instance().lan_ip],
        ),
        _ => (
            format!("{WEB}.service.any.consul"),
            vec![s.mid.instance().lan_ip, s.far.instance().lan_ip],
        ),
    };
    let bound = (op.bound() + SLACK).as_secs_f64();
    let mid_ip = s.mid.instance().lan_ip;
    let mut out = Vec::new();
    let mut mid_answered = Vec::new();
    for _ in 0..ATTEMPTS {
        let a = dig::a(&s.near.asker, &name).await;
        let class = match a.status.as_deref() {
            Some("NOERROR") if !a.addrs.is_empty() && a.addrs.iter().all(|x| good.contains(x)) => {
                Outcome::Works
            }
            Some("NOERROR") if !a.addrs.is_empty() => Outcome::Wrong,
            Some(_) if a.secs <= bound => Outcome::FailsFast,
            _ => Outcome::Hangs,
        };
        mid_answered.push(class == Outcome::Works && a.addrs.contains(&mid_ip));
        out.push(Attempt {
            class,
            ms: a.secs * 1000.0,
            note: format!("{name}: {}", a.describe()),
            pending_key: None,
        });
    }
    // dc2's instance while dc2 can only be read from the gateways' copy is a stale answer
    // (for `any`, too: the nearest *reachable* DC was asked for). Whether dc2 is read live
    // is asked with `?stale` reads of dc2; over a lossy WAN one of them can time out and come
    // from the copy while the digs were answered live, so it takes every one of
    // `COPY_CHECKS` reads coming from the copy to call the answers stale.
    if op != Op::DnsLocal && mid_answered.contains(&true) {
        let path = format!("/v1/catalog/service/{WEB}?dc={}&stale", s.mid.name);
        let mut copy_ms = Vec::new();
        for _ in 0..COPY_CHECKS {
            let r = get(ctx.state, &s.near.asker, &path).await;
            if !r.headers.contains_key("x-meridian-copy") {
                break;
            }
            copy_ms.push(format!("{:.0}", r.ms));
        }
        if copy_ms.len() == COPY_CHECKS {
            // Why the live read failed, for whoever reads a surprising cell.
            let why = last_error(ctx, &s.mid.name).await;
            let said = format!(
                " (the agent's ?dc={}&stale reads say, in {} ms: from the copy; {}'s last error for {}: {why})",
                s.mid.name,
                copy_ms.join(" / "),
                s.near.name,
                s.mid.name
            );
            for (a, _) in out.iter_mut().zip(&mid_answered).filter(|(_, m)| **m) {
                a.class = Outcome::Stale;
                a.note.push_str(&said);
            }
        }
    }
    out
}

/// The last error `dc`'s federation health (`/v1/operator/federation`, asked of dc1's
/// client) records, or what kept us from learning it.
async fn last_error(ctx: &Ctx<'_>, dc: &str) -> String {
    let r = get(ctx.state, &ctx.s.near.asker, "/v1/operator/federation").await;
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.body) else {
        return format!("unknown ({})", brief(&r));
    };
    let entry = v["Datacenters"]
        .as_array()
        .and_then(|d| d.iter().find(|e| e["Name"] == dc));
    match entry {
        Some(e) => format!("{} (breaker {})", e["LastError"], e["Breaker"]),
        None => format!("unknown ({dc} not in the answer)"),
    }
}

/// KV replication's attempts: a key written in dc1, then polled in dc2 (`?stale` through
/// dc2's client) until there or `replication_within(fault)` passed. The time is from the write's
/// acknowledgement to the poll that saw it. A key not there in time is pending: stale
/// if it arrives after the repair, wrong if never.
async fn replication(ctx: &Ctx<'_>, fault: Fault) -> Vec<Attempt> {
    let s = ctx.s;
    let mut out = Vec::new();
    for i in 0..ATTEMPTS {
        let key = format!("{}/{}-{i}", ctx.replicated, fault.key());
        let w = put(ctx.state, &s.near.asker, &format!("/v1/kv/{key}"), "copied").await;
        if !(w.status == Some(200) && w.body.trim() == "true") {
            let bound = (Op::Replication.bound() + SLACK).as_secs_f64() * 1000.0;
            let class = if w.status.is_some() && w.ms <= bound {
                Outcome::FailsFast
            } else {
                Outcome::Hangs
            };
            out.push(Attempt {
                class,
                ms: w.ms,
                note: format!("write in {}: {}", s.near.name, brief(&w)),
                pending_key: None,
            });
            continue;
        }
        let acked = Instant::now();
        let within = replication_within(fault);
        let seen = seen_in_replica(ctx, &key, acked + within).await;
        let ms = acked.elapsed().as_secs_f64() * 1000.0;
        out.push(match seen {
            true => Attempt {
                class: Outcome::Works,
                ms,
                note: format!("{key} in {} {ms:.0} ms after the write", s.mid.name),
                pending_key: None,
            },
            false => Attempt {
                class: Outcome::Stale,
                ms,
                note: format!("{key} not in {} within {within:?}", s.mid.name),
                pending_key: Some(key),
            },
        });
    }
    out
}

/// Polls dc2's client for `key` (`?stale`) until it is there or `until`.
pub(super) async fn seen_in_replica(ctx: &Ctx<'_>, key: &str, until: Instant) -> bool {
    let path = format!("/v1/kv/{key}?stale");
    loop {
        let r = get(ctx.state, &ctx.s.mid.asker, &path).await;
        if r.status == Some(200) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep_until((Instant::now() + REPLICA_POLL).min(until)).await;
    }
}
