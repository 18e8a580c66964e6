//! ACL enforcement on the operator families (reference/acl.md §5.3 rows Operator,
//! Status/Snapshot, Mesh; checklist 32's snapshot part), on config entries, and on
//! prepared queries answered over DNS (§5.6: the query's captured token, else the DNS
//! token) and through the failover hop. Real `meridian` processes
//! (see `common::acl`), DNS asked with `dig`.

mod common;

use std::time::Duration;

use common::acl::*;
use common::{Agent, wait_until};
use serde_json::{Value, json};

/// The anonymous token's refusal of an unlabeled permission (`operator:read`, ...).
fn anon(perm: &str) -> String {
    format!(
        "Permission denied: anonymous token lacks permission '{perm}'. The anonymous token is \
         used implicitly when a request does not specify a token."
    )
}

/// A token's refusal of an unlabeled permission.
fn lacks(accessor: &str, perm: &str) -> String {
    format!("Permission denied: token with AccessorID '{accessor}' lacks permission '{perm}'")
}

/// A deny-by-default server with the initial management token (and `extra` in the
/// `tokens` block), ready for requests.
fn deny_server(dir: &std::path::Path, tokens: &str) -> Agent {
    let a = acl_server(
        dir,
        "op1",
        &format!(
            "  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{MGMT}\"\n{tokens}\n  }}"
        ),
    );
    wait_initialized(&a);
    a
}

/// A policy named `name` with `rules` and a token holding it: (accessor, secret).
fn token(a: &Agent, name: &str, rules: &str) -> (String, String) {
    let p = json!({"Name": name, "Rules": rules});
    ok(a, MGMT, "PUT", "/v1/acl/policy", Some(p));
    let t = json!({"Description": name, "Policies": [{"Name": name}]});
    let t = ok(a, MGMT, "PUT", "/v1/acl/token", Some(t));
    let field = |f: &str| t[f].as_str().expect(f).to_string();
    (field("AccessorID"), field("SecretID"))
}

/// A request as `token` ("" sends none) with an optional JSON body: (status, filtered
/// header present, body).
fn req(
    a: &Agent,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, bool, String) {
    let headers: Vec<(&str, &str)> = if token.is_empty() {
        vec![]
    } else {
        vec![("X-Consul-Token", token)]
    };
    let (s, h, b) = call(a, method, path, &headers, body);
    (s, h.get("X-Consul-Results-Filtered-By-ACLs").is_some(), b)
}

/// Every operator endpoint, as (method, path, body, permission it needs).
fn operator_endpoints() -> Vec<(&'static str, &'static str, Option<Value>, &'static str)> {
    let autopilot = json!({"CleanupDeadServers": true});
    let key = json!({"Key": "not-a-key"});
    vec![
        (
            "GET",
            "/v1/operator/raft/configuration",
            None,
            "operator:read",
        ),
        (
            "DELETE",
            "/v1/operator/raft/peer?id=nope",
            None,
            "operator:write",
        ),
        (
            "POST",
            "/v1/operator/raft/transfer-leader",
            None,
            "operator:write",
        ),
        (
            "GET",
            "/v1/operator/autopilot/configuration",
            None,
            "operator:read",
        ),
        (
            "PUT",
            "/v1/operator/autopilot/configuration",
            Some(autopilot),
            "operator:write",
        ),
        (
            "GET",
            "/v1/operator/autopilot/health",
            None,
            "operator:read",
        ),
        ("GET", "/v1/operator/autopilot/state", None, "operator:read"),
        ("GET", "/v1/operator/usage", None, "operator:read"),
        ("GET", "/v1/operator/federation", None, "operator:read"),
        (
            "DELETE",
            "/v1/operator/federation/datacenter/dc9",
            None,
            "operator:write",
        ),
        ("GET", "/v1/operator/keyring", None, "keyring:read"),
        (
            "POST",
            "/v1/operator/keyring",
            Some(key.clone()),
            "keyring:write",
        ),
        (
            "PUT",
            "/v1/operator/keyring",
            Some(key.clone()),
            "keyring:write",
        ),
        ("DELETE", "/v1/operator/keyring", Some(key), "keyring:write"),
        ("GET", "/v1/snapshot", None, "acl:write"),
        ("PUT", "/v1/snapshot", None, "acl:write"),
    ]
}

