//! The agent's own log, read as JSON from real `meridian` processes: a shutdown we asked for
//! (SIGTERM or SIGINT, even right after the election) writes no ERROR line, and DNS queries
//! are not logged one by one at the default level (they show from `-log-level debug` on, as
//! Consul logs them at debug); text logs to a pipe carry no colour codes; and `meridian
//! monitor` follows a running agent's log at its own level.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Agent, dev_args};

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

/// The lines the DNS server library wrote.
fn dns_library_lines(a: &Agent) -> Vec<String> {
    lines(a)
        .into_iter()
        .filter(|v| {
            v["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("hickory"))
        })
        .map(|v| v.to_string())
        .collect()
}

/// `dig +short NAME` against `a`, `n` times; every answer must be 127.0.0.1.
fn ask(a: &Agent, name: &str, n: usize) {
    for _ in 0..n {
        let out = Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &a.dns.to_string(),
                "+time=3",
                "+tries=1",
            ])
            .args([name, "+short"])
            .output()
            .expect("dig (bind9-dnsutils) must be installed");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "127.0.0.1");
    }
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

/// Scenario: SIGINT/SIGTERM while the agent is still starting (its first log line, before
/// it has bound or elected): the agent stops cleanly with exit 0. When the handlers were
/// installed only once it was running, such a signal killed it outright (on a busy
/// machine, the election test above saw that too).
#[test]
fn a_signal_during_startup_is_a_clean_stop() {
    for signal in ["INT", "TERM"] {
        let mut a = Agent::launch_early(&dev_args(&[]));
        a.wait_log(WAIT, |l| l.contains("raft started"));
        let status = a.stop_with(signal);
        assert!(
            status.success(),
            "SIG{signal}: {status}:\n{}",
            a.log.join("\n")
        );
    }
}

/// Scenario: 50 DNS queries to an agent at the default level, then SIGTERM: not one line per
/// query (hickory writes two at info), no ERROR. At `-log-level debug` each query shows in
/// Consul's `request served from client` line, also when answered from the cache.
#[test]
fn dns_queries_are_logged_at_debug_only() {
    let mut a = Agent::start(&dev_args(&[]));
    ask(&a, "consul.service.consul", 50);
    let status = a.stop_with("TERM");
    assert!(status.success(), "{status}");
    assert_eq!(errors(&a), Vec::<String>::new());
    assert_eq!(dns_library_lines(&a), Vec::<String>::new());
    assert!(
        !a.log.iter().any(|l| l.contains("consul.service.consul")),
        "no line names the query: {:#?}",
        a.log
    );

    let mut debug = Agent::start(&dev_args(&["-log-level", "debug"]));
    // The first answer is built by the handler, the next ones come from the answer cache:
    // each is logged.
    ask(&debug, "consul.service.consul", 3);
    let seen = std::cell::Cell::new(0);
    let line = debug.wait_log(WAIT, |l| {
        if l.contains("request served from client") && l.contains("consul.service.consul") {
            seen.set(seen.get() + 1);
        }
        seen.get() == 3
    });
    assert!(line.contains(r#""client_network":"udp""#), "{line}");
}

/// A text log (no `-log-json`) written to a pipe is plain text: no terminal colour codes.
#[test]
fn text_logs_to_a_pipe_have_no_colour_codes() {
    let mut a = Agent::launch_early(&["agent", "-dev", "-http-port", "0", "-serf-lan-port", "0"]);
    let line = a.wait_log(WAIT, |l| l.contains("Meridian agent running"));
    assert!(line.contains("INFO"), "{line}");
    let coloured: Vec<&String> = a.log.iter().filter(|l| l.contains('\x1b')).collect();
    assert!(coloured.is_empty(), "colour codes in: {coloured:?}");
}

/// Issue #18's acceptance: `meridian monitor -log-level debug` shows a service registration
/// as it happens, and debug lines the agent (at `info`) leaves out of its own log; when the
/// agent stops, the monitor says so and exits 1, as `consul monitor` does.
#[test]
fn monitor_cli_shows_a_registration_as_it_happens_at_its_own_level() {
    let mut a = Agent::start(&dev_args(&[]));
    let mut m = Agent::launch_early(&["monitor", "-log-level", "debug", "-http-addr", &a.addr]);
    let register = |body: String, what: &str| {
        let (code, text) = a.put(what, body);
        assert_eq!(code, 200, "{what}: {text}");
    };
    // The monitor subscribes some time after it starts: register one service more each
    // round until one shows (a bounded wait for the line, not a sleep).
    let deadline = Instant::now() + WAIT;
    let mut shown = None;
    for i in 0.. {
        assert!(
            Instant::now() < deadline,
            "no registration shown: {:?}",
            m.log
        );
        let name = format!("web-{i}");
        register(
            format!(r#"{{"Name":"{name}","Port":80}}"#),
            "/v1/agent/service/register",
        );
        let want = format!("Synced service: service={name}");
        if let Some(line) = m.try_wait_log(Duration::from_secs(1), |l| l.contains(&want)) {
            shown = Some(line);
            break;
        }
    }
    let line = shown.expect("a registration line");
    assert!(line.contains(" [INFO]  "), "{line}");
    // A check's sync is logged at debug: the monitor shows it, the agent's own log does not.
    register(
        r#"{"Name":"probe","TTL":"30s"}"#.to_string(),
        "/v1/agent/check/register",
    );
    let check = m.wait_log(WAIT, |l| l.contains("Synced check: check=probe"));
    assert!(check.contains(" [DEBUG] "), "{check}");
    register(
        r#"{"Name":"after","Port":80}"#.to_string(),
        "/v1/agent/service/register",
    );
    a.wait_log(WAIT, |l| {
        l.contains("Synced service") && l.contains("after")
    });
    let leaked: Vec<&String> = a
        .log
        .iter()
        .filter(|l| l.contains("Synced check"))
        .collect();
    assert!(
        leaked.is_empty(),
        "the info agent logged debug lines: {leaked:?}"
    );
    assert!(
        !m.log.iter().any(|l| l.contains('\x1b')),
        "colour codes in the monitor's output: {:?}",
        m.log
    );

    a.terminate();
    let status = m
        .wait_exit(WAIT)
        .expect("the monitor exits once the agent is gone");
    assert_eq!(status.code(), Some(1), "{:?}", m.log);
    m.wait_log(WAIT, |l| l.contains("Remote side ended the monitor!"));
}
