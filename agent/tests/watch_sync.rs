//! Issue #12 items 2 and 3 on real agents: blocking watchers wake for their own service
//! only (on a server and through a client agent, where identical watchers share one
//! upstream query), and a registration syncs just its own service to the catalog while
//! drift is left to the periodic full pass.

mod common;

use std::time::{Duration, Instant};

use common::{Agent, CONVERGE, wait_until};
use serde_json::Value;

/// `GET path` with a client that waits up to `timeout` → (status, X-Consul-Index, body).
fn get_blocking(a: &Agent, path: &str, timeout: Duration) -> (u16, u64, String) {
    let client = reqwest::blocking::Client::builder()
        .timeout(timeout)
        .build()
        .expect("client");
    let r = client
        .get(format!("{}{path}", a.url))
        .send()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = r.status().as_u16();
    let index = r
        .headers()
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    (status, index, r.text().unwrap_or_default())
}

fn register(a: &Agent, id: &str, name: &str, port: u16) {
    let body = format!(r#"{{"ID": "{id}", "Name": "{name}", "Port": {port}}}"#);
    let (code, body) = a.put("/v1/agent/service/register", body);
    assert_eq!(code, 200, "register {id}: {body}");
}

/// The catalog's services of `node` by ID, but the server's own `consul`.
fn node_services(a: &Agent, node: &str) -> serde_json::Map<String, Value> {
    let v = a.get_json(&format!("/v1/catalog/node/{node}"));
    let mut all = v["Services"].as_object().cloned().unwrap_or_default();
    all.remove("consul");
    all
}

/// Instances of `service` in the health view.
fn health_instances(a: &Agent, service: &str) -> usize {
    let v = a.get_json(&format!("/v1/health/service/{service}"));
    v.as_array().map_or(0, Vec::len)
}

/// A registration on an agent holding 1,000 services writes just that service: the others'
/// catalog rows keep their ModifyIndex, and one changed behind the agent's back is not
/// re-sent by it (the full pass, every 60 s outside -dev, repairs that later). Before the
/// change, every registration ran a full pass that read the node back and repaired it.
#[test]
fn a_registration_syncs_only_its_own_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::server_named(dir.path(), "reg-node", &[]);
    a.wait_for_leader(CONVERGE);
    const N: usize = 1000;
    std::thread::scope(|s| {
        for t in 0..8 {
            let url = a.url.clone();
            s.spawn(move || {
                let client = reqwest::blocking::Client::new();
                for i in (t..N).step_by(8) {
                    let body = format!(r#"{{"ID": "svc-{i}", "Name": "svc-{i}", "Port": 1000}}"#);
                    let r = client
                        .put(format!("{url}/v1/agent/service/register"))
                        .body(body)
                        .send()
                        .expect("register");
                    assert_eq!(r.status().as_u16(), 200, "register svc-{i}");
                }
            });
        }
    });
    let before = node_services(&a, "reg-node");
    assert_eq!(
        before.len(),
        N,
        "every registration is in the catalog once acknowledged"
    );

    // Drift behind the agent's back: svc-5's port changed through the catalog API.
    let rogue = r#"{"Node": "reg-node", "SkipNodeUpdate": true,
        "Service": {"ID": "svc-5", "Service": "svc-5", "Port": 9999}}"#;
    assert_eq!(a.put("/v1/catalog/register", rogue).0, 200);
    let drifted = node_services(&a, "reg-node");
    assert_eq!(drifted["svc-5"]["Port"], 9999);

    register(&a, "svc-new", "svc-new", 2000);
    let after = node_services(&a, "reg-node");
    assert_eq!(
        after.len(),
        N + 1,
        "the new service is in the catalog when acknowledged"
    );
    assert_eq!(after["svc-new"]["Port"], 2000);
    assert_eq!(
        after["svc-5"]["Port"], 9999,
        "the registration of svc-new re-sent svc-5"
    );
    let moved: Vec<&String> = drifted
        .iter()
        .filter(|(id, row)| after[id.as_str()]["ModifyIndex"] != row["ModifyIndex"])
        .map(|(id, _)| id)
        .collect();
    assert!(
        moved.is_empty(),
        "untouched services were rewritten: {moved:?}"
    );

    // Changing one of them again writes it (and only it).
    register(&a, "svc-7", "svc-7", 1007);
    let again = node_services(&a, "reg-node");
    assert_eq!(again["svc-7"]["Port"], 1007);
    assert_eq!(again["svc-8"]["ModifyIndex"], after["svc-8"]["ModifyIndex"]);

    // A deregistration is synced at once too.
    let (code, body) = a.put("/v1/agent/service/deregister/svc-9", "");
    assert_eq!(code, 200, "{body}");
    assert!(!node_services(&a, "reg-node").contains_key("svc-9"));
}

/// Runs a blocking health watch of `service` at `index` in a thread; the handle yields
/// (status, index, body, how long it took).
fn watch(
    a: &Agent,
    service: &str,
    index: u64,
    wait: &str,
) -> std::thread::JoinHandle<(u16, u64, String, Duration)> {
    let url = a.url.clone();
    let path = format!("/v1/health/service/{service}?index={index}&wait={wait}");
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client");
        let start = Instant::now();
        let r = client.get(format!("{url}{path}")).send().expect("watch");
        let status = r.status().as_u16();
        let index = r
            .headers()
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (status, index, r.text().unwrap_or_default(), start.elapsed())
    })
}