/// §5.3 Operator and Status/Snapshot: under deny every operator, keyring and snapshot
/// endpoint refuses the anonymous token with Consul's text; `operator`/`keyring` rules open
/// exactly their reads or writes; snapshot needs `acl = "write"` whatever else the token
/// holds (checklist 32); `status/*` stays open.
#[test]
fn operator_keyring_and_snapshot_need_their_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path(), "");
    for (method, path, body, perm) in operator_endpoints() {
        let (s, _, b) = req(&a, "", method, path, body);
        assert_eq!(
            (s, b.as_str()),
            (403, anon(perm).as_str()),
            "{method} {path}"
        );
    }
    // status/* needs no token, as in Consul.
    for path in ["/v1/status/leader", "/v1/status/peers"] {
        let (s, _, b) = req(&a, "", "GET", path, None);
        assert_eq!(s, 200, "{path}: {b}");
        assert!(b.contains(':'), "{path} answers an address: {b}");
    }

    let (op_r, op_r_secret) = token(&a, "op-read", "operator = \"read\"");
    let (_, op_w_secret) = token(&a, "op-write", "operator = \"write\"");
    let (kr_r, kr_r_secret) = token(&a, "kr-read", "keyring = \"read\"");
    let (_, kr_w_secret) = token(&a, "kr-write", "keyring = \"write\"");
    for (method, path, body, perm) in operator_endpoints() {
        let (read, write) = match perm.split(':').next() {
            Some("operator") => (&op_r_secret, &op_w_secret),
            Some("keyring") => (&kr_r_secret, &kr_w_secret),
            // Neither operator nor keyring write opens the snapshot.
            _ => (&op_w_secret, &kr_w_secret),
        };
        let (s, _, b) = req(&a, write, method, path, body.clone());
        if perm == "acl:write" {
            assert_eq!(s, 403, "{method} {path}: {b}");
            assert!(b.ends_with("lacks permission 'acl:write'"), "{b}");
        } else {
            assert_ne!(s, 403, "{method} {path} with write: {b}");
        }
        let (s, _, b) = req(&a, read, method, path, body);
        if perm.ends_with(":read") {
            assert_ne!(s, 403, "{method} {path} with read: {b}");
        } else {
            assert_eq!(s, 403, "{method} {path} with read: {b}");
            let accessor = if perm.starts_with("keyring") {
                &kr_r
            } else {
                &op_r
            };
            if perm != "acl:write" {
                assert_eq!(b, lacks(accessor, perm), "{method} {path}");
            }
        }
    }
    // With the rights the endpoints answer as before: the configuration changes, the
    // keyring lists and the snapshot is taken (not 403).
    let (s, _, b) = req(
        &a,
        &op_w_secret,
        "PUT",
        "/v1/operator/autopilot/configuration",
        Some(json!({"MaxTrailingLogs": 321})),
    );
    assert_eq!((s, b.as_str()), (200, "true"));
    let v = ok(
        &a,
        &op_r_secret,
        "GET",
        "/v1/operator/autopilot/configuration",
        None,
    );
    assert_eq!(v["MaxTrailingLogs"], 321);
    let v = ok(
        &a,
        &op_r_secret,
        "GET",
        "/v1/operator/raft/configuration",
        None,
    );
    assert_eq!(v["Servers"][0]["Node"], "op1", "{v}");
    // The snapshot answers with acl:write: a gzipped archive.
    let (s, _, b) = req(&a, MGMT, "GET", "/v1/snapshot", None);
    assert_eq!(s, 200, "snapshot with the management token");
    assert!(!b.is_empty(), "the snapshot has a body");

    // The CLI sends its -token and prints Consul's 403 text on denial.
    let out = acl_cli(&a, &[], &["operator", "raft", "list-peers"]);
    assert!(!out.status.success());
    let want = format!("Unexpected response code: 403 ({})", anon("operator:read"));
    assert!(common::text(&out).contains(&want), "{}", common::text(&out));
    let out = acl_cli(
        &a,
        &[],
        &["operator", "raft", "list-peers", "-token", &op_r_secret],
    );
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("op1"));
    let token_file = dir.path().join("op-read.token");
    std::fs::write(&token_file, &op_r_secret).expect("token file");
    let tf = token_file.to_string_lossy().to_string();
    let out = acl_cli(
        &a,
        &[],
        &["operator", "autopilot", "get-config", "-token-file", &tf],
    );
    assert!(out.status.success(), "{}", common::text(&out));
    let out = acl_cli(
        &a,
        &[],
        &[
            "operator",
            "autopilot",
            "set-config",
            "-max-trailing-logs",
            "5",
            "-token",
            &op_r_secret,
        ],
    );
    assert!(!out.status.success());
    let want = lacks(&op_r, "operator:write");
    assert!(common::text(&out).contains(&want), "{}", common::text(&out));
    let out = acl_cli(&a, &[], &["keyring", "-list"]);
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains(&anon("keyring:read")),
        "{}",
        common::text(&out)
    );
    let out = acl_cli(&a, &[], &["keyring", "-list", "-token", &kr_r_secret]);
    assert!(
        !common::text(&out).contains("Permission denied"),
        "{}",
        common::text(&out)
    );

    // A client agent answers the keyring itself (its token resolved through the server)
    // and forwards the operator endpoints with the caller's token.
    let c = acl_client(&dir.path().join("c1"), "c1", &a);
    let keyring = "/v1/operator/keyring";
    let (s, _, b) = req(&c, "", "GET", keyring, None);
    assert_eq!((s, b.as_str()), (403, anon("keyring:read").as_str()));
    assert_ne!(req(&c, &kr_r_secret, "GET", keyring, None).0, 403);
    let (s, _, b) = req(&c, &op_r_secret, "GET", "/v1/operator/usage", None);
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = req(&c, &kr_r_secret, "GET", "/v1/operator/usage", None);
    assert_eq!((s, b), (403, lacks(&kr_r, "operator:read")));
}

