//! `GET /v1/agent/metrics`: what the agent can tell about itself, in the JSON shape of
//! Consul's in-memory sink (go-metrics `MetricsSummary`: `Timestamp`, `Gauges`, `Points`,
//! `Counters`, `Samples`), or in Prometheus text format.
//!
//! Gauges are read when asked (member table, catalog state, raft progress, DNS and gossip
//! counters, process memory); running totals Meridian keeps outside go-metrics' model appear
//! as gauges named `*_total`. `Counters` and `Samples` come from the process-wide
//! [`telemetry`](crate::telemetry) registry (`consul.raft.commitTime`, `consul.api.http`,
//! `consul.serf.member.join`, ...): go-metrics' 10 s aggregates of the last complete interval
//! (the current one while the agent is younger than that), `Timestamp` being its start. Names
//! follow Consul's telemetry reference where Meridian measures the same thing.
//!
//! As in Consul, the runtime gauges carry the host name (`consul.<host>.runtime.workers`)
//! unless `telemetry.disable_hostname`. Consul's go-metrics puts it into every gauge name;
//! Meridian keeps the other gauges' names stable (documented difference).
//!
//! `?format=prometheus` (or an OpenMetrics `Accept`) answers Prometheus text format 0.0.4
//! (`telemetry/prometheus.rs`) when `telemetry.prometheus_retention_time` is positive, leaving
//! out counters and samples not updated within it (the `*_total` gauges are typed counters
//! there, which they are); without it, as Consul answers: 200, empty
//! body, and the reason in `X-Consul-Reason`. Needs agent:read on this node under ACLs.

use std::sync::LazyLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use meridian_acl::{Need, Resource};

use super::ApiState;
use super::acl_authz::Authz;
use super::error::ApiError;
use super::params::Params;
use super::read::json_body;
use crate::gossip::MemberStatus;
use crate::gossip::identity::Role;
use crate::telemetry::{self, Aggregate, Key, prometheus};

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/agent/metrics", get(metrics))
}

