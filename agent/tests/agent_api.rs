//! The agent-side HTTP API (`/v1/agent/*`, `/v1/acl/*`) against a real `meridian agent -dev`,
//! asserting what Consul's own agent answers (reference/consul.md §1.2, §2.1, §2.6, §7, and
//! Consul's `agent/agent_endpoint.go`), as py-consul's test suite expects it.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::{Agent, CONVERGE, text, wait_status, wait_until};
use serde_json::{Value, json};

const SOON: Duration = Duration::from_secs(10);

fn register(a: &Agent, body: Value) {
    let (code, body) = a.put("/v1/agent/service/register", body.to_string());
    assert_eq!(code, 200, "{body}");
}

/// A plain service reads back with exactly the keys Consul's agent returns (py-consul's
/// test_aio asserts this dict), and a service with an IP address gets Consul's default
/// `lan_ipv4`/`wan_ipv4` tagged addresses in `{"Address","Port"}` form everywhere.
#[test]
fn services_read_back_in_consuls_shape() {
    let a = Agent::dev();
    register(&a, json!({"name": "foo"}));
    assert_eq!(
        a.get_json("/v1/agent/services"),
        json!({"foo": {"Address": "", "Datacenter": "dc1", "EnableTagOverride": false,
            "ID": "foo", "Meta": {}, "Port": 0, "Service": "foo", "Tags": [],
            "Weights": {"Passing": 1, "Warning": 1}}})
    );

    // Tagged addresses in any case in, PascalCase out; given ones are kept.
    register(
        &a,
        json!({"name": "web", "address": "10.0.0.5", "port": 8080,
               "tagged_addresses": {"lan": {"address": "10.10.10.1", "port": 8081},
                                    "wan": {"Address": "192.168.1.1", "Port": 80}}}),
    );
    let want = json!({
        "lan": {"Address": "10.10.10.1", "Port": 8081},
        "wan": {"Address": "192.168.1.1", "Port": 80},
        "lan_ipv4": {"Address": "10.0.0.5", "Port": 8080},
        "wan_ipv4": {"Address": "10.0.0.5", "Port": 8080},
    });
    assert_eq!(
        a.get_json("/v1/agent/services")["web"]["TaggedAddresses"],
        want
    );
    assert_eq!(
        a.get_json("/v1/catalog/service/web")[0]["ServiceTaggedAddresses"],
        want
    );
    assert_eq!(
        a.get_json("/v1/health/service/web")[0]["Service"]["TaggedAddresses"],
        want
    );

    // A hostname is no IP: nothing is added.
    register(
        &a,
        json!({"name": "db", "address": "db.example.com", "port": 5432}),
    );
    assert!(
        a.get_json("/v1/agent/services")["db"]
            .get("TaggedAddresses")
            .is_none()
    );
}

/// `Kind`, `Proxy`, `Connect` and `Locality` are kept as registered (whatever key case was
/// sent) and returned in Consul's spelling.
#[test]
fn connect_fields_are_kept_as_registered() {
    let a = Agent::dev();
    register(
        &a,
        json!({"name": "web-sidecar-proxy", "port": 21000, "kind": "connect-proxy",
               "proxy": {"destination_service_name": "web", "LocalServicePort": 8080,
                         "config": {"envoy_prometheus_bind_addr": "0.0.0.0:9102"}},
               "connect": {"native": false},
               "locality": {"Region": "us-west-1", "zone": "us-west-1a"}}),
    );
    let svc = &a.get_json("/v1/agent/services")["web-sidecar-proxy"];
    assert_eq!(svc["Kind"], "connect-proxy");
    assert_eq!(
        svc["Proxy"],
        json!({"DestinationServiceName": "web", "LocalServicePort": 8080,
               "Config": {"envoy_prometheus_bind_addr": "0.0.0.0:9102"}})
    );
    assert_eq!(svc["Connect"], json!({"Native": false}));
    assert_eq!(
        svc["Locality"],
        json!({"Region": "us-west-1", "Zone": "us-west-1a"})
    );
    let health = a.get_json("/v1/health/service/web-sidecar-proxy");
    assert_eq!(health[0]["Service"]["Kind"], "connect-proxy");
}

/// `?filter=` applies to the values of `/v1/agent/services` and `/v1/agent/checks`; a
/// malformed expression is a 400 naming the problem.
#[test]
fn agent_services_and_checks_honour_filter() {
    let a = Agent::dev();
    register(&a, json!({"name": "filtered-foo", "tags": ["keep-me"]}));
    register(
        &a,
        json!({"name": "filtered-bar", "tags": ["skip-me"], "check": {"ttl": "30s"}}),
    );
    let kept = a.get_json("/v1/agent/services?filter=%22keep-me%22%20in%20Tags");
    assert_eq!(
        kept.as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>()),
        Some(vec!["filtered-foo".to_string()])
    );
    let critical = a.get_json("/v1/agent/checks?filter=Status%20%3D%3D%20critical");
    assert!(critical.get("service:filtered-bar").is_some(), "{critical}");
    assert_eq!(
        a.get_json("/v1/agent/checks?filter=Status%20%3D%3D%20passing"),
        json!({})
    );
    let (code, _, body) = a.get("/v1/agent/services?filter=Port%20%3D%3D");
    assert_eq!(code, 400, "{body}");
    assert!(
        body.starts_with("Failed to create boolean expression evaluator"),
        "{body}"
    );
    let (code, _, _) = a.get("/v1/agent/checks?filter=%28Status");
    assert_eq!(code, 400);
}

