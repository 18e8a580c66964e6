//! ACL enforcement on KV, txn and events (reference/acl.md §4.8, §5.3–5.5; checklist items
//! 7, 12, 13, 15, 17, 18, 19, 20, 33) and #17's acceptance slice: under `deny` the anonymous
//! token can neither read nor write a key or an event, and an `app/` token can do exactly
//! what its rules say over HTTP, txn and the `meridian kv` CLI; DNS (§5.6) answers only what
//! the `dns` token, else the anonymous token, may read. Real `meridian` processes with
//! (see `common::acl`), DNS asked with `dig`.

mod common;

use std::time::Duration;

use common::acl::*;
use common::{Agent, wait_until};
use serde_json::{Value, json};

const ANON_FOO: &str = "Permission denied: anonymous token lacks permission 'key:read' on \"foo\". \
     The anonymous token is used implicitly when a request does not specify a token.";

/// A deny-by-default server with the initial management token, ready for requests.
fn deny_server(dir: &std::path::Path, extra: &str) -> Agent {
    let a = acl_server(
        dir,
        "kv1",
        &format!(
            "  default_policy = \"deny\"\n{extra}\n  tokens {{\n    initial_management = \"{MGMT}\"\n  }}"
        ),
    );
    wait_initialized(&a);
    a
}

/// Creates policies with `rules` (one per item) and a token holding them; its secret.
fn token(a: &Agent, name: &str, rules: &[&str]) -> String {
    let links: Vec<Value> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let pname = format!("{name}-{i}");
            ok(
                a,
                MGMT,
                "PUT",
                "/v1/acl/policy",
                Some(json!({"Name": pname, "Rules": r})),
            );
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

/// A raw PUT of `body` as `token` ("" sends none): (status, body).
fn put(a: &Agent, token: &str, path: &str, body: &str) -> (u16, String) {
    let mut req = reqwest::blocking::Client::new()
        .put(format!("{}{path}", a.url))
        .body(body.to_string());
    if !token.is_empty() {
        req = req.header("X-Consul-Token", token);
    }
    let r = req.send().expect("request");
    let s = r.status().as_u16();
    (s, r.text().unwrap_or_default())
}

/// A request as `token` ("" sends none): (status, filtered header present, body).
fn req(a: &Agent, token: &str, method: &str, path: &str) -> (u16, bool, String) {
    let headers: Vec<(&str, &str)> = if token.is_empty() {
        vec![]
    } else {
        vec![("X-Consul-Token", token)]
    };
    let (s, h, b) = call(a, method, path, &headers, None);
    let filtered = match h.get("X-Consul-Results-Filtered-By-ACLs") {
        Some(v) => {
            assert_eq!(v, "true", "the header is never false");
            true
        }
        None => false,
    };
    (s, filtered, b)
}

fn keys_of(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|e| match e {
            Value::String(s) => s.clone(),
            other => other["Key"].as_str().expect("Key").to_string(),
        })
        .collect()
}

