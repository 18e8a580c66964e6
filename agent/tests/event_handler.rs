//! serf's `-event-handler` scripts end to end: real `-dev` agents (child processes) joined in
//! one LAN pool, each running its handlers with `sh -c`. Covers serf's seed walk-through,
//! exactly-once delivery of a user event on every node, the member-join stdin line, and
//! failing handlers that only cost a warning. Every wait has a deadline.

mod common;

use std::path::{Path, PathBuf};

use common::{Agent, CONVERGE, text, wait_status, wait_until};

/// The handler lines of `path` (none if it does not exist yet).
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn join(a: &Agent, b: &Agent) {
    let o = a.cli(&["join", &b.serf]);
    assert!(o.status.success(), "{}", text(&o));
}

/// A handler that appends `$SERF_EVENT $SERF_USER_EVENT <stdin>` as one line to `file`.
fn recording_handler(file: &Path) -> String {
    format!(
        r#"user=printf '%s %s %s\n' "$SERF_EVENT" "$SERF_USER_EVENT" "$(cat)" >> {}"#,
        file.display()
    )
}

/// Fired once on one of three joined agents, a user event runs every agent's handler exactly
/// once with its payload. A second (marker) event bounds the wait for late duplicates: once
/// every node has run the marker, a duplicate of the first would already have shown up,
/// because scripts run in delivery order and the first was delivered before the marker fired.
#[test]
fn a_user_event_runs_each_nodes_handler_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let files: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("n{i}.events")))
        .collect();
    let nodes: Vec<Agent> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Agent::dev_named(
                &format!("eh-{i}"),
                &["-event-handler", &recording_handler(f)],
            )
        })
        .collect();
    for n in &nodes[1..] {
        join(n, &nodes[0]);
    }
    for a in &nodes {
        for i in 0..3 {
            wait_status(a, &format!("eh-{i}"), 1);
        }
    }

    let o = nodes[1].cli(&["event", "-name", "deploy", "v1"]);
    assert!(o.status.success(), "{}", text(&o));
    for f in &files {
        wait_until(CONVERGE, &format!("deploy in {}", f.display()), || {
            lines(f).iter().any(|l| l == "user deploy v1")
        });
    }
    let o = nodes[2].cli(&["event", "marker", "done"]);
    assert!(o.status.success(), "{}", text(&o));
    for f in &files {
        wait_until(CONVERGE, &format!("marker in {}", f.display()), || {
            lines(f).iter().any(|l| l == "user marker done")
        });
        assert_eq!(
            lines(f),
            ["user deploy v1", "user marker done"],
            "{}",
            f.display()
        );
    }
}

/// serf's getting-started walk-through with Meridian's CLI: two agents, `join`, `members`,
/// then `event hello-there` shows up in the log of the agent running `handler.sh`.
#[test]
fn seed_walkthrough_handler_logs_new_event_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("handler.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"New event: ${SERF_EVENT}\"\ncat\n",
    )
    .expect("write handler.sh");
    let chmod = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .expect("chmod");
    assert!(chmod.success());
    let flag = format!("-event-handler={}", script.display());
    let mut a = Agent::dev_named("walk-a", &[&flag]);
    let b = Agent::dev_named("walk-b", &[]);

    join(&b, &a);
    wait_until(CONVERGE, "members shows both alive", || {
        let o = a.cli(&["members"]);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        ["walk-a", "walk-b"]
            .iter()
            .all(|n| out.lines().any(|l| l.starts_with(n) && l.contains("alive")))
    });

    let o = b.cli(&["event", "hello-there"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("Event ID: "),
        "{}",
        text(&o)
    );
    a.wait_log(CONVERGE, |l| l.contains("New event: user"));
    let o = b.cli(&["event", "hello-there", "walkthrough-payload"]);
    assert!(o.status.success(), "{}", text(&o));
    let line = a.wait_log(CONVERGE, |l| l.contains("walkthrough-payload"));
    assert!(line.contains(r#""event":"user""#), "{line}");
}

/// A member-join handler reads serf's member line for the agent itself at start and for the
/// joining node; handlers that exit non-zero or do not exist are logged as warnings and the
/// agent carries on.
#[test]
fn member_join_handler_gets_the_member_line_and_failures_are_only_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("joins");
    let record = format!("member-join=cat >> {}", file.display());
    let mut a = Agent::dev_named(
        "mj-a",
        &[
            "-event-handler",
            "member-join=exit 7",
            "-event-handler",
            "member-join,user=/nonexistent/handler.sh",
            "-event-handler",
            &record,
        ],
    );
    let b = Agent::dev_named("mj-b", &[]);
    join(&b, &a);
    wait_until(CONVERGE, "mj-b's member line", || {
        lines(&file).iter().any(|l| l.starts_with("mj-b\t"))
    });
    let got = lines(&file);
    assert!(
        got.first().is_some_and(|l| l.starts_with("mj-a\t")),
        "serf runs member-join for the agent itself first: {got:?}"
    );
    let line = got
        .iter()
        .find(|l| l.starts_with("mj-b\t"))
        .cloned()
        .unwrap_or_default();
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields.len(), 4, "{line:?}");
    assert_eq!(fields[1], "127.0.0.1", "{line:?}");
    assert_eq!(fields[2], "consul", "{line:?}");
    assert!(
        fields[3].split(',').any(|t| t == "role=consul") && fields[3].contains("dc=dc1"),
        "{line:?}"
    );

    let failed = a.wait_log(CONVERGE, |l| {
        l.contains("event handler failed") && l.contains("exit status: 7")
    });
    assert!(failed.contains(r#""level":"WARN""#), "{failed}");
    a.wait_log(CONVERGE, |l| {
        l.contains("event handler failed") && l.contains("exit status: 127")
    });
    // Still serving, and still running handlers for later events.
    wait_status(&a, "mj-b", 1);
    let o = b.cli(&["event", "after"]);
    assert!(o.status.success(), "{}", text(&o));
    a.wait_log(CONVERGE, |l| {
        l.contains("/nonexistent/handler.sh") && l.contains(r#""event":"user""#)
    });
    assert_eq!(a.get_json("/v1/agent/self")["Config"]["NodeName"], "mj-a");
}
