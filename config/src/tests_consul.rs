//! Consul configuration parity: Consul's keys and flags load, keys for features Meridian lacks
//! are warned about by name and source, unknown keys stay errors, deprecated ACL spellings
//! take effect, and `acl { enabled = true }` loads as Consul's (Consul's documented keys: `agent/config/config.go`, `flags.go`).

use std::path::Path;

use crate::test_support::{env, flags, write};
use crate::{Config, ConfigError, WarningKind, validate_path};

/// `(key, origin)` of each warning.
fn warned(c: &Config) -> Vec<(String, String)> {
    c.warnings
        .iter()
        .map(|w| (w.key.clone(), w.origin.clone()))
        .collect()
}

fn keys(c: &Config) -> Vec<&str> {
    c.warnings.iter().map(|w| w.key.as_str()).collect()
}

/// A server config in the shape of Consul's documentation, with every common block.
const DOCS_HCL: &str = r#"
datacenter = "dc1"
data_dir = "/opt/consul"
server = true
bootstrap_expect = 1
client_addr = "127.0.0.1"
primary_datacenter = "dc1"
log_level = "INFO"
enable_script_checks = false
disable_update_check = true
ports {
  http = 8500
  dns = 8600
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
  max_stale = "87600h"
  node_ttl = "10s"
  service_ttl = {
    "*" = "5s"
  }
}
performance {
  raft_multiplier = 1
}
telemetry {
  prometheus_retention_time = "24h"
  disable_hostname = true
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
  max_trailing_logs = 250
  server_stabilization_time = "10s"
}
limits {
  http_max_conns_per_client = 200
  rpc_handshake_timeout = "5s"
}
acl {
  enabled = false
  default_policy = "allow"
  enable_token_persistence = true
}
"#;

/// The same configuration as JSON.
const DOCS_JSON: &str = r#"{
  "datacenter": "dc1",
  "data_dir": "/opt/consul",
  "server": true,
  "bootstrap_expect": 1,
  "client_addr": "127.0.0.1",
  "primary_datacenter": "dc1",
  "log_level": "INFO",
  "enable_script_checks": false,
  "disable_update_check": true,
  "ports": { "http": 8500, "dns": 8600, "https": -1, "grpc": 8502, "grpc_tls": 8503 },
  "addresses": { "http": "127.0.0.1", "dns": "127.0.0.1", "grpc": "127.0.0.1" },
  "dns_config": {
    "allow_stale": true, "max_stale": "87600h", "node_ttl": "10s",
    "service_ttl": { "*": "5s" }
  },
  "performance": { "raft_multiplier": 1 },
  "telemetry": { "prometheus_retention_time": "24h", "disable_hostname": true },
  "connect": { "enabled": true },
  "ui_config": { "enabled": true },
  "autopilot": {
    "cleanup_dead_servers": true, "last_contact_threshold": "200ms",
    "max_trailing_logs": 250, "server_stabilization_time": "10s"
  },
  "limits": { "http_max_conns_per_client": 200, "rpc_handshake_timeout": "5s" },
  "acl": { "enabled": false, "default_policy": "allow", "enable_token_persistence": true }
}"#;