/// §5.3 Mesh: config entries of a service need service rules on its name (reads denied
/// before existence, lists pruned); global kinds need `mesh` write, which falls back to
/// `operator`; proxy-defaults and mesh read like Consul's, with no token.
#[test]
fn config_entries_follow_service_and_mesh_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path(), "");
    let sd = |name: &str| json!({"Kind": "service-defaults", "Name": name, "Protocol": "http"});
    let (s, _, b) = req(&a, "", "PUT", "/v1/config", Some(sd("web")));
    assert_eq!(s, 403, "{b}");
    assert!(
        b.contains("lacks permission 'service:write' on \"web\""),
        "{b}"
    );
    let (s, _, b) = req(&a, "", "GET", "/v1/config/service-defaults/web", None);
    assert_eq!(s, 403, "missing and unreadable is 403, not 404: {b}");
    assert!(b.contains("'service:read' on \"web\""), "{b}");
    let pd = json!({"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}});
    let (s, _, b) = req(&a, "", "PUT", "/v1/config", Some(pd.clone()));
    assert_eq!((s, b.as_str()), (403, anon("mesh:write").as_str()));
    for name in ["web", "db"] {
        assert_eq!(
            ok(&a, MGMT, "PUT", "/v1/config", Some(sd(name))),
            json!(true)
        );
    }
    assert_eq!(
        req(&a, "", "GET", "/v1/config/service-defaults", None),
        (200, false, "[]".into())
    );

    let (web_w, web) = token(&a, "web-w", "service \"web\" { policy = \"write\" }");
    let (s, filtered, b) = req(&a, &web, "GET", "/v1/config/service-defaults", None);
    assert_eq!((s, filtered), (200, true), "{b}");
    let v: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}"));
    let names: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["Name"].as_str())
        .collect();
    assert_eq!(names, ["web"]);
    assert_eq!(
        ok(&a, &web, "GET", "/v1/config/service-defaults/web", None)["Protocol"],
        "http"
    );
    assert_eq!(
        ok(&a, &web, "PUT", "/v1/config", Some(sd("web"))),
        json!(true)
    );
    let (s, _, b) = req(&a, &web, "DELETE", "/v1/config/service-defaults/db", None);
    assert_eq!(s, 403, "{b}");
    assert!(
        b.starts_with(&format!(
            "Permission denied: token with AccessorID '{web_w}'"
        )),
        "{b}"
    );
    let (s, _, b) = req(&a, &web, "PUT", "/v1/config", Some(pd.clone()));
    assert_eq!((s, b), (403, lacks(&web_w, "mesh:write")));

    // Global kinds: mesh write, or operator write when no mesh rule is set.
    let (_, mesh) = token(&a, "mesh-w", "mesh = \"write\"");
    assert_eq!(ok(&a, &mesh, "PUT", "/v1/config", Some(pd)), json!(true));
    let (_, op) = token(&a, "op-w", "operator = \"write\"");
    let m = json!({"Kind": "mesh", "TransparentProxy": {"MeshDestinationsOnly": true}});
    assert_eq!(ok(&a, &op, "PUT", "/v1/config", Some(m)), json!(true));
    assert_eq!(
        ok(&a, "", "GET", "/v1/config/proxy-defaults/global", None)["Name"],
        "global"
    );
    assert_eq!(
        ok(&a, "", "GET", "/v1/config/mesh/mesh", None)["Kind"],
        "mesh"
    );
    assert_eq!(
        req(&a, &web, "DELETE", "/v1/config/service-defaults/web", None).0,
        200
    );
}

