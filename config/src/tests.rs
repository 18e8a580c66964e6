//! Loading, layering and validation tests (unit tests of parsing helpers sit next to them).

use std::time::Duration;

use crate::test_support::{env, flags, try_flags, write};
use crate::{Config, ConfigError, validate_path, validate_paths};

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

#[test]
fn defaults_are_consuls() {
    let c = Config::default();
    assert_eq!(c.datacenter, "dc1");
    assert_eq!(c.bind_addr.to_string(), "0.0.0.0");
    assert_eq!(c.client_addr, "127.0.0.1");
    assert_eq!(
        (
            c.ports.http,
            c.ports.dns,
            c.ports.server,
            c.ports.serf_lan,
            c.ports.serf_wan
        ),
        (8500, 8600, 8300, 8301, 8302)
    );
    assert_eq!((c.ports.https, c.ports.grpc), (-1, -1));
    assert_eq!(c.ports.https_port(), None);
    assert_eq!(c.domain, "consul.");
    assert_eq!(c.log_level, "info");
    assert_eq!(c.limits.kv_max_value_size, 524_288);
    assert_eq!(c.limits.txn_max_req_len, 524_288);
    assert_eq!(c.performance.raft_multiplier, 5);
    assert_eq!(c.session_ttl_min, Duration::from_secs(10));
    assert_eq!(c.retry_interval, Duration::from_secs(30));
    assert_eq!(c.reconnect_timeout, Duration::from_secs(72 * 3600));
    assert_eq!(c.raft_snapshot_threshold, 16384);
    assert_eq!(c.raft_snapshot_interval, Duration::from_secs(30));
    assert_eq!(c.raft_trailing_logs, 10000);
    assert_eq!(c.dns_config.udp_answer_limit, 3);
    assert_eq!(c.dns_config.max_stale, Duration::from_secs(87600 * 3600));
    assert!(c.dns_config.allow_stale);
    assert!(!c.node_name.is_empty());
    assert_eq!(c.raft_timing().election_timeout, Duration::from_secs(5));
}

#[test]
fn a_typo_in_an_hcl_file_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "agent.hcl",
        "data_dir = \"/tmp/x\"\ndatacentr = \"dc2\"\n",
    );
    let err = Config::load_with_env(&flags(&["-config-file", path.to_str().unwrap()]), no_env())
        .unwrap_err();
    assert_eq!(err.key(), Some("datacentr"));
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "config file {}: unknown field `datacentr` at key \"datacentr\", expected one of",
            path.display()
        )),
        "{msg}"
    );
}

#[test]
fn a_typo_in_a_nested_block_names_the_full_key_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "agent.hcl", "ports {\n  htp = 1\n}\n");
    let err = validate_path(&path).unwrap_err();
    assert_eq!(err.key(), Some("ports.htp"), "{err}");
}

#[test]
fn a_bad_duration_in_a_file_names_the_key_and_the_unit() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "agent.hcl", "retry_interval = \"10parsecs\"\n");
    let err = validate_path(&path).unwrap_err();
    assert_eq!(err.key(), Some("retry_interval"));
    assert!(
        err.to_string().contains(r#"unknown unit "parsecs""#),
        "{err}"
    );

    let path = write(
        dir.path(),
        "dns.json",
        r#"{"dns_config": {"service_ttl": {"*": "5 s"}}}"#,
    );
    let err = validate_path(&path).unwrap_err();
    assert_eq!(err.key(), Some("dns_config.service_ttl.*"), "{err}");
}

#[test]
fn a_bad_type_in_json_reports_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "agent.json",
        "{\n  \"data_dir\": \"/tmp/x\",\n  \"server\": \"yes\"\n}\n",
    );
    let err = validate_path(&path).unwrap_err();
    match &err {
        ConfigError::File { key, line, .. } => {
            assert_eq!(key.as_deref(), Some("server"));
            assert_eq!(*line, Some(3));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("at key \"server\", line 3"),
        "{err}"
    );
}

