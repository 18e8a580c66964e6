//! Prometheus text format 0.0.4, as Consul's go-metrics Prometheus sink writes it: dotted
//! names with `.`, `-` and other characters Prometheus forbids turned into `_`
//! (`consul.raft.commitTime` → `consul_raft_commitTime`), counters under their plain name
//! (no `_total`), samples as summaries with the 0.5, 0.9 and 0.99 quantiles of the last 10 s
//! plus `_sum` and `_count`, gauges as gauges (but the running totals Meridian reports as
//! gauges named `*_total` as the counters they are), and a `# HELP` (the name, as go-metrics writes
//! it when no help text is registered) and `# TYPE` line per family. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use super::{Cumulative, Key, Kind};

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Summary quantiles (go-metrics' Prometheus sink objectives).
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];

/// A gauge read when asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// Dotted name.
    pub name: String,
    /// Label pairs.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: f64,
}

/// A metric name Prometheus accepts: every character outside `[a-zA-Z0-9_:]` becomes `_`,
/// and a leading digit gets a `_` in front.
pub fn metric_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// A label name: as [`metric_name`], without colons.
fn label_name(name: &str) -> String {
    metric_name(name).replace(':', "_")
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// `{a="1",b="2"}` (with `extra` last), or nothing without labels.
fn label_set<'a>(
    labels: impl Iterator<Item = (&'a str, &'a str)>,
    extra: Option<(&'a str, &'a str)>,
) -> String {
    let parts: Vec<String> = labels
        .chain(extra)
        .map(|(k, v)| format!("{}=\"{}\"", label_name(k), escape_value(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// One family's samples before writing: its type and lines.
struct Family {
    kind: &'static str,
    lines: Vec<String>,
}

/// The exposition of `gauges` and the `series` (already filtered by retention) at `now`.
/// A name shared by two kinds keeps the first family (gauges, then counters and samples in
/// key order) so the output stays valid.
pub fn encode(gauges: &[Gauge], series: &[(Key, Cumulative)], now: Instant) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut add = |name: String, kind: &'static str, lines: Vec<String>| {
        let f = families.entry(name).or_insert_with(|| Family {
            kind,
            lines: Vec::new(),
        });
        if f.kind == kind {
            f.lines.extend(lines);
        }
    };
    for g in gauges {
        let name = metric_name(&g.name);
        let labels = label_set(g.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())), None);
        let line = format!("{name}{labels} {}", number(g.value));
        // A running total (`consul.dns.queries_total`) only grows: a counter to Prometheus.
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        add(name, kind, vec![line]);
    }
    for (key, c) in series {
        let name = metric_name(key.name);
        let pairs = || key.labels.iter().map(|(k, v)| (*k, v.as_str()));
        match c.kind {
            Kind::Counter => {
                let line = format!("{name}{} {}", label_set(pairs(), None), number(c.sum));
                add(name, "counter", vec![line]);
            }
            Kind::Sample => {
                let mut lines: Vec<String> = QUANTILES
                    .iter()
                    .map(|(q, qs)| {
                        let labels = label_set(pairs(), Some(("quantile", qs)));
                        format!("{name}{labels} {}", number(c.quantile(*q, now)))
                    })
                    .collect();
                let plain = label_set(pairs(), None);
                lines.push(format!("{name}_sum{plain} {}", number(c.sum)));
                lines.push(format!("{name}_count{plain} {}", c.count));
                add(name, "summary", lines);
            }
        }
    }
    let mut out = String::new();
    for (name, f) in families {
        // go-metrics' help text defaults to the metric's name.
        let _ = writeln!(out, "# HELP {name} {name}");
        let _ = writeln!(out, "# TYPE {name} {}", f.kind);
        for line in f.lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::super::Registry;
    use super::*;

    #[test]
    fn names_become_prometheus_names() {
        assert_eq!(
            metric_name("consul.raft.commitTime"),
            "consul_raft_commitTime"
        );
        assert_eq!(
            metric_name("consul.my-host.runtime.x"),
            "consul_my_host_runtime_x"
        );
        assert_eq!(metric_name("9lives"), "_9lives");
    }

    #[test]
    fn counters_summaries_and_gauges_in_text_format() {
        let r = Registry::default();
        let now = Instant::now();
        let wall = SystemTime::now();
        r.record(Kind::Counter, "consul.rpc.request", &[], 1.0, wall, now);
        r.record(Kind::Counter, "consul.rpc.request", &[], 1.0, wall, now);
        for ms in [1.0, 2.0, 3.0] {
            r.record(
                Kind::Sample,
                "consul.api.http",
                &[("path", "v1.kv._"), ("method", "PUT")],
                ms,
                wall,
                now,
            );
        }
        let gauges = [
            Gauge {
                name: "consul.members.servers".into(),
                labels: vec![("dc".into(), "a\"b".into())],
                value: 1.0,
            },
            Gauge {
                name: "consul.dns.queries_total".into(),
                labels: Vec::new(),
                value: 7.0,
            },
        ];
        let text = encode(&gauges, &r.cumulative(now, Duration::from_secs(60)), now);
        let want = "\
# HELP consul_api_http consul_api_http
# TYPE consul_api_http summary
consul_api_http{method=\"PUT\",path=\"v1.kv._\",quantile=\"0.5\"} 2
consul_api_http{method=\"PUT\",path=\"v1.kv._\",quantile=\"0.9\"} 3
consul_api_http{method=\"PUT\",path=\"v1.kv._\",quantile=\"0.99\"} 3
consul_api_http_sum{method=\"PUT\",path=\"v1.kv._\"} 6
consul_api_http_count{method=\"PUT\",path=\"v1.kv._\"} 3
# HELP consul_dns_queries_total consul_dns_queries_total
# TYPE consul_dns_queries_total counter
consul_dns_queries_total 7
# HELP consul_members_servers consul_members_servers
# TYPE consul_members_servers gauge
consul_members_servers{dc=\"a\\\"b\"} 1
# HELP consul_rpc_request consul_rpc_request
# TYPE consul_rpc_request counter
consul_rpc_request 2
";
        assert_eq!(text, want);
        // An idle window reports NaN quantiles, as client_golang does.
        let later = now + Duration::from_secs(30);
        let text = encode(&[], &r.cumulative(later, Duration::from_secs(60)), later);
        assert!(text.contains("quantile=\"0.5\"} NaN"), "{text}");
    }
}