const DNS_SECRET: &str = "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f";

/// `dig +short NAME` against `a`, sorted.
fn dig(a: &Agent, name: &str) -> Vec<String> {
    let out = std::process::Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &a.dns.to_string(),
            "+time=3",
            "+tries=1",
            "+short",
        ])
        .arg(name)
        .output()
        .expect("dig (bind9-dnsutils) must be installed");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// §5.6: a `.query.consul` lookup filters with the query's captured token when it has one
/// (answered although the DNS token cannot read the service, and the reverse), else with
/// the DNS token; and the failover hop (`/v1/internal/query/execute`) filters with the
/// token it is given.
#[test]
fn dns_prepared_queries_filter_with_the_captured_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path(), &format!("    dns = \"{DNS_SECRET}\""));
    for (node, ip, svc) in [("n-web", "10.9.1.1", "web"), ("n-db", "10.9.1.2", "db")] {
        let body = json!({"Node": node, "Address": ip, "Service": {"Service": svc, "Port": 80}});
        ok(&a, MGMT, "PUT", "/v1/catalog/register", Some(body));
    }
    let nodes = "node_prefix \"\" { policy = \"read\" }\nquery_prefix \"\" { policy = \"read\" }";
    let p =
        json!({"Name": "dns", "Rules": format!("{nodes}\nservice \"db\" {{ policy = \"read\" }}")});
    ok(&a, MGMT, "PUT", "/v1/acl/policy", Some(p));
    ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"SecretID": DNS_SECRET, "Policies": [{"Name": "dns"}]})),
    );
    let (_, web_reader) = token(
        &a,
        "web-r",
        &format!("{nodes}\nservice \"web\" {{ policy = \"read\" }}"),
    );
    let (_, nothing) = token(&a, "no-svc", nodes);
    let query = |name: &str, svc: &str, token: &str| {
        let q = json!({"Name": name, "Token": token, "Service": {"Service": svc}});
        ok(&a, MGMT, "POST", "/v1/query", Some(q));
    };
    query("web-cap", "web", &web_reader);
    query("web-plain", "web", "");
    query("db-cap", "db", &nothing);
    query("db-plain", "db", "");

    wait_until(Duration::from_secs(20), "db over DNS", || {
        dig(&a, "db.service.consul") == ["10.9.1.2"]
    });
    assert!(
        dig(&a, "web.service.consul").is_empty(),
        "the DNS token cannot read web"
    );
    assert_eq!(
        dig(&a, "web-cap.query.consul"),
        ["10.9.1.1"],
        "the captured token can"
    );
    assert!(
        dig(&a, "web-plain.query.consul").is_empty(),
        "no captured token: the DNS token's view"
    );
    assert!(
        dig(&a, "db-cap.query.consul").is_empty(),
        "the captured token cannot read db"
    );
    assert_eq!(dig(&a, "db-plain.query.consul"), ["10.9.1.2"]);

    // The failover hop runs a definition it is given: filtered with the request's token.
    let def = json!({"Name": "x", "Service": {"Service": "web"}}).to_string();
    let hop = |token: &str| {
        let mut r = reqwest::blocking::Client::new()
            .get(format!("{}/v1/internal/query/execute", a.url))
            .body(def.clone());
        if !token.is_empty() {
            r = r.header("X-Consul-Token", token);
        }
        let r = r.send().expect("request");
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().expect("json");
        v["Nodes"].as_array().map_or(usize::MAX, Vec::len)
    };
    assert_eq!(hop(""), 0, "anonymous sees no instance");
    assert_eq!(hop(&nothing), 0);
    assert_eq!(hop(&web_reader), 1);
}

