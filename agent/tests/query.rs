//! Prepared queries (`/v1/query`) against real `meridian agent` processes, with the payloads
//! of Consul's docs (reference/consul.md §1.10, §2.9): CRUD in any key case, execution with
//! tag, health and template semantics, explain, the 400s and 404s, persistence across a
//! restart and forwarding through a client agent. Every wait has a deadline.

mod common;

use std::time::Duration;

use common::{Agent, CONVERGE, wait_until};
use serde_json::{Value, json};

/// The create payload of Consul's docs (the session is filled in per test).
fn docs_query(session: &str) -> String {
    json!({
        "Name": "my-query",
        "Session": session,
        "Token": "",
        "Service": {
            "Service": "redis",
            "Namespace": "",
            "Failover": { "NearestN": 3, "Datacenters": ["dc1", "dc2"] },
            "IgnoreCheckIDs": [],
            "OnlyPassing": false,
            "Near": "node1",
            "Tags": ["primary", "!experimental"],
            "NodeMeta": { "instance_type": "m3.large" },
            "ServiceMeta": { "environment": "production" },
            "Connect": false
        },
        "DNS": { "TTL": "10s" }
    })
    .to_string()
}

/// The template of Consul's docs: `geo-db-<service>-<tag>`.
const GEO_TEMPLATE: &str = r#"{
  "Name": "geo-db-",
  "Template": { "Type": "name_prefix_match", "Regexp": "^geo-db-(.*?)-([^\\-]+?)$" },
  "Service": { "Service": "${match(1)}", "Tags": ["${match(2)}"], "OnlyPassing": true }
}"#;

fn post(a: &Agent, path: &str, body: &str) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}{path}", a.url))
        .body(body.to_string())
        .send()
        .expect("POST");
    (r.status().as_u16(), r.text().unwrap_or_default())
}

/// Creates a query and returns its ID.
fn create(a: &Agent, body: &str) -> String {
    let (s, b) = post(a, "/v1/query", body);
    assert_eq!(s, 200, "create: {b}");
    let v: Value = serde_json::from_str(&b).expect("JSON");
    v["ID"].as_str().expect("ID").to_string()
}

