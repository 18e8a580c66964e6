//! Config entries (`/v1/config`) against real agents: Consul's CRUD and cas answers, its
//! errors, blocking reads, `filter` on lists, and durability across a restart.

mod common;

use std::time::Duration;

use common::Agent;
use serde_json::{Value, json};

fn get_entry(a: &Agent, kind: &str, name: &str) -> Option<Value> {
    let (code, _, body) = a.get(&format!("/v1/config/{kind}/{name}"));
    match code {
        200 => Some(serde_json::from_str(&body).expect("json")),
        404 => None,
        other => panic!("GET {kind}/{name}: {other} {body}"),
    }
}

#[test]
fn config_entries_crud_as_consul() {
    let a = Agent::dev();
    let body = json!({"Kind": "service-defaults", "Name": "web", "Protocol": "http",
                      "Meta": {"owner": "team-a"}});
    assert_eq!(a.put("/v1/config", body.to_string()), (200, "true".into()));
    let e = get_entry(&a, "service-defaults", "web").expect("stored");
    assert_eq!(e["Kind"], "service-defaults");
    assert_eq!(e["Name"], "web");
    assert_eq!(e["Protocol"], "http");
    assert_eq!(e["Meta"]["owner"], "team-a");
    let created = e["CreateIndex"].as_u64().expect("CreateIndex");
    assert_eq!(e["ModifyIndex"].as_u64(), Some(created));

    // Update: CreateIndex stays, ModifyIndex moves, the fields are replaced.
    let body = json!({"kind": "service-defaults", "name": "web", "Protocol": "grpc"});
    assert_eq!(a.put("/v1/config", body.to_string()), (200, "true".into()));
    let e = get_entry(&a, "service-defaults", "web").expect("stored");
    assert_eq!(e["Protocol"], "grpc");
    assert!(e.get("Meta").is_none(), "{e}");
    assert_eq!(e["CreateIndex"].as_u64(), Some(created));
    assert!(e["ModifyIndex"].as_u64() > Some(created));

    let other = json!({"Kind": "service-defaults", "Name": "api", "Protocol": "tcp"});
    assert_eq!(a.put("/v1/config", other.to_string()), (200, "true".into()));
    let list = a.get_json("/v1/config/service-defaults");
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["Name"].as_str())
        .collect();
    assert_eq!(names, ["api", "web"]);
    let q: String = form_urlencoded::byte_serialize(br#"Protocol == "grpc""#).collect();
    let filtered = a.get_json(&format!("/v1/config/service-defaults?filter={q}"));
    assert_eq!(filtered.as_array().map(Vec::len), Some(1), "{filtered}");
    assert_eq!(a.get_json("/v1/config/service-resolver"), json!([]));

    // A plain delete answers {} (Consul keeps that for old callers), then the entry is gone.
    assert_eq!(
        a.delete("/v1/config/service-defaults/web"),
        (200, "{}".into())
    );
    let (code, h, body) = a.get("/v1/config/service-defaults/web");
    assert_eq!(code, 404);
    assert_eq!(
        body,
        r#"Config entry not found for "service-defaults" / "web""#
    );
    assert!(h.contains_key("X-Consul-Index"));
    assert_eq!(
        a.delete("/v1/config/service-defaults/web"),
        (200, "{}".into())
    );
}