#[test]
fn syntax_errors_report_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "agent.json", "{\n  \"server\": true,\n}\n");
    let err = validate_path(&path).unwrap_err();
    assert!(
        matches!(err, ConfigError::File { line: Some(3), .. }),
        "{err:?}"
    );

    let path = write(
        dir.path(),
        "agent.hcl",
        "server = true\nports {\n  http = \n}\n",
    );
    let err = validate_path(&path).unwrap_err();
    assert!(
        matches!(err, ConfigError::File { line: Some(3), .. }),
        "{err:?}"
    );
}

#[test]
fn consul_style_hcl_and_json_files_load() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.hcl",
        r#"
datacenter = "east-1"
data_dir = "/var/lib/meridian"
server = true
bootstrap_expect = 3
retry_join = ["10.0.0.1", "10.0.0.2:8301"]
ports {
  http = 18500
  grpc = 8502
}
ui_config {
  enabled = true
}
node_meta {
  rack = "r1"
}
dns_config {
  only_passing = true
  node_ttl = "10s"
  service_ttl = {
    "*" = "5s"
    web = "30s"
  }
}
performance {
  raft_multiplier = 1
}
raft_snapshot_interval = "2m"
limits {
  kv_max_value_size = 1048576
}
service {
  name = "web"
  port = 80
}
encrypt = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s="
"#,
    );
    write(
        dir.path(),
        "b.json",
        r#"{"services": [{"name": "db", "port": 5432}], "session_ttl_min": "1000ms"}"#,
    );
    write(dir.path(), "ignored.txt", "not = config");
    let c = validate_path(dir.path()).unwrap();
    assert_eq!(c.datacenter, "east-1");
    assert_eq!(c.bootstrap_expect, 3);
    assert_eq!(c.raft_snapshot_interval, Duration::from_secs(120));
    assert_eq!(c.retry_join, ["10.0.0.1", "10.0.0.2:8301"]);
    assert_eq!(
        (c.ports.http, c.ports.dns, c.ports.grpc),
        (18500, 8600, 8502)
    );
    assert!(c.ui && c.ui_config.enabled);
    assert_eq!(c.node_meta.get("rack").map(String::as_str), Some("r1"));
    assert_eq!(c.dns_config.service_ttl_for("web"), Duration::from_secs(30));
    assert_eq!(c.dns_config.service_ttl_for("api"), Duration::from_secs(5));
    assert_eq!(c.dns_config.node_ttl, Duration::from_secs(10));
    assert_eq!(
        c.dns_config.udp_answer_limit, 3,
        "unset keys in a block keep their defaults"
    );
    assert_eq!(c.limits.kv_max_value_size, 1_048_576);
    assert_eq!(c.session_ttl_min, Duration::from_secs(1));
    let names: Vec<_> = c
        .service_definitions()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["web", "db"]);
}

#[test]
fn config_dir_files_load_in_lexical_order_and_later_files_win() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "20-b.hcl", "datacenter = \"b\"\n");
    write(
        dir.path(),
        "10-a.json",
        r#"{"datacenter": "a", "data_dir": "/x", "node_name": "n1"}"#,
    );
    let c = Config::load_with_env(
        &flags(&["-config-dir", dir.path().to_str().unwrap()]),
        no_env(),
    )
    .unwrap();
    assert_eq!(c.datacenter, "b");
    assert_eq!(c.node_name, "n1");
}

