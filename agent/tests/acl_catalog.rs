//! ACL enforcement on the catalog, health and coordinate endpoints (reference/acl.md §5.3
//! rows Catalog, Health, Coordinate; §5.4; §5.7; checklist items 8, 9, 14, 34): reads are
//! pruned to what the token may read (before `?filter=`), marked
//! `X-Consul-Results-Filtered-By-ACLs: true` only when a token was given, never 403;
//! registrations and deregistrations are denied with Consul's texts; a blocking read keeps
//! the permissions it started with. Real `meridian` processes (see `common::acl`).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::acl::*;
use common::{Agent, wait_until};
use serde_json::{Value, json};

/// Consul's refusal of the anonymous token.
fn anon_denied(what: &str, name: &str) -> String {
    format!(
        "Permission denied: anonymous token lacks permission '{what}' on \"{name}\". \
         The anonymous token is used implicitly when a request does not specify a token."
    )
}

/// A deny-by-default server with the initial management token, ready for requests.
fn deny_server(dir: &std::path::Path) -> Agent {
    let a = acl_server(
        dir,
        "cat1",
        &format!(
            "  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{MGMT}\"\n  }}"
        ),
    );
    wait_initialized(&a);
    a
}

/// Creates a policy with `rules`; its ID.
fn policy(a: &Agent, name: &str, rules: &str) -> String {
    let p = ok(
        a,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(json!({"Name": name, "Rules": rules})),
    );
    p["ID"].as_str().expect("ID").to_string()
}

/// Creates policies with `rules` (one per item) and a token holding them; its secret.
fn token(a: &Agent, name: &str, rules: &[&str]) -> String {
    let links: Vec<Value> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let pname = format!("{name}-{i}");
            policy(a, &pname, r);
            json!({"Name": pname})
        })
        .collect();
    let t = ok(
        a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Description": name, "Policies": links})),
    );
    t["SecretID"].as_str().expect("secret").to_string()
}

/// A request as `token` ("" sends none): (status, filtered header present, body).
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
    let filtered = match h.get("X-Consul-Results-Filtered-By-ACLs") {
        Some(v) => {
            assert_eq!(v, "true", "the header is never false");
            true
        }
        None => false,
    };
    (s, filtered, b)
}

/// A GET as `token` expecting 200: (filtered header present, JSON body).
fn read(a: &Agent, token: &str, path: &str) -> (bool, Value) {
    let (s, filtered, b) = req(a, token, "GET", path, None);
    assert_eq!(s, 200, "GET {path}: {b}");
    let v = serde_json::from_str(&b).unwrap_or_else(|e| panic!("GET {path}: {e}: {b}"));
    (filtered, v)
}