/// Acceptance slice and items 7, 20: no token under deny reads and writes no key and no
/// event; a missing unreadable key is 403, a missing readable one 404.
#[test]
fn anonymous_under_deny_touches_no_key_and_no_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path(), "");
    assert_eq!(put(&a, MGMT, "/v1/kv/foo", "v").0, 200);

    // §7.7 and §7.20: existing and missing keys both answer the anonymous 403 text.
    assert_eq!(
        req(&a, "", "GET", "/v1/kv/foo"),
        (403, false, ANON_FOO.into())
    );
    let (s, _, b) = req(&a, "", "GET", "/v1/kv/missing");
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("'key:read' on \"missing\""), "{b}");
    let reader = token(
        &a,
        "missing-reader",
        &["key_prefix \"\" { policy = \"read\" }"],
    );
    assert_eq!(req(&a, &reader, "GET", "/v1/kv/missing").0, 404);

    // Writes: set, cas, delete, recursive delete, txn; nothing changes.
    let (s, b) = put(&a, "", "/v1/kv/foo", "anon");
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("'key:write' on \"foo\""), "{b}");
    assert_eq!(put(&a, "", "/v1/kv/new?cas=0", "x").0, 403);
    assert_eq!(req(&a, "", "DELETE", "/v1/kv/foo").0, 403);
    assert_eq!(req(&a, "", "DELETE", "/v1/kv/?recurse").0, 403);
    let set = json!([{"KV": {"Verb": "set", "Key": "foo", "Value": "YQ=="}}]);
    let (s, b) = put(&a, "", "/v1/txn", &set.to_string());
    assert_eq!(s, 409, "{b}");
    let raw = req(&a, MGMT, "GET", "/v1/kv/foo?raw").2;
    assert_eq!(raw, "v", "nothing written by the anonymous token");

    // Lists: everything is pruned, with no header for a tokenless request.
    assert_eq!(req(&a, "", "GET", "/v1/kv/?recurse").0, 404);
    assert_eq!(
        req(&a, "", "GET", "/v1/kv/?keys"),
        (200, false, "[]".into())
    );

    // Events: firing is refused; an event fired by management is not listed.
    let (s, b) = put(&a, "", "/v1/event/fire/deploy", "");
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("'event:write' on \"deploy\""), "{b}");
    assert_eq!(put(&a, MGMT, "/v1/event/fire/deploy", "").0, 200);
    wait_until(Duration::from_secs(10), "the event to arrive", || {
        keys_of_events(&req(&a, MGMT, "GET", "/v1/event/list").2) == ["deploy"]
    });
    let (s, filtered, b) = req(&a, "", "GET", "/v1/event/list");
    assert_eq!((s, filtered, b.as_str()), (200, false, "[]"));
    let nothing = token(
        &a,
        "no-events",
        &["event_prefix \"\" { policy = \"deny\" }"],
    );
    let (s, filtered, b) = req(&a, &nothing, "GET", "/v1/event/list");
    assert_eq!((s, filtered, b.as_str()), (200, true, "[]"));
}

fn keys_of_events(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|e| e["Name"].as_str().expect("Name").to_string())
        .collect()
}