#[test]
fn env_overrides_a_file_and_flags_override_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "agent.hcl",
        "datacenter = \"dc1\"\ndata_dir = \"/x\"\nports {\n  dns = 8601\n}\n",
    );
    let file = path.to_str().unwrap();
    let vars = env(&[
        ("MERIDIAN_DATACENTER", "dc2"),
        ("MERIDIAN_PORTS__HTTP", "9000"),
        ("MERIDIAN_HTTP_ADDR", "x"),
        ("PATH", "/bin"),
    ]);

    let c = Config::load_with_env(&flags(&["-config-file", file]), vars.clone()).unwrap();
    assert_eq!(c.datacenter, "dc2");
    assert_eq!(
        (c.ports.http, c.ports.dns),
        (9000, 8601),
        "nested keys merge one by one"
    );

    let c = Config::load_with_env(
        &flags(&[
            "-config-file",
            file,
            "-datacenter",
            "dc3",
            "-http-port=9100",
        ]),
        vars,
    )
    .unwrap();
    assert_eq!(c.datacenter, "dc3");
    assert_eq!(c.ports.http, 9100);
}

#[test]
fn a_bad_env_value_names_the_variable() {
    let f = flags(&["-dev"]);
    let err = Config::load_with_env(&f, env(&[("MERIDIAN_PORTS__HTTP", "lots")])).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("environment variable MERIDIAN_PORTS__HTTP: "),
        "{msg}"
    );
    assert_eq!(err.key(), Some("ports.http"));

    // A variable that names no key is a warning, not an error (tests_consul.rs).
    let c = Config::load_with_env(&f, env(&[("MERIDIAN_DATACENTR", "x")])).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].key, "MERIDIAN_DATACENTR");
}

#[test]
fn dev_mode_needs_no_data_dir_and_binds_localhost() {
    let c = Config::load_with_env(&flags(&["-dev"]), no_env()).unwrap();
    assert!(c.dev_mode && c.server && c.bootstrap && c.ui_enabled());
    assert_eq!(c.data_dir, None);
    assert_eq!(c.bind_addr.to_string(), "127.0.0.1");
    assert_eq!(c.advertise_ip().unwrap().to_string(), "127.0.0.1");
    assert_eq!(c.client_ip().unwrap().to_string(), "127.0.0.1");
    assert_eq!(c.raft_timing().election_timeout, Duration::from_millis(52));
}

#[test]
fn flags_set_consul_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let f = flags(&[
        "-server",
        "-bootstrap-expect",
        "3",
        "-data-dir",
        d,
        "-node=n1",
        "-bind",
        "10.0.0.5",
        "-client",
        "0.0.0.0",
        "-retry-join",
        "a",
        "-retry-join",
        "b",
        "-join",
        "c",
        "-retry-interval",
        "5s",
        "-retry-max=4",
        "-rejoin",
        "-log-level",
        "debug",
        "-log-json",
        "-ui",
        "-domain",
        "example.",
        "-recursor",
        "8.8.8.8",
        "-enable-script-checks",
        "-node-meta",
        "rack:r1",
        "-node-meta",
        "zone:a:b",
        "-dns-port",
        "-1",
        "-server-port",
        "18300",
        "-serf-lan-port",
        "18301",
    ]);
    let c = Config::load_with_env(&f, no_env()).unwrap();
    assert!(c.server && c.rejoin_after_leave && c.log_json && c.ui && c.enable_script_checks);
    assert_eq!(c.bootstrap_expect, 3);
    assert_eq!(c.node_name, "n1");
    assert_eq!(c.advertise_ip().unwrap().to_string(), "10.0.0.5");
    assert_eq!(c.retry_join, ["a", "b"]);
    assert_eq!(c.start_join, ["c"]);
    assert_eq!(c.retry_interval, Duration::from_secs(5));
    assert_eq!(c.retry_max, 4);
    assert_eq!(c.recursors, ["8.8.8.8"]);
    assert_eq!(c.node_meta.get("zone").map(String::as_str), Some("a:b"));
    assert_eq!(
        (c.ports.dns, c.ports.server, c.ports.serf_lan),
        (-1, 18300, 18301)
    );
    assert_eq!(c.ports.dns_port(), None);
}

#[test]
fn bool_flags_accept_go_style_false() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "a.json",
        r#"{"server": true, "data_dir": "/x", "ui": true}"#,
    );
    let f = flags(&["-config-file", path.to_str().unwrap(), "-ui=false"]);
    let c = Config::load_with_env(&f, no_env()).unwrap();
    assert!(c.server);
    assert!(!c.ui);
}

