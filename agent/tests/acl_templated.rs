//! Templated policies (#17, Consul 1.17+): tokens and roles linking `builtin/*` templates,
//! enforced on a server and on a client agent that resolves through it; the template
//! endpoints; the 400s of bad links; and the CLI's `-templated-policy`/`-var`.

mod common;

use common::acl::*;
use serde_json::{Value, json};

fn deny_server(dir: &std::path::Path, node: &str) -> common::Agent {
    let a = acl_server(
        dir,
        node,
        &format!(
            "  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{MGMT}\"\n  }}"
        ),
    );
    wait_initialized(&a);
    a
}

fn register(a: &common::Agent, token: &str, name: &str) -> (u16, String) {
    with(
        a,
        token,
        "PUT",
        "/v1/agent/service/register",
        Some(json!({"Name": name, "Port": 80})),
    )
}

fn secret(v: &Value) -> String {
    v["SecretID"].as_str().expect("SecretID").to_string()
}

/// A token with `builtin/service` name=api may register api (and read others), not web;
/// the same through a role; the same on a client agent, which gets the rules from the
/// server. The token reads back with Consul's shape (`TemplateVariables.name`).
#[test]
fn a_builtin_service_token_may_register_its_service_and_no_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = deny_server(&dir.path().join("s"), "tp-server");
    let tp = json!([{"TemplateName": "builtin/service", "TemplateVariables": {"Name": "api"}}]);
    let made = ok(
        &server,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Description": "api", "TemplatedPolicies": tp})),
    );
    let want = json!([{"TemplateName": "builtin/service", "TemplateVariables": {"name": "api"}}]);
    assert_eq!(made["TemplatedPolicies"], want, "{made}");
    let id = made["AccessorID"].as_str().expect("accessor");
    let back = ok(&server, MGMT, "GET", &format!("/v1/acl/token/{id}"), None);
    assert_eq!(back["TemplatedPolicies"], want, "{back}");
    let api = secret(&made);

    assert_eq!(register(&server, &api, "api"), (200, String::new()));
    let (s, body) = register(&server, &api, "web");
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("'service:write' on \"web\""), "{body}");
    // Read on every service, as the template grants.
    assert_eq!(
        with(&server, &api, "GET", "/v1/catalog/service/web", None).0,
        200
    );

    // Through a role: builtin/service name=web, scoped to this datacenter.
    ok(
        &server,
        MGMT,
        "PUT",
        "/v1/acl/role",
        Some(json!({"Name": "web-role", "TemplatedPolicies": [
            {"TemplateName": "builtin/service", "TemplateVariables": {"name": "web"},
             "Datacenters": ["dc1"]}]})),
    );
    let via_role = ok(
        &server,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Roles": [{"Name": "web-role"}]})),
    );
    let web = secret(&via_role);
    assert_eq!(register(&server, &web, "web"), (200, String::new()));
    assert_eq!(register(&server, &web, "api").0, 403);
    // Scoped elsewhere, a templated policy grants nothing here.
    let elsewhere = ok(
        &server,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(
            json!({"TemplatedPolicies": [{"TemplateName": "builtin/service",
            "TemplateVariables": {"Name": "db"}, "Datacenters": ["dc2"]}]}),
        ),
    );
    assert_eq!(register(&server, &secret(&elsewhere), "db").0, 403);

    // A client agent resolves through the server and enforces the same rules.
    let client = acl_client(&dir.path().join("c"), "tp-client", &server);
    assert_eq!(register(&client, &api, "api"), (200, String::new()));
    let (s, body) = register(&client, &api, "web");
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("'service:write' on \"web\""), "{body}");
    assert_eq!(register(&client, &web, "web"), (200, String::new()));

    // `?expanded` lists the synthetic policy the template renders to.
    let x = ok(
        &server,
        MGMT,
        "GET",
        &format!("/v1/acl/token/{id}?expanded"),
        None,
    );
    let rules: Vec<&str> = x["ExpandedPolicies"]
        .as_array()
        .expect("ExpandedPolicies")
        .iter()
        .filter_map(|p| p["Rules"].as_str())
        .collect();
    assert!(
        rules.iter().any(|r| r.contains("service \"api\"")),
        "{rules:?}"
    );
}