/// A prepared query that fails over to another datacenter: dc2's answer (ACLs off there, so
/// unfiltered) is filtered in dc1 with the executing token, over HTTP and DNS, before it
/// counts as an answer.
#[test]
fn failover_answers_are_filtered_with_the_executing_token() {
    use common::federation::{Gateway, wait_federated};
    let dir = tempfile::tempdir().expect("tempdir");
    let s1_dir = dir.path().join("s1");
    std::fs::create_dir_all(&s1_dir).expect("dir");
    let file = s1_dir.join("acl.hcl");
    let hcl = format!(
        "acl {{\n  enabled = true\n  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{MGMT}\"\n    dns = \"{DNS_SECRET}\"\n  }}\n}}\n"
    );
    std::fs::write(&file, hcl).expect("config");
    let file = file.to_string_lossy().to_string();
    let args = ["-datacenter", "dc1", "-config-file", &file];
    let s1 = Agent::server_named(&s1_dir.join("data"), "s1", &args);
    let s2 = Agent::server_named(&dir.path().join("s2"), "s2", &["-datacenter", "dc2"]);
    let g1 = Gateway::start_with("dc1", &dir.path().join("g1"), &s1.serf, None, &[]);
    let g2 = Gateway::start_with(
        "dc2",
        &dir.path().join("g2"),
        &s2.serf,
        Some(&g1.serf_wan),
        &[],
    );
    wait_initialized(&s1);
    wait_federated(&s1);
    let body =
        json!({"Node": "n2", "Address": "10.2.0.9", "Service": {"Service": "web", "Port": 80}});
    assert_eq!(s2.put("/v1/catalog/register", body.to_string()).0, 200);

    let q = json!({"Name": "webq", "Service": {"Service": "web", "Failover": {"Datacenters": ["dc2"]}}});
    ok(&s1, MGMT, "POST", "/v1/query", Some(q));
    let svc_only =
        "query_prefix \"\" { policy = \"read\" }\nservice_prefix \"\" { policy = \"read\" }";
    let (_, blind) = token(&s1, "svc-only", svc_only);
    let (_, sees) = token(
        &s1,
        "sees",
        &format!("{svc_only}\nnode_prefix \"\" {{ policy = \"read\" }}"),
    );
    let execute = |t: &str| ok(&s1, t, "GET", "/v1/query/webq/execute", None);
    wait_until(Duration::from_secs(30), "webq to fail over to dc2", || {
        execute(&sees)["Datacenter"] == "dc2"
    });
    let r = execute(&sees);
    assert_eq!(r["Nodes"][0]["Node"]["Node"], "n2", "{r}");
    let r = execute(&blind);
    assert_eq!(
        r["Nodes"],
        json!([]),
        "dc2's instance is on a node the token cannot read: {r}"
    );
    assert_eq!(
        r["Datacenter"], "dc1",
        "no datacenter answered with a visible instance: {r}"
    );
    // DNS: the DNS token cannot read nodes, then can.
    assert!(dig(&s1, "webq.query.consul").is_empty());
    ok(
        &s1,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"SecretID": DNS_SECRET, "Policies": [{"Name": "sees"}]})),
    );
    wait_until(Duration::from_secs(20), "webq over DNS", || {
        dig(&s1, "webq.query.consul") == ["10.2.0.9"]
    });
    drop((g2, g1));
}