/// Items 12, 13, 15, 18, 19, 33 and the `app/` token over HTTP, txn and the CLI.
#[test]
fn key_rules_decide_reads_writes_lists_and_txns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path(), "");
    for k in ["foo", "foo/bar", "x", "a/secret", "app/one", "other/one"] {
        assert_eq!(put(&a, MGMT, &format!("/v1/kv/{k}"), "v").0, 200, "{k}");
    }

    // §7.12: an exact rule beats a deny prefix only on its own key.
    let t12 = token(
        &a,
        "t12",
        &["key_prefix \"\" { policy = \"deny\" }\nkey \"foo\" { policy = \"read\" }"],
    );
    assert_eq!(req(&a, &t12, "GET", "/v1/kv/foo").0, 200);
    let (s, _, b) = req(&a, &t12, "GET", "/v1/kv/foo/bar");
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("'key:read' on \"foo/bar\""), "{b}");

    // §7.13: a longer write prefix wins.
    let t13 = token(
        &a,
        "t13",
        &["key_prefix \"\" { policy = \"deny\" }\nkey_prefix \"a/\" { policy = \"write\" }"],
    );
    assert_eq!(put(&a, &t13, "/v1/kv/a/b", "1").0, 200);
    assert_eq!(put(&a, &t13, "/v1/kv/b", "1").0, 403);

    // §7.15: two policies merge.
    let t15 = token(
        &a,
        "t15",
        &[
            "key_prefix \"\" { policy = \"deny\" }",
            "key \"x\" { policy = \"read\" }",
        ],
    );
    assert_eq!(req(&a, &t15, "GET", "/v1/kv/x").0, 200);

    // §7.18: every key denied: recurse 404, keys [], both marked filtered.
    let none = token(&a, "none", &["key_prefix \"\" { policy = \"deny\" }"]);
    assert_eq!(req(&a, &none, "GET", "/v1/kv/?recurse").0, 404);
    assert_eq!(
        req(&a, &none, "GET", "/v1/kv/?keys"),
        (200, true, "[]".into())
    );

    // §7.19: a read-only key under a write prefix blocks the recursive delete.
    let t19 = token(
        &a,
        "t19",
        &["key_prefix \"a\" { policy = \"write\" }\nkey \"a/secret\" { policy = \"read\" }"],
    );
    let (s, _, b) = req(&a, &t19, "DELETE", "/v1/kv/a?recurse");
    assert_eq!(s, 403, "{b}");
    assert_eq!(
        req(&a, MGMT, "GET", "/v1/kv/a/secret").0,
        200,
        "not deleted"
    );

    // The acceptance token: app/ write, services read.
    let app = token(
        &a,
        "app",
        &["key_prefix \"app/\" { policy = \"write\" }\nservice_prefix \"\" { policy = \"read\" }"],
    );
    assert_eq!(put(&a, &app, "/v1/kv/app/two", "2").0, 200);
    assert_eq!(req(&a, &app, "GET", "/v1/kv/app/two?raw").2, "2");
    assert_eq!(put(&a, &app, "/v1/kv/other/two", "2").0, 403);
    assert_eq!(req(&a, &app, "GET", "/v1/kv/other/one").0, 403);
    let (s, filtered, b) = req(&a, &app, "GET", "/v1/kv/?recurse");
    assert_eq!((s, filtered), (200, true), "{b}");
    assert_eq!(keys_of(&b), ["app/one", "app/two"]);
    let (s, filtered, b) = req(&a, &app, "GET", "/v1/kv/app/?keys");
    assert_eq!((s, filtered), (200, false), "nothing pruned: {b}");
    assert_eq!(keys_of(&b), ["app/one", "app/two"]);

    // §7.33: one unauthorized op rolls the whole txn back, naming its index.
    let txn = json!([
        {"KV": {"Verb": "set", "Key": "app/three", "Value": "Mw=="}},
        {"KV": {"Verb": "set", "Key": "other/three", "Value": "Mw=="}},
    ]);
    let (s, b) = put(&a, &app, "/v1/txn", &txn.to_string());
    assert_eq!(s, 409, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}"));
    assert_eq!(v["Errors"][0]["OpIndex"], 1, "{b}");
    assert_eq!(v["Errors"].as_array().map(Vec::len), Some(1), "{b}");
    let what = v["Errors"][0]["What"].as_str().unwrap_or_default();
    assert!(
        what.starts_with("Permission denied") && what.contains("other/three"),
        "{b}"
    );
    assert_eq!(
        req(&a, MGMT, "GET", "/v1/kv/app/three").0,
        404,
        "nothing applied"
    );
    // Allowed ops commit; a get-tree result is pruned to readable keys.
    let txn = json!([
        {"KV": {"Verb": "set", "Key": "app/three", "Value": "Mw=="}},
        {"KV": {"Verb": "get-tree", "Key": ""}},
    ]);
    let (s, b) = put(&a, &app, "/v1/txn", &txn.to_string());
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}"));
    let keys: Vec<&str> = v["Results"]
        .as_array()
        .unwrap_or_else(|| panic!("{b}"))
        .iter()
        .filter_map(|r| r["KV"]["Key"].as_str())
        .collect();
    assert!(keys.iter().all(|k| k.starts_with("app/")), "{b}");
    assert!(keys.contains(&"app/one"), "{b}");
    // check-index needs key:read.
    let txn = json!([{"KV": {"Verb": "check-index", "Key": "other/one", "Index": 1}}]);
    let (s, b) = put(&a, &app, "/v1/txn", &txn.to_string());
    assert_eq!(s, 409, "{b}");
    assert!(b.contains("'key:read' on \\\"other/one\\\""), "{b}");

    // The CLI with -token.
    let out = acl_cli(&a, &[], &["kv", "put", "-token", &app, "app/cli", "hi"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let out = acl_cli(&a, &[], &["kv", "get", "-token", &app, "app/cli"]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");
    let out = acl_cli(&a, &[], &["kv", "put", "-token", &app, "other/cli", "hi"]);
    assert!(!out.status.success(), "{}", common::text(&out));
    assert!(
        common::text(&out).contains("Permission denied"),
        "{}",
        common::text(&out)
    );
    let out = acl_cli(&a, &[], &["kv", "get", "other/one"]);
    assert!(!out.status.success(), "{}", common::text(&out));
}

/// §7.17: with `enable_key_list_policy`, recurse needs key:list on the prefix.
#[test]
fn key_list_policy_gates_recurse_and_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path(), "  enable_key_list_policy = true");
    assert_eq!(put(&a, MGMT, "/v1/kv/a/one", "1").0, 200);
    let read = token(&a, "read", &["key_prefix \"a/\" { policy = \"read\" }"]);
    let (s, _, b) = req(&a, &read, "GET", "/v1/kv/a/?recurse");
    assert_eq!(s, 403, "{b}");
    assert!(b.ends_with("lacks permission 'key:list' on \"a/\""), "{b}");
    assert_eq!(req(&a, &read, "GET", "/v1/kv/a/?keys").0, 403);
    assert_eq!(
        req(&a, &read, "GET", "/v1/kv/a/one").0,
        200,
        "read still reads"
    );
    let list = token(&a, "list", &["key_prefix \"a/\" { policy = \"list\" }"]);
    let (s, _, b) = req(&a, &list, "GET", "/v1/kv/a/?recurse");
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}"));
    assert_eq!(v[0]["Key"], "a/one");
    assert_eq!(v[0]["Value"], "MQ==", "values included");
}