/// Unknown templates, a missing or invalid name: 400 naming the entry; nothing stored.
#[test]
fn bad_templated_policies_are_refused_naming_the_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(&dir.path().join("s"), "tp-bad");
    let cases = [
        (
            json!([{"TemplateName": "builtin/dns"}, {"TemplateName": "builtin/nope"}]),
            "TemplatedPolicies[1]: templated policy \"builtin/nope\" does not exist",
        ),
        (
            json!([{"TemplateName": "builtin/service"}]),
            "TemplatedPolicies[0]: templated policy failed validation. Error: name is required",
        ),
        (
            json!([{"TemplateName": "builtin/node", "TemplateVariables": {"Name": "Bad Node"}}]),
            "node identity \"Bad Node\" has an invalid name",
        ),
    ];
    for (tp, want) in cases {
        let (s, body) = with(
            &a,
            MGMT,
            "PUT",
            "/v1/acl/token",
            Some(json!({"Description": "bad", "TemplatedPolicies": tp})),
        );
        assert_eq!(s, 400, "{tp}: {body}");
        assert!(body.contains(want), "{tp}: {body}");
        let (s, body) = with(
            &a,
            MGMT,
            "PUT",
            "/v1/acl/role",
            Some(json!({"Name": "bad", "TemplatedPolicies": tp})),
        );
        assert_eq!(s, 400, "{tp}: {body}");
    }
    let tokens = ok(&a, MGMT, "GET", "/v1/acl/tokens", None);
    let stored = tokens
        .as_array()
        .expect("tokens")
        .iter()
        .filter(|t| t["Description"] == "bad")
        .count();
    assert_eq!(stored, 0, "{tokens}");
    assert_eq!(ok(&a, MGMT, "GET", "/v1/acl/roles", None), json!([]));
    // Datacenters on a local token are refused too.
    let (s, body) = with(
        &a,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(
            json!({"Local": true, "TemplatedPolicies": [{"TemplateName": "builtin/dns",
            "Datacenters": ["dc1"]}]}),
        ),
    );
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("local token"), "{body}");
}

/// The template endpoints: list, read, preview; `acl:read` needed; unknown names are 400.
#[test]
fn templates_are_listed_read_and_previewed_under_acl_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(&dir.path().join("s"), "tp-endpoints");
    let all = ok(&a, MGMT, "GET", "/v1/acl/templated-policies", None);
    for name in ["builtin/service", "builtin/node", "builtin/dns"] {
        assert_eq!(all[name]["TemplateName"], name, "{all}");
    }
    let service = ok(
        &a,
        MGMT,
        "GET",
        "/v1/acl/templated-policy/name/builtin/service",
        None,
    );
    assert!(
        service["Template"]
            .as_str()
            .is_some_and(|t| t.contains("service \"{{.Name}}\"")),
        "{service}"
    );
    assert!(
        service["Schema"]
            .as_str()
            .is_some_and(|t| t.contains("\"required\": [\"name\"]")),
        "{service}"
    );
    let (s, body) = with(
        &a,
        MGMT,
        "GET",
        "/v1/acl/templated-policy/name/builtin/nope",
        None,
    );
    assert_eq!(
        (s, body.as_str()),
        (400, "Invalid templated policy Name: builtin/nope")
    );

    let p = ok(
        &a,
        MGMT,
        "POST",
        "/v1/acl/templated-policy/preview/builtin/node",
        Some(json!({"Name": "n1"})),
    );
    let id = p["ID"].as_str().expect("ID");
    assert_eq!(p["Name"], format!("synthetic-policy-{id}"));
    assert!(
        p["Rules"]
            .as_str()
            .is_some_and(|r| r.contains("node \"n1\" {\n\tpolicy = \"write\"")),
        "{p}"
    );
    let (s, body) = with(
        &a,
        MGMT,
        "POST",
        "/v1/acl/templated-policy/preview/builtin/node",
        Some(json!({})),
    );
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("name is required"), "{body}");

    // acl:read is needed for all three.
    for (method, path) in [
        ("GET", "/v1/acl/templated-policies"),
        ("GET", "/v1/acl/templated-policy/name/builtin/dns"),
        ("POST", "/v1/acl/templated-policy/preview/builtin/dns"),
    ] {
        let (s, body) = with(&a, "", method, path, None);
        assert_eq!(s, 403, "{path}: {body}");
        assert!(body.contains("'acl:read'"), "{path}: {body}");
    }
}

/// `meridian acl token create -templated-policy builtin/node -var name:n1`, and the
/// token's pretty form naming it.
#[test]
fn the_cli_creates_a_token_with_a_templated_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = deny_server(&dir.path().join("s"), "tp-cli");
    let env = [("CONSUL_HTTP_TOKEN", MGMT)];
    let out = acl_cli(
        &a,
        &env,
        &[
            "acl",
            "token",
            "create",
            "-templated-policy",
            "builtin/node",
            "-var",
            "name:n1",
            "-format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", common::text(&out));
    let token: Value = serde_json::from_slice(&out.stdout).expect("token JSON");
    assert_eq!(
        token["TemplatedPolicies"],
        json!([{"TemplateName": "builtin/node", "TemplateVariables": {"name": "n1"}}])
    );
    let id = token["AccessorID"].as_str().expect("accessor");
    let out = acl_cli(&a, &env, &["acl", "token", "read", "-id", id]);
    let pretty = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        pretty.contains("Templated Policies:\n   builtin/node\n      Name: n1"),
        "{pretty}"
    );
    let out = acl_cli(
        &a,
        &env,
        &[
            "acl",
            "token",
            "create",
            "-templated-policy",
            "builtin/node",
        ],
    );
    assert!(!out.status.success());
    assert!(
        common::text(&out).contains("name is required"),
        "{}",
        common::text(&out)
    );
}
