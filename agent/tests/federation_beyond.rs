//! Federation beyond Consul (#16) with two real datacenters on loopback joined by
//! `meridian-gateway`s: `?dc=any` and `web.service.any.consul` answer from the local
//! datacenter when it has a healthy instance and from the nearest other one when it does
//! not (also for plain names with `dns_config { service_failover = "nearest" }`), `?dc=*`
//! merges every datacenter's answer, and a datacenter that cannot answer is named in
//! `X-Meridian-Datacenters-Missing` within the deadline instead of stalling the answer.

mod common;

use std::time::{Duration, Instant};

use common::Agent;
use common::federation::{dig_short, two_datacenters_with, wait_federated};
use serde_json::{Value, json};

fn register(a: &Agent, name: &str, address: &str) {
    let body = json!({ "Name": name, "Address": address, "Port": 80 }).to_string();
    let (code, text) = a.put("/v1/agent/service/register", body);
    assert_eq!(code, 200, "{text}");
}

/// GET `path`: status, the named response header, the JSON body.
fn get(a: &Agent, path: &str, header: &str) -> (u16, String, Value) {
    let (code, headers, body) = a.get(path);
    let h = headers
        .get(header)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (code, h, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn addresses(rows: &Value) -> Vec<String> {
    let mut out: Vec<String> = rows
        .as_array()
        .map(|rs| {
            rs.iter()
                .map(|r| {
                    r["Service"]["Address"]
                        .as_str()
                        .or(r["ServiceAddress"].as_str())
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn any_answers_from_the_nearest_datacenter_with_an_instance_and_star_from_all() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let nearest = "dns_config {\n  service_failover = \"nearest\"\n}";
    let (s1, s2, _g1, g2) =
        two_datacenters_with(dirs.path(), [&["-hcl", nearest], &[]], [&[], &[]]);
    wait_federated(&s1);
    register(&s2, "web", "10.0.0.2");
    register(&s1, "api", "10.0.0.1");

    // dc1 has no web: the nearest datacenter with one (dc2) answers, and says so.
    common::wait_until(Duration::from_secs(10), "web registered in dc2", || {
        addresses(&get(&s2, "/v1/health/service/web", "").2) == ["10.0.0.2"]
    });
    for path in [
        "/v1/health/service/web?dc=any",
        "/v1/catalog/service/web?dc=any",
    ] {
        let (code, by, rows) = get(&s1, path, "x-meridian-datacenter");
        assert_eq!((code, by.as_str()), (200, "dc2"), "{path}: {rows}");
        assert_eq!(addresses(&rows), ["10.0.0.2"], "{path}");
    }
    assert_eq!(
        dig_short(s1.dns, "web.service.any.consul", "A"),
        ["10.0.0.2"]
    );
    // service_failover = "nearest": a plain name fails over too.
    assert_eq!(dig_short(s1.dns, "web.service.consul", "A"), ["10.0.0.2"]);
    let srv = dig_short(s1.dns, "web.service.any.consul", "SRV");
    assert!(srv.iter().all(|r| r.contains(".dc2.")), "{srv:?}");
    // dc2's own agent keeps Consul's meaning for plain names.
    assert!(dig_short(s2.dns, "api.service.consul", "A").is_empty());

    // Once dc1 has one, dc1 answers: local first.
    register(&s1, "web", "10.0.0.1");
    common::wait_until(
        Duration::from_secs(10),
        "web synced to dc1's catalog",
        || {
            let (_, by, rows) = get(
                &s1,
                "/v1/health/service/web?dc=any",
                "x-meridian-datacenter",
            );
            (by.as_str(), addresses(&rows)) == ("dc1", vec!["10.0.0.1".to_string()])
        },
    );
    assert_eq!(
        dig_short(s1.dns, "web.service.any.consul", "A"),
        ["10.0.0.1"]
    );

    // ?dc=*: every datacenter's answer, each row stamped with its datacenter.
    let (code, dcs, rows) = get(&s1, "/v1/health/service/web?dc=*", "x-meridian-datacenters");
    assert_eq!((code, dcs.as_str()), (200, "dc1,dc2"));
    assert_eq!(addresses(&rows), ["10.0.0.1", "10.0.0.2"]);
    let mut stamped: Vec<&str> = rows
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["Datacenter"].as_str())
        .collect();
    stamped.sort_unstable();
    assert_eq!(stamped, ["dc1", "dc2"]);
    let (_, _, services) = get(&s1, "/v1/catalog/services?dc=*", "");
    for name in ["api", "web", "consul"] {
        assert!(
            services.get(name).is_some(),
            "{name} missing from {services}"
        );
    }
    let (code, _, err) = get(&s1, "/v1/kv/x?dc=*", "");
    assert_eq!(code, 400, "{err}");

    // dc2 unreachable (its only gateway killed): dc1's answers still come, in time, and
    // name dc2 as missing.
    let deregister = s1.put("/v1/agent/service/deregister/web", String::new());
    assert_eq!(deregister.0, 200);
    drop(g2);
    let t0 = Instant::now();
    let (code, missing, rows) = get(
        &s1,
        "/v1/catalog/services?dc=*",
        "x-meridian-datacenters-missing",
    );
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    assert_eq!((code, missing.as_str()), (200, "dc2"), "{rows}");
    assert!(
        rows.get("api").is_some() && rows.get("web").is_none(),
        "{rows}"
    );
    let t0 = Instant::now();
    let (code, missing, rows) = get(
        &s1,
        "/v1/health/service/web?dc=any",
        "x-meridian-datacenters-missing",
    );
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    assert_eq!((code, missing.as_str(), rows), (200, "dc2", json!([])));
}

#[test]
fn a_failing_datacenter_opens_its_breaker_and_the_probe_closes_it_when_back() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let (s1, s2, g1, g2) = two_datacenters_with(dirs.path(), [&[], &[]], [&[], &[]]);
    wait_federated(&s1);
    assert_eq!(s1.get("/v1/kv/k?dc=dc2").0, 404);
    drop(g2);

    // Three failures in a row open dc2's breaker; then calls fail at once, saying so.
    let mut answers = Vec::new();
    common::wait_until(Duration::from_secs(30), "dc2's breaker to open", || {
        let (code, _, body) = s1.get("/v1/kv/k?dc=dc2");
        answers.push((code, body.clone()));
        code == 503
    });
    let (_, body) = answers.last().expect("an answer");
    assert!(
        body.contains("datacenter \"dc2\" unavailable (retry in"),
        "{body}"
    );
    assert!(
        answers.len() > 3,
        "opened before three failures: {answers:?}"
    );
    let t0 = Instant::now();
    let (code, _, body) = s1.get("/v1/health/service/web?dc=dc2");
    assert_eq!(code, 503, "{body}");
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    let view = s1.get_json("/v1/operator/federation");
    let dc2 = view["Datacenters"]
        .as_array()
        .and_then(|ds| ds.iter().find(|d| d["Name"] == "dc2"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(dc2["Breaker"], "open", "{view}");
    assert!(dc2["ConsecutiveFailures"].as_u64() >= Some(3), "{dc2}");
    assert!(
        dc2["LastContact"].is_string(),
        "the first read succeeded: {dc2}"
    );
    let status = s1.cli(&["operator", "federation", "status"]);
    let text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(text.contains("open (retry in"), "{text}");
    // The failures are counted per datacenter (the JSON shows the last complete 10 s
    // interval, so keep failing across one).
    common::wait_until(Duration::from_secs(25), "federation.errors for dc2", || {
        let (code, _, _) = s1.get("/v1/kv/k?dc=dc2");
        assert_ne!(code, 200, "dc2 has no gateway");
        // A `?dc=` typo is no datacenter: it must not become a series of its own.
        assert_ne!(s1.get("/v1/kv/k?dc=no-such-dc").0, 200);
        s1.get_json("/v1/agent/metrics")["Counters"]
            .as_array()
            .is_some_and(|c| {
                c.iter().any(|x| {
                    x["Name"] == "meridian.federation.errors" && x["Labels"]["datacenter"] == "dc2"
                })
            })
    });
    // The JSON shows the last complete 10 s interval, which held the typo requests too.
    let m_errors = s1.get_json("/v1/agent/metrics");
    assert!(
        !m_errors.to_string().contains("no-such-dc"),
        "an unknown datacenter got a series: {m_errors}"
    );

    // A new dc2 gateway: the background probe closes the breaker without any request.
    let _g2b = common::federation::Gateway::start(
        "dc2",
        &dirs.path().join("g2b"),
        &s2.serf,
        Some(&g1.serf_wan),
    );
    common::wait_until(
        Duration::from_secs(30),
        "the probe to close dc2's breaker",
        || {
            let view = s1.get_json("/v1/operator/federation");
            view["Datacenters"]
                .as_array()
                .and_then(|ds| ds.iter().find(|d| d["Name"] == "dc2"))
                .is_some_and(|d| d["Breaker"] == "closed")
        },
    );
    assert_eq!(s1.get("/v1/kv/k?dc=dc2").0, 404);
}

fn kv(a: &Agent, key: &str) -> Option<String> {
    let (code, _, body) = a.get(&format!("/v1/kv/{key}?raw"));
    (code == 200).then_some(body)
}

#[test]
fn a_kv_prefix_replicates_from_the_source_datacenter_deletes_included() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let replication = "replication {\n  source_datacenter = \"dc1\"\n  prefixes = [\"config/\"]\n  exclude = [\"config/local/\"]\n}";
    let (s1, s2, _g1, _g2) =
        two_datacenters_with(dirs.path(), [&[], &["-hcl", replication]], [&[], &[]]);
    wait_federated(&s1);
    for (key, value) in [
        ("config/a", "1"),
        ("config/b", "2"),
        ("config/local/x", "L"),
        ("other/z", "Z"),
    ] {
        assert_eq!(s1.put(&format!("/v1/kv/{key}"), value.to_string()).0, 200);
    }
    common::wait_until(Duration::from_secs(20), "config/ copied to dc2", || {
        kv(&s2, "config/a").as_deref() == Some("1") && kv(&s2, "config/b").as_deref() == Some("2")
    });
    assert_eq!(kv(&s2, "config/local/x"), None, "excluded prefix copied");
    assert_eq!(kv(&s2, "other/z"), None, "unreplicated prefix copied");

    // Changes follow: a new value, a delete, a new key with flags.
    let t0 = Instant::now();
    assert_eq!(s1.put("/v1/kv/config/a", "10".to_string()).0, 200);
    assert_eq!(s1.delete("/v1/kv/config/b").0, 200);
    assert_eq!(s1.put("/v1/kv/config/c?flags=7", "3".to_string()).0, 200);
    common::wait_until(Duration::from_secs(10), "the changes copied to dc2", || {
        kv(&s2, "config/a").as_deref() == Some("10")
            && kv(&s2, "config/b").is_none()
            && kv(&s2, "config/c").as_deref() == Some("3")
    });
    let lag = t0.elapsed();
    assert!(
        lag < Duration::from_secs(2),
        "replication took {lag:?} on loopback"
    );
    let c = s2.get_json("/v1/kv/config/c");
    assert_eq!(c[0]["Flags"], 7);

    // The copy has one writer: dc2 refuses writes under the prefix, naming dc1.
    let (code, body) = s2.put("/v1/kv/config/a", "x".to_string());
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("replicated from datacenter \"dc1\""),
        "{body}"
    );
    assert_eq!(s2.delete("/v1/kv/?recurse").0, 403);
    let txn = json!([{"KV": {"Verb": "set", "Key": "config/q", "Value": "eA=="}}]).to_string();
    assert_eq!(s2.put("/v1/txn", txn).0, 403);
    assert_eq!(s2.put("/v1/kv/config/local/y", "ok".to_string()).0, 200);
    assert_eq!(kv(&s2, "config/a").as_deref(), Some("10"));

    // Status and metrics show the source, the indexes and no lag.
    common::wait_until(
        Duration::from_secs(10),
        "replication caught up in the status",
        || {
            let r = &s2.get_json("/v1/operator/federation")["Replication"];
            r["SourceDatacenter"] == "dc1"
                && r["Prefixes"][0]["LagIndex"] == 0
                && r["Prefixes"][0]["AppliedIndex"].as_u64() > Some(0)
        },
    );
    let m = s2.get_json("/v1/agent/metrics");
    assert!(
        m["Gauges"].as_array().is_some_and(|g| g
            .iter()
            .any(|x| x["Name"] == "meridian.replication.lag_seconds")),
        "{m}"
    );
    // Per remote datacenter: its alive gateways, and the time of calls relayed there (the
    // JSON shows the last complete 10 s interval, so ask across one while calling).
    assert!(
        m["Gauges"].as_array().is_some_and(|g| g
            .iter()
            .any(|x| x["Name"] == "meridian.federation.gateways_alive"
                && x["Labels"]["datacenter"] == "dc1"
                && x["Value"].as_f64() >= Some(1.0))),
        "{m}"
    );
    common::wait_until(
        Duration::from_secs(25),
        "federation.rpc samples for dc1",
        || {
            assert_eq!(s2.get("/v1/kv/config/c?dc=dc1").0, 200);
            s2.get_json("/v1/agent/metrics")["Samples"]
                .as_array()
                .is_some_and(|s| {
                    s.iter().any(|x| {
                        x["Name"] == "meridian.federation.rpc" && x["Labels"]["datacenter"] == "dc1"
                    })
                })
        },
    );
}