#[test]
fn cas_writes_and_deletes_answer_false_on_a_stale_index() {
    let a = Agent::dev();
    let put = |cas: &str, protocol: &str| {
        let body = json!({"Kind": "service-defaults", "Name": "cas-svc", "Protocol": protocol});
        a.put(&format!("/v1/config?cas={cas}"), body.to_string())
    };
    assert_eq!(put("0", "http"), (200, "true".into()));
    assert_eq!(put("0", "tcp"), (200, "false".into()), "cas=0 only creates");
    let idx = get_entry(&a, "service-defaults", "cas-svc").expect("stored")["ModifyIndex"]
        .as_u64()
        .expect("index");
    assert_eq!(put(&(idx + 999).to_string(), "grpc"), (200, "false".into()));
    assert_eq!(
        get_entry(&a, "service-defaults", "cas-svc").expect("kept")["Protocol"],
        "http"
    );
    assert_eq!(put(&idx.to_string(), "grpc"), (200, "true".into()));
    let idx = get_entry(&a, "service-defaults", "cas-svc").expect("stored")["ModifyIndex"]
        .as_u64()
        .expect("index");
    let del = |cas: u64| a.delete(&format!("/v1/config/service-defaults/cas-svc?cas={cas}"));
    assert_eq!(del(idx + 999), (200, "false".into()));
    assert!(get_entry(&a, "service-defaults", "cas-svc").is_some());
    assert_eq!(del(idx), (200, "true".into()));
    assert!(get_entry(&a, "service-defaults", "cas-svc").is_none());
}

#[test]
fn bad_kinds_and_names_are_400s() {
    let a = Agent::dev();
    for (body, want) in [
        (
            json!({"Kind": "service-default", "Name": "x"}),
            "invalid config entry kind: service-default",
        ),
        (
            json!({"Name": "x"}),
            "Payload does not contain a kind/Kind key",
        ),
        (json!({"Kind": "service-defaults"}), "Name is required"),
        (
            json!({"Kind": "proxy-defaults", "Name": "web"}),
            r#"only "global" is supported"#,
        ),
    ] {
        let (code, text) = a.put("/v1/config", body.to_string());
        assert_eq!(code, 400, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
    assert_eq!(a.get("/v1/config/nope").0, 400);
    assert_eq!(a.delete("/v1/config/nope/x").0, 400);
    assert_eq!(a.delete("/v1/config/service-defaults").0, 404);
    let global =
        json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}});
    assert_eq!(
        a.put("/v1/config", global.to_string()),
        (200, "true".into())
    );
    let mesh = json!({"Kind": "mesh", "TransparentProxy": {"MeshDestinationsOnly": true}});
    assert_eq!(a.put("/v1/config", mesh.to_string()), (200, "true".into()));
    let m = get_entry(&a, "mesh", "mesh").expect("mesh is named mesh");
    assert_eq!(m["TransparentProxy"]["MeshDestinationsOnly"], true);
}

#[test]
fn a_blocking_read_of_an_entry_wakes_on_its_write() {
    let a = Agent::dev();
    let (_, h, _) = a.get("/v1/config/service-defaults");
    let index: u64 = h["X-Consul-Index"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("index");
    let url = format!(
        "{}/v1/config/service-defaults?index={index}&wait=30s",
        a.url
    );
    let waiter = std::thread::spawn(move || {
        let r = reqwest::blocking::get(url).expect("GET");
        r.text().unwrap_or_default()
    });
    let body = json!({"Kind": "service-defaults", "Name": "late", "Protocol": "http"});
    assert_eq!(a.put("/v1/config", body.to_string()), (200, "true".into()));
    let seen: Value = serde_json::from_str(&waiter.join().expect("join")).expect("json");
    assert_eq!(seen[0]["Name"], "late");
}

/// A durable server keeps its config entries, with their indexes, across a restart.
#[test]
fn config_entries_survive_a_restart_of_a_durable_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::durable(dir.path());
    let body = json!({"Kind": "service-resolver", "Name": "web", "ConnectTimeout": "3s"});
    assert_eq!(a.put("/v1/config", body.to_string()), (200, "true".into()));
    let before = get_entry(&a, "service-resolver", "web").expect("stored");
    a.terminate();
    let b = Agent::durable(dir.path());
    common::wait_until(
        Duration::from_secs(20),
        "the entry back after restart",
        || get_entry(&b, "service-resolver", "web").as_ref() == Some(&before),
    );
}