/// `GET /v1/agent/service/:id` answers the service with its `ContentHash` (also in
/// `X-Consul-ContentHash`); `?hash=` blocks until the service changes or `wait` passes.
#[test]
fn one_service_answers_with_a_content_hash_and_blocks_on_it() {
    let a = Agent::dev();
    let (code, _, body) = a.get("/v1/agent/service/nope");
    assert_eq!((code, body.as_str()), (404, "unknown service ID: nope"));

    register(&a, json!({"id": "web/1", "name": "web", "port": 80}));
    let (code, headers, body) = a.get("/v1/agent/service/web/1");
    assert_eq!(code, 200, "{body}");
    let svc: Value = serde_json::from_str(&body).expect("json");
    let hash = svc["ContentHash"]
        .as_str()
        .expect("ContentHash")
        .to_string();
    assert_eq!(headers["x-consul-contenthash"], hash.as_str());
    assert_eq!(
        (svc["ID"].clone(), svc["Port"].clone()),
        (json!("web/1"), json!(80))
    );

    // Unchanged: the wait runs out and the same hash comes back.
    let started = Instant::now();
    let (_, h, _) = a.get(&format!("/v1/agent/service/web/1?hash={hash}&wait=300ms"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(h["x-consul-contenthash"], hash.as_str());

    // A change wakes the blocked read (or, if it lands first, the read returns at once).
    let url = format!("{}/v1/agent/service/web/1?hash={hash}&wait=30s", a.url);
    let reader = std::thread::spawn(move || {
        let started = Instant::now();
        let r = reqwest::blocking::get(url).expect("GET");
        (
            r.headers()["x-consul-contenthash"]
                .to_str()
                .map(str::to_string),
            started.elapsed(),
        )
    });
    register(&a, json!({"id": "web/1", "name": "web", "port": 81}));
    let (new_hash, took) = reader.join().expect("reader");
    assert_ne!(new_hash.expect("header"), hash);
    assert!(
        took < Duration::from_secs(25),
        "woke on the change, took {took:?}"
    );
}

/// `/v1/agent/self` has exactly Consul's top-level keys, `xDS` as Consul reports it with gRPC
/// off, the Consul API version Meridian implements and Meridian's own beside it.
#[test]
fn self_has_consuls_keys_and_versions() {
    let a = Agent::dev();
    let me = a.get_json("/v1/agent/self");
    let mut keys: Vec<&str> = me
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "Config",
            "Coord",
            "DebugConfig",
            "Member",
            "Meta",
            "Stats",
            "xDS"
        ]
    );
    assert_eq!(
        me["xDS"],
        json!({"SupportedProxies": {"envoy": []}, "Port": -1,
               "Ports": {"Plaintext": -1, "TLS": -1}})
    );
    assert_eq!(me["Config"]["Version"], "1.21.5");
    assert_eq!(me["Config"]["MeridianVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(me["Stats"]["build"]["version"], "1.21.5");
    assert_eq!(me["Stats"]["raft"]["state"], "Leader");
    let members = a.get_json("/v1/agent/members");
    assert!(members.as_array().expect("array").contains(&me["Member"]));
}

/// A server in no WAN pool lists no WAN members, as Consul's agents without one do.
#[test]
fn wan_members_of_a_server_without_a_wan_pool_are_empty() {
    let a = Agent::dev();
    assert_eq!(a.get_json("/v1/agent/members?wan=1"), json!([]));
}

/// force-leave of an unknown node is Consul's 500 text; of a live member it succeeds (the
/// member moves to leaving, refutes it and stays a member, as with serf).
#[test]
fn force_leave_answers_as_consul() {
    let a = Agent::dev_named("fl-a", &[]);
    let b = Agent::dev_named("fl-b", &[]);
    for node in ["nonexistent-node", "nonexistent-node?prune"] {
        let (code, body) = a.put(&format!("/v1/agent/force-leave/{node}"), "");
        assert_eq!(
            (code, body.as_str()),
            (500, "agent: No node found with name 'nonexistent-node'")
        );
    }
    let o = b.cli(&["join", &a.serf]);
    assert!(o.status.success(), "{}", text(&o));
    wait_status(&a, "fl-b", 1);
    let (code, body) = a.put("/v1/agent/force-leave/fl-b", "");
    assert_eq!(code, 200, "{body}");
    // b refutes the intent with a newer incarnation: it is alive again on both sides.
    wait_status(&a, "fl-b", 1);
    wait_until(CONVERGE, "fl-b alive on itself", || {
        common::status_of(&b, "fl-b") == Some(1)
    });
}

/// With ACLs off, token and ACL endpoints answer Consul's 401 `ACL support disabled`.
#[test]
fn acl_endpoints_say_acl_support_disabled() {
    let a = Agent::dev();
    let (code, body) = a.put("/v1/agent/token/default", r#"{"Token":"some-secret"}"#);
    assert_eq!((code, body.as_str()), (401, "ACL support disabled"));
    let (code, _, body) = a.get("/v1/acl/tokens");
    assert_eq!((code, body.as_str()), (401, "ACL support disabled"));
    let (code, body) = a.put("/v1/acl/policy", r#"{"Name":"p"}"#);
    assert_eq!((code, body.as_str()), (401, "ACL support disabled"));
}

fn gauge(metrics: &Value, name: &str) -> Option<f64> {
    metrics["Gauges"]
        .as_array()?
        .iter()
        .find(|g| g["Name"] == name)?["Value"]
        .as_f64()
}

/// `/v1/agent/metrics` is go-metrics' JSON shape with real values.
#[test]
fn metrics_have_consuls_shape_and_real_values() {
    let a = Agent::dev();
    register(&a, json!({"name": "web", "port": 80}));
    register(&a, json!({"id": "web2", "name": "web", "port": 81}));
    let m = a.get_json("/v1/agent/metrics");
    for key in ["Timestamp", "Gauges", "Points", "Counters", "Samples"] {
        assert!(m.get(key).is_some(), "{key} missing: {m}");
    }
    assert!(
        m["Timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with(" +0000 UTC"))
    );
    assert_eq!(gauge(&m, "consul.members.servers"), Some(1.0));
    assert_eq!(gauge(&m, "consul.state.nodes"), Some(1.0));
    // `consul` plus `web`; three instances with the server's own `consul` service.
    assert_eq!(gauge(&m, "consul.state.services"), Some(2.0));
    assert_eq!(gauge(&m, "consul.state.service_instances"), Some(3.0));
    assert_eq!(gauge(&m, "consul.agent.services"), Some(2.0));
    assert!(gauge(&m, "consul.raft.applied_index").is_some_and(|i| i >= 3.0));
    // Prometheus output: tests/metrics.rs.
}

/// `/v1/agent/monitor`: an unknown level is a 400 before streaming; a valid one streams the
/// agent's live log lines.
#[test]
fn monitor_streams_live_log_lines() {
    let a = Agent::dev();
    let (code, _, body) = a.get("/v1/agent/monitor?loglevel=not-a-real-level");
    assert_eq!(
        (code, body.as_str()),
        (400, "Unknown log level: not-a-real-level")
    );

    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut stream = client
        .get(format!("{}/v1/agent/monitor?loglevel=warn", a.url))
        .send()
        .expect("monitor");
    assert_eq!(stream.status().as_u16(), 200);
    // A failed request is logged at WARN; keep causing one until its line arrives (the
    // subscription may start just after the first).
    let url = a.url.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poke = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = reqwest::blocking::Client::new()
                    .put(format!("{url}/v1/agent/force-leave/monitor-probe"))
                    .send();
                std::thread::sleep(common::POLL);
            }
        })
    };
    let mut seen = String::new();
    let deadline = Instant::now() + SOON;
    let mut buf = [0u8; 4096];
    while !seen.contains("No node found with name 'monitor-probe'") {
        assert!(Instant::now() < deadline, "no log line in: {seen}");
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = poke.join();
    assert!(seen.contains(" [WARN]  "), "{seen}");
    assert!(!seen.contains("[INFO]"), "info lines filtered out: {seen}");
}

/// What py-consul's test_agent_checks asserts about TTL checks: `Notes` kept, a note becomes
/// `Output`, and a TTL check turns critical once its TTL passes without an update.
#[test]
fn ttl_checks_keep_notes_take_output_and_expire() {
    let a = Agent::dev();
    let (code, body) = a.put(
        "/v1/agent/check/register",
        // py-consul uses 100 ms; 2 s keeps the warn read-back inside the TTL on a loaded
        // machine (the expiry is waited for below, not slept).
        r#"{"Name":"ttl_check","TTL":"2s","Notes":"foo"}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(a.get_json("/v1/agent/checks")["ttl_check"]["Notes"], "foo");
    let (code, _) = a.put(
        "/v1/agent/check/warn/ttl_check?note=its%20not%20quite%20right",
        "",
    );
    assert_eq!(code, 200);
    let c = &a.get_json("/v1/agent/checks")["ttl_check"];
    assert_eq!(
        (c["Status"].clone(), c["Output"].clone()),
        (json!("warning"), json!("its not quite right"))
    );
    let (code, _) = a.put(
        "/v1/agent/check/pass/ttl_check?note=all%20hunky%20dory!",
        "",
    );
    assert_eq!(code, 200);
    wait_until(SOON, "the TTL to expire", || {
        a.get_json("/v1/agent/checks")["ttl_check"]["Status"] == "critical"
    });
    // Registering a check for an unknown service is Consul's (1.11+) 404.
    let (code, body) = a.put(
        "/v1/agent/check/register",
        r#"{"Name":"foo","TTL":"100ms","ServiceID":"foo1"}"#,
    );
    assert_eq!(
        (code, body.as_str()),
        (404, r#"ServiceID "foo1" does not exist"#)
    );
}
