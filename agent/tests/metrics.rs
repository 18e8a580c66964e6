//! `/v1/agent/metrics` against a real agent: counters and samples in Consul's JSON shape after
//! the agent did the things they measure, and Prometheus text that Prometheus' own `promtool`
//! parses when `telemetry.prometheus_retention_time` is set.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Agent, wait_until};
use serde_json::Value;

/// `dig @127.0.0.1 -p PORT ARGS` succeeded.
fn dig(port: u16, args: &[&str]) {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=3", "+tries=1"])
        .args(args)
        .output()
        .expect("dig (Debian package bind9-dnsutils) must be installed");
    assert!(out.status.success(), "dig {args:?}: {out:?}");
}

/// The agent's work so far: a KV write (a raft commit on the leader), a DNS name of its
/// domain, a reverse lookup and HTTP requests.
fn exercise(a: &Agent) {
    a.wait_for_leader(Duration::from_secs(10));
    assert_eq!(a.put("/v1/kv/metrics/probe", "x").0, 200);
    dig(a.dns, &["consul.service.consul", "A"]);
    dig(a.dns, &["-x", "127.0.0.1"]);
    let (code, _, _) = a.get("/v1/kv/metrics/probe");
    assert_eq!(code, 200);
}

/// After a KV write, a DNS query and HTTP requests, the JSON's `Counters`/`Samples` hold
/// Consul's names for them, with go-metrics' aggregate fields and labels. The JSON shows
/// the last complete 10 s interval, so this polls (with a deadline) and gathers what each
/// interval showed until every name was there.
#[test]
fn counters_and_samples_show_what_the_agent_did() {
    let a = Agent::dev_named("metrics-node", &[]);
    exercise(&a);
    let want_samples = [
        "consul.raft.commitTime",
        "consul.dns.domain_query",
        "consul.dns.ptr_query",
        "consul.api.http",
    ];
    let mut seen: Vec<(String, Value)> = Vec::new();
    let mut last = Value::Null;
    wait_until(
        Duration::from_secs(30),
        "counters and samples of the work",
        || {
            let m = a.get_json("/v1/agent/metrics");
            for list in ["Counters", "Samples"] {
                for e in m[list].as_array().into_iter().flatten() {
                    seen.push((list.to_string(), e.clone()));
                }
            }
            last = m;
            let has =
                |list: &str, name: &str| seen.iter().any(|(l, e)| l == list && e["Name"] == name);
            want_samples.iter().all(|n| has("Samples", n))
                && has("Counters", "consul.raft.state.leader")
        },
    );
    let get = |list: &str, name: &str, labels: &[(&str, &str)]| {
        seen.iter()
            .find(|(l, e)| {
                l == list && e["Name"] == name && labels.iter().all(|(k, v)| e["Labels"][*k] == *v)
            })
            .map(|(_, e)| e.clone())
    };
    let put = get(
        "Samples",
        "consul.api.http",
        &[("path", "v1.kv._"), ("method", "PUT")],
    )
    .unwrap_or_else(|| panic!("no PUT v1.kv._ sample in {seen:?}"));
    for field in ["Count", "Rate", "Sum", "Min", "Max", "Mean", "Stddev"] {
        assert!(put[field].is_number(), "{field} in {put}");
    }
    assert!(put["Count"].as_u64() >= Some(1), "{put}");
    assert!(put["Max"].as_f64() >= put["Min"].as_f64(), "{put}");
    assert!(
        get(
            "Samples",
            "consul.dns.domain_query",
            &[("node", "metrics-node")]
        )
        .is_some(),
        "domain_query labelled with the node: {seen:?}"
    );
    let leader = get("Counters", "consul.raft.state.leader", &[]).expect("leader counter");
    assert_eq!(leader["Count"], 1, "{leader}");
    // The gauges read when asked are still there; the runtime ones carry the host name as
    // Consul's do without `telemetry.disable_hostname`.
    let gauge = |name: &str| {
        last["Gauges"]
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["Name"] == name))
    };
    assert!(gauge("consul.members.servers"), "{last}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    let workers = format!("consul.{}.runtime.workers", host.trim());
    assert!(gauge(&workers), "{workers} missing: {last}");
}

