//! ACLs beyond one server (#17 phase 1): a client agent resolving tokens through its server
//! (recovery token, down_policy), and the `meridian acl` CLI round trip.

mod common;

use common::acl::*;
use serde_json::{Value, json};

/// A client agent resolves tokens through its server (`/v1/agent/self` needs agent:read
/// and is answered by the client itself), keeps its recovery token local, forwards the ACL
/// API with the caller's token, and applies extend-cache when the server is gone.
#[test]
fn a_client_agent_resolves_tokens_through_its_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = acl_server(
        &dir.path().join("s"),
        "acl-server",
        &format!(
            "  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{MGMT}\"\n  }}"
        ),
    );
    wait_initialized(&server);
    ok(
        &server,
        MGMT,
        "PUT",
        "/v1/acl/policy",
        Some(json!({"Name": "agent-read", "Rules": "agent_prefix \"\" {\n  policy = \"read\"\n}"})),
    );
    let reader = ok(
        &server,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Policies": [{"Name": "agent-read"}]})),
    );
    let secret = reader["SecretID"].as_str().expect("secret").to_string();
    let unseen = ok(
        &server,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Policies": [{"Name": "agent-read"}]})),
    );
    let unseen = unseen["SecretID"].as_str().expect("secret").to_string();

    let client = acl_client(&dir.path().join("c"), "acl-client", &server);
    let (s, h, body) = call(
        &client,
        "GET",
        "/v1/agent/self",
        &[("X-Consul-Token", &secret)],
        None,
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(h["X-Consul-Default-ACL-Policy"], "deny");
    let (s, body) = with(&client, "", "GET", "/v1/agent/self", None);
    assert_eq!(s, 403);
    assert!(
        body.starts_with(
            "Permission denied: anonymous token lacks permission 'agent:read' on \"acl-client\""
        ),
        "{body}"
    );
    let ghost = "6d4c1b6e-2a1f-4c83-9d55-2f7e3c1b0a99";
    assert_eq!(
        with(&client, ghost, "GET", "/v1/agent/self", None),
        (403, "ACL not found".into())
    );
    // The recovery token is the client's own: it works there, and nowhere else.
    assert_eq!(
        with(&client, RECOVERY, "GET", "/v1/agent/self", None).0,
        200
    );
    assert_eq!(
        with(&server, RECOVERY, "GET", "/v1/agent/self", None),
        (403, "ACL not found".into())
    );
    // The ACL API is forwarded with the caller's token.
    let me = ok(&client, &secret, "GET", "/v1/acl/token/self", None);
    assert_eq!(me["AccessorID"], reader["AccessorID"]);
    // A write through the client lands on the server with a secret that works there.
    let made = ok(
        &client,
        MGMT,
        "PUT",
        "/v1/acl/token",
        Some(json!({"Description": "via client"})),
    );
    let made_secret = made["SecretID"].as_str().expect("secret");
    let seen = ok(&server, made_secret, "GET", "/v1/acl/token/self", None);
    assert_eq!(seen["AccessorID"], made["AccessorID"]);
    assert_eq!(seen["Description"], "via client");

    // The server goes away: the entry this client resolved before is extended, a token
    // it never saw gets the default policy (deny).
    server.kill9();
    let (s, body) = with(&client, &secret, "GET", "/v1/agent/self", None);
    assert_eq!(s, 200, "{body}");
    let (s, body) = with(&client, &unseen, "GET", "/v1/agent/self", None);
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("lacks permission 'agent:read'"), "{body}");
}

/// The CLI round trip: a policy from a rules file, a token holding it, read back as JSON;
/// the token travels by `-token`, `-token-file` and `CONSUL_HTTP_TOKEN`.
#[test]
fn the_acl_cli_creates_a_policy_from_a_file_and_a_token_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = acl_server(
        &dir.path().join("s"),
        "cli",
        &format!(
            "  default_policy = \"deny\"\n  tokens {{\n    initial_management = \"{MGMT}\"\n  }}"
        ),
    );
    wait_initialized(&a);
    let rules = dir.path().join("app.hcl");
    std::fs::write(&rules, "key_prefix \"app/\" {\n  policy = \"write\"\n}\n").expect("rules");
    let rules_arg = format!("@{}", rules.display());
    let env = [("CONSUL_HTTP_TOKEN", MGMT)];
    let out = acl_cli(
        &a,
        &env,
        &[
            "acl",
            "policy",
            "create",
            "-name",
            "app",
            "-description",
            "app keys",
            "-rules",
            &rules_arg,
            "-format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", common::text(&out));
    let policy: Value = serde_json::from_slice(&out.stdout).expect("policy JSON");
    assert_eq!(
        policy["Rules"],
        "key_prefix \"app/\" {\n  policy = \"write\"\n}\n"
    );
    assert_eq!(policy["Description"], "app keys");

    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{MGMT}\n")).expect("token file");
    let tf = token_file.to_string_lossy().to_string();
    let out = acl_cli(
        &a,
        &[],
        &[
            "acl",
            "token",
            "create",
            "-token-file",
            &tf,
            "-description",
            "app",
            "-policy-name",
            "app",
            "-service-identity",
            "web:dc1",
            "-format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", common::text(&out));
    let token: Value = serde_json::from_slice(&out.stdout).expect("token JSON");
    let id = token["AccessorID"].as_str().expect("accessor").to_string();
    let out = acl_cli(
        &a,
        &[],
        &[
            "acl", "token", "read", "-token", MGMT, "-id", &id, "-format", "json",
        ],
    );
    assert!(out.status.success(), "{}", common::text(&out));
    let back: Value = serde_json::from_slice(&out.stdout).expect("token JSON");
    assert_eq!(
        back["Policies"],
        json!([{"ID": policy["ID"], "Name": "app"}])
    );
    assert_eq!(
        back["ServiceIdentities"],
        json!([{"ServiceName": "web", "Datacenters": ["dc1"]}])
    );
    assert_eq!(back["SecretID"], token["SecretID"]);
    // The pretty form names the policy; without a token the CLI reports Consul's 403.
    let out = acl_cli(&a, &env, &["acl", "token", "read", "-id", &id]);
    let pretty = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        pretty.contains(&format!("AccessorID:       {id}")) && pretty.contains(" - app"),
        "{pretty}"
    );
    let out = acl_cli(&a, &[], &["acl", "token", "list"]);
    assert!(!out.status.success());
    assert!(
        common::text(&out)
            .contains("403 (Permission denied: anonymous token lacks permission 'acl:read'"),
        "{}",
        common::text(&out)
    );
    let out = acl_cli(&a, &env, &["acl", "token", "delete", "-id", &id]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("Token \"{id}\" deleted successfully")
    );
    let out = acl_cli(&a, &env, &["acl", "policy", "delete", "-name", "app"]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(
        with(&a, MGMT, "GET", "/v1/acl/policy/name/app", None).0,
        404
    );
}
