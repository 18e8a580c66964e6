//! Consul configuration parity against the real binary: a Consul documentation config starts
//! and names the keys that have no effect, ACLs fail closed, `-pid-file` is written and
//! removed, a stray `MERIDIAN_*` variable is only a warning, and an unknown key still stops
//! the agent naming file and key.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Agent, dev_args, text, wait_until};

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write config file");
    path
}

/// `meridian ARGS` run to completion (for agents that must refuse to start).
fn run(args: &[&str]) -> Output {
    Command::new(common::bin())
        .args(args)
        .output()
        .expect("run meridian")
}

/// The JSON log lines of `agent` that are warnings with `field = value`.
fn warnings_with(agent: &Agent, field: &str, value: &str) -> Vec<serde_json::Value> {
    agent
        .log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "WARN" && v["fields"][field] == value)
        .collect()
}

/// A server config in the shape of Consul's documentation, with every common block. Ports
/// that must be free come from flags (port 0), which Consul also lets override a file.
const CONSUL_DOCS_HCL: &str = r#"
datacenter = "dc1"
server = true
bootstrap_expect = 1
client_addr = "127.0.0.1"
log_level = "INFO"
disable_update_check = true
ports {
  https = -1
  grpc = 8502
  grpc_tls = 8503
}
addresses {
  http = "127.0.0.1"
  dns = "127.0.0.1"
  grpc = "127.0.0.1"
}
dns_config {
  allow_stale = true
  node_ttl = "10s"
}
performance {
  raft_multiplier = 1
}
telemetry {
  prometheus_retention_time = "24h"
  disable_hostname = true
  statsd_address = "127.0.0.1:8125"
}
connect {
  enabled = true
}
ui_config {
  enabled = true
}
autopilot {
  cleanup_dead_servers = true
  last_contact_threshold = "200ms"
}
limits {
  http_max_conns_per_client = 200
}
acl {
  enabled = false
  default_policy = "allow"
}
"#;

/// Scenario: a Consul server config with ports, addresses, dns_config, performance,
/// telemetry, connect, ui_config, autopilot, limits and a disabled acl block starts, serves
/// HTTP, and logs one warning per key that has no effect (the acl keys now have one),
/// naming the key and the file.
#[test]
fn a_consul_docs_config_starts_and_logs_the_keys_without_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "consul.hcl", CONSUL_DOCS_HCL);
    let data = dir.path().join("data");
    let (file_s, data_s) = (file.to_string_lossy(), data.to_string_lossy());
    let a = Agent::start(&[
        "agent",
        "-config-file",
        &file_s,
        "-data-dir",
        &data_s,
        "-node",
        "docs",
        "-bind",
        "127.0.0.1",
        "-http-port",
        "0",
        "-serf-lan-port",
        "0",
        "-log-json",
    ]);
    let self_info = a.get_json("/v1/agent/self");
    assert_eq!(self_info["Config"]["PrimaryDatacenter"], "dc1");
    // The acl block is typed (ACLs are off here): nothing to warn about.
    assert!(
        warnings_with(&a, "key", "acl").is_empty(),
        "{}",
        a.log.join("\n")
    );
    for key in [
        "connect",
        "telemetry.statsd_address",
        "autopilot",
        "ports.grpc_tls",
    ] {
        let found = warnings_with(&a, "key", key);
        assert_eq!(
            found.len(),
            1,
            "one warning for {key}:\n{}",
            a.log.join("\n")
        );
        assert_eq!(found[0]["fields"]["source"], file_s.as_ref());
        assert_eq!(
            found[0]["fields"]["message"],
            "config key has no effect in Meridian"
        );
    }
    // Implemented keys are not warned about (telemetry's Prometheus keys are; its sinks not).
    assert!(warnings_with(&a, "key", "performance").is_empty());
    assert!(warnings_with(&a, "key", "telemetry").is_empty());
    assert!(warnings_with(&a, "key", "telemetry.prometheus_retention_time").is_empty());
    assert!(warnings_with(&a, "key", "addresses.http").is_empty());
}

/// Scenario: py-consul's test config (HTTPS, DNS and gRPC-TLS off, raft multiplier 1,
/// script checks on) starts a dev agent without a single warning.
#[test]
fn the_py_consul_config_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "py.json",
        r#"{"ports":{"https":-1,"dns":-1,"grpc_tls":-1},"performance":{"raft_multiplier":1},"enable_script_checks":true}"#,
    );
    let file_s = file.to_string_lossy();
    // The harness adds `-dns-port 0` unless one is given; -1 keeps DNS off, as the config has it.
    let a = Agent::start(&dev_args(&["-config-file", &file_s, "-dns-port", "-1"]));
    assert_eq!(a.dns, 0, "DNS is off");
    let warns: Vec<&String> = a.log.iter().filter(|l| l.contains("\"WARN\"")).collect();
    assert!(!warns.iter().any(|l| l.contains("no effect")), "{warns:?}");
}

