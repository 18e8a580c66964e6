//! End-to-end tests of the `meridian` binary for the commands that need no running agent.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;

fn meridian(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .env_remove("MERIDIAN_HTTP_ADDR")
        .env_remove("CONSUL_HTTP_ADDR")
        .output()
        .expect("run meridian")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path.to_string_lossy().into_owned()
}

#[test]
fn version_prints_consul_shaped_lines() {
    let o = meridian(&["version"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("Meridian v{}", env!("CARGO_PKG_VERSION")));
    assert!(lines[1].starts_with("Revision "), "{out}");
    assert!(
        lines[2].starts_with("Protocol 2 spoken by default"),
        "{out}"
    );
}

#[test]
fn keygen_prints_32_random_bytes_in_base64() {
    let a = meridian(&["keygen"]);
    assert!(a.status.success(), "{}", stderr(&a));
    let key = stdout(&a);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .expect("base64");
    assert_eq!(bytes.len(), 32);
    assert_ne!(key, stdout(&meridian(&["keygen"])), "two keys must differ");
}

#[test]
fn validate_accepts_a_good_hcl_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "agent.hcl",
        "data_dir = \"/tmp/m\"\nserver = true\nbootstrap_expect = 3\nports {\n  http = 18500\n}\n",
    );
    let o = meridian(&["validate", &file]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "Configuration is valid!");
}

#[test]
fn validate_rejects_a_typo_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "agent.hcl",
        "data_dir = \"/tmp/m\"\ndatacentr = \"dc2\"\n",
    );
    // Consul's single-dash spelling must work too.
    let o = meridian(&["validate", "-quiet", &file]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("Config validation failed: config file "),
        "{err}"
    );
    assert!(err.contains(&file), "{err}");
    assert!(err.contains("at key \"datacentr\""), "{err}");
}

#[test]
fn agent_with_a_bad_duration_flag_fails_fast_naming_the_flag() {
    let started = Instant::now();
    let o = meridian(&["agent", "-dev", "-retry-interval", "10parsecs"]);
    assert!(!o.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = stderr(&o);
    assert!(
        err.contains("invalid value '10parsecs' for '--retry-interval <DURATION>'"),
        "{err}"
    );
}

#[test]
fn agent_with_an_invalid_config_exits_non_zero_with_the_reason() {
    let o = meridian(&[
        "agent",
        "-server",
        "-bootstrap",
        "-bootstrap-expect=3",
        "-data-dir=/tmp/x",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bootstrap_expect"), "{}", stderr(&o));
}

#[test]
fn http_commands_name_the_unreachable_agent() {
    // Port 1 on localhost: nothing listens there, so the connection is refused at once.
    let o = meridian(&["kv", "get", "-http-addr=127.0.0.1:1", "foo"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("Error querying Consul agent: "), "{err}");
    assert!(err.contains("http://127.0.0.1:1"), "{err}");
}

#[test]
fn kv_get_without_a_key_is_an_error() {
    let o = meridian(&["kv", "get"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).trim(), "Error! Missing KEY argument");
}