/// Gathers the names of `Counters` across polls of `a` (each 10 s interval shows once it is
/// complete) until `want` are all there, doing `each` before every poll.
fn wait_for_counters(a: &Agent, want: &[&str], mut each: impl FnMut()) {
    let mut seen: Vec<String> = Vec::new();
    wait_until(
        Duration::from_secs(30),
        &format!("counters {want:?}"),
        || {
            each();
            let m = a.get_json("/v1/agent/metrics");
            for e in m["Counters"].as_array().into_iter().flatten() {
                if let Some(n) = e["Name"].as_str() {
                    seen.push(n.to_string());
                }
            }
            want.iter().all(|w| seen.iter().any(|n| n == w))
        },
    );
}

/// A client agent joining, forwarding a write and leaving shows on its server as serf's
/// member counters and Consul's `consul.rpc.request`.
#[test]
fn member_events_and_forwarded_rpcs_are_counted_on_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Agent::dev_named("hub", &[]);
    server.wait_for_leader(Duration::from_secs(10));
    let client = Agent::client_of(&dir.path().join("c"), "spoke", &server.serf, &[]);
    wait_until(
        Duration::from_secs(20),
        "a write through the client",
        || client.put("/v1/kv/from-client", "x").0 == 200,
    );
    wait_for_counters(
        &server,
        &["consul.serf.member.join", "consul.rpc.request"],
        || {},
    );
    let mut client = Some(client);
    wait_for_counters(&server, &["consul.serf.member.left"], || {
        // SIGTERM: a client leaves the pool gracefully (leave_on_terminate).
        if let Some(c) = client.take() {
            c.terminate();
        }
    });
}