/// Leader-only operator requests reached on a follower are re-run on the leader with the
/// caller's token: a follower of a 3-server deny cluster answers autopilot health and
/// transfers leadership for a token that may, and refuses one that may not.
#[test]
fn a_follower_runs_operator_requests_on_the_leader_as_the_caller() {
    use common::cluster::{agreed_leader, index_of, ports};
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("acl.hcl");
    let hcl = format!(
        "acl {{\n  enabled = true\n  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{MGMT}\"\n  }}\n}}\n"
    );
    std::fs::write(&file, hcl).expect("config");
    let file = file.to_string_lossy().to_string();
    let p: Vec<_> = (0..3).map(|_| ports()).collect();
    let join = format!("127.0.0.1:{}", p[0].serf);
    // Each start waits for a leader, which needs the others: start them together.
    let servers: Vec<Option<Agent>> = std::thread::scope(|s| {
        let handles: Vec<_> = p
            .iter()
            .enumerate()
            .map(|(i, ports)| {
                let (dir, file, join) = (dir.path(), &file, &join);
                s.spawn(move || {
                    let name = format!("s{i}");
                    let data = dir.join(&name).to_string_lossy().to_string();
                    let args = [
                        "agent",
                        "-server",
                        "-bootstrap-expect",
                        "3",
                        "-data-dir",
                        &data,
                        "-node",
                        &name,
                        "-bind",
                        "127.0.0.1",
                        "-client",
                        "127.0.0.1",
                        "-http-port",
                        "0",
                        "-serf-lan-port",
                        &ports.serf,
                        "-server-port",
                        &ports.server,
                        "-log-json",
                        "-retry-join",
                        join,
                        "-retry-interval",
                        "200ms",
                        "-config-file",
                        file,
                    ];
                    Agent::start(&args)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| Some(h.join().expect("server started")))
            .collect()
    });
    let leader = agreed_leader(&servers, "a leader", |_| true);
    let at = |i: usize| servers[i % 3].as_ref().expect("a server");
    let (first, follower) = (at(index_of(&p, &leader)), at(index_of(&p, &leader) + 1));
    wait_initialized(first);
    // Written on the leader: an ACL write on a follower reads its result back stale and
    // can answer 500 "missing after its write" (acl_policy.rs / acl_token.rs).
    let (op_r, op_r_secret) = token(first, "op-read", "operator = \"read\"");
    let (_, op_w_secret) = token(first, "op-write", "operator = \"write\"");
    wait_until(
        Duration::from_secs(20),
        "the tokens on the follower",
        || {
            with(
                follower,
                &op_w_secret,
                "GET",
                "/v1/operator/raft/configuration",
                None,
            )
            .0 == 200
        },
    );
    let health = "/v1/operator/autopilot/health";
    let (s, _, b) = req(follower, "", "GET", health, None);
    assert_eq!((s, b.as_str()), (403, anon("operator:read").as_str()));
    let (s, _, b) = req(follower, &op_r_secret, "GET", health, None);
    assert!(s == 200 || s == 429, "{s} {b}");
    assert!(b.contains("\"Servers\""), "answered by the leader: {b}");
    let transfer = "/v1/operator/raft/transfer-leader";
    let (s, _, b) = req(follower, &op_r_secret, "POST", transfer, None);
    assert_eq!((s, b), (403, lacks(&op_r, "operator:write")));
    let (s, _, b) = req(follower, &op_w_secret, "POST", transfer, None);
    assert_eq!(s, 200, "{b}");
    agreed_leader(&servers, "a new leader", |l| l != leader);
}