/// The values of `field` in the rows of a JSON array.
fn column(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|r| r[field].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The names of a `/v1/catalog/services` map.
fn names(v: &Value) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not a map: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// `web` on n1 and n2 and `db` on n2, each with a check, plus a node check on n1 and LAN
/// coordinates for both nodes, all written with the management token.
fn seed(a: &Agent) {
    for (node, ip, svc) in [
        ("n1", "10.9.0.1", "web"),
        ("n2", "10.9.0.2", "web"),
        ("n2", "10.9.0.2", "db"),
    ] {
        let body = json!({
            "Node": node, "Address": ip,
            "Service": {"ID": svc, "Service": svc, "Port": 80},
            "Check": {"CheckID": format!("{svc}-check"), "Name": "up", "ServiceID": svc, "Status": "passing"},
        });
        ok(a, MGMT, "PUT", "/v1/catalog/register", Some(body));
    }
    let node_check = json!({"Node": "n1", "Address": "10.9.0.1",
        "Check": {"CheckID": "mem", "Name": "mem", "Status": "passing"}});
    ok(a, MGMT, "PUT", "/v1/catalog/register", Some(node_check));
    for node in ["n1", "n2"] {
        let c = json!({"Node": node, "Coord": {"Vec": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            "Error": 1.5, "Adjustment": 0.0, "Height": 0.00001}});
        ok(a, MGMT, "PUT", "/v1/coordinate/update", Some(c));
    }
    wait_until(Duration::from_secs(10), "both coordinates", || {
        let (s, _, b) = req(a, MGMT, "GET", "/v1/coordinate/nodes", None);
        s == 200 && b.contains("\"n1\"") && b.contains("\"n2\"")
    });
}

/// Item 8 and the acceptance slice: without a token under deny, no node, service, check or
/// coordinate is visible anywhere, lists are empty with no filtered header, and every
/// write is refused with Consul's anonymous text.
#[test]
fn anonymous_under_deny_sees_and_writes_nothing_in_the_catalog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path());
    seed(&a);
    let (_, everything) = read(&a, MGMT, "/v1/catalog/services");
    assert!(
        names(&everything).contains(&"web".to_string()),
        "{everything}"
    );

    // §7.8: 200 {} with no header for a tokenless request.
    assert_eq!(
        req(&a, "", "GET", "/v1/catalog/services", None),
        (200, false, "{}".into())
    );
    for path in [
        "/v1/catalog/nodes",
        "/v1/catalog/service/web",
        "/v1/health/service/web",
        "/v1/health/checks/web",
        "/v1/health/node/n1",
        "/v1/health/state/any",
        "/v1/coordinate/nodes",
        "/v1/catalog/services?stale",
        "/v1/health/service/web?dc=*",
    ] {
        let (filtered, v) = read(&a, "", path);
        let empty = v.as_array().is_some_and(Vec::is_empty)
            || v.as_object().is_some_and(serde_json::Map::is_empty);
        assert!(empty, "{path}: {v}");
        assert!(!filtered, "{path}: no header without a token");
    }
    assert_eq!(read(&a, "", "/v1/catalog/node/n1").1, Value::Null);
    assert_eq!(
        req(&a, "", "GET", "/v1/catalog/node-services/n1", None).0,
        404
    );
    assert_eq!(req(&a, "", "GET", "/v1/coordinate/node/n1", None).0, 404);
    assert_eq!(read(&a, "", "/v1/catalog/datacenters").1, json!(["dc1"]));
    // The gateways' copy of the whole catalog is no way around the pruning.
    let copy = "/v1/internal/federation/catalog";
    assert_eq!(
        req(&a, "", "GET", copy, None),
        (403, false, anon_denied("service:read", "all services"))
    );
    assert_eq!(req(&a, MGMT, "GET", copy, None).0, 200);

    // Writes: register, deregister, coordinate update; nothing changes.
    let reg = json!({"Node": "n3", "Address": "10.9.0.3"});
    assert_eq!(
        req(&a, "", "PUT", "/v1/catalog/register", Some(reg)),
        (403, false, anon_denied("node:write", "n3"))
    );
    let dereg = json!({"Node": "n1"});
    assert_eq!(
        req(&a, "", "PUT", "/v1/catalog/deregister", Some(dereg)),
        (403, false, anon_denied("node:write", "n1"))
    );
    let dereg_svc = json!({"Node": "n1", "ServiceID": "web"});
    assert_eq!(
        req(&a, "", "PUT", "/v1/catalog/deregister", Some(dereg_svc)),
        (403, false, anon_denied("service:write", "web"))
    );
    let coord = json!({"Node": "n1", "Coord": {"Vec": [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]}});
    assert_eq!(
        req(&a, "", "PUT", "/v1/coordinate/update", Some(coord)),
        (403, false, anon_denied("node:write", "n1"))
    );
    let (_, nodes) = read(&a, MGMT, "/v1/catalog/nodes");
    let nodes = column(&nodes, "Node");
    assert!(nodes.contains(&"n1".to_string()), "{nodes:?}");
    assert!(!nodes.contains(&"n3".to_string()), "{nodes:?}");
    assert_eq!(
        column(&read(&a, MGMT, "/v1/catalog/service/web").1, "Node"),
        ["n1", "n2"]
    );
}

