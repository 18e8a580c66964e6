//! ACLs on the agent's own API, its tokens and its anti-entropy (#17; reference/acl.md
//! §5.3 row "Agent", §5.4, §5.8, checklist 16, 30, 31, 32).

mod common;

use std::path::Path;
use std::time::Duration;

use common::acl::*;
use common::{Agent, wait_until};
use serde_json::{Value, json};

const FILTERED: &str = "X-Consul-Results-Filtered-By-ACLs";

/// A token holding a new policy with `rules` (or only `identities` when `rules` is empty).
fn token_with(a: &Agent, name: &str, rules: &str, extra: Value) -> String {
    let mut body = extra;
    if !rules.is_empty() {
        ok(
            a,
            MGMT,
            "PUT",
            "/v1/acl/policy",
            Some(json!({"Name": name, "Rules": rules})),
        );
        body["Policies"] = json!([{"Name": name}]);
    }
    let t = ok(a, MGMT, "PUT", "/v1/acl/token", Some(body));
    t["SecretID"].as_str().expect("secret").to_string()
}

/// A durable ACL server (default deny, the management and recovery tokens) with
/// `acl_extra` inside its `acl` block, `tokens_extra` inside `tokens` and `extra` at the
/// top level of its config file (HCL).
fn server(dir: &Path, node: &str, acl_extra: &str, tokens_extra: &str, extra: &str) -> Agent {
    std::fs::create_dir_all(dir).expect("dir");
    let file = dir.join("acl.hcl");
    let hcl = format!(
        "acl {{\n  enabled = true\n  default_policy = \"deny\"\n{acl_extra}\n  tokens {{\n    initial_management = \"{MGMT}\"\n    agent_recovery = \"{RECOVERY}\"\n{tokens_extra}\n  }}\n}}\n{extra}\n"
    );
    std::fs::write(&file, hcl).expect("config");
    let file = file.to_string_lossy().to_string();
    Agent::server_named(&dir.join("data"), node, &["-config-file", &file])
}

fn denied(got: (u16, String), perm: &str) {
    assert_eq!(got.0, 403, "{}", got.1);
    assert!(
        got.1.starts_with("Permission denied") && got.1.contains(perm),
        "wanted {perm}: {}",
        got.1
    );
}

fn in_catalog(a: &Agent, name: &str) -> bool {
    let v = ok(a, MGMT, "GET", &format!("/v1/catalog/service/{name}"), None);
    v.as_array().is_some_and(|l| !l.is_empty())
}

fn register(a: &Agent, token: &str, body: Value) -> (u16, String) {
    with(a, token, "PUT", "/v1/agent/service/register", Some(body))
}

