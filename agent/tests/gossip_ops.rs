//! Operating the LAN pool end to end with real agents: Consul's key rotation walk-through
//! (`keyring -install`, check `-list` shows N/N, `-use`, `-remove`) through the CLI and
//! `/v1/operator/keyring`, and network coordinates (`/v1/coordinate/*`, `meridian rtt`).

mod common;

use std::process::Output;
use std::time::Duration;

use common::{Agent, wait_until};

const CONVERGE: Duration = Duration::from_secs(20);
const OLD: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const NEW: &str = "HS5lJ+XuTlYKWaeGYyG+/BC2SxGdzIUeeDUVLJEvqMQ=";

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn alive_count(a: &Agent) -> usize {
    let (code, _, body) = a.get("/v1/agent/members");
    if code != 200 {
        return 0;
    }
    let list: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
    list.iter().filter(|m| m["Status"] == 1).count()
}

/// Three encrypted agents joined into one pool.
fn pool(prefix: &str) -> Vec<Agent> {
    let agents: Vec<Agent> = (0..3)
        .map(|i| Agent::dev_named(&format!("{prefix}-{i}"), &["-encrypt", OLD]))
        .collect();
    for a in &agents[1..] {
        let o = a.cli(&["join", &agents[0].serf]);
        assert!(o.status.success(), "{}", text(&o));
    }
    wait_until(CONVERGE, "3 alive everywhere", || {
        agents.iter().all(|a| alive_count(a) == 3)
    });
    agents
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn keyring_rotation_walkthrough_reaches_every_member() {
    let agents = pool("ring");
    let (a, c) = (&agents[0], &agents[2]);
    let list = ok(a.cli(&["keyring", "-list"]));
    assert!(
        list.contains("==> Gathering installed encryption keys..."),
        "{list}"
    );
    assert!(list.contains("dc1 (LAN):"), "{list}");
    assert!(list.contains(&format!("  {OLD} [3/3]")), "{list}");

    let out = ok(a.cli(&["keyring", "-install", NEW]));
    assert!(
        out.contains("Installing new gossip encryption key"),
        "{out}"
    );
    let list = ok(c.cli(&["keyring", "-list"]));
    assert!(list.contains(&format!("  {NEW} [3/3]")), "{list}");
    assert!(list.contains(&format!("  {OLD} [3/3]")), "{list}");

    ok(a.cli(&["keyring", "-use", NEW]));
    let primary = ok(c.cli(&["keyring", "-list-primary"]));
    assert!(primary.contains(&format!("  {NEW} [3/3]")), "{primary}");
    assert!(!primary.contains(OLD), "{primary}");

    // Removing the primary is refused with a clear error and changes nothing.
    let o = a.cli(&["keyring", "-remove", NEW]);
    assert!(!o.status.success());
    assert!(text(&o).contains("primary"), "{}", text(&o));

    ok(a.cli(&["keyring", "-remove", OLD]));
    let list = ok(c.cli(&["keyring", "-list"]));
    assert!(list.contains(&format!("  {NEW} [3/3]")), "{list}");
    assert!(!list.contains(OLD), "{list}");

    // The HTTP shape Consul clients read.
    let blocks = a.get_json("/v1/operator/keyring");
    assert_eq!(blocks[0]["WAN"], false);
    assert_eq!(blocks[0]["Datacenter"], "dc1");
    assert_eq!(blocks[0]["NumNodes"], 3);
    assert_eq!(blocks[0]["Keys"][NEW], 3);
    assert_eq!(blocks[0]["PrimaryKeys"][NEW], 3);
    // Nobody was lost on the way.
    assert!(agents.iter().all(|a| alive_count(a) == 3));

    // Bad input: one action at a time, and a key that is not a key.
    let o = a.cli(&["keyring", "-list", "-install", NEW]);
    assert!(text(&o).contains("Only a single action is allowed"));
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v1/operator/keyring", a.url))
        .body(r#"{"Key":"not base64!"}"#)
        .send()
        .expect("POST");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().unwrap_or_default().contains("Key"));
}

#[test]
fn keyring_needs_encryption() {
    let a = Agent::dev_named("plain-0", &[]);
    let o = a.cli(&["keyring", "-install", NEW]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("encryption is not enabled"),
        "{}",
        text(&o)
    );
}

fn vec8(x: f64) -> serde_json::Value {
    serde_json::json!([x, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
}

fn register(a: &Agent, node: &str) {
    let body = serde_json::json!({
        "Node": node, "Address": "10.0.0.1",
        "Service": {"Service": "web", "Port": 80}
    });
    let (code, text) = a.put("/v1/catalog/register", body.to_string());
    assert_eq!(code, 200, "{text}");
}

fn put_coord(a: &Agent, node: &str, x: f64) {
    let body = serde_json::json!({
        "Node": node,
        "Coord": {"Vec": vec8(x), "Error": 0.2, "Adjustment": 0.0, "Height": 1e-5}
    });
    let (code, text) = a.put("/v1/coordinate/update", body.to_string());
    assert_eq!(code, 200, "{text}");
}

fn node_order(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| match &r["Node"] {
                    serde_json::Value::String(n) => n.clone(),
                    obj => obj["Node"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn coordinates_sort_near_and_estimate_rtt() {
    let a = Agent::dev_named("coord-a", &[]);
    // The agent sends its own coordinate (every second in -dev).
    wait_until(CONVERGE, "coord-a's coordinate in the catalog", || {
        let (code, _, body) = a.get("/v1/coordinate/node/coord-a");
        code == 200 && body.contains("\"Vec\":[")
    });
    let (code, _, _) = a.get("/v1/coordinate/node/nobody");
    assert_eq!(code, 404);

    // Three instances of web: far, none (no coordinate) and near, in name order.
    for n in ["far-1", "near-1", "none-1"] {
        register(&a, n);
    }
    put_coord(&a, "far-1", 0.1);
    put_coord(&a, "near-1", 0.001);
    let all = a.get_json("/v1/coordinate/nodes");
    assert_eq!(node_order(&all), ["coord-a", "far-1", "near-1"]);

    let plain = a.get_json("/v1/catalog/service/web");
    assert_eq!(node_order(&plain), ["far-1", "near-1", "none-1"]);
    for path in [
        "/v1/catalog/service/web?near=_agent",
        "/v1/health/service/web?near=_agent",
    ] {
        assert_eq!(
            node_order(&a.get_json(path)),
            ["near-1", "far-1", "none-1"],
            "{path}"
        );
    }
    assert_eq!(
        node_order(&a.get_json("/v1/catalog/nodes?near=near-1")),
        ["near-1", "coord-a", "far-1", "none-1"]
    );
    // A `near` node without a coordinate leaves the order alone.
    assert_eq!(
        node_order(&a.get_json("/v1/catalog/service/web?near=none-1")),
        ["far-1", "near-1", "none-1"]
    );

    let out = ok(a.cli(&["rtt", "near-1", "far-1"]));
    assert!(
        out.starts_with("Estimated near-1 <-> far-1 rtt: 99.02"),
        "{out}"
    );
    assert!(
        out.trim_end().ends_with("ms (using LAN coordinates)"),
        "{out}"
    );
    let out = ok(a.cli(&["rtt", "far-1"]));
    assert!(
        out.starts_with("Estimated far-1 <-> coord-a rtt: "),
        "{out}"
    );
    let o = a.cli(&["rtt", "none-1"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("Could not find a coordinate for node \"none-1\""));

    // Bad coordinates are refused naming the field.
    let bad = serde_json::json!({"Node": "far-1", "Coord": {"Vec": [0.1, 0.2]}});
    let (code, body) = a.put("/v1/coordinate/update", bad.to_string());
    assert_eq!(code, 400);
    assert!(body.contains("Coord"), "{body}");
}

/// Two agents that gossip measure each other: the distance between their own coordinates
/// (`/v1/agent/self` `Coord`) is of loopback's order once the coordinates settle.
#[test]
fn two_agents_coordinates_estimate_loopback_rtt() {
    let a = Agent::dev_named("rtt-a", &[]);
    let b = Agent::dev_named("rtt-b", &[]);
    ok(a.cli(&["join", &b.serf]));
    let coord = |x: &Agent| -> Option<meridian_agent::gossip::coordinate::Coordinate> {
        let me = x.get_json("/v1/agent/self");
        serde_json::from_value(me["Coord"].clone()).ok()
    };
    let mut estimate = None;
    wait_until(CONVERGE, "settled coordinates on both agents", || {
        match (coord(&a), coord(&b)) {
            (Some(ca), Some(cb)) if ca.error < 1.0 && cb.error < 1.0 => {
                estimate = Some(ca.distance_to(&cb));
                true
            }
            _ => false,
        }
    });
    let rtt = estimate.expect("estimate");
    assert!(
        rtt >= Duration::from_micros(10) && rtt <= Duration::from_millis(10),
        "{rtt:?}"
    );
}

/// A peer gossiping with another key is refused: its packets are counted, and it is logged
/// once with its address, however often it tries.
#[test]
fn a_peer_with_another_key_is_logged_once_and_counted() {
    let mut a = Agent::dev_named(
        "a",
        &["-encrypt", "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="],
    );
    let b = Agent::dev_named(
        "b",
        &["-encrypt", "ZWTL+bgjHyQPhJRKcFe3ccirc2SFHmc/Nw67l8NQfdk="],
    );
    for _ in 0..3 {
        let o = b.cli(&["join", &a.serf]);
        assert!(!o.status.success(), "joined with another key: {}", text(&o));
    }
    let dropped = || {
        a.get_json("/v1/agent/metrics")["Gauges"]
            .as_array()
            .and_then(|g| {
                g.iter()
                    .find(|m| m["Name"] == "meridian.serf.lan.dropped_undecryptable_total")
            })
            .and_then(|m| m["Value"].as_f64())
            .unwrap_or(0.0)
    };
    wait_until(Duration::from_secs(10), "dropped packets counted", || {
        dropped() >= 3.0
    });
    a.wait_log(Duration::from_secs(10), |l| {
        l.contains("refused gossip from a peer")
    });
    a.collect_log(Duration::from_millis(300));
    let warned: Vec<&String> = a
        .log
        .iter()
        .filter(|l| l.contains("refused gossip from a peer"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert!(warned[0].contains("127.0.0.1:"), "{}", warned[0]);
}
