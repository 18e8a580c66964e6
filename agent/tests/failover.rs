//! What a client sees across leader changes of a three-server datacenter: a default read
//! answered right after an election never goes back before a write the old leader
//! acknowledged, and a dead peer is logged once rather than on every heartbeat.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{CONVERGE, Ports, agreed_leader, index_of, ports, server_with};
use common::{Agent, POLL};

/// Raft at Consul's fastest timing, so elections take about a second.
const FAST: &[&str] = &["-hcl", "performance { raft_multiplier = 1 }"];

fn start(dir: &std::path::Path, p: &[Ports], i: usize) -> Agent {
    let seed = format!("127.0.0.1:{}", p[0].serf);
    let join = (i > 0).then_some(seed.as_str());
    server_with(dir, &format!("s{}", i + 1), &p[i], join, FAST)
}

/// Three servers; a write acknowledged by the leader, then the leader is SIGKILLed at once
/// (before its followers may have heard the write is committed). Every default read a
/// survivor answers afterwards shows the write — none shows the value before it — and the
/// same holds over several rounds with the killed server restarted in between.
#[test]
fn a_new_leader_never_answers_a_default_read_from_before_an_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p: Vec<Ports> = (0..3).map(|_| ports()).collect();
    let mut servers: Vec<Option<Agent>> = (0..3).map(|i| Some(start(dir.path(), &p, i))).collect();
    agreed_leader(&servers, "a leader", |_| true);
    for round in 0..4 {
        let l = index_of(&p, &agreed_leader(&servers, "a leader", |_| true));
        let old = format!("old-{round}");
        let new = format!("new-{round}");
        let leader = servers[l].as_ref().expect("running");
        assert_eq!(leader.put("/v1/kv/r", old.clone()).0, 200);
        assert_eq!(leader.put("/v1/kv/r", new.clone()), (200, "true".into()));
        servers[l].take().expect("running").kill9();
        for (i, s) in servers.iter().enumerate() {
            let Some(s) = s else { continue };
            let deadline = Instant::now() + CONVERGE;
            let mut answered = 0;
            while answered < 5 {
                assert!(
                    Instant::now() < deadline,
                    "s{} never answered a read",
                    i + 1
                );
                let (code, _, body) = s.get("/v1/kv/r?raw");
                if code == 200 {
                    assert_eq!(
                        body,
                        new,
                        "round {round}: s{} read from before the write",
                        i + 1
                    );
                    answered += 1;
                } else {
                    std::thread::sleep(POLL);
                }
            }
        }
        servers[l] = Some(start(dir.path(), &p, l));
    }
}

/// Counts lines of `log` that are WARN (or worse) and mention `needle`.
fn warns_about(log: &[String], needle: &str) -> usize {
    log.iter()
        .filter(|l| {
            (l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
                && l.contains(needle)
        })
        .count()
}

/// A killed follower is reported by the leader once (not once per heartbeat), its recovery
/// once, and the failures in between are counted in `/v1/agent/metrics`.
#[test]
fn a_dead_peer_is_logged_once_and_its_recovery_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p: Vec<Ports> = (0..3).map(|_| ports()).collect();
    let mut servers: Vec<Option<Agent>> = (0..3).map(|i| Some(start(dir.path(), &p, i))).collect();
    let l = index_of(&p, &agreed_leader(&servers, "a leader", |_| true));
    let f = (l + 1) % 3;
    let peer = format!("127.0.0.1:{}", p[f].server);
    servers[f].take().expect("running").kill9();
    let leader = servers[l].as_mut().expect("running");
    leader.wait_log(CONVERGE, |line| {
        line.contains("raft peer unreachable") && line.contains(&peer)
    });
    // Heartbeats go out every 100 ms: over two seconds, twenty failed RPCs at least.
    let failures = |a: &Agent| -> f64 {
        let m = a.get_json("/v1/agent/metrics");
        m["Gauges"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|g| g["Name"] == "meridian.raft.peer.rpc_failures_total")
            .filter(|g| g["Labels"]["peer"] == peer.as_str())
            .filter_map(|g| g["Value"].as_f64())
            .sum()
    };
    leader.collect_log(Duration::from_secs(2));
    assert_eq!(
        warns_about(&leader.log, &peer),
        1,
        "one WARN for the dead peer"
    );
    assert!(failures(leader) >= 10.0, "failed RPCs are counted");
    servers[f] = Some(start(dir.path(), &p, f));
    let leader = servers[l].as_mut().expect("running");
    leader.wait_log(CONVERGE, |line| {
        line.contains("raft peer reachable again") && line.contains(&peer)
    });
    assert_eq!(
        warns_about(&leader.log, &peer),
        1,
        "no WARN for the recovery"
    );
}
