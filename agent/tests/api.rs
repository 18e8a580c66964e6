//! The HTTP API against a real `meridian agent -dev` process, with the requests Consul's docs
//! and real clients send (reference/consul.md §2, §7).

mod common;

use std::time::{Duration, Instant};

use common::{Agent, wait_until};
use serde_json::{Value, json};

/// The catalog register payload from Consul's docs, verbatim.
const DOCS_REGISTER: &str = r#"{
  "Datacenter": "dc1",
  "ID": "40e4a748-2192-161a-0510-9bf59fe950b5",
  "Node": "t2.320",
  "Address": "192.168.10.10",
  "TaggedAddresses": { "lan": "192.168.10.10", "wan": "10.0.10.10" },
  "NodeMeta": { "somekey": "somevalue" },
  "Service": {
    "ID": "redis1", "Service": "redis", "Tags": ["primary","v1"], "Address": "127.0.0.1",
    "TaggedAddresses": { "lan": {"address":"127.0.0.1","port":8000}, "wan": {"address":"198.18.0.1","port":80} },
    "Meta": { "redis_version": "4.0" }, "Port": 8000, "Namespace": "default"
  },
  "Check": {
    "Node": "t2.320", "CheckID": "service:redis1", "Name": "Redis health check",
    "Notes": "Script based health check", "Status": "passing", "ServiceID": "redis1",
    "Definition": { "TCP": "localhost:8888", "Interval": "5s", "Timeout": "1s", "DeregisterCriticalServiceAfter": "30s" },
    "Namespace": "default"
  },
  "SkipNodeUpdate": false
}"#;

#[test]
fn consul_docs_catalog_flow_works_unchanged() {
    let a = Agent::dev();
    assert_eq!(
        a.put("/v1/catalog/register", DOCS_REGISTER),
        (200, "true".into())
    );

    let rows = a.get_json("/v1/catalog/service/redis?tag=v1");
    let row = &rows[0];
    assert_eq!(row["Node"], "t2.320");
    assert_eq!(row["ServiceID"], "redis1");
    assert_eq!(row["ServicePort"], 8000);
    assert_eq!(row["ServiceTags"], json!(["primary", "v1"]));
    assert_eq!(row["ServiceMeta"]["redis_version"], "4.0");
    assert_eq!(row["ServiceTaggedAddresses"]["wan"]["Port"], 80);
    assert_eq!(row["NodeMeta"]["somekey"], "somevalue");
    assert_eq!(row["TaggedAddresses"]["wan"], "10.0.10.10");
    assert!(row["CreateIndex"].as_u64().unwrap() > 0);
    assert_eq!(a.get_json("/v1/catalog/service/redis?tag=v2"), json!([]));

    let health = a.get_json("/v1/health/service/redis?passing");
    assert_eq!(health[0]["Service"]["ID"], "redis1");
    assert_eq!(health[0]["Checks"][0]["CheckID"], "service:redis1");
    assert_eq!(
        health[0]["Checks"][0]["Definition"]["TCP"],
        "localhost:8888"
    );

    let services = a.get_json("/v1/catalog/services");
    assert_eq!(services["redis"], json!(["primary", "v1"]));
    assert!(
        services.get("consul").is_some(),
        "the server registers the consul service: {services}"
    );

    let filtered = a.get_json(
        "/v1/catalog/service/redis?filter=ServiceMeta.redis_version%20%3D%3D%20%224.0%22",
    );
    assert_eq!(filtered.as_array().unwrap().len(), 1);

    let (s, body) = a.put(
        "/v1/catalog/deregister",
        r#"{"Datacenter": "dc1","Node": "t2.320"}"#,
    );
    assert_eq!((s, body.as_str()), (200, "true"));
    assert_eq!(a.get_json("/v1/catalog/service/redis"), json!([]));
}