/// Item 9 and the single-object reads: a token reads exactly its names, with the header;
/// pruning runs before `?filter=`; a node it may not read is `null`.
#[test]
fn tokens_see_only_what_they_may_read_with_the_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path());
    seed(&a);

    // §7.9: service "web" read sees web only (a services map needs service:read alone).
    let web = token(&a, "web", &["service \"web\" { policy = \"read\" }"]);
    let (filtered, v) = read(&a, &web, "/v1/catalog/services");
    assert_eq!((filtered, names(&v)), (true, vec!["web".to_string()]));
    // Without node:read, no instance of it.
    assert_eq!(read(&a, &web, "/v1/catalog/service/web"), (true, json!([])));

    // Node n1 and service web: one instance, checks of n1 only, n2 null.
    let n1web = token(
        &a,
        "n1web",
        &["service \"web\" { policy = \"read\" }\nnode \"n1\" { policy = \"read\" }"],
    );
    let (filtered, v) = read(&a, &n1web, "/v1/health/service/web");
    assert!(filtered);
    assert_eq!(column(&v, "Node").len(), 1, "{v}");
    assert_eq!(v[0]["Node"]["Node"], "n1", "{v}");
    let (filtered, v) = read(&a, &n1web, "/v1/catalog/service/web");
    assert_eq!(
        (filtered, column(&v, "Node")),
        (true, vec!["n1".to_string()])
    );
    let (filtered, v) = read(&a, &n1web, "/v1/health/checks/web");
    assert_eq!(
        (filtered, column(&v, "Node")),
        (true, vec!["n1".to_string()])
    );
    let (filtered, v) = read(&a, &n1web, "/v1/health/state/passing");
    let mut ids = column(&v, "CheckID");
    ids.sort();
    assert_eq!(
        (filtered, ids),
        (true, vec!["mem".to_string(), "web-check".to_string()])
    );
    let (filtered, v) = read(&a, &n1web, "/v1/coordinate/nodes");
    assert_eq!(
        (filtered, column(&v, "Node")),
        (true, vec!["n1".to_string()])
    );
    assert_eq!(read(&a, &n1web, "/v1/catalog/node/n2"), (true, Value::Null));
    let (s, filtered, _) = req(&a, &n1web, "GET", "/v1/catalog/node-services/n2", None);
    assert_eq!((s, filtered), (404, true));
    let (s, filtered, _) = req(&a, &n1web, "GET", "/v1/coordinate/node/n2", None);
    assert_eq!((s, filtered), (404, true));

    // §5.4: ACL pruning runs first, so a filter that keeps only n1 still says filtered.
    let (filtered, v) = read(
        &a,
        &n1web,
        "/v1/catalog/nodes?filter=Node%20%3D%3D%20%22n1%22",
    );
    assert_eq!(
        (filtered, column(&v, "Node")),
        (true, vec!["n1".to_string()])
    );

    // A node's services are pruned too: n2 with db unreadable shows web only.
    let n2web = token(
        &a,
        "n2web",
        &["service \"web\" { policy = \"read\" }\nnode \"n2\" { policy = \"read\" }"],
    );
    let (filtered, v) = read(&a, &n2web, "/v1/catalog/node/n2");
    let services: Vec<&String> = v["Services"]
        .as_object()
        .expect("Services")
        .keys()
        .collect();
    assert_eq!((filtered, services), (true, vec![&"web".to_string()]));
    let (filtered, v) = read(&a, &n2web, "/v1/catalog/node-services/n2");
    assert_eq!(
        (filtered, column(&v["Services"], "Service")),
        (true, vec!["web".to_string()])
    );

    // A token that reads everything sees everything, with no header.
    let all = token(
        &a,
        "all",
        &["service_prefix \"\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }"],
    );
    let (filtered, v) = read(&a, &all, "/v1/health/service/web");
    assert_eq!((filtered, column(&v, "Node").len()), (false, 2));
}