fn session(a: &Agent) -> String {
    let (s, b) = a.put("/v1/session/create", r#"{"name":"q","checks":[]}"#);
    assert_eq!(s, 200, "{b}");
    serde_json::from_str::<Value>(&b).expect("JSON")["ID"]
        .as_str()
        .expect("ID")
        .to_string()
}

/// Registers `redis` instance `id` on its own node `node` with `tags` and a catalog check
/// in `status`.
fn register(a: &Agent, node: &str, id: &str, tags: &[&str], status: &str) {
    let body = json!({
        "Node": node, "Address": "10.0.0.9",
        "Service": { "ID": id, "Service": "redis", "Tags": tags, "Port": 6379 },
        "Check": { "CheckID": format!("service:{id}"), "Name": "redis", "ServiceID": id, "Status": status }
    });
    assert_eq!(
        a.put("/v1/catalog/register", body.to_string()),
        (200, "true".into())
    );
}

/// Node names of an execute answer, sorted.
fn executed(a: &Agent, path: &str) -> Vec<String> {
    let v = a.get_json(path);
    let mut nodes: Vec<String> = v["Nodes"]
        .as_array()
        .expect("Nodes")
        .iter()
        .map(|n| n["Node"]["Node"].as_str().unwrap_or_default().to_string())
        .collect();
    nodes.sort();
    nodes
}

#[test]
fn create_list_get_update_delete_with_consul_doc_payloads() {
    let a = Agent::dev();
    let sid = session(&a);
    let id = create(&a, &docs_query(&sid));

    let (s, h, body) = a.get("/v1/query");
    assert_eq!(s, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("JSON");
    let q = &list[0];
    assert_eq!(q["ID"], id.as_str());
    assert_eq!(q["Name"], "my-query");
    assert_eq!(q["Session"], sid.as_str());
    assert_eq!(q["Token"], "<hidden>");
    assert_eq!(q["Service"]["Tags"], json!(["primary", "!experimental"]));
    assert_eq!(q["Service"]["Failover"]["NearestN"], 3);
    assert_eq!(q["Service"]["NodeMeta"]["instance_type"], "m3.large");
    assert_eq!(q["DNS"]["TTL"], "10s");
    let create_index = q["RaftIndex"]["CreateIndex"].as_u64().expect("index");
    assert_eq!(q["CreateIndex"].as_u64(), Some(create_index));
    let index: u64 = h["x-consul-index"].to_str().unwrap().parse().unwrap();
    assert_eq!(index, create_index);

    // A blocking list wakes on the update, which uses lowercase keys.
    let url = format!("{}/v1/query?index={index}&wait=20s", a.url);
    let watcher = std::thread::spawn(move || reqwest::blocking::get(url).expect("GET").text());
    let lower = r#"{"name":"renamed","service":{"service":"redis","onlypassing":true,"tags":["v2"]},"dns":{"ttl":"30s"}}"#;
    let (s, b) = a.put(&format!("/v1/query/{id}"), lower);
    assert_eq!(s, 200, "{b}");
    let woke: Value = serde_json::from_str(&watcher.join().unwrap().unwrap()).unwrap();
    assert_eq!(woke[0]["Name"], "renamed");

    let got = a.get_json(&format!("/v1/query/{id}"));
    assert_eq!(got[0]["Service"]["OnlyPassing"], true);
    assert_eq!(got[0]["Service"]["Tags"], json!(["v2"]));
    assert_eq!(
        got[0]["RaftIndex"]["CreateIndex"].as_u64(),
        Some(create_index)
    );
    assert!(got[0]["RaftIndex"]["ModifyIndex"].as_u64().unwrap() > create_index);
    // Go clients send nulls for empty fields.
    let nulls = r#"{"Name":"renamed","Service":{"Service":"redis","Tags":null,"NodeMeta":null},"Template":null}"#;
    assert_eq!(a.put(&format!("/v1/query/{id}"), nulls).0, 200);

    assert_eq!(a.delete(&format!("/v1/query/{id}")).0, 200);
    assert_eq!(a.get_json("/v1/query"), json!([]));
    let (s, _, body) = a.get(&format!("/v1/query/{id}"));
    assert_eq!((s, body.as_str()), (404, "Query not found"));
}

#[test]
fn execute_filters_tags_and_drops_an_instance_whose_check_fails() {
    let a = Agent::dev();
    register(&a, "n1", "redis-1", &["primary"], "passing");
    register(&a, "n2", "redis-2", &["Primary", "experimental"], "passing");
    register(&a, "n3", "redis-3", &["primary"], "warning");
    register(&a, "n4", "redis-4", &["replica"], "passing");
    let id = create(
        &a,
        r#"{"Name":"redis-primary","Service":{"Service":"redis","Tags":["primary","!experimental"]},"DNS":{"TTL":"10s"}}"#,
    );

    let v = a.get_json(&format!("/v1/query/{id}/execute"));
    assert_eq!(v["Service"], "redis");
    assert_eq!(v["DNS"]["TTL"], "10s");
    assert_eq!(v["Datacenter"], "dc1");
    assert_eq!(v["Failovers"], 0);
    let row = &v["Nodes"][0];
    assert!(row["Node"]["Address"].is_string(), "{row}");
    assert!(row["Service"]["Port"].is_number(), "{row}");
    assert!(row["Checks"].is_array(), "{row}");
    assert_eq!(
        executed(&a, "/v1/query/redis-primary/execute"),
        vec!["n1", "n3"],
        "warning stays, experimental and untagged go"
    );
    assert_eq!(
        a.get_json("/v1/query/redis-primary/execute?limit=1")["Nodes"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A failing check takes n1 out of the answers.
    register(&a, "n1", "redis-1", &["primary"], "critical");
    wait_until(Duration::from_secs(10), "n1 out of the answer", || {
        executed(&a, "/v1/query/redis-primary/execute") == vec!["n3"]
    });

    // An agent TTL check: critical until passed, then in, then out again when failed.
    let svc = r#"{"Name":"redis","ID":"redis-local","Tags":["primary"],"Port":7000,"Check":{"TTL":"30s"}}"#;
    assert_eq!(a.put("/v1/agent/service/register", svc).0, 200);
    let local = a.get_json("/v1/agent/self")["Config"]["NodeName"]
        .as_str()
        .expect("node name")
        .to_string();
    let has_local = || executed(&a, "/v1/query/redis-primary/execute").contains(&local);
    assert!(!has_local(), "a TTL check starts critical");
    assert_eq!(a.put("/v1/agent/check/pass/service:redis-local", "").0, 200);
    wait_until(Duration::from_secs(10), "passing local instance", has_local);
    assert_eq!(a.put("/v1/agent/check/fail/service:redis-local", "").0, 200);
    wait_until(
        Duration::from_secs(10),
        "failed local instance gone",
        || !has_local(),
    );
}

#[test]
fn template_resolves_geo_db_names_and_explain_shows_the_rendering() {
    let a = Agent::dev();
    register(&a, "n1", "redis-1", &["primary"], "passing");
    register(&a, "n2", "redis-2", &["replica"], "passing");
    create(&a, GEO_TEMPLATE);
    // A static query with the exact name wins over the template.
    create(
        &a,
        r#"{"Name":"geo-db-static","Service":{"Service":"static"}}"#,
    );

    let v = a.get_json("/v1/query/geo-db-redis-primary/execute");
    assert_eq!(v["Service"], "redis");
    assert_eq!(
        executed(&a, "/v1/query/geo-db-redis-replica/execute"),
        vec!["n2"]
    );
    assert_eq!(
        executed(&a, "/v1/query/geo-db-redis-primary/execute"),
        vec!["n1"]
    );

    let e = a.get_json("/v1/query/geo-db-redis-primary/explain");
    let q = &e["Query"];
    assert_eq!(q["Name"], "geo-db-");
    assert_eq!(q["Service"]["Service"], "redis");
    assert_eq!(q["Service"]["Tags"], json!(["primary"]));
    assert_eq!(q["Template"]["Type"], "name_prefix_match");
    assert_eq!(q["Token"], "<hidden>");
    let e = a.get_json("/v1/query/geo-db-static/explain");
    assert_eq!(e["Query"]["Service"]["Service"], "static");
    // No template matches `web`, so nothing answers it.
    let (s, _, body) = a.get("/v1/query/web/execute");
    assert_eq!((s, body.as_str()), (404, "Query not found"));
    // A catch-all template answers every other name.
    create(
        &a,
        r#"{"Name":"","Template":{"Type":"name_prefix_match"},"Service":{"Service":"${name.full}"}}"#,
    );
    assert_eq!(a.get_json("/v1/query/redis/execute")["Service"], "redis");
}

#[test]
fn invalid_definitions_are_400s_naming_the_field_and_unknown_queries_404() {
    let a = Agent::dev();
    create(&a, r#"{"Name":"taken","Service":{"Service":"redis"}}"#);
    let cases = [
        (r#"{"Name":"x"}"#, "Service.Service"),
        (
            r#"{"Name":"x","Session":"nope","Service":{"Service":"r"}}"#,
            "Session",
        ),
        (r#"{"Name":"taken","Service":{"Service":"r"}}"#, "Name"),
        (
            r#"{"Name":"8f246b77-f3e1-ff88-5b48-8ec93abf3e05","Service":{"Service":"r"}}"#,
            "Name",
        ),
        (
            r#"{"Name":"t","Template":{"Type":"name_prefix_match","Regexp":"(["},"Service":{"Service":"r"}}"#,
            "Template.Regexp",
        ),
        (
            r#"{"Name":"t","Template":{"Type":"name_prefix_match"},"Service":{"Service":"${bogus}"}}"#,
            "Service.Service",
        ),
        (
            r#"{"Name":"x","Service":{"Service":"r"},"DNS":{"TTL":"soon"}}"#,
            "DNS.TTL",
        ),
        (
            r#"{"Name":"x","Service":{"Service":"r","Failover":{"NearestN":-1}}}"#,
            "Service.Failover.NearestN",
        ),
        (r#"{"Name":"x","Service":{"Service":7}}"#, "service.service"),
    ];
    for (body, field) in cases {
        let (s, msg) = post(&a, "/v1/query", body);
        assert_eq!(s, 400, "{body}: {msg}");
        assert!(msg.contains(field), "{body}: {msg:?} should name {field}");
    }
    let ghost = "00000000-0000-0000-0000-000000000000";
    for path in [
        format!("/v1/query/{ghost}"),
        format!("/v1/query/{ghost}/execute"),
        "/v1/query/nope/explain".to_string(),
    ] {
        let (s, _, body) = a.get(&path);
        assert_eq!((s, body.as_str()), (404, "Query not found"), "{path}");
    }
    let upd = a.put(
        &format!("/v1/query/{ghost}"),
        r#"{"Service":{"Service":"r"}}"#,
    );
    assert_eq!(upd, (404, "Query not found".into()));
    assert_eq!(
        a.delete(&format!("/v1/query/{ghost}")),
        (404, "Query not found".into())
    );
    let (s, _, body) = a.get("/v1/query?dc=elsewhere");
    assert_eq!(s, 500);
    assert!(body.contains("No path to datacenter"), "{body}");
}

#[test]
fn a_query_goes_with_its_session_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = Agent::durable(dir.path());
    let sid = session(&a);
    let doomed = create(&a, &docs_query(&sid));
    let kept = create(&a, r#"{"Name":"kept","Service":{"Service":"redis"}}"#);
    assert_eq!(a.put(&format!("/v1/session/destroy/{sid}"), "").0, 200);
    let (s, _, _) = a.get(&format!("/v1/query/{doomed}"));
    assert_eq!(s, 404, "the session's query is deleted with it");
    a.terminate();

    let a = Agent::durable(dir.path());
    let got = a.get_json(&format!("/v1/query/{kept}"));
    assert_eq!(got[0]["Name"], "kept");
    assert_eq!(a.get_json("/v1/query").as_array().map(Vec::len), Some(1));
}

#[test]
fn a_client_agent_forwards_queries_and_near_agent_means_the_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Agent::durable(&dir.path().join("srv"));
    let client = Agent::client_of(
        &dir.path().join("cli"),
        "web-1",
        &server.serf,
        &["-hcl", "sync_coordinate_interval_min = \"500ms\""],
    );
    let svc = r#"{"Name":"redis","ID":"redis","Port":7000}"#;
    assert_eq!(client.put("/v1/agent/service/register", svc).0, 200);
    assert_eq!(server.put("/v1/agent/service/register", svc).0, 200);
    let id = create(
        &client,
        r#"{"Name":"near-me","Service":{"Service":"redis","Near":"_agent"}}"#,
    );
    assert_eq!(
        server.get_json(&format!("/v1/query/{id}"))[0]["Name"],
        "near-me"
    );
    wait_until(
        CONVERGE,
        "both instances and the client's coordinate",
        || {
            client.get("/v1/coordinate/node/web-1").0 == 200
                && executed(&client, "/v1/query/near-me/execute").len() == 2
        },
    );
    for _ in 0..5 {
        let v = client.get_json("/v1/query/near-me/execute");
        assert_eq!(v["Nodes"][0]["Node"]["Node"], "web-1", "{v}");
        let v = server.get_json("/v1/query/near-me/execute");
        assert_eq!(v["Nodes"][0]["Node"]["Node"], "durable", "{v}");
    }
}
