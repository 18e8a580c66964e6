//! The LAN gossip pool end to end: real `-dev` agents (each its own single-server datacenter
//! raft-wise, sharing one gossip pool) joined with `meridian join` / `-retry-join`, gossip
//! encryption, failure and leave detection, and user events. Every wait has a deadline.

mod common;

use std::process::Output;
use std::time::Duration;

use common::{Agent, CONVERGE, status_of, statuses, text, wait_status, wait_until};
use serde_json::Value;

const KEY_A: &str = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
const KEY_B: &str = "HS5lJ+XuTlYKWaeGYyG+/A==";

fn join(a: &Agent, b: &Agent) -> Output {
    a.cli(&["join", &b.serf])
}

#[test]
fn two_dev_agents_join_and_list_each_other_alive() {
    let a = Agent::dev_named("gossip-a", &[]);
    let b = Agent::dev_named("gossip-b", &[]);
    assert!(!a.serf.is_empty(), "serf_lan in the startup line");
    let o = join(&a, &b);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "Successfully joined cluster by contacting 1 nodes."
    );
    for agent in [&a, &b] {
        wait_status(agent, "gossip-a", 1);
        wait_status(agent, "gossip-b", 1);
    }
    // Each member's entry matches the node's own `Member` in /v1/agent/self.
    let members = a.get_json("/v1/agent/members");
    let me = a.get_json("/v1/agent/self")["Member"].clone();
    let listed = members
        .as_array()
        .and_then(|l| l.iter().find(|m| m["Name"] == "gossip-a"))
        .cloned();
    assert_eq!(listed, Some(me.clone()));
    assert_eq!(me["Tags"]["role"], "consul");
    assert_eq!(
        format!("{}:{}", me["Addr"].as_str().unwrap_or(""), me["Port"]),
        a.serf
    );

    let o = b.cli(&["members", "-detailed"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("Node"), "{out}");
    assert_eq!(lines.len(), 3, "{out}");
    for (line, node, addr) in [
        (lines[1], "gossip-a", &a.serf),
        (lines[2], "gossip-b", &b.serf),
    ] {
        assert!(line.starts_with(node), "{out}");
        assert!(
            line.contains(addr.as_str()) && line.contains("alive"),
            "{out}"
        );
        assert!(line.contains("role=consul"), "{out}");
    }

    // A join to nobody fails with Consul's text and leaves members unchanged.
    let o = a.cli(&["join", "127.0.0.1:1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("Failed to join any nodes."),
        "{}",
        text(&o)
    );
    assert_eq!(statuses(&a).len(), 2);
}

#[test]
fn shared_key_converges_and_a_different_key_cannot_join() {
    let a = Agent::dev_named("enc-a", &["-encrypt", KEY_A]);
    let b = Agent::dev_named("enc-b", &["-encrypt", KEY_A]);
    let c = Agent::dev_named("enc-c", &["-encrypt", KEY_B]);
    let o = join(&b, &a);
    assert!(o.status.success(), "{}", text(&o));
    wait_status(&a, "enc-b", 1);
    wait_status(&b, "enc-a", 1);

    let o = join(&c, &a);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("Failed to join any nodes."),
        "{}",
        text(&o)
    );
    for agent in [&a, &b] {
        assert!(status_of(agent, "enc-c").is_none(), "{:?}", statuses(agent));
        assert_eq!(statuses(agent).len(), 2);
    }
    assert_eq!(statuses(&c), vec![("enc-c".to_string(), 1)]);
}