/// Item 14 and the register/deregister rules: a deny merged with a write on the same
/// prefix refuses every service registration; node:write is needed only for a new or
/// changed node; replacing a service by ID needs write on the replaced one; deregistering
/// a service needs write on it, the node node:write.
#[test]
fn registrations_need_write_on_what_they_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path());
    seed(&a);
    let put = |token: &str, path: &str, body: Value| req(&a, token, "PUT", path, Some(body));
    let denied = |s: (u16, bool, String), text: &str| {
        assert_eq!(s.0, 403, "{}", s.2);
        assert!(
            s.2.starts_with("Permission denied: token with AccessorID '"),
            "{}",
            s.2
        );
        assert!(s.2.ends_with(text), "{} (wanted {text})", s.2);
    };

    // §7.14: P1 write + P2 deny on the same prefix → deny, even with node:write.
    let split = token(
        &a,
        "split",
        &[
            "service_prefix \"\" { policy = \"write\" }\nnode_prefix \"\" { policy = \"write\" }",
            "service_prefix \"\" { policy = \"deny\" }",
        ],
    );
    for svc in ["web", "db", "other"] {
        let body = json!({"Node": "n1", "Address": "10.9.0.1", "Service": {"Service": svc}});
        denied(
            put(&split, "/v1/catalog/register", body),
            &format!("lacks permission 'service:write' on \"{svc}\""),
        );
    }

    // service "web" write, no node rights: web on an unchanged node is fine.
    let web = token(&a, "web-w", &["service \"web\" { policy = \"write\" }"]);
    let same_node = json!({"Node": "n1", "Address": "10.9.0.1",
        "Service": {"ID": "web", "Service": "web", "Port": 81}});
    assert_eq!(put(&web, "/v1/catalog/register", same_node).0, 200);
    let skip = json!({"Node": "n1", "SkipNodeUpdate": true,
        "Service": {"ID": "web2", "Service": "web", "Port": 82}});
    assert_eq!(put(&web, "/v1/catalog/register", skip).0, 200);
    // A changed or new node needs node:write.
    let moved =
        json!({"Node": "n1", "Address": "10.9.9.9", "Service": {"ID": "web", "Service": "web"}});
    denied(
        put(&web, "/v1/catalog/register", moved),
        "lacks permission 'node:write' on \"n1\"",
    );
    let fresh = json!({"Node": "n9", "Address": "10.9.0.9", "Service": {"Service": "web"}});
    denied(
        put(&web, "/v1/catalog/register", fresh),
        "lacks permission 'node:write' on \"n9\"",
    );
    // Taking over the ID of db on n2 needs write on db.
    let takeover =
        json!({"Node": "n2", "Address": "10.9.0.2", "Service": {"ID": "db", "Service": "web"}});
    denied(
        put(&web, "/v1/catalog/register", takeover),
        "lacks permission 'service:write' on \"db\"",
    );
    // Checks: a node check needs node:write; a check of web is fine.
    let node_check =
        json!({"Node": "n1", "Address": "10.9.0.1", "Check": {"CheckID": "disk", "Name": "disk"}});
    denied(
        put(&web, "/v1/catalog/register", node_check),
        "lacks permission 'node:write' on \"n1\"",
    );
    let web_check = json!({"Node": "n1", "Address": "10.9.0.1",
        "Check": {"CheckID": "web-2", "Name": "w", "ServiceID": "web"}});
    assert_eq!(put(&web, "/v1/catalog/register", web_check).0, 200);
    let db_check = json!({"Node": "n2", "Address": "10.9.0.2",
        "Check": {"CheckID": "db-2", "Name": "d", "ServiceID": "db"}});
    denied(
        put(&web, "/v1/catalog/register", db_check),
        "lacks permission 'service:write' on \"db\"",
    );

    // Deregistration: web's instance and its check yes; db, a node check, the node no.
    denied(
        put(
            &web,
            "/v1/catalog/deregister",
            json!({"Node": "n2", "ServiceID": "db"}),
        ),
        "lacks permission 'service:write' on \"db\"",
    );
    denied(
        put(
            &web,
            "/v1/catalog/deregister",
            json!({"Node": "n1", "CheckID": "mem"}),
        ),
        "lacks permission 'node:write' on \"n1\"",
    );
    denied(
        put(&web, "/v1/catalog/deregister", json!({"Node": "n1"})),
        "lacks permission 'node:write' on \"n1\"",
    );
    let web_check = json!({"Node": "n1", "CheckID": "web-2"});
    assert_eq!(put(&web, "/v1/catalog/deregister", web_check).0, 200);
    let web2 = json!({"Node": "n1", "ServiceID": "web2"});
    assert_eq!(put(&web, "/v1/catalog/deregister", web2).0, 200);
    let (_, v) = read(&a, MGMT, "/v1/catalog/node-services/n2");
    assert_eq!(column(&v["Services"], "ID").len(), 2, "db untouched: {v}");

    // node:write alone deregisters anything on its node.
    let n2 = token(&a, "n2-w", &["node \"n2\" { policy = \"write\" }"]);
    assert_eq!(
        put(
            &n2,
            "/v1/catalog/deregister",
            json!({"Node": "n2", "ServiceID": "db"})
        )
        .0,
        200
    );
    assert_eq!(
        put(&n2, "/v1/catalog/deregister", json!({"Node": "n2"})).0,
        200
    );
    let (_, v) = read(&a, MGMT, "/v1/catalog/nodes");
    assert!(!column(&v, "Node").contains(&"n2".to_string()), "{v}");
}

