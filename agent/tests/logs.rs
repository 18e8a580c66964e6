//! The agent's own log, read as JSON from real `meridian` processes: a shutdown we asked for
//! (SIGTERM or SIGINT, even right after the election) writes no ERROR line.

mod common;

use std::time::Duration;

use common::Agent;

const WAIT: Duration = Duration::from_secs(30);

/// The parsed JSON lines of `a`'s log (other lines are kept as strings).
fn lines(a: &Agent) -> Vec<serde_json::Value> {
    a.log
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| serde_json::Value::String(l.clone())))
        .collect()
}

/// The lines at level ERROR, and any line that is not JSON (a panic, an `==>` error).
fn errors(a: &Agent) -> Vec<String> {
    lines(a)
        .into_iter()
        .filter(|v| v.is_string() || v["level"] == "ERROR")
        .map(|v| v.to_string())
        .collect()
}

fn dev_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec![
        "agent",
        "-dev",
        "-http-port",
        "0",
        "-serf-lan-port",
        "0",
        "-log-json",
    ];
    args.extend_from_slice(extra);
    args
}

/// Scenario: a `-dev` server is stopped the moment it has won its election, while its leader
/// loop is still registering it through raft; repeated, by SIGTERM and SIGINT. Before raft
/// was stopped last, a third of these runs logged openraft's "raft stopped" as ERROR.
#[test]
fn a_shutdown_right_after_the_election_logs_no_error() {
    for run in 0..8 {
        let signal = if run % 2 == 0 { "TERM" } else { "INT" };
        let mut a = Agent::launch(&dev_args(&[]));
        a.wait_log(WAIT, |l| l.contains("leadership changed"));
        let status = a.stop_with(signal);
        assert!(
            status.success(),
            "SIG{signal}: {status}:\n{}",
            a.log.join("\n")
        );
        let errors = errors(&a);
        assert!(errors.is_empty(), "SIG{signal}, run {run}: {errors:#?}");
    }
}
