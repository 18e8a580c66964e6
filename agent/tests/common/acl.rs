//! ACL test support: agents with ACLs on, requests carrying a
//! token, and the `meridian acl` CLI.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{Agent, wait_until};

pub const MGMT: &str = "5a1f3bd2-0d5e-4c5e-9c1f-3c0c7a4f9d10";
pub const RECOVERY: &str = "0c6e1a4e-8f5b-4d7a-9a0e-6d2b9b1f7c33";
pub const BOOTSTRAP_404: &str = "ACL system must be bootstrapped before making any requests that require authorization: ACL not found";

/// A single durable server with ACLs on and `acl_hcl` inside the `acl` block.
pub fn acl_server(dir: &Path, node: &str, acl_hcl: &str) -> Agent {
    std::fs::create_dir_all(dir).expect("data dir");
    let file = dir.join("acl.hcl");
    std::fs::write(&file, format!("acl {{\n  enabled = true\n{acl_hcl}\n}}\n")).expect("config");
    let file = file.to_string_lossy().to_string();
    Agent::server_named(&dir.join("data"), node, &["-config-file", &file])
}

/// A request with headers → (status, headers, body).
pub fn call(
    a: &Agent,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = reqwest::blocking::Client::new().request(method, format!("{}{path}", a.url));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let r = req.send().expect("request");
    let (s, h) = (r.status().as_u16(), r.headers().clone());
    (s, h, r.text().unwrap_or_default())
}

/// As `token`: (status, body).
pub fn with(
    a: &Agent,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, String) {
    let (s, _, b) = call(a, method, path, &[("X-Consul-Token", token)], body);
    (s, b)
}

/// As `token`, expecting 200 and JSON.
pub fn ok(a: &Agent, token: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let (s, b) = with(a, token, method, path, body);
    assert_eq!(s, 200, "{method} {path}: {b}");
    serde_json::from_str(&b).unwrap_or_else(|e| panic!("{method} {path}: {e}: {b}"))
}

/// Waits until the leader has created the initial management token.
pub fn wait_initialized(a: &Agent) {
    wait_until(
        Duration::from_secs(20),
        "the initial management token",
        || with(a, MGMT, "GET", "/v1/acl/token/self", None).0 == 200,
    );
}

/// A client agent with ACLs on, joined to `server`, that trusts a resolution for
/// `token_ttl = "0s"` (every request asks the server, so down_policy is visible at once).
pub fn acl_client(dir: &Path, node: &str, server: &Agent) -> Agent {
    std::fs::create_dir_all(dir).expect("data dir");
    let file = dir.join("acl.hcl");
    let hcl = format!(
        "acl {{\n  enabled = true\n  default_policy = \"deny\"\n  token_ttl = \"0s\"\n  tokens {{\n    agent_recovery = \"{RECOVERY}\"\n  }}\n}}\n"
    );
    std::fs::write(&file, hcl).expect("config");
    let file = file.to_string_lossy().to_string();
    Agent::client_of(
        &dir.join("data"),
        node,
        &server.serf,
        &["-config-file", &file],
    )
}

/// `meridian acl ...` against `a` with `env` set (and no MERIDIAN_HTTP_TOKEN* leaking in).
pub fn acl_cli(a: &Agent, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(super::bin());
    cmd.args(args)
        .env_remove("MERIDIAN_HTTP_ADDR")
        .env_remove("MERIDIAN_HTTP_TOKEN")
        .env_remove("MERIDIAN_HTTP_TOKEN_FILE")
        .env("CONSUL_HTTP_ADDR", &a.addr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run meridian")
}
