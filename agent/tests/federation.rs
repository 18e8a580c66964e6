//! Two datacenters on loopback, joined by `meridian-gateway`s: `?dc=` reads and writes,
//! DNS and prepared-query failover across them, the WAN pool, and the errors a user sees
//! for an unknown datacenter and for one whose gateway died — each within its deadline.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::federation::{
    Gateway, dc1_client, dig_short, dig_status, two_datacenters, two_datacenters_with,
    wait_federated,
};
use common::{Agent, wait_until};
use serde_json::json;

#[test]
fn two_datacenters_answer_each_other_through_their_gateways() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let (s1, s2, _g1, g2) = two_datacenters(dirs.path());
    let c1 = dc1_client(dirs.path(), &s1);

    wait_federated(&s1);
    assert_eq!(
        s2.get_json("/v1/catalog/datacenters"),
        json!(["dc2", "dc1"])
    );

    // A write from dc1 lands in dc2, once; reads come back with dc2's headers.
    let (code, body) = s1.put("/v1/kv/fed/key?dc=dc2", "from-dc1");
    assert_eq!((code, body.trim()), (200, "true"));
    assert_eq!(s2.get("/v1/kv/fed/key?raw").2, "from-dc1");
    assert_eq!(
        s1.get("/v1/kv/fed/key?raw").0,
        404,
        "dc1's own KV is separate"
    );
    let (code, headers, _) = s1.get("/v1/kv/fed/key?dc=dc2");
    assert_eq!(code, 200);
    assert!(headers.contains_key("x-consul-index"), "{headers:?}");
    // The CLI's -datacenter, as Consul's.
    let o = s1.cli(&["kv", "get", "-datacenter", "dc2", "fed/key"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "from-dc1");
    // Through a client agent too (client → its server → gateways).
    assert_eq!(c1.get("/v1/kv/fed/key?dc=dc2&raw").2, "from-dc1");

    // Catalog, health and DNS of dc2 from dc1.
    let (code, _) = s2.put(
        "/v1/agent/service/register",
        json!({"Name": "web", "Port": 8080, "Address": "10.2.0.7"}).to_string(),
    );
    assert_eq!(code, 200);
    wait_until(Duration::from_secs(10), "web in dc2's catalog", || {
        s1.get_json("/v1/catalog/service/web?dc=dc2")
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    let health = s1.get_json("/v1/health/service/web?dc=dc2");
    assert_eq!(health[0]["Node"]["Datacenter"], "dc2", "{health}");
    assert_eq!(
        dig_short(s1.dns, "web.service.dc2.consul", "A"),
        ["10.2.0.7"]
    );
    assert_eq!(
        dig_short(c1.dns, "web.service.dc2.consul", "A"),
        ["10.2.0.7"]
    );
    assert_eq!(dig_short(s1.dns, "s2.node.dc2.consul", "A"), ["127.0.0.1"]);

    // A prepared query in dc1 with no local instance fails over to dc2, over HTTP and DNS.
    let created = reqwest::blocking::Client::new()
        .post(format!("{}/v1/query", s1.url))
        .body(
            json!({"Name": "webq", "Service": {"Service": "web", "Failover": {"Datacenters": ["dc2"]}}})
                .to_string(),
        )
        .send()
        .expect("create query");
    assert_eq!(created.status(), 200);
    let r = s1.get_json("/v1/query/webq/execute");
    assert_eq!(
        (r["Datacenter"].as_str(), r["Failovers"].as_u64()),
        (Some("dc2"), Some(1)),
        "{r}"
    );
    assert_eq!(r["Nodes"][0]["Service"]["Address"], "10.2.0.7");
    assert_eq!(dig_short(s1.dns, "webq.query.consul", "A"), ["10.2.0.7"]);
    let srv = dig_short(s1.dns, "webq.query.consul", "SRV");
    assert!(
        srv.iter().all(|l| l.ends_with(".addr.dc2.consul.")),
        "{srv:?}"
    );

    // The WAN pool: both gateways, alive.
    let wan = s1.get_json("/v1/agent/members?wan=1");
    let mut names: Vec<(String, u64)> = wan
        .as_array()
        .expect("list")
        .iter()
        .map(|m| {
            (
                m["Name"].as_str().unwrap_or("").into(),
                m["Status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    names.sort();
    assert_eq!(names, [("gw.dc1".into(), 1), ("gw.dc2".into(), 1)]);
    // WAN coordinates come from WAN probes (every 5 s): wait for the first.
    wait_until(Duration::from_secs(30), "a WAN rtt estimate", || {
        let o = s1.cli(&["rtt", "-wan", "gw.dc1", "gw.dc2"]);
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        o.status.success()
            && text.starts_with("Estimated gw.dc1 <-> gw.dc2 rtt: ")
            && text.contains("WAN coordinates")
    });

    // An unknown datacenter is Consul's error, at once; so is its DNS.
    let started = Instant::now();
    let (code, _, body) = s1.get("/v1/kv/fed/key?dc=nope");
    assert_eq!((code, body.as_str()), (500, "No path to datacenter"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(dig_status(s1.dns, "web.service.nope.consul"), "NXDOMAIN");

    // dc2's only gateway dies: dc2 is unreachable, said clearly and within the deadline.
    drop(g2);
    let started = Instant::now();
    let (code, _, body) = s1.get("/v1/kv/fed/key?dc=dc2");
    assert_eq!(code, 500, "{body}");
    assert!(body.starts_with("rpc error: datacenter \"dc2\""), "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    // A service lookup is answered from dc1's gateway's copy of dc2's catalog (see
    // catalog_copy.rs); a prepared query, which no copy holds, fails clearly.
    assert_eq!(
        dig_short(s1.dns, "web.service.dc2.consul", "A"),
        ["10.2.0.7"]
    );
    assert_eq!(dig_status(s1.dns, "webq.query.dc2.consul"), "SERVFAIL");
    // dc1 itself answers as before.
    assert_eq!(s1.get("/v1/kv/fed/key?dc=dc1").0, 404);
}

const LAN_KEY: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const WAN_KEY_1: &str = "ZWTL+bgjHyQPhJRKcFe3ccirc2SFHmc/Nw67l8NQfdk=";
const WAN_KEY_2: &str = "HbQHmWLFXasPU5kNHFbT2mmYR2ONv0wBPWfwMKOOs8g=";

/// `meridian keyring ARGS` against `a`: (exit ok, stdout + stderr).
fn keyring(a: &Agent, args: &[&str]) -> (bool, String) {
    let o = a.cli(&[&["keyring"], args].concat());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

#[test]
fn the_wan_keyring_rotates_apart_from_the_lan_keyring() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let enc: &[&str] = &["-encrypt", LAN_KEY];
    let keys: &[&str] = &["-encrypt", LAN_KEY, "-encrypt-wan", WAN_KEY_1];
    let (s1, _s2, _g1, _g2) = two_datacenters_with(dirs.path(), [enc, enc], [keys, keys]);
    wait_federated(&s1);

    let (ok, out) = keyring(&s1, &["-list"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("WAN:\n  {WAN_KEY_1} [2/2]")), "{out}");
    assert!(
        out.contains(&format!("dc1 (LAN):\n  {LAN_KEY} [2/2]")),
        "{out}"
    );

    // Rotate the WAN key; cross-DC requests keep working at every step.
    for step in [
        &["-wan", "-install", WAN_KEY_2][..],
        &["-wan", "-use", WAN_KEY_2],
        &["-wan", "-remove", WAN_KEY_1],
    ] {
        let (ok, out) = keyring(&s1, step);
        assert!(ok, "{step:?}: {out}");
        assert_eq!(s1.put("/v1/kv/rot?dc=dc2", "x").0, 200, "after {step:?}");
    }
    let (ok, out) = keyring(&s1, &["-list"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("WAN:\n  {WAN_KEY_2} [2/2]")), "{out}");
    assert!(!out.contains(WAN_KEY_1), "{out}");
    // The LAN keyring did not move.
    assert!(
        out.contains(&format!("dc1 (LAN):\n  {LAN_KEY} [2/2]")),
        "{out}"
    );
    // `-wan -list` is the WAN pool's block alone (it once came back a second time,
    // labelled as the LAN's).
    let (ok, out) = keyring(&s1, &["-wan", "-list"]);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("WAN:\n  {WAN_KEY_2} [2/2]")), "{out}");
    assert!(!out.contains("(LAN)"), "{out}");
    let (ok, out) = keyring(&s1, &["-wan", "-list", "-local-only"]);
    assert!(!ok && out.contains("no WAN keyring"), "{out}");
    // The primary WAN key cannot be removed.
    let (ok, out) = keyring(&s1, &["-wan", "-remove", WAN_KEY_2]);
    assert!(!ok, "{out}");
}

#[test]
fn a_datacenter_whose_gateways_left_is_removed_in_one_command() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let (s1, _s2, _g1, g2) = two_datacenters(dirs.path());
    wait_federated(&s1);
    let list = s1.cli(&["operator", "federation", "list"]);
    let text = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(text.contains("dc2") && text.contains("1/1 alive"), "{text}");

    // Refused while dc2 still has a live gateway: it would gossip its way back.
    let o = s1.cli(&["operator", "federation", "remove-dc", "dc2"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("still has gateways alive"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    g2.stop();
    wait_until(Duration::from_secs(20), "gw.dc2 to have left", || {
        s1.get_json("/v1/agent/members?wan=1")
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m["Name"] == "gw.dc2" && m["Status"] == 3))
    });
    // Still listed: a left member stays until reaped (Consul keeps dead DCs for 72 h).
    assert_eq!(
        s1.get_json("/v1/catalog/datacenters"),
        json!(["dc1", "dc2"])
    );
    let o = s1.cli(&["operator", "federation", "remove-dc", "dc2"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("gw.dc2"), "{out}");
    wait_until(Duration::from_secs(10), "dc2 gone", || {
        s1.get_json("/v1/catalog/datacenters") == json!(["dc1"])
    });
    let (code, _, body) = s1.get("/v1/kv/x?dc=dc2");
    assert_eq!((code, body.as_str()), (500, "No path to datacenter"));
    // Removing it again: it is unknown now.
    let o = s1.cli(&["operator", "federation", "remove-dc", "dc2"]);
    assert!(!o.status.success());
}

#[test]
fn a_client_agent_still_reads_other_datacenters_when_its_servers_are_gone() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let s1 = Agent::server_named(&dirs.path().join("s1"), "s1", &["-datacenter", "dc1"]);
    let s2 = Agent::server_named(&dirs.path().join("s2"), "s2", &["-datacenter", "dc2"]);
    let g1 = Gateway::start("dc1", &dirs.path().join("g1"), &s1.serf, None);
    let _g2 = Gateway::start("dc2", &dirs.path().join("g2"), &s2.serf, Some(&g1.serf_wan));
    let c1 = dc1_client(dirs.path(), &s1);
    wait_federated(&s1);
    assert_eq!(s2.put("/v1/kv/k", "v2").0, 200);
    wait_until(Duration::from_secs(10), "c1 to know the gateway", || {
        c1.get_json("/v1/agent/members")
            .as_array()
            .is_some_and(|a| {
                a.iter()
                    .any(|m| m["Tags"]["role"] == "gateway" && m["Status"] == 1)
            })
    });
    s1.kill9();
    // dc1 has no server now: local reads fail, reads of dc2 still answer.
    let (code, _, body) = c1.get("/v1/kv/k");
    assert_eq!(code, 500, "{body}");
    let (code, _, body) = c1.get("/v1/kv/k?dc=dc2&raw");
    assert_eq!((code, body.as_str()), (200, "v2"));
    assert_eq!(dig_short(c1.dns, "s2.node.dc2.consul", "A"), ["127.0.0.1"]);
    // A write is not sent around the servers: its outcome must stay knowable.
    let (code, body) = c1.put("/v1/kv/k?dc=dc2", "from-c1");
    assert_eq!(code, 500, "{body}");
}

#[test]
fn datacenters_federate_over_mtls_and_a_gateway_reloads_its_certificate() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = common::pki::Pki::create(dirs.path());
    let ca = pki.ca();
    let server_cfg = |dc: &str| {
        let (cert, key) = pki.cert("-server", &["-dc", dc]);
        common::pki::tls_config(dirs.path(), &format!("s-{dc}"), &ca, &cert, &key)
    };
    let (cfg1, cfg2) = (server_cfg("dc1"), server_cfg("dc2"));
    let gateway_tls = |dc: &str| pki.cert("-gateway", &["-dc", dc]);
    let ((c1, k1), (c2, k2)) = (gateway_tls("dc1"), gateway_tls("dc2"));
    let flags = |cert: &PathBuf, key: &PathBuf| -> Vec<String> {
        [
            "-ca-file",
            &ca.to_string_lossy(),
            "-cert-file",
            &cert.to_string_lossy(),
            "-key-file",
            &key.to_string_lossy(),
            "-verify-incoming",
            "-verify-server-hostname",
        ]
        .map(String::from)
        .to_vec()
    };
    let (f1, f2) = (flags(&c1, &k1), flags(&c2, &k2));
    let r1: Vec<&str> = f1.iter().map(String::as_str).collect();
    let r2: Vec<&str> = f2.iter().map(String::as_str).collect();
    let (s1, s2, g1, g2) = two_datacenters_with(
        dirs.path(),
        [&["-config-file", &cfg1], &["-config-file", &cfg2]],
        [&r1, &r2],
    );
    wait_federated(&s1);
    // Every hop is mTLS with names checked: server → gateway.dc1 → gateway.dc2 → server.dc2.
    assert_eq!(s1.put("/v1/kv/m?dc=dc2", "over-mtls").0, 200);
    assert_eq!(s2.get("/v1/kv/m?raw").2, "over-mtls");
    assert_eq!(s2.get("/v1/kv/m?dc=dc1").0, 404, "and back the other way");
    // A peer without a certificate is refused by the gateway.
    let plain = meridian_rpc::Channels::default();
    let payload = meridian_rpc::gateway::encode_op(&meridian_rpc::gateway::GatewayOp::Federation)
        .expect("encode");
    let refused = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(meridian_rpc::call(
            &plain,
            &g1.rpc_lan,
            "dc1",
            payload,
            Duration::from_secs(5),
        ));
    assert!(
        refused.is_err(),
        "plaintext call to an mTLS gateway answered"
    );

    // dc2's gateway gets a new certificate in place and SIGHUP: requests keep working
    // before, during and after.
    let (n2, nk2) = gateway_tls("dc2");
    std::fs::copy(&n2, &c2).expect("new cert");
    std::fs::copy(&nk2, &k2).expect("new key");
    let _ = Command::new("kill")
        .args(["-HUP", &g2.child.id().to_string()])
        .status();
    for i in 0..20 {
        assert_eq!(
            s1.get("/v1/kv/m?dc=dc2&raw").2,
            "over-mtls",
            "read {i} after reload"
        );
    }
}
