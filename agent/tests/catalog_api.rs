//! Catalog, health, KV and operator reads against a real `meridian agent -dev`, as Consul
//! answers them: `filter` on every read that takes it, the Connect endpoints with the mesh
//! off, unknown peers, the raft configuration index, WAN coordinates and usage.

mod common;

use common::Agent;
use serde_json::{Value, json};

fn register(a: &Agent, node: &str, addr: &str, service: Value) {
    let body = json!({ "Node": node, "Address": addr, "Service": service });
    assert_eq!(
        a.put("/v1/catalog/register", body.to_string()),
        (200, "true".into())
    );
}

/// Percent-encodes a filter expression for a query string.
fn q(expr: &str) -> String {
    form_urlencoded::byte_serialize(expr.as_bytes()).collect()
}

/// `web` on two nodes, tagged `prod` and `staging`.
fn two_webs(a: &Agent) {
    register(
        a,
        "n1",
        "10.1.0.1",
        json!({"Service": "web", "Tags": ["prod"]}),
    );
    register(
        a,
        "n2",
        "10.1.0.2",
        json!({"Service": "web", "Tags": ["staging"]}),
    );
    register(
        a,
        "n2",
        "10.1.0.2",
        json!({"Service": "db", "Tags": ["primary"]}),
    );
}