#[test]
fn a_bad_duration_flag_fails_at_parse_time_naming_the_flag() {
    let err = try_flags(&["-retry-interval", "10parsecs"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid value '10parsecs' for '--retry-interval <DURATION>'"),
        "{err}"
    );
    assert!(err.contains("unknown unit"), "{err}");
}

#[test]
fn validation_rules() {
    let base = || Config {
        data_dir: Some("/x".into()),
        ..Config::default()
    };
    let key_of = |c: Config| c.validate().unwrap_err().key().map(str::to_string);
    assert!(base().validate().is_ok());
    assert_eq!(
        key_of(Config {
            data_dir: None,
            ..base()
        })
        .as_deref(),
        Some("data_dir")
    );
    assert_eq!(
        key_of(Config {
            server: true,
            bootstrap: true,
            bootstrap_expect: 3,
            ..base()
        })
        .as_deref(),
        Some("bootstrap_expect")
    );
    assert_eq!(
        key_of(Config {
            bootstrap_expect: 3,
            ..base()
        })
        .as_deref(),
        Some("bootstrap_expect")
    );
    assert_eq!(
        key_of(Config {
            bootstrap: true,
            ..base()
        })
        .as_deref(),
        Some("bootstrap")
    );
    let mut c = base();
    c.performance.raft_multiplier = 11;
    assert_eq!(key_of(c).as_deref(), Some("performance.raft_multiplier"));
    let mut c = base();
    c.performance.raft_multiplier = 0;
    assert_eq!(key_of(c).as_deref(), Some("performance.raft_multiplier"));
    assert_eq!(
        key_of(Config {
            encrypt: Some("c2hvcnQ=".into()),
            ..base()
        })
        .as_deref(),
        Some("encrypt")
    );
    assert_eq!(
        key_of(Config {
            encrypt: Some("not base64!".into()),
            ..base()
        })
        .as_deref(),
        Some("encrypt")
    );
    assert!(
        Config {
            encrypt: Some("AAAAAAAAAAAAAAAAAAAAAA==".into()),
            ..base()
        }
        .validate()
        .is_ok()
    );
    for dc in ["DC1", "dc.1", ""] {
        assert_eq!(
            key_of(Config {
                datacenter: dc.into(),
                ..base()
            })
            .as_deref(),
            Some("datacenter")
        );
    }
    let mut c = base();
    c.ports.http = 70000;
    assert_eq!(key_of(c).as_deref(), Some("ports.http"));
    let mut c = base();
    c.ports.dns = 8500;
    assert_eq!(key_of(c).as_deref(), Some("ports.dns"));
    assert_eq!(
        key_of(Config {
            node_id: Some("nope".into()),
            ..base()
        })
        .as_deref(),
        Some("node_id")
    );
    assert_eq!(
        key_of(Config {
            log_level: "loud".into(),
            ..base()
        })
        .as_deref(),
        Some("log_level")
    );
    assert_eq!(
        key_of(Config {
            client_addr: "localhost".into(),
            ..base()
        })
        .as_deref(),
        Some("client_addr")
    );
    assert_eq!(
        key_of(Config {
            reconnect_timeout: Duration::from_secs(60),
            ..base()
        })
        .as_deref(),
        Some("reconnect_timeout")
    );
    assert_eq!(
        key_of(Config {
            raft_snapshot_threshold: 0,
            ..base()
        })
        .as_deref(),
        Some("raft_snapshot_threshold")
    );
    assert_eq!(
        key_of(Config {
            raft_snapshot_interval: Duration::from_millis(1),
            ..base()
        })
        .as_deref(),
        Some("raft_snapshot_interval")
    );
    assert_eq!(
        key_of(Config {
            raft_trailing_logs: 0,
            ..base()
        })
        .as_deref(),
        Some("raft_trailing_logs")
    );
    assert_eq!(
        key_of(Config {
            services: vec![serde_json::json!({"port": 1})],
            ..base()
        })
        .as_deref(),
        Some("services[0]")
    );
    let mut c = base();
    c.node_meta.insert("consul-x".into(), "y".into());
    assert_eq!(key_of(c).as_deref(), Some("node_meta.consul-x"));
    let c = Config {
        event_handlers: vec!["user=ok.sh".into(), "membr-join=x.sh".into()],
        ..base()
    };
    let err = c.validate().unwrap_err().to_string();
    assert!(err.contains("event_handlers[1]"), "{err}");
    assert!(
        err.contains("\"membr-join\"") && err.contains("-event-handler"),
        "{err}"
    );
}

#[test]
fn event_handler_flags_and_file_key() {
    let f = flags(&[
        "-dev",
        "-event-handler",
        "user:deploy=./deploy.sh",
        "-event-handler=member-join,member-leave=echo a=b",
    ]);
    let c = Config::load_with_env(&f, no_env()).unwrap();
    assert_eq!(
        c.event_handlers,
        [
            "user:deploy=./deploy.sh",
            "member-join,member-leave=echo a=b"
        ]
    );
    let specs = c.event_handler_specs().unwrap();
    assert_eq!(specs[1].script, "echo a=b");
    assert!(specs[0].matches("user", Some("deploy")));
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "h.hcl",
        "data_dir = \"/x\"\nevent_handlers = [\"handler.sh\"]\n",
    );
    let c =
        Config::load_with_env(&flags(&["-config-file", path.to_str().unwrap()]), no_env()).unwrap();
    assert_eq!(c.event_handlers, ["handler.sh"]);
    let bad = flags(&["-dev", "-event-handler", "nope=x.sh"]);
    let err = Config::load_with_env(&bad, no_env())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("event_handlers[0]") && err.contains("nope"),
        "{err}"
    );
}