#[test]
fn a_consul_docs_config_with_every_common_block_loads_and_names_the_keys_without_effect() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("consul.hcl", DOCS_HCL), ("consul.json", DOCS_JSON)] {
        let path = write(dir.path(), name, text);
        let c = validate_path(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        // What Meridian implements took effect.
        assert_eq!(c.performance.raft_multiplier, 1);
        assert_eq!(c.dns_config.node_ttl.as_secs(), 10);
        assert_eq!(c.addresses.http.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.primary_datacenter(), "dc1");
        assert!(!c.acl.enabled);
        assert!(c.acl.enable_token_persistence);
        assert_eq!(
            c.telemetry.prometheus_retention(),
            Some(std::time::Duration::from_secs(24 * 3600))
        );
        assert!(c.telemetry.disable_hostname);
        // Every key without effect is named once, with the file it came from.
        let origin = path.display().to_string();
        assert!(c.warnings.iter().all(|w| w.origin == origin), "{c:?}");
        assert!(c.warnings.iter().all(|w| w.kind == WarningKind::NoEffect));
        let mut got = keys(&c);
        got.sort_unstable();
        let mut want = vec![
            "addresses.grpc",
            "autopilot",
            "connect",
            "limits.http_max_conns_per_client",
            "limits.rpc_handshake_timeout",
            "ports.grpc",
            "ports.grpc_tls",
        ];
        want.sort_unstable();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_bad_prometheus_retention_time_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (i, bad) in ["\"-5s\"", "\"soon\"", "true"].iter().enumerate() {
        let path = write(
            dir.path(),
            &format!("t{i}.hcl"),
            &format!("telemetry {{\n  prometheus_retention_time = {bad}\n}}\n"),
        );
        let err = validate_path(&path).unwrap_err();
        assert_eq!(
            err.key(),
            Some("telemetry.prometheus_retention_time"),
            "{bad}: {err}"
        );
    }
    // Unset or zero: Prometheus output stays off.
    let zero = write(
        dir.path(),
        "z.hcl",
        "data_dir = \"/tmp/z\"\ntelemetry {\n  prometheus_retention_time = \"0s\"\n}\n",
    );
    let c = validate_path(&zero).unwrap();
    assert_eq!(c.telemetry.prometheus_retention(), None);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn the_py_consul_test_config_loads_without_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "py.json",
        r#"{"ports":{"https":-1,"dns":-1,"grpc_tls":-1},"performance":{"raft_multiplier":1},"enable_script_checks":true}"#,
    );
    let f = flags(&["-dev", "-config-file", path.to_str().unwrap()]);
    let c = Config::load_with_env(&f, Vec::new()).unwrap();
    assert_eq!(c.ports.dns_port(), None);
    assert!(c.enable_script_checks);
    // Listeners that are off are off in Meridian too: nothing to warn about.
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn acl_enabled_is_turned_on_by_every_spelling_and_the_last_source_wins() {
    let dir = tempfile::tempdir().unwrap();
    let json = write(
        dir.path(),
        "acl.json",
        r#"{"primary_datacenter":"dc1","acl":{"enabled":true,"tokens":{"initial_management":"root"}}}"#,
    );
    let hcl = write(dir.path(), "acl.hcl", "acl {\n  enabled = true\n}\n");
    // Consul's deprecated acl_datacenter turns ACLs on as well.
    let legacy = write(dir.path(), "legacy.hcl", "acl_datacenter = \"dc1\"\n");
    for path in [&json, &hcl, &legacy] {
        let f = flags(&["-dev", "-config-file", path.to_str().unwrap()]);
        let c = Config::load_with_env(&f, Vec::new()).unwrap();
        assert!(c.acl.enabled, "{}", path.display());
    }
    let c = Config::load_with_env(&flags(&["-dev"]), env(&[("MERIDIAN_ACL__ENABLED", "true")]))
        .unwrap();
    assert!(c.acl.enabled, "MERIDIAN_ACL__ENABLED");
    // A later source that turns ACLs off wins, as in Consul's merge.
    let f = flags(&[
        "-dev",
        "-config-file",
        hcl.to_str().unwrap(),
        "-hcl",
        "acl { enabled = false }",
    ]);
    let c = Config::load_with_env(&f, Vec::new()).unwrap();
    assert!(!c.acl.enabled);
    // The acl block is typed now: nothing to warn about.
    assert!(keys(&c).is_empty(), "{:?}", c.warnings);
}

#[test]
fn acl_enabled_loads_with_nothing_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let hcl = write(
        dir.path(),
        "acl.hcl",
        "acl {\n  enabled = true\n  default_policy = \"deny\"\n  tokens {\n    initial_management = \"5a1f3bd2-0d5e-4c5e-9c1f-3c0c7a4f9d10\"\n  }\n}\n",
    );
    let f = flags(&["-dev", "-config-file", hcl.to_str().unwrap()]);
    let c = Config::load_with_env(&f, env(&[])).unwrap();
    assert!(c.acl.enabled);
    // The former gate's variable is ignored without a warning.
    let c = Config::load_with_env(&f, env(&[("MERIDIAN_ACL_PREVIEW", "1")])).unwrap();
    assert!(c.acl.enabled && c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.acl.default_policy, crate::AclDefaultPolicy::Deny);
    assert_eq!(
        c.acl.tokens.initial_management.as_deref(),
        Some("5a1f3bd2-0d5e-4c5e-9c1f-3c0c7a4f9d10")
    );
    // Secrets never show in Debug output (configs are printed in errors).
    assert!(!format!("{c:?}").contains("5a1f3bd2"), "{:?}", c.acl.tokens);
    // The variable is no configuration key, so it is not warned about either.
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn acl_keys_default_as_consul_and_bad_policies_name_file_and_key() {
    let c = Config::load_with_env(&flags(&["-dev"]), Vec::new()).unwrap();
    assert_eq!(c.acl.default_policy, crate::AclDefaultPolicy::Allow);
    assert_eq!(c.acl.down_policy, crate::AclDownPolicy::ExtendCache);
    assert_eq!(c.acl.token_ttl.as_secs(), 30);
    assert_eq!(c.acl.role_ttl.as_secs(), 30);
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "down.hcl",
        "acl {\n  down_policy = \"sometimes\"\n}\n",
    );
    let err = validate_path(&bad).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(r#"invalid ACL down policy "sometimes""#),
        "{msg}"
    );
    assert!(
        msg.contains("down.hcl") && msg.contains("acl.down_policy"),
        "{msg}"
    );
    let bad = write(
        dir.path(),
        "def.json",
        r#"{"acl":{"default_policy":"maybe"}}"#,
    );
    let msg = validate_path(&bad).unwrap_err().to_string();
    assert!(
        msg.contains(r#"invalid ACL default policy "maybe""#),
        "{msg}"
    );
}

#[test]
fn deprecated_acl_keys_warn_and_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let old = write(
        dir.path(),
        "old.hcl",
        "acl_default_policy = \"deny\"\nacl_down_policy = \"allow\"\nacl_token = \"def\"\n\
         acl_agent_token = \"agt\"\nacl_agent_master_token = \"rec\"\nacl_ttl = \"45s\"\n\
         acl_enable_key_list_policy = true\nacl {\n  tokens {\n    master = \"root\"\n  }\n}\n",
    );
    let f = flags(&["-dev", "-config-file", old.to_str().unwrap()]);
    let c = Config::load_with_env(&f, Vec::new()).unwrap();
    assert_eq!(c.acl.default_policy, crate::AclDefaultPolicy::Deny);
    assert_eq!(c.acl.down_policy, crate::AclDownPolicy::Allow);
    assert_eq!(c.acl.tokens.default.as_deref(), Some("def"));
    assert_eq!(c.acl.tokens.agent.as_deref(), Some("agt"));
    assert_eq!(c.acl.tokens.agent_recovery.as_deref(), Some("rec"));
    assert_eq!(c.acl.tokens.initial_management.as_deref(), Some("root"));
    assert_eq!(c.acl.token_ttl.as_secs(), 45);
    assert!(c.acl.enable_key_list_policy);
    let mut got: Vec<_> = c
        .warnings
        .iter()
        .filter(|w| matches!(w.kind, WarningKind::Deprecated { .. }))
        .map(|w| w.key.as_str())
        .collect();
    // Every old key here takes effect now (under its new name).
    let inert: Vec<_> = c
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::NoEffect)
        .map(|w| w.key.as_str())
        .collect();
    assert!(inert.is_empty(), "{inert:?}");
    got.sort_unstable();
    assert_eq!(
        got,
        [
            "acl.tokens.master",
            "acl_agent_master_token",
            "acl_agent_token",
            "acl_default_policy",
            "acl_down_policy",
            "acl_enable_key_list_policy",
            "acl_token",
            "acl_ttl"
        ]
    );
    // acl_datacenter sets the primary datacenter and turns ACLs on.
    let legacy = write(dir.path(), "dc.hcl", "acl_datacenter = \"dc9\"\n");
    let f = flags(&["-dev", "-config-file", legacy.to_str().unwrap()]);
    let c = Config::load_with_env(&f, env(&[])).unwrap();
    assert!(c.acl.enabled);
    assert_eq!(c.primary_datacenter(), "dc9");
}