/// Sends a blocking `GET path` as `token` on a fresh connection and returns the stream to
/// read the answer from once the query is woken.
fn start_blocking(a: &Agent, token: &str, path: &str) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(&a.addr).expect("connect");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nX-Consul-Token: {token}\r\nConnection: close\r\n\r\n",
        a.addr
    );
    s.write_all(req.as_bytes()).expect("send");
    s
}

/// A `Connection: close` answer's (filtered header present, JSON body).
fn finish_blocking(mut s: std::net::TcpStream) -> (bool, Value) {
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a full answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let filtered = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("x-consul-results-filtered-by-acls: true")
    });
    // The body may be chunked: keep the JSON between the outer braces.
    let json = &body[body.find('{').expect("json")..=body.rfind('}').expect("json")];
    (filtered, serde_json::from_str(json).expect("json body"))
}

/// Item 34 (§5.7): a blocking catalog read begun before its token lost a permission wakes
/// with the permissions it began with; the next call has the new ones.
#[test]
fn a_blocking_read_keeps_the_permissions_it_began_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path());
    seed(&a);
    let reader = policy(&a, "reader", "service_prefix \"\" { policy = \"read\" }");
    let t = ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Description": "blocking", "Policies": [{"ID": reader}]})),
    );
    let t = t["SecretID"].as_str().expect("secret").to_string();

    let (_, h, _) = call(
        &a,
        "GET",
        "/v1/catalog/services",
        &[("X-Consul-Token", &t)],
        None,
    );
    let index = h["X-Consul-Index"].to_str().expect("index").to_string();
    let parked = start_blocking(
        &a,
        &t,
        &format!("/v1/catalog/services?index={index}&wait=60s"),
    );
    // The read is on its way before the policy changes; an ACL write does not wake it
    // (it watches the services table), the registration afterwards does.
    let revoke = json!({"Name": "reader", "Rules": "service_prefix \"\" { policy = \"deny\" }"});
    ok(
        &a,
        MGMT,
        "PUT",
        &format!("/v1/acl/policy/{reader}"),
        Some(revoke),
    );
    let late = json!({"Node": "n1", "Address": "10.9.0.1", "Service": {"Service": "late"}});
    ok(&a, MGMT, "PUT", "/v1/catalog/register", Some(late));

    let (filtered, v) = finish_blocking(parked);
    assert!(!filtered, "the old permissions read everything: {v}");
    assert!(names(&v).contains(&"late".to_string()), "{v}");
    assert!(names(&v).contains(&"web".to_string()), "{v}");

    assert_eq!(
        req(&a, &t, "GET", "/v1/catalog/services", None),
        (200, true, "{}".into())
    );
}