#[test]
fn killed_member_fails_force_leave_and_leave_make_members_left() {
    let a = Agent::dev_named("life-a", &[]);
    let b = Agent::dev_named("life-b", &[]);
    let mut c = Agent::dev_named("life-c", &[]);
    for other in [&b, &c] {
        let o = join(other, &a);
        assert!(o.status.success(), "{}", text(&o));
    }
    wait_status(&a, "life-b", 1);
    wait_status(&a, "life-c", 1);

    b.kill9();
    wait_status(&a, "life-b", 4);
    let o = a.cli(&["force-leave", "life-b"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_status(&a, "life-b", 3);
    let o = a.cli(&["force-leave", "nobody"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).starts_with("Error force leaving:"), "{}", text(&o));

    let o = c.cli(&["leave"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "Graceful leave complete"
    );
    wait_status(&a, "life-c", 3);
    let exit = c.wait_exit(Duration::from_secs(20));
    assert_eq!(
        exit.and_then(|s| s.code()),
        Some(0),
        "agent exits after leave"
    );
}

#[test]
fn events_reach_every_agent_joined_by_retry_join() {
    let a = Agent::dev_named("ev-a", &[]);
    let b = Agent::dev_named(
        "ev-b",
        &["-retry-join", &a.serf, "-retry-interval", "200ms"],
    );
    wait_status(&a, "ev-b", 1);
    wait_status(&b, "ev-a", 1);

    let o = a.cli(&["event", "-name", "hello", "payload"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let id = out
        .trim()
        .strip_prefix("Event ID: ")
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    for agent in [&a, &b] {
        wait_until(CONVERGE, "the event in /v1/event/list", || {
            agent.get_json("/v1/event/list?name=hello")[0]["ID"] == id.as_str()
        });
        let (_, headers, body) = agent.get("/v1/event/list?name=hello");
        let list: Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(list[0]["Payload"], "cGF5bG9hZA==", "{body}");
        assert_eq!(list[0]["Version"], 1);
        let index = headers
            .get("X-Consul-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        assert!(index.is_some_and(|i| i > 0), "{headers:?}");
        assert_eq!(
            agent.get_json("/v1/event/list?name=other"),
            Value::Array(vec![])
        );
    }

    // Blocking list: the index is the newest event's, and a read at it waits for the next.
    let (_, headers, _) = b.get("/v1/event/list?name=hello");
    let index = headers
        .get("X-Consul-Index")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (_, timed_out, _) = b.get(&format!(
        "/v1/event/list?name=hello&index={index}&wait=50ms"
    ));
    assert_eq!(
        timed_out["X-Consul-Index"].to_str().ok(),
        Some(index.as_str())
    );
    let url = format!("{}/v1/event/list?name=hello&index={index}&wait=20s", b.url);
    let waiter = std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .and_then(|c| c.get(url).send())
            .and_then(|r| r.json::<Value>())
    });
    let o = a.cli(&["event", "-name", "hello", "second"]);
    assert!(o.status.success(), "{}", text(&o));
    let woke = waiter
        .join()
        .expect("waiter thread")
        .expect("blocking list");
    assert_eq!(woke.as_array().map(Vec::len), Some(2), "{woke}");
    assert_eq!(woke[1]["Payload"], "c2Vjb25k");

    // Filters are applied by each receiver: fired on ev-b, these only match ev-a (by name,
    // and by its web service's tag).
    let (code, body) = a.put(
        "/v1/agent/service/register",
        r#"{"Name":"web","Tags":["v1"],"Port":80}"#,
    );
    assert_eq!(code, 200, "{body}");
    for (name, query) in [("only-a", "node=ev-a"), ("web-v1", "service=web&tag=v1")] {
        let (code, body) = b.put(&format!("/v1/event/fire/{name}?{query}"), "");
        assert_eq!(code, 200, "{body}");
        wait_until(CONVERGE, &format!("{name} on ev-a"), || {
            a.get_json(&format!("/v1/event/list?name={name}"))
                .as_array()
                .is_some_and(|l| l.len() == 1)
        });
    }
    for name in ["only-a", "web-v1"] {
        let list = b.get_json(&format!("/v1/event/list?name={name}"));
        assert_eq!(list, Value::Array(vec![]), "{name} filtered out on ev-b");
    }

    let (code, body) = a.put("/v1/event/fire/deploy?node=web.*", "v2");
    assert_eq!(code, 200, "{body}");
    let fired: Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(fired["Name"], "deploy");
    assert_eq!(fired["NodeFilter"], "web.*");
    assert_eq!(fired["Payload"], "djI=");
    // Near the 512-byte limit (with the ID and filters) still fits one gossip packet.
    let (code, body) = a.put("/v1/event/fire/near", vec![b'x'; 450]);
    assert_eq!(code, 200, "{body}");
    wait_until(CONVERGE, "the near-limit event on ev-b", || {
        b.get_json("/v1/event/list?name=near")
            .as_array()
            .is_some_and(|l| l.len() == 1)
    });
    let (code, body) = a.put("/v1/event/fire/big", vec![b'x'; 600]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("512"), "{body}");
    let (code, body) = a.put("/v1/event/fire/x?node=(", "");
    assert_eq!(code, 400, "{body}");
}

#[test]
fn exhausted_retry_join_stops_the_agent_with_exit_1() {
    let mut a = Agent::dev_named(
        "retry-a",
        &[
            "-retry-join",
            "127.0.0.1:1",
            "-retry-interval",
            "100ms",
            "-retry-max",
            "1",
        ],
    );
    let exit = a.wait_exit(Duration::from_secs(30));
    assert_eq!(exit.and_then(|s| s.code()), Some(1));
    a.wait_log(Duration::from_secs(5), |l| {
        l.contains("max join retry exhausted")
    });
}

#[test]
fn retry_join_joins_an_agent_that_answers() {
    let a = Agent::dev_named("rj-a", &[]);
    let b = Agent::dev_named(
        "rj-b",
        &[
            "-retry-join",
            &a.serf,
            "-retry-interval",
            "200ms",
            "-retry-max",
            "3",
        ],
    );
    wait_status(&a, "rj-b", 1);
    wait_status(&b, "rj-a", 1);
}

#[test]
fn sigterm_leaves_gracefully_only_with_leave_on_terminate() {
    let a = Agent::dev_named("sig-a", &[]);
    let b = Agent::dev_named("sig-b", &["-hcl", "leave_on_terminate = true"]);
    let c = Agent::dev_named("sig-c", &[]);
    for other in [&b, &c] {
        let o = join(other, &a);
        assert!(o.status.success(), "{}", text(&o));
    }
    wait_status(&a, "sig-b", 1);
    wait_status(&a, "sig-c", 1);
    assert!(b.terminate().success());
    wait_status(&a, "sig-b", 3);
    // A server's default is to stop without leaving: the others see it fail.
    assert!(c.terminate().success());
    wait_status(&a, "sig-c", 4);
}

/// Names `meridian members` lists on `a`.
fn member_names(a: &Agent) -> Vec<String> {
    let o = a.cli(&["members"]);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn force_leave_prune_removes_the_member_on_every_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reaped = dir.path().join("reaped");
    let handler = format!("member-reap=cat >> {}", reaped.display());
    let a = Agent::dev_named("prune-a", &[]);
    let b = Agent::dev_named("prune-b", &["-event-handler", &handler]);
    let c = Agent::dev_named("prune-c", &[]);
    for other in [&b, &c] {
        let o = join(other, &a);
        assert!(o.status.success(), "{}", text(&o));
    }
    for agent in [&a, &b] {
        wait_status(agent, "prune-c", 1);
    }
    // Force-leaving a member that is still running moves it to leaving, as serf does; it
    // refutes the intent and stays a member (only left members are pruned).
    let o = a.cli(&["force-leave", "-prune", "prune-b"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_status(&a, "prune-b", 1);

    c.kill9();
    for agent in [&a, &b] {
        wait_status(agent, "prune-c", 4);
    }
    let o = a.cli(&["force-leave", "-prune", "prune-c"]);
    assert!(o.status.success(), "{}", text(&o));
    for agent in [&a, &b] {
        wait_until(CONVERGE, "prune-c gone from members", || {
            let names = member_names(agent);
            names.len() == 2 && !names.iter().any(|n| n == "prune-c")
        });
        assert_eq!(status_of(agent, "prune-c"), None);
    }
    wait_until(CONVERGE, "member-reap handler for prune-c", || {
        std::fs::read_to_string(&reaped).is_ok_and(|t| t.starts_with("prune-c\t127.0.0.1\t"))
    });
    // Gone is gone: a plain force-leave no longer finds it.
    let o = a.cli(&["force-leave", "prune-c"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

/// The agent's gossip snapshot under `data`, parsed (null until written).
fn snapshot(data: &std::path::Path) -> Value {
    std::fs::read(data.join("serf").join("local.snapshot"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// `rj-*`'s user events as `/v1/event/list` shows them: (name, LTime).
fn event_ltimes(a: &Agent) -> Vec<(String, u64)> {
    a.get_json("/v1/event/list")
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    let name = e["Name"].as_str().unwrap_or_default().to_string();
                    (name, e["LTime"].as_u64().unwrap_or(u64::MAX))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// serf's snapshot: an agent killed with SIGKILL comes back on the same data dir and
/// rejoins its old peers by itself (no -join), resuming its user-event clock so it neither
/// re-delivers old events nor fires new ones at a stale time.
#[test]
fn a_killed_agent_rejoins_from_its_snapshot_and_resumes_its_event_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("rs-c");
    let data_flag = data.to_string_lossy().to_string();
    let a = Agent::dev_named("rs-a", &[]);
    let b = Agent::dev_named("rs-b", &[]);
    let c = Agent::dev_named("rs-c", &["-data-dir", &data_flag]);
    for other in [&b, &c] {
        let o = join(other, &a);
        assert!(o.status.success(), "{}", text(&o));
    }
    wait_status(&c, "rs-b", 1);
    for name in ["e0", "e1", "e2"] {
        let o = c.cli(&["event", name]);
        assert!(o.status.success(), "{}", text(&o));
    }
    wait_until(CONVERGE, "peers and ltime 2 in rs-c's snapshot", || {
        let s = snapshot(&data);
        s["alive"]["rs-a"].as_str() == Some(a.serf.as_str())
            && s["alive"]["rs-b"].as_str() == Some(b.serf.as_str())
            && s["event_ltime"] == 2
    });
    c.kill9();
    wait_status(&a, "rs-c", 4);

    let mut c = Agent::dev_named("rs-c", &["-data-dir", &data_flag]);
    c.wait_log(CONVERGE, |l| l.contains("rejoined the LAN pool"));
    for (viewer, node) in [(&c, "rs-a"), (&c, "rs-b"), (&a, "rs-c"), (&b, "rs-c")] {
        wait_status(viewer, node, 1);
    }
    let o = c.cli(&["event", "after"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_until(CONVERGE, "the new event on rs-c", || {
        event_ltimes(&c).iter().any(|(n, _)| n == "after")
    });
    assert_eq!(event_ltimes(&c), [("after".to_string(), 3)]);
}

/// After a graceful leave the agent does not rejoin on its own; with -rejoin it does.
#[test]
fn a_left_agent_rejoins_only_with_rejoin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("rl-c");
    let data_flag = data.to_string_lossy().to_string();
    let a = Agent::dev_named("rl-a", &[]);
    let mut c = Agent::dev_named("rl-c", &["-data-dir", &data_flag]);
    let o = join(&c, &a);
    assert!(o.status.success(), "{}", text(&o));
    wait_until(CONVERGE, "rl-a in rl-c's snapshot", || {
        snapshot(&data)["alive"]["rl-a"].is_string()
    });
    let o = c.cli(&["leave"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(c.wait_exit(CONVERGE).is_some(), "agent exits after leave");
    wait_status(&a, "rl-c", 3);
    assert_eq!(snapshot(&data)["left"], true);

    let mut c = Agent::dev_named("rl-c", &["-data-dir", &data_flag]);
    c.wait_log(CONVERGE, |l| {
        l.contains("not rejoining the previous members")
    });
    assert!(
        !c.log
            .iter()
            .any(|l| l.contains("rejoining the previous LAN members")),
        "{:?}",
        c.log
    );
    assert_eq!(statuses(&c), [("rl-c".to_string(), 1)]);
    assert_eq!(status_of(&a, "rl-c"), Some(3));
    c.kill9();

    let mut c = Agent::dev_named("rl-c", &["-data-dir", &data_flag, "-rejoin"]);
    c.wait_log(CONVERGE, |l| l.contains("rejoined the LAN pool"));
    wait_status(&c, "rl-a", 1);
    wait_status(&a, "rl-c", 1);
}
