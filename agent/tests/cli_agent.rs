//! The HTTP-API subcommands of `meridian` against a real dev agent, reached through the
//! address flags and environment variables Consul users already set.

mod common;

use std::process::{Command, Output};

use common::Agent;

fn cli(agent: &Agent, args: &[&str]) -> Output {
    Command::new(common::bin())
        .args(args)
        .env_remove("MERIDIAN_HTTP_ADDR")
        .env("CONSUL_HTTP_ADDR", &agent.addr)
        .output()
        .expect("run meridian")
}

fn out(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn kv_put_get_delete_round_trip_through_consul_http_addr() {
    let a = Agent::dev();
    let o = cli(&a, &["kv", "put", "web/foo", "bar"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "Success! Data written to: web/foo"
    );
    let o = cli(&a, &["kv", "get", "web/foo"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "bar");
    // The flag spelling of Consul wins over the environment.
    let flag = format!("-http-addr=http://{}", a.addr);
    let o = Command::new(common::bin())
        .args(["kv", "get", &flag, "web/foo"])
        .env("CONSUL_HTTP_ADDR", "127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "bar",
        "{}",
        out(&o)
    );
    // CAS with a stale index is refused and exits non-zero.
    let o = cli(
        &a,
        &["kv", "put", "-cas", "-modify-index=1", "web/foo", "baz"],
    );
    assert!(!o.status.success());
    assert!(out(&o).contains("Did not write"), "{}", out(&o));
    let o = cli(&a, &["kv", "get", "-recurse", "web/"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("web/foo:bar"),
        "{}",
        out(&o)
    );
    let o = cli(&a, &["kv", "delete", "web/foo"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "Success! Deleted key: web/foo"
    );
    let o = cli(&a, &["kv", "get", "web/foo"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out(&o).contains("Error! No key exists at: web/foo"),
        "{}",
        out(&o)
    );
}

#[test]
fn catalog_members_info_and_list_peers_show_the_server() {
    let a = Agent::dev();
    let node = a.get_json("/v1/agent/self")["Config"]["NodeName"]
        .as_str()
        .unwrap()
        .to_string();

    let o = cli(&a, &["catalog", "datacenters"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "dc1");
    let o = cli(&a, &["catalog", "services"]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.trim() == "consul"),
        "{}",
        out(&o)
    );
    let o = cli(&a, &["catalog", "nodes"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&node),
        "{}",
        out(&o)
    );

    let o = cli(&a, &["members"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let row = text
        .lines()
        .find(|l| l.starts_with(&node))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("alive") && row.contains("server") && row.contains("dc1"),
        "{text}"
    );

    let o = cli(&a, &["operator", "raft", "list-peers"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let header: Vec<&str> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["Node", "ID", "Address", "State", "Voter", "RaftProtocol"],
        "{text}"
    );
    let row = text.lines().nth(1).unwrap_or("");
    assert!(
        row.starts_with(&node) && row.contains("leader") && row.contains("true"),
        "{text}"
    );

    let o = cli(&a, &["info"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("leader = true"),
        "{}",
        out(&o)
    );
}