#[test]
fn agent_service_register_accepts_check_weights_meta_in_any_key_case() {
    let a = Agent::dev();
    let body = json!({
        "ID": "redis1", "Name": "redis", "Tags": ["primary", "v1"], "Address": "127.0.0.1", "Port": 8000,
        "Meta": { "redis_version": "4.0" },
        "EnableTagOverride": false,
        "Check": { "DeregisterCriticalServiceAfter": "90m", "TTL": "15s" },
        "Weights": { "Passing": 10, "Warning": 1 }
    });
    let (s, b) = a.put("/v1/agent/service/register", body.to_string());
    assert_eq!(s, 200, "{b}");
    // Lowercase keys, as a real client sends them.
    let lower = r#"{"name":"web","enabletagoverride":true,"id":"web/1","address":"127.0.0.1","port":80,"tags":["a"],"check":{"ttl":"30s"}}"#;
    assert_eq!(a.put("/v1/agent/service/register", lower).0, 200);

    let svcs = a.get_json("/v1/agent/services");
    assert_eq!(
        svcs["redis1"]["Weights"],
        json!({"Passing": 10, "Warning": 1})
    );
    assert_eq!(svcs["redis1"]["Meta"]["redis_version"], "4.0");
    assert_eq!(svcs["web/1"]["EnableTagOverride"], true);
    assert!(svcs.get("consul").is_none());

    let checks = a.get_json("/v1/agent/checks");
    assert_eq!(
        checks["service:redis1"]["Status"], "critical",
        "TTL checks start critical"
    );
    assert_eq!(
        a.put("/v1/agent/check/pass/service:redis1?note=ok", "").0,
        200
    );
    let h = a.get_json("/v1/health/service/redis?passing");
    assert_eq!(h.as_array().unwrap().len(), 1, "{h}");
    assert_eq!(
        h[0]["Checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["CheckID"] == "service:redis1")
            .unwrap()["Output"],
        "ok"
    );

    // IDs containing '/' deregister by their full ID.
    assert_eq!(a.put("/v1/agent/service/deregister/web/1", "").0, 200);
    assert!(a.get_json("/v1/agent/services").get("web/1").is_none());

    // Bad input: 400 naming the field.
    let (s, b) = a.put(
        "/v1/agent/service/register",
        r#"{"Name":"x","Port":"eighty"}"#,
    );
    assert_eq!(s, 400);
    assert!(b.contains("port"), "{b}");
    let (s, b) = a.put(
        "/v1/agent/service/register",
        r#"{"Name":"x","Check":{"TTL":"10parsecs"}}"#,
    );
    assert_eq!(s, 400);
    assert!(b.contains("check.ttl"), "{b}");
}

#[test]
fn kv_semantics_match_consul() {
    let a = Agent::dev();
    assert_eq!(
        a.put("/v1/kv/web/foo?flags=3304740253564472344", "bar"),
        (200, "true".into())
    );
    assert_eq!(a.put("/v1/kv/web/sub/x", "1"), (200, "true".into()));
    let (s, h, body) = a.get("/v1/kv/web/foo");
    assert_eq!(s, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["Value"], "YmFy");
    assert_eq!(v[0]["Flags"], 3304740253564472344u64);
    let idx = v[0]["ModifyIndex"].as_u64().unwrap();
    assert_eq!(h["X-Consul-Index"].to_str().unwrap(), idx.to_string());
    assert_eq!(h["X-Consul-KnownLeader"], "true");
    assert!(
        h["X-Consul-LastContact"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .is_ok()
    );
    assert_eq!(a.get("/v1/kv/web/foo?raw").2, "bar");
    assert_eq!(
        a.get_json("/v1/kv/web/?keys&separator=/"),
        json!(["web/foo", "web/sub/"])
    );
    assert_eq!(
        a.get_json("/v1/kv/web?recurse").as_array().unwrap().len(),
        2
    );
    assert_eq!(a.get("/v1/kv/missing").0, 404);

    // CAS.
    assert_eq!(a.put("/v1/kv/web/foo?cas=0", "x").1, "false");
    assert_eq!(a.put(&format!("/v1/kv/web/foo?cas={idx}"), "baz").1, "true");
    assert_eq!(
        a.put(&format!("/v1/kv/web/foo?cas={idx}"), "qux").1,
        "false"
    );

    // The size limit: exactly 512 KiB is accepted, one byte more is "too large".
    assert_eq!(a.put("/v1/kv/big", vec![b'a'; 524_288]).0, 200);
    let (s, body) = a.put("/v1/kv/big", vec![b'a'; 524_289]);
    assert_eq!(s, 413);
    assert!(body.contains("too large"), "{body}");

    // Deletes.
    assert_eq!(a.delete("/v1/kv/web?recurse").1, "true");
    assert_eq!(a.get("/v1/kv/web/foo").0, 404);
    let (s, b) = a.put("/v1/kv/x?flags=abc", "1");
    assert_eq!(s, 400);
    assert!(b.contains("flags"), "{b}");

    // Another datacenter is not reachable yet.
    let (s, _, body) = a.get("/v1/kv/x?dc=dc2");
    assert_eq!((s, body.as_str()), (500, "No path to datacenter"));
}

#[test]
fn blocking_query_on_a_key_ignores_other_keys_and_wakes_on_its_own() {
    let a = Agent::dev();
    assert_eq!(a.put("/v1/kv/watched", "v1").0, 200);
    let (_, h, _) = a.get("/v1/kv/watched");
    let idx: u64 = h["X-Consul-Index"].to_str().unwrap().parse().unwrap();

    let url = format!("{}/v1/kv/watched?index={idx}&wait=3s", a.url);
    let watcher = std::thread::spawn(move || {
        let (elapsed, _, index, body) = blocking_get(&url);
        (elapsed, index, body)
    });
    // Writes to other keys must not wake the watcher.
    for i in 0..20 {
        assert_eq!(a.put(&format!("/v1/kv/other/{i}"), "x").0, 200);
    }
    let (elapsed, index, _) = watcher.join().unwrap();
    assert!(
        elapsed >= Duration::from_secs(3),
        "woke after {elapsed:?} on unrelated writes"
    );
    assert_eq!(index, idx, "the index is the key's own ModifyIndex");

    // A write to the key wakes it within milliseconds.
    let url = format!("{}/v1/kv/watched?index={idx}&wait=30s", a.url);
    let watcher = std::thread::spawn(move || {
        let r = reqwest::blocking::get(url).unwrap();
        (Instant::now(), r.text().unwrap())
    });
    // Whether the watcher is already blocked or arrives after the write, it must return
    // within milliseconds of the write (the first half proved that it does block).
    let wrote = Instant::now();
    assert_eq!(a.put("/v1/kv/watched", "v2").0, 200);
    let (woke, body) = watcher.join().unwrap();
    assert!(body.contains("djI="), "{body}");
    let lag = woke.saturating_duration_since(wrote);
    assert!(
        lag < Duration::from_millis(500),
        "woke {lag:?} after the write"
    );
}

#[test]
fn blocking_health_query_ignores_other_services_and_wakes_on_its_own() {
    let a = Agent::dev();
    let register = |id: &str, name: &str| {
        let body = format!(
            r#"{{"Node":"n1","Address":"10.0.0.1","Service":{{"ID":"{id}","Service":"{name}","Port":80}}}}"#
        );
        assert_eq!(a.put("/v1/catalog/register", body).0, 200);
    };
    register("web-1", "web");
    let (_, h, _) = a.get("/v1/health/service/web?passing");
    let idx: u64 = h["X-Consul-Index"].to_str().unwrap().parse().unwrap();
    let watch = |wait: &str| {
        let url = format!(
            "{}/v1/health/service/web?passing&index={idx}&wait={wait}",
            a.url
        );
        std::thread::spawn(move || {
            let (elapsed, done, index, body) = blocking_get(&url);
            let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
            (elapsed, done, index, rows)
        })
    };
    // Other services and KV writes are applied batches too; none may wake the watcher, and
    // when its wait runs out it still gets the service's current rows.
    let watcher = watch("2s");
    for i in 0..10 {
        register(&format!("db-{i}"), "db");
        assert_eq!(a.put(&format!("/v1/kv/other/{i}"), "x").0, 200);
    }
    let (elapsed, _, index, rows) = watcher.join().unwrap();
    assert!(
        elapsed >= Duration::from_secs(2),
        "woke after {elapsed:?} on unrelated writes"
    );
    assert_eq!(index, idx);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["Service"]["ID"], "web-1");

    // A new instance of the service wakes it at once, with both instances (whether the
    // watcher parked before the unrelated write or arrives after it).
    let watcher = watch("30s");
    register("db-x", "db");
    let wrote = Instant::now();
    register("web-2", "web");
    let (_, woke, index, rows) = watcher.join().unwrap();
    assert!(index > idx);
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["Service"]["ID"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["web-1", "web-2"]);
    let lag = woke.saturating_duration_since(wrote);
    assert!(
        lag < Duration::from_millis(500),
        "woke {lag:?} after the write"
    );
}

#[test]
fn sessions_locks_and_txn_behave_like_consul() {
    let a = Agent::dev();
    // The lowercase form real clients send, with Go duration strings.
    let (s, body) = a.put(
        "/v1/session/create",
        r#"{"name":"x","checks":[],"lockdelay":"0.001s","behavior":"delete","ttl":"15.0s"}"#,
    );
    assert_eq!(s, 200, "{body}");
    let sid = serde_json::from_str::<Value>(&body).unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, body) = a.put(&format!("/v1/session/renew/{sid}"), "");
    assert_eq!(s, 200);
    let renewed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        renewed[0]["LockDelay"], 1_000_000,
        "LockDelay is integer nanoseconds"
    );
    assert_eq!(renewed[0]["TTL"], "15s");
    assert_eq!(
        a.put("/v1/session/renew/00000000-0000-0000-0000-000000000000", "")
            .0,
        404
    );
    let (s, body) = a.put("/v1/session/create", r#"{"TTL":"5s"}"#);
    assert_eq!(s, 500);
    assert!(body.starts_with("Invalid Session TTL"), "{body}");
    let self_info = a.get_json("/v1/agent/self");
    assert_eq!(self_info["Config"]["SessionTTLMin"], 10_000_000_000u64);

    assert_eq!(a.put(&format!("/v1/kv/lock?acquire={sid}"), "me").1, "true");
    let (_, other) = a.put(
        "/v1/session/create",
        r#"{"LockDelay":"5000ms","Name":"Consul API Lock","TTL":"15s"}"#,
    );
    let other = serde_json::from_str::<Value>(&other).unwrap()["ID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        a.put(&format!("/v1/kv/lock?acquire={other}"), "them").1,
        "false"
    );
    let entry = a.get_json("/v1/kv/lock");
    assert_eq!(
        (
            entry[0]["Session"].as_str().unwrap(),
            entry[0]["LockIndex"].as_u64().unwrap()
        ),
        (sid.as_str(), 1)
    );
    // Destroying a delete-behaviour session deletes its locked key.
    assert_eq!(a.put(&format!("/v1/session/destroy/{sid}"), "").1, "true");
    assert_eq!(a.get("/v1/kv/lock").0, 404);

    // Txn: set then cas with a stale index rolls back with Errors.
    let ops = json!([{"KV": {"Verb": "set", "Key": "t/a", "Value": "YQ=="}}, {"KV": {"Verb": "cas", "Key": "t/b", "Index": 99, "Value": "Yg=="}}]);
    let (s, body) = a.put("/v1/txn", ops.to_string());
    assert_eq!(s, 409, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Errors"][0]["OpIndex"], 1);
    assert_eq!(a.get("/v1/kv/t/a").0, 404, "rolled back");
    let ops = json!([{"KV": {"Verb": "set", "Key": "t/a", "Value": "YQ=="}}]);
    let (s, body) = a.put("/v1/txn", ops.to_string());
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let idx = v["Results"][0]["KV"]["ModifyIndex"].as_u64().unwrap();
    let ops = json!([{"KV": {"Verb": "cas", "Key": "t/a", "Index": idx, "Value": "Yg=="}}, {"KV": {"Verb": "get", "Key": "t/a"}}]);
    let v: Value = serde_json::from_str(&a.put("/v1/txn", ops.to_string()).1).unwrap();
    assert_eq!(v["Results"][1]["KV"]["Value"], "Yg==");
    let too_many: Vec<Value> = (0..129)
        .map(|i| json!({"KV": {"Verb": "get", "Key": format!("k{i}")}}))
        .collect();
    assert_eq!(a.put("/v1/txn", Value::Array(too_many).to_string()).0, 413);
}

#[test]
fn status_and_raft_endpoints_describe_the_single_server() {
    let a = Agent::dev();
    let leader = a.get_json("/v1/status/leader");
    // The server RPC address actually bound (the harness asks for port 0).
    let addr: std::net::SocketAddr = leader.as_str().unwrap().parse().expect("ip:port");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{leader}");
    assert_eq!(a.get_json("/v1/status/peers"), json!([leader]));
    let cfg = a.get_json("/v1/operator/raft/configuration");
    assert_eq!(cfg["Servers"][0]["Leader"], true);
    assert_eq!(cfg["Servers"][0]["Voter"], true);
    assert_eq!(a.get_json("/v1/catalog/datacenters"), json!(["dc1"]));
    let members = a.get_json("/v1/agent/members");
    assert_eq!(members[0]["Status"], 1);
    assert_eq!(a.get_json("/v1/agent/self")["Member"], members[0]);
    wait_until(
        Duration::from_secs(5),
        "serfHealth passing on the server node",
        || {
            a.get_json("/v1/health/state/passing")
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["CheckID"] == "serfHealth"))
        },
    );
}

/// A blocking GET: (time it took, when it returned, `X-Consul-Index`, body).
fn blocking_get(url: &str) -> (Duration, Instant, u64, String) {
    let t = Instant::now();
    let r = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap();
    let index: u64 = r.headers()["X-Consul-Index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = r.text().unwrap();
    (t.elapsed(), Instant::now(), index, body)
}