/// Consul's `path` label of `consul.api.http`: the route without its leading slash, `.`
/// between segments and `_` for each variable one (`/v1/kv/{*key}` → `v1.kv._`).
fn path_label(route: &str) -> String {
    route
        .trim_start_matches('/')
        .split('/')
        .map(|seg| {
            if seg.is_empty() || seg.starts_with(['{', ':', '*']) {
                "_"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Route layer: the time each matched request took to answer, as Consul's
/// `consul.api.http` sample with `method` and `path` labels.
pub(super) async fn measure(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| path_label(p.as_str()));
    let resp = next.run(req).await;
    if let Some(path) = path {
        telemetry::sample_since(
            "consul.api.http",
            &[("method", &method), ("path", &path)],
            started,
        );
    }
    resp
}

/// Consul's `X-Consul-Reason` when Prometheus output is not enabled.
const PROMETHEUS_OFF: &str = "Prometheus is not enabled since its retention time is not positive";

/// go-metrics' aggregation interval.
const INTERVAL: Duration = telemetry::INTERVAL;

/// The host name Consul's go-metrics puts into gauge names (`os.Hostname()`).
static HOSTNAME: LazyLock<String> = LazyLock::new(meridian_config::default_node_name);

/// Consul's `enablePrometheusOutput`: `?format=prometheus` or an OpenMetrics `Accept`.
fn wants_prometheus(p: &Params, headers: &HeaderMap) -> bool {
    if p.get("format") == Some("prometheus") {
        return true;
    }
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.split(',').any(|m| {
        let mut parts = m.split(';').map(str::trim);
        let mime = parts.next().unwrap_or("").to_ascii_lowercase();
        mime == "application/openmetrics-text"
            || (mime == "text/plain" && parts.next() == Some("version=0.4.0"))
    })
}

/// The start of the current interval as Go's `time.Time.String()` prints it in UTC
/// (`2026-05-01 10:00:00 +0000 UTC`).
fn interval_timestamp(now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let start = UNIX_EPOCH + Duration::from_secs(secs - secs % INTERVAL.as_secs());
    // RFC 3339 seconds: `2026-05-01T10:00:00Z`.
    let rfc = humantime::format_rfc3339_seconds(start).to_string();
    format!(
        "{} +0000 UTC",
        rfc.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

fn gauge(name: &str, value: f64) -> Value {
    json!({ "Name": name, "Value": value, "Labels": {} })
}

/// Resident memory of this process, from `/proc/self/status` (Linux; `None` elsewhere).
fn resident_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// A counter or sample of one interval as go-metrics' `SampledValue`.
fn sampled(key: &Key, a: &Aggregate) -> Value {
    let labels: serde_json::Map<String, Value> = key
        .labels
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::String(v.clone())))
        .collect();
    json!({
        "Name": key.name,
        "Count": a.count,
        "Rate": a.rate(),
        "Sum": a.sum,
        "Min": a.min,
        "Max": a.max,
        "Mean": a.mean(),
        "Stddev": a.stddev(),
        "Labels": labels,
    })
}

/// The gauges as the Prometheus encoder takes them.
fn prometheus_gauges(gauges: &[Value]) -> Vec<prometheus::Gauge> {
    gauges
        .iter()
        .map(|g| prometheus::Gauge {
            name: g["Name"].as_str().unwrap_or_default().to_string(),
            labels: g["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            value: g["Value"].as_f64().unwrap_or(f64::NAN),
        })
        .collect()
}

/// The name of a runtime gauge: `consul.<host>.runtime.<what>` unless the host name is off.
fn runtime_name(what: &str, hostname: Option<&str>) -> String {
    match hostname {
        Some(h) => format!("consul.{h}.runtime.{what}"),
        None => format!("consul.runtime.{what}"),
    }
}

/// Every gauge the agent can fill right now.
async fn gauges(st: &ApiState) -> Vec<Value> {
    let mut out = Vec::new();
    // Gateways of each remote datacenter alive in the WAN pool (the view is cached a second).
    if let Some(f) = st.router.federation() {
        for (dc, alive) in f.gateways_alive().await {
            out.push(json!({
                "Name": "meridian.federation.gateways_alive",
                "Value": alive as f64,
                "Labels": { "datacenter": dc },
            }));
        }
    }
    let members = st.gossip.members();
    let alive = |role: Role| {
        members
            .iter()
            .filter(|m| m.status == MemberStatus::Alive && m.tags.role() == Some(role))
            .count() as f64
    };
    let with = |status: MemberStatus| members.iter().filter(|m| m.status == status).count() as f64;
    out.push(gauge("consul.members.servers", alive(Role::Server)));
    out.push(gauge("consul.members.clients", alive(Role::Client)));
    out.push(gauge("consul.serf.lan.members", members.len() as f64));
    out.push(gauge("consul.serf.lan.failed", with(MemberStatus::Failed)));
    out.push(gauge("consul.serf.lan.left", with(MemberStatus::Left)));
    let g = st.gossip.stats();
    out.push(gauge("consul.serf.lan.received_total", g.received as f64));
    out.push(gauge("consul.serf.lan.sent_total", g.sent as f64));
    // Refused packets: a peer with another key, plaintext into an encrypted pool, garbage.
    for (why, n) in [
        ("undecryptable", g.dropped_undecryptable),
        ("plaintext", g.dropped_plaintext),
        ("malformed", g.dropped_malformed),
    ] {
        out.push(gauge(
            &format!("meridian.serf.lan.dropped_{why}_total"),
            n as f64,
        ));
    }
    // Refused TLS handshakes (untrusted or missing client certificate, plaintext where TLS
    // is required, stalled) and certificate reloads, per listener.
    for tls in st.reload.tls_contexts() {
        let labels = json!({ "listener": tls.purpose().label().to_ascii_lowercase() });
        for (name, v) in [
            (
                "meridian.tls.handshake_failures_total",
                tls.handshake_failures(),
            ),
            ("meridian.tls.reloads_total", tls.reloads()),
        ] {
            out.push(json!({ "Name": name, "Value": v as f64, "Labels": labels }));
        }
    }
    // KV replication from another datacenter, per prefix.
    for p in st.replicator.iter().flat_map(|r| r.status()) {
        let labels = json!({ "prefix": p.prefix });
        for (name, v) in [
            (
                "meridian.replication.lag_index",
                p.source_index.saturating_sub(p.applied_index) as f64,
            ),
            ("meridian.replication.lag_seconds", p.lag_seconds()),
            ("meridian.replication.applied_index", p.applied_index as f64),
        ] {
            out.push(json!({ "Name": name, "Value": v, "Labels": labels }));
        }
    }
    // Stale reads of unreachable datacenters answered from their catalog copies.
    for (dc, n) in st
        .router
        .federation()
        .map(|f| f.copies().served_counts())
        .unwrap_or_default()
    {
        out.push(json!({
            "Name": "meridian.federation.copy_answers_total",
            "Value": n as f64,
            "Labels": { "datacenter": dc },
        }));
    }
    if let Some(server) = st.router.local() {
        let c = server.raft().state().counts();
        out.push(gauge("consul.state.nodes", c.nodes as f64));
        out.push(gauge("consul.state.services", c.services as f64));
        out.push(gauge(
            "consul.state.service_instances",
            c.service_instances as f64,
        ));
        out.push(gauge("consul.state.kv_entries", c.kv_entries as f64));
        out.push(gauge("consul.state.sessions", c.sessions as f64));
        let r = server.raft().stats();
        out.push(gauge("consul.raft.term", r.term as f64));
        out.push(gauge("consul.raft.last_log_index", r.last_log_index as f64));
        out.push(gauge("consul.raft.commit_index", r.commit_index as f64));
        out.push(gauge("consul.raft.applied_index", r.applied_index as f64));
        out.push(gauge("consul.raft.peers", r.num_peers as f64));
        // A dead peer is logged once; its failed RPCs are counted here.
        for p in server.raft().peer_stats() {
            let labels = json!({ "peer": p.addr, "id": p.id.to_string() });
            for (name, v) in [
                ("meridian.raft.peer.rpc_failures_total", p.failures_total),
                ("meridian.raft.peer.recoveries_total", p.recoveries_total),
                ("meridian.raft.peer.failing", u64::from(p.failing)),
            ] {
                out.push(json!({ "Name": name, "Value": v as f64, "Labels": labels }));
            }
        }
    }
    if let Some(d) = &st.dns_stats {
        for (name, c) in [
            ("consul.dns.queries_total", &d.queries),
            ("consul.dns.nxdomain_total", &d.nxdomain),
            ("consul.dns.recursed_total", &d.recursed),
            ("consul.dns.servfail_total", &d.servfail),
            ("consul.dns.truncated_total", &d.truncated),
        ] {
            out.push(gauge(name, c.load(Ordering::Relaxed) as f64));
        }
    }
    out.push(gauge(
        "consul.agent.services",
        st.local.state.services().len() as f64,
    ));
    out.push(gauge(
        "consul.agent.checks",
        st.local.state.checks().len() as f64,
    ));
    // Anti-entropy writes ACLs refused (reference/acl.md §5.8), as running totals.
    for (name, n) in st.local.sync.blocked_counters() {
        out.push(gauge(&format!("consul.{name}"), n as f64));
    }
    let host = (!st.telemetry.disable_hostname).then_some(HOSTNAME.as_str());
    let rt = tokio::runtime::Handle::current().metrics();
    out.push(gauge(
        &runtime_name("alive_tasks", host),
        rt.num_alive_tasks() as f64,
    ));
    out.push(gauge(
        &runtime_name("workers", host),
        rt.num_workers() as f64,
    ));
    if let Some(rss) = resident_bytes() {
        out.push(gauge(&runtime_name("resident_bytes", host), rss));
    }
    out
}

async fn metrics(
    State(st): State<ApiState>,
    authz: Authz,
    p: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authz.check(Resource::Agent, &st.agent.node_name, Need::Read)?;
    if wants_prometheus(&p, &headers) {
        let Some(retention) = st.telemetry.prometheus_retention() else {
            return Ok(([("x-consul-reason", PROMETHEUS_OFF)], ()).into_response());
        };
        let now = Instant::now();
        let series = telemetry::global().cumulative(now, retention);
        let text = prometheus::encode(&prometheus_gauges(&gauges(&st).await), &series, now);
        return Ok(([("content-type", prometheus::CONTENT_TYPE)], text).into_response());
    }
    let view = telemetry::global().interval_view(SystemTime::now());
    let all = |list: &[(Key, Aggregate)]| list.iter().map(|(k, a)| sampled(k, a)).collect();
    let (counters, samples): (Vec<Value>, Vec<Value>) = (all(&view.counters), all(&view.samples));
    Ok(json_body(&json!({
        "Timestamp": interval_timestamp(view.start),
        "Gauges": gauges(&st).await,
        "Points": [],
        "Counters": counters,
        "Samples": samples,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_interval_starts_in_gos_format() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_007);
        assert_eq!(interval_timestamp(t), "2023-11-14 22:13:20 +0000 UTC");
    }

    #[test]
    fn path_labels_are_consuls() {
        assert_eq!(path_label("/v1/kv/{*key}"), "v1.kv._");
        assert_eq!(path_label("/v1/kv/"), "v1.kv._");
        assert_eq!(path_label("/v1/agent/metrics"), "v1.agent.metrics");
        assert_eq!(
            path_label("/v1/catalog/service/{service}"),
            "v1.catalog.service._"
        );
    }

    #[test]
    fn runtime_gauges_carry_the_host_unless_disabled() {
        assert_eq!(
            runtime_name("workers", Some("box-1")),
            "consul.box-1.runtime.workers"
        );
        assert_eq!(runtime_name("workers", None), "consul.runtime.workers");
    }

    #[test]
    fn prometheus_is_asked_by_parameter_or_accept_header() {
        let none = HeaderMap::new();
        assert!(wants_prometheus(&Params::parse("format=prometheus"), &none));
        assert!(!wants_prometheus(&Params::parse(""), &none));
        let mut om = HeaderMap::new();
        om.insert(
            "accept",
            "application/openmetrics-text; version=1.0.0"
                .parse()
                .expect("header"),
        );
        assert!(wants_prometheus(&Params::parse(""), &om));
        let mut text = HeaderMap::new();
        text.insert(
            "accept",
            "text/plain;version=0.4.0".parse().expect("header"),
        );
        assert!(wants_prometheus(&Params::parse(""), &text));
    }
}