/// Sessions: create, renew and destroy need session:write on the node; reads are pruned.
#[test]
fn sessions_need_write_on_their_node_and_lists_are_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path(), "");
    // The agent's own node is in the catalog (session create checks it).
    wait_until(Duration::from_secs(20), "node kv1 registered", || {
        req(&a, MGMT, "GET", "/v1/catalog/node/kv1")
            .2
            .contains("\"kv1\"")
    });
    let (s, b) = put(&a, "", "/v1/session/create", "{}");
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("'session:write' on \"kv1\""), "{b}");
    let writer = token(&a, "sw", &["session \"kv1\" { policy = \"write\" }"]);
    let (s, b) = put(&a, &writer, "/v1/session/create", "{}");
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}"));
    let id = v["ID"].as_str().expect("ID").to_string();

    let info = format!("/v1/session/info/{id}");
    assert_eq!(
        req(&a, "", "GET", "/v1/session/list"),
        (200, false, "[]".into())
    );
    assert_eq!(req(&a, "", "GET", &info), (200, false, "[]".into()));
    let other = token(
        &a,
        "other",
        &["session \"elsewhere\" { policy = \"read\" }"],
    );
    assert_eq!(
        req(&a, &other, "GET", "/v1/session/node/kv1"),
        (200, true, "[]".into())
    );
    let (s, filtered, b) = req(&a, &writer, "GET", "/v1/session/list");
    assert_eq!((s, filtered), (200, false), "{b}");
    assert!(b.contains(&id), "{b}");

    let renew = format!("/v1/session/renew/{id}");
    let destroy = format!("/v1/session/destroy/{id}");
    assert_eq!(put(&a, "", &renew, "").0, 403);
    assert_eq!(put(&a, "", &destroy, "").0, 403);
    assert!(req(&a, MGMT, "GET", &info).2.contains(&id), "still there");
    assert_eq!(put(&a, &writer, &renew, "").0, 200);
    assert_eq!(put(&a, &writer, &destroy, "").0, 200);
    assert_eq!(req(&a, MGMT, "GET", &info).2, "[]", "destroyed");
}