/// Forwarded reads and writes: a client agent sends the caller's token with the request,
/// and the server prunes and refuses as for a request of its own.
#[test]
fn through_a_client_agent_the_token_travels_and_the_server_prunes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = deny_server(&dir.path().join("server"));
    seed(&server);
    let web = token(&server, "web", &["service \"web\" { policy = \"read\" }"]);
    let client = acl_client(&dir.path().join("client"), "client1", &server);
    wait_until(
        Duration::from_secs(20),
        "the client to reach a server",
        || req(&client, MGMT, "GET", "/v1/catalog/nodes", None).0 == 200,
    );
    assert_eq!(
        req(&client, "", "GET", "/v1/catalog/services", None),
        (200, false, "{}".into())
    );
    let (filtered, v) = read(&client, &web, "/v1/catalog/services");
    assert_eq!((filtered, names(&v)), (true, vec!["web".to_string()]));
    let (filtered, v) = read(&client, &web, "/v1/health/service/web");
    assert_eq!((filtered, v), (true, json!([])));
    let reg = json!({"Node": "n3", "Address": "10.9.0.3"});
    assert_eq!(
        req(&client, "", "PUT", "/v1/catalog/register", Some(reg)),
        (403, false, anon_denied("node:write", "n3"))
    );

    // The gateways' copy is never forwarded for a user (servers trust it over the RPC).
    let copy = "/v1/internal/federation/catalog";
    assert_eq!(req(&client, "", "GET", copy, None).0, 404);

    // A client's `acl.tokens.default` travels with a request that names no token.
    let default = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    token_with_secret(
        &server,
        "default",
        default,
        "service \"db\" { policy = \"read\" }",
    );
    let cdir = dir.path().join("client2");
    std::fs::create_dir_all(&cdir).expect("data dir");
    let file = cdir.join("acl.hcl");
    let hcl = format!(
        "acl {{\n  enabled = true\n  default_policy = \"deny\"\n  tokens {{\n    default = \"{default}\"\n  }}\n}}\n"
    );
    std::fs::write(&file, hcl).expect("config");
    let file = file.to_string_lossy().to_string();
    let args = ["-config-file", file.as_str()];
    let client2 = Agent::client_of(&cdir.join("data"), "client2", &server.serf, &args);
    let (filtered, v) = read(&client2, "", "/v1/catalog/services");
    assert_eq!((filtered, names(&v)), (true, vec!["db".to_string()]));
    // A token in the request still wins over the default.
    let (filtered, v) = read(&client2, &web, "/v1/catalog/services");
    assert_eq!((filtered, names(&v)), (true, vec!["web".to_string()]));
}

/// A deny-by-default server of `dc` with the initial management token (each datacenter is
/// its own primary here: tokens are not replicated, so a token made in one exists there
/// only).
fn dc_server(dir: &std::path::Path, dc: &str) -> Agent {
    std::fs::create_dir_all(dir).expect("data dir");
    let file = dir.join("acl.hcl");
    let hcl = format!(
        "acl {{\n  enabled = true\n  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{MGMT}\"\n  }}\n}}\n"
    );
    std::fs::write(&file, hcl).expect("config");
    let file = file.to_string_lossy().to_string();
    let node = format!("s-{dc}");
    let args = ["-datacenter", dc, "-config-file", &file];
    Agent::server_named(&dir.join("data"), &node, &args)
}

/// A token with `rules` and the given secret in `a`'s datacenter.
fn token_with_secret(a: &Agent, name: &str, secret: &str, rules: &str) {
    policy(a, name, rules);
    let body = json!({"SecretID": secret, "Description": name, "Policies": [{"Name": name}]});
    ok(a, MGMT, "PUT", "/v1/acl/token", Some(body));
}