/// `promtool check metrics` on `text`: its output (it exits non-zero on lint findings too).
fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "promtool not found ({e}): install Debian's `prometheus` package \
                 (apt-get install prometheus), which ships /usr/bin/promtool"
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// With `prometheus_retention_time`, `?format=prometheus` is text format 0.0.4 with the
/// counters, summaries and gauges, and promtool parses it. Its only complaints are the lint
/// findings Consul's own output has too: Consul's names are camelCase in places
/// (`consul_raft_commitTime`) and its counters carry no `_total`; nothing else.
#[test]
fn prometheus_output_parses_with_promtool() {
    let a = Agent::dev_named(
        "prom-node",
        &[
            "-hcl",
            "telemetry {\n  prometheus_retention_time = \"60s\"\n  disable_hostname = true\n}",
        ],
    );
    exercise(&a);
    let (code, headers, text) = a.get("/v1/agent/metrics?format=prometheus");
    assert_eq!(code, 200, "{text}");
    assert_eq!(
        headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    for want in [
        "# TYPE consul_raft_commitTime summary",
        "consul_raft_commitTime{quantile=\"0.99\"} ",
        "consul_raft_commitTime_count ",
        "# TYPE consul_api_http summary",
        "consul_api_http_count{method=\"PUT\",path=\"v1.kv._\"} 1",
        "# TYPE consul_raft_state_leader counter",
        "consul_raft_state_leader 1",
        "# TYPE consul_dns_domain_query summary",
        "# TYPE consul_members_servers gauge",
        "consul_members_servers 1",
        // disable_hostname: no host name in the runtime gauges.
        "# TYPE consul_runtime_workers gauge",
        // A running total is a counter to Prometheus.
        "# TYPE consul_dns_queries_total counter",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    // The OpenMetrics Accept header asks for the same.
    let r = reqwest::blocking::Client::new()
        .get(format!("{}/v1/agent/metrics", a.url))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .expect("GET");
    assert!(
        r.text()
            .expect("body")
            .contains("# TYPE consul_api_http summary")
    );

    let (_, said) = promtool(&text);
    let problems: Vec<&str> = said
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !(l.contains("metric names should be written in 'snake_case' not 'camelCase'")
                || l.contains("counter metrics should have \"_total\" suffix"))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "promtool check metrics:\n{said}\n{text}"
    );
    // A parse error is no lint finding: promtool says so and fails.
    let (bad_ok, bad) = promtool("consul_x{a=\"1\" 1\n");
    assert!(
        !bad_ok && !bad.is_empty(),
        "promtool accepted garbage: {bad}"
    );
}

/// A series not updated for longer than the retention time leaves the Prometheus output;
/// the gauges, read when asked, stay.
#[test]
fn idle_series_leave_prometheus_output_after_the_retention_time() {
    let a = Agent::dev_named(
        "short-retention",
        &[
            "-hcl",
            "telemetry {\n  prometheus_retention_time = \"1s\"\n}",
        ],
    );
    a.wait_for_leader(Duration::from_secs(10));
    assert_eq!(a.put("/v1/kv/retained", "x").0, 200);
    let put = "consul_api_http_count{method=\"PUT\",path=\"v1.kv._\"}";
    let (_, _, text) = a.get("/v1/agent/metrics?format=prometheus");
    assert!(text.contains(put), "{text}");
    let mut text = String::new();
    wait_until(Duration::from_secs(10), "the idle PUT series to go", || {
        text = a.get("/v1/agent/metrics?format=prometheus").2;
        !text.contains(put)
    });
    assert!(text.contains("consul_members_servers 1"), "{text}");
}

/// Without `prometheus_retention_time`, Prometheus output is off as in Consul: 200, empty
/// body and the reason.
#[test]
fn without_retention_prometheus_is_off() {
    let a = Agent::dev();
    let (code, headers, body) = a.get("/v1/agent/metrics?format=prometheus");
    assert_eq!((code, body.as_str()), (200, ""));
    assert_eq!(
        headers["x-consul-reason"],
        "Prometheus is not enabled since its retention time is not positive"
    );
}

/// Issue #18's acceptance, as a user would set it up: Prometheus from Debian's package,
/// configured as for Consul (`metrics_path: /v1/agent/metrics`, `format=prometheus`),
/// scrapes the agent: the target is up with no scrape error and a query finds the raft
/// commit timings of the KV write.
#[test]
fn debians_prometheus_scrapes_the_agent() {
    let a = Agent::dev_named(
        "scraped-node",
        &[
            "-hcl",
            "telemetry {\n  prometheus_retention_time = \"60s\"\n}",
        ],
    );
    exercise(&a);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: meridian\n    \
             metrics_path: /v1/agent/metrics\n    params:\n      format: [prometheus]\n    \
             static_configs:\n      - targets: ['{}']\n",
            a.addr
        ),
    )
    .expect("write prometheus.yml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let web = format!("127.0.0.1:{port}");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("prometheus not found ({e}): install Debian's `prometheus` package")
        });
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _prometheus = Reap(child);
    let api = |path: &str| -> Value {
        reqwest::blocking::get(format!("http://{web}{path}"))
            .and_then(|r| r.json())
            .unwrap_or(Value::Null)
    };
    let mut last = Value::Null;
    wait_until(
        Duration::from_secs(60),
        "Prometheus to scrape the agent",
        || {
            last = api("/api/v1/targets");
            let t = &last["data"]["activeTargets"][0];
            t["health"] == "up" && t["lastError"] == ""
        },
    );
    let mut found = Value::Null;
    wait_until(
        Duration::from_secs(30),
        "the commit timings in Prometheus",
        || {
            found = api("/api/v1/query?query=consul_raft_commitTime_count");
            found["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|n| n >= 1.0)
        },
    );
}