#[test]
fn unknown_keys_are_still_errors_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let hcl = write(
        dir.path(),
        "typo.hcl",
        "telemetry {}\nprots {\n  http = 1\n}\n",
    );
    let err = validate_path(&hcl).unwrap_err();
    assert_eq!(err.key(), Some("prots"), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "config file {}: unknown field `prots`",
            hcl.display()
        )),
        "{err}"
    );
    let json = write(
        dir.path(),
        "typo.json",
        "{\n  \"connect\": {},\n  \"ports\": {\n    \"grpc_tls\": 1,\n    \"htp\": 1\n  }\n}\n",
    );
    let err = validate_path(&json).unwrap_err();
    match &err {
        ConfigError::File { key, line, .. } => {
            assert_eq!(key.as_deref(), Some("ports.htp"));
            assert_eq!(*line, Some(5), "{err}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_meridian_env_var_that_is_no_key_is_a_warning_naming_it() {
    let c = Config::load_with_env(
        &flags(&["-dev"]),
        env(&[
            ("MERIDIAN_BIN", "/usr/local/bin/meridian"),
            ("MERIDIAN_TELEMETRY__STATSD_ADDRESS", "127.0.0.1:8125"),
            ("MERIDIAN_DATACENTER", "east"),
        ]),
    )
    .unwrap();
    assert_eq!(c.datacenter, "east");
    let bin = c.warnings.iter().find(|w| w.key == "MERIDIAN_BIN");
    assert_eq!(bin.map(|w| w.kind), Some(WarningKind::NotAKey), "{c:?}");
    assert!(warned(&c).contains(&(
        "telemetry.statsd_address".into(),
        "environment variable MERIDIAN_TELEMETRY__STATSD_ADDRESS".into()
    )));
    // A variable that names a key with a bad value is still an error.
    let err = Config::load_with_env(
        &flags(&["-dev"]),
        env(&[("MERIDIAN_PERFORMANCE__RAFT_MULTIPLIER", "fast")]),
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("performance.raft_multiplier"));
}

/// Every flag of Consul's `agent` command, with a value.
const CONSUL_FLAGS: &[&str] = &[
    "-advertise=127.0.0.1",
    "-advertise-wan=10.0.0.1",
    "-allow-write-http-from=127.0.0.0/8",
    "-alt-domain=alt.",
    "-auto-reload-config",
    "-bind=127.0.0.1",
    "-bootstrap",
    "-check_output_max_size=4096",
    "-client=127.0.0.1",
    "-config-format=hcl",
    "-data-dir=/tmp/m",
    "-datacenter=dc1",
    "-default-query-time=300s",
    "-disable-host-node-id",
    "-disable-keyring-file",
    "-dns-port=8600",
    "-domain=consul.",
    "-enable-local-script-checks",
    "-enable-script-checks",
    "-encrypt=pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=",
    "-grpc-port=8502",
    "-grpc-tls-port=8503",
    "-hcl=log_level = \"debug\"",
    "-http-port=8500",
    "-https-port=-1",
    "-join=127.0.0.1",
    "-join-wan=10.0.0.2",
    "-log-file=/tmp/consul.log",
    "-log-json",
    "-log-level=info",
    "-log-rotate-bytes=1000",
    "-log-rotate-duration=24h",
    "-log-rotate-max-files=3",
    "-max-query-time=600s",
    "-node=n1",
    "-node-id=40e4a748-2192-161a-0510-9bf59fe950b5",
    "-node-meta=rack:r1",
    "-non-voting-server",
    "-pid-file=/tmp/m.pid",
    "-primary-gateway=10.0.0.3:8443",
    "-protocol=2",
    "-raft-protocol=3",
    "-read-replica",
    "-recursor=8.8.8.8",
    "-rejoin",
    "-retry-interval=30s",
    "-retry-interval-wan=30s",
    "-retry-join=127.0.0.1",
    "-retry-join-wan=10.0.0.4",
    "-retry-max=0",
    "-retry-max-wan=0",
    "-segment=alpha",
    "-serf-lan-allowed-cidrs=127.0.0.0/8",
    "-serf-lan-bind=127.0.0.1",
    "-serf-lan-port=8301",
    "-serf-wan-allowed-cidrs=10.0.0.0/8",
    "-serf-wan-bind=127.0.0.1",
    "-serf-wan-port=8302",
    "-server",
    "-server-port=8300",
    "-syslog",
    "-ui",
    "-ui-content-path=/ui/",
    "-ui-dir=/tmp/ui",
];

#[test]
fn every_consul_agent_flag_parses_and_unimplemented_ones_are_named() {
    let mut args = vec!["-dev"];
    args.extend_from_slice(CONSUL_FLAGS);
    let c = Config::load_with_env(&flags(&args), Vec::new()).unwrap();
    assert_eq!(c.pid_file.as_deref(), Some(Path::new("/tmp/m.pid")));
    assert!(c.enable_local_script_checks);
    assert_eq!(c.log_level, "info");
    let w = warned(&c);
    for (key, flag) in [
        ("log_file", "-log-file"),
        ("ports.grpc_tls", "-grpc-tls-port"),
        ("http_config", "-allow-write-http-from"),
        ("retry_join_wan", "-retry-join-wan"),
        ("serf_lan", "-serf-lan-bind"),
        ("enable_syslog", "-syslog"),
        ("ui_config.dir", "-ui-dir"),
    ] {
        let want = (key.to_string(), format!("command-line flag {flag}"));
        assert!(w.contains(&want), "{want:?} not in {w:?}");
    }
    // Flags Meridian implements are not warned about.
    assert!(
        !w.iter()
            .any(|(k, _)| k == "pid_file" || k == "ports.http" || k == "ui")
    );
    // HTTPS is served: the flag is no warning, and without a certificate it is an error.
    let err = Config::load_with_env(&flags(&["-dev", "-https-port=8501"]), Vec::new())
        .expect_err("https without a certificate");
    assert!(err.to_string().contains("tls.https.cert_file"), "{err}");
    // A listener turned off by flag is what Meridian does anyway.
    let c = Config::load_with_env(&flags(&["-dev", "-grpc-tls-port=-1"]), Vec::new()).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn pid_file_primary_datacenter_and_listener_addresses_load() {
    let c = Config::load_with_env(
        &flags(&[
            "-dev",
            "-hcl",
            "pid_file = \"/run/m.pid\"\naddresses { dns = \"127.0.0.2 127.0.0.3\" }",
        ]),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(c.pid_file.as_deref(), Some(Path::new("/run/m.pid")));
    assert_eq!(c.primary_datacenter(), "dc1");
    assert_eq!(c.http_ip().unwrap().to_string(), "127.0.0.1");
    let dns: Vec<String> = c
        .dns_addrs()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(dns, ["127.0.0.2", "127.0.0.3"]);

    let err = Config::load_with_env(
        &flags(&[
            "-dev",
            "-hcl",
            "addresses { http = \"unix:///tmp/m.sock\" }",
        ]),
        Vec::new(),
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("addresses.http"));
    assert!(err.to_string().contains("unix sockets"), "{err}");
    let err = Config::load_with_env(
        &flags(&["-dev", "-hcl", "primary_datacenter = \"DC 1\""]),
        Vec::new(),
    )
    .unwrap_err();
    assert_eq!(err.key(), Some("primary_datacenter"));
}

#[test]
fn config_format_reads_files_whatever_their_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "agent.conf", "datacenter = \"fmt\"\n");
    let f = flags(&[
        "-dev",
        "-config-format=hcl",
        "-config-file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(
        Config::load_with_env(&f, Vec::new()).unwrap().datacenter,
        "fmt"
    );
    let f = flags(&["-dev", "-config-file", path.to_str().unwrap()]);
    assert!(matches!(
        Config::load_with_env(&f, Vec::new()),
        Err(ConfigError::UnknownFormat { .. })
    ));
}