#[test]
fn catalog_services_filter_keeps_only_matching_instances_tags() {
    let a = Agent::dev();
    two_webs(&a);
    let all = a.get_json("/v1/catalog/services");
    assert_eq!(all["web"], json!(["prod", "staging"]));
    let prod = a.get_json(&format!(
        "/v1/catalog/services?filter={}",
        q(r#""prod" in ServiceTags"#)
    ));
    assert_eq!(prod, json!({"web": ["prod"]}));
    // Rows are service-instance rows: node fields are there too.
    let on_n2 = a.get_json(&format!("/v1/catalog/services?filter={}", q("Node == n2")));
    assert_eq!(on_n2, json!({"web": ["staging"], "db": ["primary"]}));
}

#[test]
fn catalog_node_filter_applies_to_each_service_of_the_node() {
    let a = Agent::dev();
    two_webs(&a);
    let node = a.get_json(&format!(
        "/v1/catalog/node/n2?filter={}",
        q("Service == web")
    ));
    assert_eq!(node["Node"]["Node"], "n2");
    let ids: Vec<&String> = node["Services"].as_object().expect("map").keys().collect();
    assert_eq!(ids, ["web"]);
    let none = a.get_json(&format!(
        "/v1/catalog/node/n2?filter={}",
        q("Service == nope")
    ));
    assert_eq!(none["Services"], json!({}));
    let list = a.get_json(&format!(
        "/v1/catalog/node-services/n2?filter={}",
        q("primary in Tags")
    ));
    assert_eq!(list["Services"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["Services"][0]["Service"], "db");
}

#[test]
fn malformed_filter_is_a_400_on_every_endpoint_that_takes_one() {
    let a = Agent::dev();
    two_webs(&a);
    let bad = q("not a valid expression((");
    for path in [
        "/v1/catalog/nodes",
        "/v1/catalog/services",
        "/v1/catalog/service/web",
        "/v1/catalog/connect/web",
        "/v1/catalog/node/n1",
        "/v1/catalog/node-services/n1",
        "/v1/catalog/gateway-services/gw",
        "/v1/health/service/web",
        "/v1/health/connect/web",
        "/v1/health/ingress/web",
        "/v1/health/checks/web",
        "/v1/health/node/n1",
        "/v1/health/state/any",
    ] {
        let (code, _, body) = a.get(&format!("{path}?filter={bad}"));
        assert_eq!(code, 400, "{path}: {body}");
        assert!(body.contains("filter"), "{path}: {body}");
    }
}

#[test]
fn connect_and_ingress_reads_answer_empty_with_read_headers() {
    let a = Agent::dev();
    two_webs(&a);
    let good = q(r#""prod" in ServiceTags"#);
    for path in [
        "/v1/catalog/connect/web".to_string(),
        format!("/v1/catalog/connect/web?filter={good}&merge-central-config"),
        "/v1/catalog/connect/web?peer=elsewhere".to_string(),
        "/v1/health/connect/web?passing".to_string(),
        "/v1/health/ingress/web".to_string(),
        "/v1/catalog/gateway-services/ingress-gateway-1".to_string(),
    ] {
        let (code, h, body) = a.get(&path);
        assert_eq!((code, body.as_str()), (200, "[]"), "{path}");
        for name in [
            "X-Consul-Index",
            "X-Consul-KnownLeader",
            "X-Consul-LastContact",
        ] {
            assert!(h.contains_key(name), "{path}: no {name}");
        }
    }
    // The connect read blocks on the nodes/services tables, as Consul's falls back to them.
    let (_, h, _) = a.get("/v1/catalog/connect/web");
    let (_, hs, _) = a.get("/v1/catalog/services");
    assert_eq!(h["X-Consul-Index"], hs["X-Consul-Index"]);
    let (_, h, _) = a.get("/v1/health/ingress/web");
    assert_eq!(h["X-Consul-Index"], "1");
}

#[test]
fn unknown_peer_finds_nothing_and_merge_central_config_is_accepted() {
    let a = Agent::dev();
    two_webs(&a);
    for path in [
        "/v1/catalog/service/web?peer=unknown-peer",
        "/v1/health/service/web?peer=unknown-peer",
    ] {
        let (code, h, body) = a.get(path);
        assert_eq!((code, body.as_str()), (200, "[]"), "{path}");
        assert!(h.contains_key("X-Consul-Index"), "{path}");
    }
    let rows = a.get_json("/v1/catalog/service/web?merge-central-config");
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    let rows = a.get_json("/v1/health/service/web?merge-central-config&peer=");
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
}

#[test]
fn kv_without_a_key_needs_recurse_or_keys() {
    let a = Agent::dev();
    assert_eq!(a.put("/v1/kv/k", "v"), (200, "true".into()));
    for path in ["/v1/kv/", "/v1/kv"] {
        let (code, _, body) = a.get(path);
        assert_eq!((code, body.as_str()), (400, "Missing key name"), "{path}");
        assert_eq!(a.delete(path), (400, "Missing key name".into()), "{path}");
    }
    assert_eq!(a.get_json("/v1/kv/?keys"), json!(["k"]));
    assert_eq!(a.get_json("/v1/kv/?recurse")[0]["Key"], "k");
}

#[test]
fn raft_configuration_index_is_the_membership_entry_not_the_last_write() {
    let a = Agent::dev();
    let before = a.get_json("/v1/operator/raft/configuration");
    assert_eq!(before["Index"], 0, "{before}");
    assert_eq!(before["Servers"][0]["Leader"], true);
    assert_eq!(a.put("/v1/kv/x", "1"), (200, "true".into()));
    let after = a.get_json("/v1/operator/raft/configuration");
    assert_eq!(after["Index"], before["Index"]);
}

#[test]
fn coordinate_datacenters_lists_the_local_servers_and_their_names_take_updates() {
    let a = Agent::dev_named("srv-a", &[]);
    let dcs = a.get_json("/v1/coordinate/datacenters");
    assert_eq!(dcs.as_array().map(Vec::len), Some(1), "{dcs}");
    let dc = &dcs[0];
    assert_eq!(
        (dc["Datacenter"].as_str(), dc["AreaID"].as_str()),
        (Some("dc1"), Some("wan"))
    );
    assert_eq!(dc["Coordinates"][0]["Node"], "srv-a", "{dc}");
    assert!(dc["Coordinates"][0]["Coord"]["Vec"].is_array(), "{dc}");

    let coord = json!({"Adjustment": 0, "Error": 1.5, "Height": 0, "Vec": [0,0,0,0,0,0,0,0.25]});
    let body = json!({"Node": "srv-a", "Coord": coord});
    assert_eq!(
        a.put("/v1/coordinate/update", body.to_string()),
        (200, "true".into())
    );
    let rows = a.get_json("/v1/coordinate/node/srv-a");
    assert_eq!(rows[0]["Coord"]["Vec"][7], 0.25, "{rows}");
    // As in Consul, an update for a node the catalog does not know is accepted and dropped.
    let ghost = json!({"Node": "ghost", "Coord": coord});
    assert_eq!(
        a.put("/v1/coordinate/update", ghost.to_string()),
        (200, "true".into())
    );
    assert_eq!(a.get("/v1/coordinate/node/ghost").0, 404);
}

#[test]
fn operator_usage_counts_the_catalog() {
    let a = Agent::dev();
    two_webs(&a);
    let proxy = json!({"Service": "web-proxy", "Kind": "connect-proxy", "Port": 21000});
    register(&a, "n1", "10.1.0.1", proxy);
    for path in ["/v1/operator/usage", "/v1/operator/usage?global&stale"] {
        let (code, h, body) = a.get(path);
        assert_eq!(code, 200, "{path}: {body}");
        let u: Value = serde_json::from_str(&body).expect("json");
        let dc1 = &u["Usage"]["dc1"];
        // consul + web + db + web-proxy; consul's instance is not billable, the proxy neither.
        assert_eq!(dc1["Services"], 4, "{u}");
        assert_eq!(dc1["ServiceInstances"], 5, "{u}");
        assert_eq!(dc1["BillableServiceInstances"], 3, "{u}");
        assert_eq!(dc1["ConnectServiceInstances"]["connect-proxy"], 1, "{u}");
        assert_eq!(dc1["ConnectServiceInstances"]["mesh-gateway"], 0, "{u}");
        assert_eq!(dc1["Nodes"], 3, "{u}");
        assert_eq!(u["KnownLeader"], true);
        assert_eq!(u["ResultsFilteredByACLs"], false);
        let index = u["Index"].as_u64().expect("Index");
        assert_eq!(
            h["X-Consul-Index"].to_str().ok(),
            Some(index.to_string().as_str())
        );
    }
}