const DNS_SECRET: &str = "3b0f7e2a-9c4d-4e51-8a6b-1d2e3f4a5b6c";
const ANONYMOUS_ACCESSOR: &str = "00000000-0000-0000-0000-000000000002";

/// `dig +short NAME` against `a` (sorted lines) and the reply's status.
fn dig(a: &Agent, name: &str) -> (Vec<String>, String) {
    let run = |extra: &[&str]| {
        let out = std::process::Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &a.dns.to_string(),
                "+time=3",
                "+tries=1",
            ])
            .arg(name)
            .args(extra)
            .output()
            .expect("dig (bind9-dnsutils) must be installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut lines: Vec<String> = run(&["+short"]).lines().map(str::to_string).collect();
    lines.sort();
    let full = run(&[]);
    let status = full
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("no answer")
        .to_string();
    (lines, status)
}

/// Nodes `n-web` (service web) and `n-db` (service db) in the catalog.
fn register_two(a: &Agent) {
    for (node, ip, svc) in [("n-web", "10.9.0.1", "web"), ("n-db", "10.9.0.2", "db")] {
        let body = json!({"Node": node, "Address": ip, "Service": {"Service": svc, "Port": 80}});
        let (s, b) = put(a, MGMT, "/v1/catalog/register", &body.to_string());
        assert_eq!(s, 200, "{b}");
    }
}

/// §5.6: with `acl.tokens.dns` set, DNS answers what that token may read, nothing more.
#[test]
fn dns_answers_only_what_the_dns_token_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = format!(
        "  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{MGMT}\"\n    dns = \"{DNS_SECRET}\"\n  }}"
    );
    let a = acl_server(dir.path(), "kv1", &tokens);
    wait_initialized(&a);
    register_two(&a);
    ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(
            json!({"Name": "dns", "Rules": "service \"web\" { policy = \"read\" }\nnode_prefix \"n-\" { policy = \"read\" }"}),
        ),
    );
    ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"SecretID": DNS_SECRET, "Policies": [{"Name": "dns"}]})),
    );
    wait_until(Duration::from_secs(20), "web over DNS", || {
        dig(&a, "web.service.consul").0 == ["10.9.0.1"]
    });
    assert_eq!(dig(&a, "db.service.consul"), (vec![], "NXDOMAIN".into()));
    assert_eq!(dig(&a, "n-db.node.consul").0, ["10.9.0.2"]);
    // The server's own node is outside node_prefix "n-".
    assert_eq!(dig(&a, "kv1.node.consul"), (vec![], "NXDOMAIN".into()));
}

/// §5.6: without a dns or default token DNS uses the anonymous token: nothing under deny,
/// and what a policy on the anonymous token then grants.
#[test]
fn dns_without_tokens_answers_as_anonymous() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path(), "");
    register_two(&a);
    assert_eq!(dig(&a, "web.service.consul"), (vec![], "NXDOMAIN".into()));
    assert_eq!(dig(&a, "n-web.node.consul"), (vec![], "NXDOMAIN".into()));
    let mgmt_sees = ok(&a, MGMT, "GET", "/v1/catalog/service/web", None);
    assert_eq!(
        mgmt_sees[0]["Address"], "10.9.0.1",
        "web exists: {mgmt_sees}"
    );
    ok(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(
            json!({"Name": "anon-dns", "Rules": "service_prefix \"\" { policy = \"read\" }\nnode \"n-web\" { policy = \"read\" }"}),
        ),
    );
    ok(
        &a,
        MGMT,
        "PUT",
        &format!("/v1/acl/token/{ANONYMOUS_ACCESSOR}"),
        Some(json!({"Policies": [{"Name": "anon-dns"}]})),
    );
    wait_until(Duration::from_secs(20), "web as anonymous", || {
        dig(&a, "web.service.consul").0 == ["10.9.0.1"]
    });
    // db is readable but sits on an unreadable node: fully filtered, so missing.
    assert_eq!(dig(&a, "db.service.consul"), (vec![], "NXDOMAIN".into()));
}