#[test]
fn validate_paths_merges_several_paths() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", r#"{"data_dir": "/x"}"#);
    let b = write(dir.path(), "b.hcl", "server = true\nbootstrap = true\n");
    assert!(
        validate_paths(std::slice::from_ref(&b)).is_err(),
        "data_dir is required"
    );
    let c = validate_paths(&[a, b]).unwrap();
    assert!(c.server && c.bootstrap);
    let err = validate_path(dir.path().join("missing.hcl")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    let err = validate_path(write(dir.path(), "c.toml", "")).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownFormat { .. }), "{err:?}");
}

#[test]
fn for_test_is_valid_and_uses_ephemeral_ports() {
    let dir = tempfile::tempdir().unwrap();
    let c = Config::for_test(dir.path());
    c.validate().unwrap();
    assert_eq!(c.ports.http_port(), Some(0));
    assert_eq!(c.ports.server_port(), Some(0));
    assert_eq!(c.client_ip().unwrap().to_string(), "127.0.0.1");
    assert_eq!(c.data_dir.as_deref(), Some(dir.path()));
}

#[test]
fn inline_hcl_flag_is_a_layer_above_files() {
    let f = flags(&["-dev", "-hcl", "datacenter = \"inline\""]);
    assert_eq!(
        Config::load_with_env(&f, no_env()).unwrap().datacenter,
        "inline"
    );
}

#[test]
fn coordinate_sync_interval_scales_with_the_pool() {
    let mut c = Config::default();
    assert_eq!(c.coordinate_sync_interval(3), Duration::from_secs(15));
    // 6400 members at 64 updates/s: every 100 s.
    assert_eq!(c.coordinate_sync_interval(6400), Duration::from_secs(100));
    c.dev_mode = true;
    assert_eq!(c.coordinate_sync_interval(3), Duration::from_secs(1));
    assert!(c.validate().is_ok());
    c.sync_coordinate_rate_target = 0.0;
    let err = c.validate().expect_err("zero rate").to_string();
    assert!(err.contains("sync_coordinate_rate_target"), "{err}");
}