/// Checklist 16 and §5.3: service writes on every name a registration writes, lists
/// filtered with the header, deregistration on the existing service, the operator and
/// agent rules, and the token endpoint's answers (30, first half).
#[test]
fn agent_endpoints_need_exactly_their_permissions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = server(&dir.path().join("s"), "acl-agent", "", "", "");
    wait_initialized(&a);
    let web = token_with(
        &a,
        "web-write",
        "service \"web\" {\n  policy = \"write\"\n}",
        json!({}),
    );
    let identity = token_with(
        &a,
        "",
        "",
        json!({"ServiceIdentities": [{"ServiceName": "web"}]}),
    );
    let op_read = token_with(&a, "op-read", "operator = \"read\"", json!({}));
    let other_node = token_with(
        &a,
        "other-node",
        "node \"elsewhere\" {\n  policy = \"read\"\n}",
        json!({}),
    );

    // 16: an exact service rule does not cover the sidecar proxy; the identity does.
    let proxy = json!({"Name": "web-sidecar-proxy", "Kind": "connect-proxy", "Port": 21000,
                       "Proxy": {"DestinationServiceName": "web"}});
    denied(
        register(&a, &web, proxy.clone()),
        "'service:write' on \"web-sidecar-proxy\"",
    );
    assert_eq!(register(&a, &identity, proxy), (200, String::new()));
    assert_eq!(
        register(&a, &web, json!({"Name": "web", "Port": 80})).0,
        200
    );
    denied(
        register(&a, &web, json!({"Name": "db", "Port": 5432})),
        "'service:write' on \"db\"",
    );

    // The agent's lists keep what the token reads and say so.
    let (s, h, body) = call(
        &a,
        "GET",
        "/v1/agent/services",
        &[("X-Consul-Token", &web)],
        None,
    );
    assert_eq!(s, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(seen.as_object().map(|m| m.len()), Some(1), "{seen}");
    assert!(seen.get("web").is_some(), "{seen}");
    assert_eq!(h[FILTERED], "true");
    let (_, h, body) = call(
        &a,
        "GET",
        "/v1/agent/services",
        &[("X-Consul-Token", MGMT)],
        None,
    );
    assert!(h.get(FILTERED).is_none(), "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body)
            .expect("json")
            .as_object()
            .map(|m| m.len()),
        Some(2)
    );
    denied(
        with(&a, &web, "GET", "/v1/agent/service/web-sidecar-proxy", None),
        "'service:read'",
    );

    // Deregistration: unknown IDs first, then write on the existing service.
    assert_eq!(
        with(&a, &web, "PUT", "/v1/agent/service/deregister/nope", None),
        (
            404,
            "Unknown service ID \"nope\". Ensure that the service ID is passed, not the service name."
                .into()
        )
    );
    denied(
        with(
            &a,
            &web,
            "PUT",
            "/v1/agent/service/deregister/web-sidecar-proxy",
            None,
        ),
        "'service:write' on \"web-sidecar-proxy\"",
    );
    assert_eq!(
        with(
            &a,
            &identity,
            "PUT",
            "/v1/agent/service/deregister/web-sidecar-proxy",
            None
        )
        .0,
        200
    );
    denied(
        with(&a, &web, "PUT", "/v1/agent/maintenance?enable=true", None),
        "'node:write' on \"acl-agent\"",
    );

    // 32: force-leave is an operator write; operator:read is not enough.
    denied(
        with(&a, &op_read, "PUT", "/v1/agent/force-leave/ghost", None),
        "'operator:write'",
    );
    assert_ne!(
        with(&a, MGMT, "PUT", "/v1/agent/force-leave/ghost", None).0,
        403
    );
    denied(
        with(&a, &web, "GET", "/v1/agent/host", None),
        "'operator:read'",
    );
    let host = ok(&a, &op_read, "GET", "/v1/agent/host", None);
    assert!(host["Host"]["os"].is_string(), "{host}");
    denied(
        with(&a, &op_read, "GET", "/v1/agent/self", None),
        "'agent:read'",
    );
    denied(
        with(&a, &op_read, "GET", "/v1/agent/metrics", None),
        "'agent:read'",
    );
    denied(
        with(&a, &op_read, "PUT", "/v1/agent/reload", None),
        "'agent:write'",
    );

    // Members: filtered on node:read; the header only for a named token.
    let (s, h, body) = call(&a, "GET", "/v1/agent/members", &[], None);
    assert_eq!((s, body.as_str()), (200, "[]"));
    assert!(h.get(FILTERED).is_none());
    let (_, h, body) = call(
        &a,
        "GET",
        "/v1/agent/members",
        &[("X-Consul-Token", &other_node)],
        None,
    );
    assert_eq!(body, "[]");
    assert_eq!(h[FILTERED], "true");
    let all = ok(&a, RECOVERY, "GET", "/v1/agent/members", None);
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");

    // 30: the token endpoint needs agent:write, answers 200 with an empty body, and
    // knows only Consul's kinds.
    let set = |token: &str, kind: &str| {
        with(
            &a,
            token,
            "PUT",
            &format!("/v1/agent/token/{kind}"),
            Some(json!({"Token": MGMT})),
        )
    };
    denied(set(&web, "agent"), "'agent:write' on \"acl-agent\"");
    assert_eq!(set(MGMT, "agent"), (200, String::new()));
    assert_eq!(set(RECOVERY, "acl_agent_token"), (200, String::new()));
    assert_eq!(
        set(MGMT, "bogus"),
        (404, "Token \"bogus\" is unknown".into())
    );
}

/// §5.8: a service registered with a token that may write it reaches the catalog; a
/// config-file service without a token (and no default) is blocked, logged with its ID and
/// counted, and stays out of the catalog.
#[test]
fn anti_entropy_writes_each_service_with_its_own_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let services = format!(
        "service {{\n  name = \"cfg-open\"\n  port = 1\n  token = \"{MGMT}\"\n}}\nservice {{\n  name = \"cfg-blocked\"\n  port = 2\n}}\n"
    );
    let mut a = server(&dir.path().join("s"), "ae", "", "", &services);
    wait_initialized(&a);
    let web = token_with(
        &a,
        "web-write",
        "service \"web\" {\n  policy = \"write\"\n}",
        json!({}),
    );
    assert_eq!(
        register(&a, &web, json!({"Name": "web", "Port": 80})).0,
        200
    );
    wait_until(
        Duration::from_secs(20),
        "web and cfg-open in the catalog",
        || in_catalog(&a, "web") && in_catalog(&a, "cfg-open"),
    );
    let line = a.wait_log(Duration::from_secs(20), |l| {
        l.contains("Service registration blocked by ACLs")
            && l.contains("cfg-blocked")
            && l.contains("lacks permission 'service:write'")
    });
    assert!(!line.contains(MGMT), "no secret in the log: {line}");
    assert!(!in_catalog(&a, "cfg-blocked"));
    // The agent still owns it, and counts the refusal.
    let mine = ok(&a, MGMT, "GET", "/v1/agent/services", None);
    assert!(mine.get("cfg-blocked").is_some(), "{mine}");
    let m = ok(&a, MGMT, "GET", "/v1/agent/metrics", None);
    let blocked = m["Gauges"]
        .as_array()
        .and_then(|g| {
            g.iter()
                .find(|x| x["Name"] == "consul.acl.blocked.service.registration")
        })
        .and_then(|x| x["Value"].as_f64())
        .unwrap_or(0.0);
    assert!(blocked >= 1.0, "{m}");
    // Registered again, the same definition, with a token that may write it: synced at
    // once, not at the next full pass a minute later.
    assert_eq!(
        register(&a, MGMT, json!({"Name": "cfg-blocked", "Port": 2})).0,
        200
    );
    wait_until(
        Duration::from_secs(20),
        "cfg-blocked in the catalog",
        || in_catalog(&a, "cfg-blocked"),
    );
}