/// Prepared queries: writes need query:write on the name, reads are pruned or denied, the
/// captured token is `<hidden>` without acl:write, and execute filters with the captured
/// token when the query has one.
#[test]
fn prepared_queries_follow_query_rules_and_their_captured_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(dir.path(), "");
    register_two(&a);
    let def = |name: &str, token: &str| json!({"Name": name, "Token": token, "Service": {"Service": "web"}});
    let (s, b) = put_post(&a, "", "/v1/query", &def("web-q", ""));
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("'query:write' on \"web-q\""), "{b}");
    let qw = token(
        &a,
        "qw",
        &[
            "query \"web-q\" { policy = \"write\" }\nservice_prefix \"\" { policy = \"read\" }\nnode_prefix \"\" { policy = \"read\" }",
        ],
    );
    let (s, b) = put_post(&a, &qw, "/v1/query", &def("web-q", ""));
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}"));
    let id = v["ID"].as_str().expect("ID").to_string();
    let (s, b) = put_post(&a, MGMT, "/v1/query", &def("cap-q", &qw));
    assert_eq!(s, 200, "{b}");

    // Lists: anonymous sees nothing; qw sees its query only, token hidden; management all.
    assert_eq!(req(&a, "", "GET", "/v1/query"), (200, false, "[]".into()));
    let (s, filtered, b) = req(&a, &qw, "GET", "/v1/query");
    assert_eq!((s, filtered), (200, true), "{b}");
    let v: Value = serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}"));
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{b}");
    assert_eq!(v[0]["Name"], "web-q");
    let all = ok(&a, MGMT, "GET", "/v1/query", None);
    let cap = all
        .as_array()
        .and_then(|l| l.iter().find(|q| q["Name"] == "cap-q"))
        .unwrap_or_else(|| panic!("{all}"));
    assert_eq!(cap["Token"], qw.as_str(), "acl:write sees the token");
    let (s, _, b) = req(&a, "", "GET", &format!("/v1/query/{id}"));
    assert_eq!(s, 403, "{b}");
    assert_eq!(req(&a, "", "GET", "/v1/query/web-q/explain").0, 403);
    assert_eq!(req(&a, "", "DELETE", &format!("/v1/query/{id}")).0, 403);

    // Execute: the caller's token without node reads sees no instance; the captured
    // token of cap-q lets the same caller see n-web.
    let svc_only = token(
        &a,
        "svc-only",
        &["query_prefix \"\" { policy = \"read\" }\nservice_prefix \"\" { policy = \"read\" }"],
    );
    let nodes = |t: &str, q: &str| {
        let v = ok(&a, t, "GET", &format!("/v1/query/{q}/execute"), None);
        v["Nodes"].as_array().map_or(usize::MAX, Vec::len)
    };
    assert_eq!(nodes(&qw, "web-q"), 1);
    assert_eq!(nodes(&svc_only, "web-q"), 0);
    assert_eq!(nodes(&svc_only, "cap-q"), 1);
    assert_eq!(req(&a, &qw, "DELETE", &format!("/v1/query/{id}")).0, 200);
}

/// A POST of `body` as `token` ("" sends none): (status, body).
fn put_post(a: &Agent, token: &str, path: &str, body: &Value) -> (u16, String) {
    let headers: Vec<(&str, &str)> = if token.is_empty() {
        vec![]
    } else {
        vec![("X-Consul-Token", token)]
    };
    let (s, _, b) = call(a, "POST", path, &headers, Some(body.clone()));
    (s, b)
}