/// `?dc=`, `?dc=*` and `?dc=any` (§6.5): the caller's token travels through the gateways
/// and is resolved and enforced in the datacenter that answers: a token that exists only
/// in dc2 reads dc2 through dc1, pruned as dc2's rules say; a merged answer is marked when
/// a part of it was pruned; a write without permission is refused with the same text.
#[test]
fn other_datacenters_check_the_callers_token_where_they_answer() {
    use common::federation::Gateway;
    let dir = tempfile::tempdir().expect("tempdir");
    let s1 = dc_server(&dir.path().join("s1"), "dc1");
    let s2 = dc_server(&dir.path().join("s2"), "dc2");
    let _g1 = Gateway::start("dc1", &dir.path().join("g1"), &s1.serf, None);
    let g1_wan = _g1.serf_wan.clone();
    let _g2 = Gateway::start("dc2", &dir.path().join("g2"), &s2.serf, Some(&g1_wan));
    wait_initialized(&s1);
    wait_initialized(&s2);
    wait_until(Duration::from_secs(30), "dc1 to see dc2", || {
        read(&s1, "", "/v1/catalog/datacenters").1 == json!(["dc1", "dc2"])
    });
    seed(&s2);
    let only_dc2 = "7d0b6c5e-2f3a-4b8e-9c1d-0a1b2c3d4e5f";
    token_with_secret(
        &s2,
        "web",
        only_dc2,
        "service \"web\" { policy = \"read\" }",
    );
    let both = "3e9f1a2b-4c5d-4e6f-8a7b-9c0d1e2f3a4b";
    let rules = "service \"web\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }";
    token_with_secret(&s1, "web-nodes", both, rules);
    token_with_secret(&s2, "web-nodes", both, rules);

    // Anonymous in dc2 through dc1: nothing, no header.
    assert_eq!(
        req(&s1, "", "GET", "/v1/catalog/services?dc=dc2", None),
        (200, false, "{}".into())
    );
    let (_, all) = read(&s1, MGMT, "/v1/catalog/services?dc=dc2");
    assert!(names(&all).contains(&"db".to_string()), "{all}");
    // A dc2 token: unknown in dc1, honoured in dc2, by header or ?token=.
    assert_eq!(
        req(&s1, only_dc2, "GET", "/v1/catalog/services", None),
        (403, false, "ACL not found".into())
    );
    let (filtered, v) = read(&s1, only_dc2, "/v1/catalog/services?dc=dc2");
    assert_eq!((filtered, names(&v)), (true, vec!["web".to_string()]));
    let by_query = format!("/v1/catalog/services?dc=dc2&token={only_dc2}");
    let (filtered, v) = read(&s1, "", &by_query);
    assert_eq!((filtered, names(&v)), (true, vec!["web".to_string()]));
    assert_eq!(
        read(&s1, only_dc2, "/v1/health/service/web?dc=dc2"),
        (true, json!([]))
    );

    // ?dc=*: each datacenter prunes; the merge keeps the mark.
    let (filtered, v) = read(&s1, both, "/v1/catalog/services?dc=*");
    assert_eq!((filtered, names(&v)), (true, vec!["web".to_string()]));
    // ?dc=any: dc1 has no web, dc2 answers with what the token reads there.
    let (s, h, b) = call(
        &s1,
        "GET",
        "/v1/health/service/web?dc=any",
        &[("X-Consul-Token", both)],
        None,
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(h["X-Meridian-Datacenter"], "dc2");
    let v: Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(
        req(&s1, "", "GET", "/v1/health/service/web?dc=any", None),
        (200, false, "[]".into())
    );

    // A write in dc2 without permission there.
    let reg = json!({"Node": "n3", "Address": "10.9.0.3"});
    assert_eq!(
        req(&s1, "", "PUT", "/v1/catalog/register?dc=dc2", Some(reg)),
        (403, false, anon_denied("node:write", "n3"))
    );

    // dc1's gateway copies dc2's catalog under deny (it asks over the RPC, with no token);
    // a user cannot fetch that copy, not even through ?dc=.
    let (_, h, _) = call(
        &s2,
        "GET",
        "/v1/catalog/services",
        &[("X-Consul-Token", MGMT)],
        None,
    );
    let dc2_index: u64 = h["X-Consul-Index"]
        .to_str()
        .expect("index")
        .parse()
        .expect("index");
    wait_until(Duration::from_secs(30), "dc1's copy of dc2", || {
        let (_, view) = read(&s1, MGMT, "/v1/operator/federation");
        let dc2 = view["Datacenters"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["Name"] == "dc2").cloned());
        dc2.is_some_and(|d| d["Copy"]["Index"].as_u64() >= Some(dc2_index))
    });
    assert_eq!(
        req(
            &s1,
            "",
            "GET",
            "/v1/internal/federation/catalog?dc=dc2",
            None
        ),
        (403, false, anon_denied("service:read", "all services"))
    );

    // dc2 cut off: a stale read is answered from the copy, pruned as a dc1 read.
    s2.kill9();
    let stale = "/v1/catalog/services?dc=dc2&stale";
    wait_until(Duration::from_secs(30), "an answer from dc2's copy", || {
        let (s, h, _) = call(&s1, "GET", stale, &[("X-Consul-Token", MGMT)], None);
        s == 200 && h.get("x-meridian-copy").is_some_and(|v| v == "dc2")
    });
    let (s, h, b) = call(&s1, "GET", stale, &[], None);
    assert_eq!(
        (s, b.as_str()),
        (200, "{}"),
        "anonymous reads nothing from the copy"
    );
    assert!(h.get("X-Consul-Results-Filtered-By-ACLs").is_none());
    let (s, h, b) = call(&s1, "GET", stale, &[("X-Consul-Token", both)], None);
    assert_eq!(s, 200, "{b}");
    assert_eq!(h["x-meridian-copy"], "dc2");
    assert_eq!(h["X-Consul-Results-Filtered-By-ACLs"], "true");
    let v: Value = serde_json::from_str(&b).expect("json");
    assert_eq!(names(&v), ["web"]);
}