/// Watchers of service A on `watched` (a server or a client agent): a change of service B
/// (registered through `writer`) does not end their wait — they return at its end with
/// A's index unchanged — while a change of A wakes every one of them with A's new index
/// and rows, long before their wait is over.
fn watchers_wake_only_for_their_service(watched: &Agent, writer: &Agent) {
    register(writer, "a-1", "svc-a", 1);
    register(writer, "b-1", "svc-b", 1);
    wait_until(
        CONVERGE,
        "svc-a and svc-b visible to the watched agent",
        || health_instances(watched, "svc-a") == 1 && health_instances(watched, "svc-b") == 1,
    );
    let (code, index, _) = get_blocking(watched, "/v1/health/service/svc-a", CONVERGE);
    assert_eq!(code, 200);

    // B changes while A's watchers wait 2 s: they return only at the end of their wait,
    // with A's index as it was.
    let quiet: Vec<_> = (0..5)
        .map(|_| watch(watched, "svc-a", index, "2s"))
        .collect();
    register(writer, "b-2", "svc-b", 2);
    wait_until(CONVERGE, "b-2 visible", || {
        health_instances(watched, "svc-b") == 2
    });
    for w in quiet {
        let (code, got, body, took) = w.join().expect("watcher");
        assert_eq!(code, 200, "{body}");
        assert_eq!(got, index, "a change of svc-b moved svc-a's index: {body}");
        assert!(
            took >= Duration::from_secs(2),
            "a watcher of svc-a returned after {took:?}, before its 2 s wait, on a change of svc-b"
        );
    }

    // A changes: every watcher (same query, same index) returns with the new instance.
    let woken: Vec<_> = (0..20)
        .map(|_| watch(watched, "svc-a", index, "60s"))
        .collect();
    register(writer, "a-2", "svc-a", 2);
    for w in woken {
        let (code, got, body, took) = w.join().expect("watcher");
        assert_eq!(code, 200, "{body}");
        assert!(got > index, "index {got} not past {index}: {body}");
        let rows: Vec<Value> = serde_json::from_str(&body).expect("json");
        assert_eq!(rows.len(), 2, "{body}");
        assert!(took < Duration::from_secs(30), "woke only after {took:?}");
    }
}

#[test]
fn watchers_on_a_server_wake_only_for_their_service() {
    let a = Agent::dev_named("watch-server", &[]);
    watchers_wake_only_for_their_service(&a, &a);
}

#[test]
fn watchers_on_a_client_agent_wake_only_for_their_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Agent::server_named(&dir.path().join("s"), "watch-s", &[]);
    server.wait_for_leader(CONVERGE);
    let client = Agent::client_of(&dir.path().join("c"), "watch-c", &server.serf, &[]);
    watchers_wake_only_for_their_service(&client, &server);
}

/// The agent's resident set in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Issue #12 item 2: a parked blocking query costs the agent little memory, and every one
/// wakes on the write. 600 watchers grow a `-dev` agent by about 18 KiB each; when axum
/// rebuilt its route table for every connection it was about 100 KiB each.
#[test]
fn parked_watchers_cost_little_memory_and_all_wake() {
    use std::io::{Read, Write};
    const WATCHERS: u64 = 600;
    const MAX_KIB_EACH: u64 = 48;
    let a = Agent::dev();
    assert_eq!(a.put("/v1/kv/w", "v0").0, 200);
    let (code, index, _) = get_blocking(&a, "/v1/kv/w", CONVERGE);
    assert_eq!(code, 200);
    // The first connections' one-off costs (pools, buffers) out of the baseline.
    for _ in 0..20 {
        get_blocking(&a, "/v1/kv/w", CONVERGE);
    }
    let base = rss_kib(a.pid());
    let request = format!(
        "GET /v1/kv/w?index={index}&wait=5m HTTP/1.1\r\nHost: {}\r\n\r\n",
        a.addr
    );
    let mut conns: Vec<std::net::TcpStream> = (0..WATCHERS)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(&a.addr).expect("connect");
            s.write_all(request.as_bytes()).expect("send");
            s
        })
        .collect();
    // Parked once the agent's memory, above what the bare connections cost (~2.7 KiB each
    // before a request is read), has stayed within 256 KiB for 300 ms of polling.
    let mut parked = rss_kib(a.pid());
    let mut steady_since = Instant::now();
    wait_until(CONVERGE, "the watchers parked", || {
        let now = rss_kib(a.pid());
        if now.abs_diff(parked) >= 256 {
            (parked, steady_since) = (now, Instant::now());
        }
        parked >= base + WATCHERS * 4 && steady_since.elapsed() >= Duration::from_millis(300)
    });
    let each = (parked - base) / WATCHERS;
    assert!(
        each <= MAX_KIB_EACH,
        "{WATCHERS} parked watchers grew the agent {base} -> {parked} KiB, {each} KiB each"
    );

    // The write wakes every one of them with the new value's index.
    assert_eq!(a.put("/v1/kv/w", "v1").0, 200);
    let deadline = Instant::now() + CONVERGE;
    for (i, s) in conns.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s
                .read(&mut buf)
                .unwrap_or_else(|e| panic!("watcher {i} not woken: {e}"));
            assert!(n > 0, "watcher {i}: connection closed");
            got.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&got).to_lowercase();
        assert!(head.starts_with("http/1.1 200"), "watcher {i}: {head}");
        let woke_at: u64 = head
            .lines()
            .find_map(|l| l.strip_prefix("x-consul-index:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("X-Consul-Index");
        assert!(
            woke_at > index,
            "watcher {i} woke at {woke_at}, not after {index}"
        );
    }
}