/// §5.8 and checklist 31: a client whose agent token lacks node:write cannot sync its node
/// meta (blocked, logged); a token set over the API takes effect at once; with every
/// server down the recovery token still reads the agent and makes it leave.
#[test]
fn node_info_needs_the_agent_token_and_the_recovery_token_outlives_the_servers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(&dir.path().join("s"), "ni-server", "", "", "");
    wait_initialized(&server);
    let node_writer = token_with(
        &server,
        "ni-client-write",
        "node \"ni-client\" {\n  policy = \"write\"\n}\nservice_prefix \"\" {\n  policy = \"read\"\n}",
        json!({}),
    );
    let cdir = dir.path().join("c");
    std::fs::create_dir_all(&cdir).expect("dir");
    let file = cdir.join("acl.hcl");
    std::fs::write(
        &file,
        format!(
            "node_meta {{\n  rack = \"r1\"\n}}\nacl {{\n  enabled = true\n  default_policy = \"deny\"\n  tokens {{\n    agent_recovery = \"{RECOVERY}\"\n  }}\n}}\n"
        ),
    )
    .expect("config");
    let file = file.to_string_lossy().to_string();
    let mut client = Agent::client_of(
        &cdir.join("data"),
        "ni-client",
        &server.serf,
        &["-config-file", &file],
    );
    client.wait_log(Duration::from_secs(20), |l| {
        l.contains("Node info update blocked by ACLs") && l.contains("ni-client")
    });
    let meta = || {
        let n = ok(&server, MGMT, "GET", "/v1/catalog/node/ni-client", None);
        n["Node"]["Meta"]["rack"].as_str().map(str::to_string)
    };
    assert_eq!(meta(), None);
    assert_eq!(
        with(
            &client,
            RECOVERY,
            "PUT",
            "/v1/agent/token/agent",
            Some(json!({"Token": node_writer})),
        ),
        (200, String::new())
    );
    wait_until(
        Duration::from_secs(20),
        "the node meta in the catalog",
        || meta().as_deref() == Some("r1"),
    );

    server.kill9();
    assert_eq!(
        with(&client, RECOVERY, "GET", "/v1/agent/self", None).0,
        200
    );
    denied(
        with(&client, "", "PUT", "/v1/agent/leave", None),
        "'agent:write'",
    );
    assert_eq!(
        with(&client, RECOVERY, "PUT", "/v1/agent/leave", None),
        (200, String::new())
    );
    assert!(
        client.wait_exit(Duration::from_secs(20)).is_some(),
        "the client left and stopped"
    );
}

/// Checklist 30: with `enable_token_persistence` a token set over the API (here by the CLI)
/// is saved 0600 and beats the configured one after a restart (seen through the `default`
/// token, which tokenless requests use).
#[test]
fn a_persisted_token_beats_the_configured_one_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sdir = dir.path().join("s");
    let acl_extra = "  enable_token_persistence = true";
    let a = server(&sdir, "persist", acl_extra, "", "");
    wait_initialized(&a);
    let reader = token_with(
        &a,
        "agent-read",
        "agent_prefix \"\" {\n  policy = \"read\"\n}",
        json!({}),
    );
    denied(with(&a, "", "GET", "/v1/agent/self", None), "'agent:read'");
    // Set through the CLI (`acl set-agent-token`, which PUTs /v1/agent/token/default).
    let out = acl_cli(
        &a,
        &[("CONSUL_HTTP_TOKEN", MGMT)],
        &["acl", "set-agent-token", "default", &reader],
    );
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ACL token \"default\" set successfully"
    );
    assert_eq!(
        with(&a, "", "GET", "/v1/agent/self", None).0,
        200,
        "at once"
    );
    let file = sdir.join("data").join("acl-tokens.json");
    let saved: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("tokens file")).expect("json");
    assert_eq!(saved["default"], reader.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    a.terminate();

    // The config now names another default token; the persisted one wins.
    let a = server(
        &sdir,
        "persist",
        acl_extra,
        &format!("    default = \"{MGMT}-nope\""),
        "",
    );
    wait_initialized(&a);
    assert_eq!(with(&a, "", "GET", "/v1/agent/self", None).0, 200);
}