/// Scenario: py-consul's ACL config (`acl { enabled = true }`, a non-UUID management token)
/// starts the agent as it starts Consul: enforcing, and warning that the token is no UUID.
#[test]
fn py_consuls_acl_config_starts_and_enforces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "acl.json",
        r#"{"primary_datacenter":"dc1","acl":{"enabled":true,"default_policy":"deny","tokens":{"initial_management":"root"}}}"#,
    );
    let mut a = Agent::start(&dev_args(&["-config-file", &file.to_string_lossy()]));
    a.wait_log(Duration::from_secs(10), |l| {
        l.contains("acl.tokens.initial_management is not a UUID")
    });
    let anonymous = a.get("/v1/kv/x");
    assert_eq!(anonymous.0, 403, "{}", anonymous.2);
    // The leader creates the management token just after it is elected.
    wait_until(
        Duration::from_secs(20),
        "the management token to read (no such key: 404)",
        || {
            reqwest::blocking::Client::new()
                .get(format!("{}/v1/kv/x", a.url))
                .header("X-Consul-Token", "root")
                .send()
                .is_ok_and(|r| r.status().as_u16() == 404)
        },
    );
}

/// Scenario: an unknown key is still an error naming the file and the key.
#[test]
fn an_unknown_key_still_stops_the_agent_naming_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "typo.hcl", "telemetry {}\nprots {}\n");
    let o = run(&["agent", "-dev", "-config-file", &file.to_string_lossy()]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "config file {}: unknown field `prots`",
            file.display()
        )),
        "{err}"
    );
}

/// Scenario: `-pid-file` holds the agent's pid while it runs and is gone after it exits on
/// SIGTERM and on SIGINT.
#[test]
fn pid_file_is_written_and_removed_on_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    for signal in ["-TERM", "-INT"] {
        let pid_path = dir.path().join("meridian.pid");
        let pid_s = pid_path.to_string_lossy().to_string();
        let mut a = Agent::dev_named("pid", &["-pid-file", &pid_s]);
        let written = std::fs::read_to_string(&pid_path).expect("pid file while running");
        assert_eq!(written, a.pid().to_string());
        let status = a.stop_with(signal);
        assert!(status.success(), "{signal}: {status:?}");
        wait_until(Duration::from_secs(5), "the pid file to be removed", || {
            !pid_path.exists()
        });
    }
}

/// Scenario: a wrapper script's `MERIDIAN_BIN` in the environment does not stop the agent;
/// it is named in one warning.
#[test]
fn a_stray_meridian_env_var_is_only_a_warning() {
    let a = Agent::start_env(
        &dev_args(&[]),
        &[("MERIDIAN_BIN", "/usr/local/bin/meridian")],
    );
    let found = warnings_with(&a, "variable", "MERIDIAN_BIN");
    assert_eq!(found.len(), 1, "{}", a.log.join("\n"));
}

/// Scenario: `meridian validate` on a Consul config prints the keys without effect and still
/// says the configuration is valid.
#[test]
fn validate_prints_the_keys_without_effect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "v.hcl",
        "data_dir = \"/tmp/x\"\ntelemetry {\n  statsd_address = \"127.0.0.1:8125\"\n}\n",
    );
    let o = run(&["validate", &file.to_string_lossy()]);
    assert!(o.status.success(), "{}", text(&o));
    // As Consul's: warnings on stderr, the verdict alone on stdout.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("telemetry.statsd_address: config key has no effect"),
        "{err}"
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "Configuration is valid!"
    );
}

/// Scenario: `-client "127.0.0.1 127.0.0.2"` (a space-separated list, as Consul's
/// `client_addr`): the HTTP API answers on every address, on the same port, as DNS does.
#[test]
fn the_http_api_listens_on_every_client_address() {
    let a = Agent::start(&dev_args(&["-client", "127.0.0.1 127.0.0.2"]));
    let port = a
        .addr
        .rsplit_once(':')
        .map(|(_, p)| p.to_string())
        .expect("port");
    for ip in ["127.0.0.1", "127.0.0.2"] {
        let r = reqwest::blocking::get(format!("http://{ip}:{port}/v1/status/leader"))
            .unwrap_or_else(|e| panic!("GET on {ip}:{port}: {e}"));
        assert_eq!(r.status().as_u16(), 200, "{ip}");
    }
}
