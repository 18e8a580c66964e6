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
